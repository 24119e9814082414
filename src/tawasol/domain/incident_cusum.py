"""The statistics of incident detection: a two-sided Bernoulli CUSUM per stream of attempts.

`FailureCusum` watches the share of failures of one stream (a carrier towards a destination,
a carrier towards a country, a destination as customers see it) against the stream's own
learned baseline (Page, 1954; the form of Reynolds & Stoumbos, 1999); `DetectionSettings`
holds every threshold. `incident_detection` classifies what the streams say.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tawasol.domain.errors import InvalidInput

__all__ = ["DetectionSettings", "FailureCusum"]


@dataclass(frozen=True)
class DetectionSettings:
    """The thresholds of detection; each default is explained in docs/incidents.md.

    Shares are fractions of attempts (0.05 = 5%); `alarm_threshold` is in nats of
    log-likelihood ratio (14 needs about six failures in a row at a 5% baseline); an alarm
    also needs `min_failures` failures among the last `impact_attempts` attempts. Recovery
    needs `recovery_threshold` (7: about eleven successes in a row), then `recovery_hold`.
    The baseline is learned only while a stream's statistic is below `learning_share` of the
    alarm threshold (an outage building up is not learned as normal); a carrier counts as
    delivering a destination only while its statistic is below `healthy_share` of it.
    """

    baseline_failure_share: float = 0.05
    baseline_floor: float = 0.02
    baseline_ceiling: float = 0.25
    baseline_smoothing: float = 0.01
    learning_share: float = 0.5
    healthy_share: float = 0.5
    outage_failure_share: float = 0.5
    alarm_threshold: float = 14.0
    recovery_threshold: float = 7.0
    min_failures: int = 6
    recovery_hold: timedelta = timedelta(minutes=5)
    agreement_window: timedelta = timedelta(minutes=10)
    min_carriers_for_destination: int = 2
    impact_attempts: int = 20
    major_share: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.baseline_floor <= self.baseline_failure_share <= self.baseline_ceiling:
            raise InvalidInput(
                "baseline shares must satisfy 0 < floor <= initial <= ceiling",
                floor=self.baseline_floor,
                initial=self.baseline_failure_share,
                ceiling=self.baseline_ceiling,
            )
        if not self.baseline_ceiling < self.outage_failure_share < 1:
            raise InvalidInput(
                "the outage failure share must lie between the baseline ceiling and 1",
                outage_failure_share=self.outage_failure_share,
            )
        if not 0 < self.baseline_smoothing <= 1:
            raise InvalidInput(
                "baseline smoothing is the weight of each attempt in the learned baseline, "
                "in (0, 1]",
                baseline_smoothing=self.baseline_smoothing,
            )
        if not 0 < self.learning_share <= 1 or not 0 < self.healthy_share <= 1:
            raise InvalidInput(
                "the learning and healthy shares are fractions of the alarm threshold in (0, 1]"
            )
        if self.alarm_threshold <= 0 or self.recovery_threshold <= 0:
            raise InvalidInput("the alarm and recovery thresholds must be positive")
        if self.recovery_hold < timedelta(0) or self.agreement_window <= timedelta(0):
            raise InvalidInput("recovery hold and agreement window cannot be negative")
        if self.min_carriers_for_destination < 1 or self.impact_attempts < 1:
            raise InvalidInput(
                "the carriers agreeing on a destination outage and the recent attempts kept "
                "are at least 1",
                min_carriers_for_destination=self.min_carriers_for_destination,
                impact_attempts=self.impact_attempts,
            )
        if not 1 <= self.min_failures <= self.impact_attempts:
            raise InvalidInput(
                "min_failures must lie between 1 and impact_attempts (the failures needed "
                "among the recent attempts kept)",
                min_failures=self.min_failures,
                impact_attempts=self.impact_attempts,
            )
        if not 0 < self.major_share <= 1:
            raise InvalidInput("the major outage share is a fraction in (0, 1]")


@dataclass
class FailureCusum:
    """The failure share of one stream of attempts, watched by a two-sided Bernoulli CUSUM.

    `alarmed_at` is when the alarm was raised (None: healthy); `recovering_since` when the
    evidence of recovery last reached the threshold while alarmed. `recent` keeps the last
    `impact_attempts` outcomes (True = failed) to tell a partial outage from a major one.
    """

    settings: DetectionSettings
    baseline: float = 0.0
    statistic: float = 0.0
    recovery_statistic: float = 0.0
    alarmed_at: datetime | None = None
    recovering_since: datetime | None = None
    last_seen: datetime | None = None
    cleared_at: datetime | None = None
    recent: deque[bool] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if self.baseline == 0.0:
            self.baseline = self.settings.baseline_failure_share

    @property
    def alarmed(self) -> bool:
        return self.alarmed_at is not None

    def failure_share(self) -> float:
        """The share of failures among the recent attempts (0.0 without any)."""
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def observe(self, *, failed: bool, at: datetime) -> None:
        settings = self.settings
        self.last_seen = at
        self.recent.append(failed)
        if len(self.recent) > settings.impact_attempts:
            self.recent.popleft()
        p0, p1 = self.baseline, settings.outage_failure_share
        # log-likelihood ratio of "outage" (p1) against "normal" (p0) for this one attempt
        ratio = math.log(p1 / p0) if failed else math.log((1 - p1) / (1 - p0))
        self.statistic = max(0.0, self.statistic + ratio)
        if self.alarmed_at is None:
            # Learn the baseline only while nothing is suspected, so an outage is not learned.
            if self.statistic < settings.alarm_threshold * settings.learning_share:
                learned = p0 + settings.baseline_smoothing * (float(failed) - p0)
                self.baseline = min(
                    max(learned, settings.baseline_floor), settings.baseline_ceiling
                )
            # Several failures are needed too: a burst of two or three is noise.
            if (
                self.statistic >= settings.alarm_threshold
                and sum(self.recent) >= settings.min_failures
            ):
                self.alarmed_at = at
                self.recovery_statistic = 0.0
                self.recovering_since = None
            return
        self.recovery_statistic = max(0.0, self.recovery_statistic - ratio)
        if self.recovery_statistic >= settings.recovery_threshold:
            if self.recovering_since is None:
                self.recovering_since = at
        elif self.recovery_statistic < settings.recovery_threshold / 2:
            self.recovering_since = None  # failures came back: the hold starts again

    def raise_alarm(self, at: datetime) -> None:
        """Alarm now on evidence this stream shares with others (every carrier of a
        destination failing it together), though its own statistic is short of the threshold;
        recovery then works as after an alarm of its own."""
        if self.alarmed_at is None:
            self.alarmed_at = at
            self.recovery_statistic = 0.0
            self.recovering_since = None

    def clear_if_recovered(self, now: datetime) -> bool:
        """Clear the alarm once recovery has held for `recovery_hold`, or once no attempt came
        for `agreement_window`; True if it cleared."""
        if self.alarmed_at is None:
            return False
        # A stream nobody uses any more (routing moved its calls elsewhere) holds no evidence
        # of an outage: its alarm ends after `agreement_window` without attempts.
        stale = (
            self.last_seen is not None and now - self.last_seen >= self.settings.agreement_window
        )
        held = (
            self.recovering_since is not None
            and now - self.recovering_since >= self.settings.recovery_hold
        )
        if not (stale or held):
            return False
        self.reset(now)
        return True

    def end_if_silent_since(self, recovered_at: datetime | None, now: datetime) -> None:
        """End the alarm if this stream got no attempt since another stream of the same
        outage recovered at `recovered_at` (it holds no evidence of its own any more)."""
        if (
            self.alarmed_at is not None
            and recovered_at is not None
            and self.last_seen is not None
            and self.last_seen < recovered_at
        ):
            self.reset(now)

    def reset(self, now: datetime) -> None:
        """End the alarm (recovered, stale, or explained by another stream's recovery)."""
        self.cleared_at = now
        self.alarmed_at = None
        self.recovering_since = None
        self.statistic = 0.0
        self.recovery_statistic = 0.0
