"""Quality: how well each carrier delivers calls to each country, over the last minutes.

A carrier rarely fails all at once: it starts dropping one call in five to Morocco, or takes
eight seconds to ring. The operator must see it within minutes, and routing must prefer a
better carrier until it recovers. For every attempt the SIP edge reports how it ended
(`AttemptOutcome`); `QualityWindow` keeps the recent ones per carrier and destination country
and answers, over a window such as the last 5 minutes or the last hour (`QualityFigures`):

- **ASR**, answer-seizure ratio: answered attempts / attempts. It mixes the network's failures
  with the callee's behaviour: a country where people often do not pick up has a low ASR
  on every carrier.
- **NER**, network effectiveness ratio (ITU-T E.425): attempts that reached the callee (answered,
  busy, no answer, rejected by the callee, or a number that does not exist) / attempts. A busy
  or unanswered phone proves the network delivered the call, so NER isolates the carrier's own
  failures from the callee's behaviour: it is the figure to judge a carrier by. NER >= ASR.
- **ACD**, average call duration: mean talk time of answered calls that have ended, in seconds.
  Falling ACD on a carrier often means bad audio (people hang up and call again).
- **PDD**, post-dial delay: time from sending the call to the first ringing, in milliseconds;
  the median (p50) and the slow tail (p95). A long PDD makes callers hang up before ringing.

`should_de_prefer` says when a carrier's NER is too low to keep it first in the hunt: it is
de-preferred (tried after the others), never removed, so that it keeps carrying some calls and
its figures can recover.

Everything here is pure: no clock (callers pass `now`), no I/O. Ratios are not money, so they
are floats, rounded to 4 decimal places; `ner_table` gives exact Decimal values for routing.
"""

from __future__ import annotations

import re
from bisect import insort
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from tawasol.domain.errors import InvalidInput
from tawasol.domain.sip_semantics import (
    MAX_Q850_CAUSE,
    Fault,
    Outcome,
    meaning_of,
    q850_cause_from_reason,
)

__all__ = [
    "AttemptOutcome",
    "Outcome",
    "QualityFigures",
    "QualityWindow",
    "attempt_outcome",
    "ner_table",
    "q850_cause_from_reason",
    "should_de_prefer",
]

# Bounded memory: at most this many outcomes per (carrier, country); the oldest go first. At
# 100,000 a key holds more than an hour at 25 attempts per second, far beyond a small operator.
DEFAULT_MAX_OUTCOMES_PER_KEY = 100_000
DEFAULT_LONGEST_WINDOW = timedelta(hours=1)

# Ratios are shown to 4 decimal places (0.9876 = 98.76%), ACD to a tenth of a second.
_RATIO_PLACES = 4
_ACD_PLACES = 1
_RATIO_QUANTUM = Decimal(1).scaleb(-_RATIO_PLACES)

_COUNTRY = re.compile(r"[A-Z]{2}")


def attempt_outcome(*, sip_code: int | None, q850_cause: int | None, answered: bool) -> Outcome:
    """The E.425 category of an attempt, from its final SIP code and Q.850 cause: the outcome
    column of `sip_semantics`' table (the one the edge's failover and capacity learning read).

    No final code at all (`sip_code` None) means our own timer expired on a silent carrier:
    a network failure whatever the cause.
    """
    if answered:
        return Outcome.ANSWERED
    if sip_code is None:
        return Outcome.NETWORK_FAILURE
    if 200 <= sip_code < 300:
        return Outcome.ANSWERED
    if not 300 <= sip_code <= 699:
        return Outcome.NETWORK_FAILURE  # not a final answer: nothing the callee said
    return meaning_of(sip_code, q850_cause).outcome


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt of a call on one carrier ended, as the SIP edge saw it.

    `sip_code` is the final SIP code of the attempt (None: no final answer before our timer, a
    local timeout); `q850_cause` the cause of a `Reason: Q.850;cause=N` header, if any.
    `pdd_ms` is the time to the first ringing (None: it never rang); `duration_ms` the talk time
    of an answered call once it has ended (None: not ended yet, or not answered). Record an
    answered attempt after its call ended to count its duration in ACD.
    """

    carrier: str
    country: str
    at: datetime
    sip_code: int | None
    q850_cause: int | None = None
    answered: bool = False
    pdd_ms: int | None = None
    duration_ms: int | None = None

    def __post_init__(self) -> None:
        if not self.carrier:
            raise InvalidInput("an attempt outcome needs a carrier code")
        if not _COUNTRY.fullmatch(self.country):
            raise InvalidInput(
                "country must be an ISO 3166 alpha-2 code such as MA", country=self.country
            )
        if self.at.tzinfo is None:
            raise InvalidInput("attempt times must be time-zone aware", carrier=self.carrier)
        if self.sip_code is not None and not 200 <= self.sip_code <= 699:
            raise InvalidInput("a final SIP code is 200-699", sip_code=self.sip_code)
        if self.q850_cause is not None and not 1 <= self.q850_cause <= MAX_Q850_CAUSE:
            raise InvalidInput("a Q.850 cause is 1-127", q850_cause=self.q850_cause)
        success = self.sip_code is not None and self.sip_code < 300
        if self.answered != success:
            raise InvalidInput(
                "an attempt is answered exactly when its final SIP code is 2xx",
                sip_code=self.sip_code,
                answered=self.answered,
            )
        if self.pdd_ms is not None and self.pdd_ms < 0:
            raise InvalidInput("post-dial delay cannot be negative", pdd_ms=self.pdd_ms)
        if self.duration_ms is not None and (self.duration_ms < 0 or not self.answered):
            raise InvalidInput(
                "a duration is the talk time of an answered call, never negative",
                duration_ms=self.duration_ms,
            )

    @property
    def outcome(self) -> Outcome:
        return attempt_outcome(
            sip_code=self.sip_code, q850_cause=self.q850_cause, answered=self.answered
        )

    @property
    def far_network_failure(self) -> bool:
        """A network failure that the one SIP semantics table puts on the destination network
        (e.g. 502, 504, Q.850 causes 27, 38, 102), not on the carrier that reported it."""
        if self.answered or self.sip_code is None or not 300 <= self.sip_code <= 699:
            return False
        meaning = meaning_of(self.sip_code, self.q850_cause)
        return (
            meaning.outcome is Outcome.NETWORK_FAILURE
            and meaning.fault is Fault.DESTINATION_NETWORK
        )


@dataclass(frozen=True)
class QualityFigures:
    """A carrier's quality over a window ending at `at`, for one country or (None) all of them.

    `asr`, `ner` (0-1, 4 decimal places), `acd_seconds` and the PDD percentiles are None when
    there is nothing to measure (no attempts, no ended answered call, nothing rang).
    `network_failures` is attempts minus effective attempts; `far_network_failures` those of
    them the carrier reported as the destination network's (`sip_semantics`' fault column).
    """

    carrier: str
    country: str | None
    window: timedelta
    at: datetime
    attempts: int
    answered: int
    effective: int
    asr: float | None
    ner: float | None
    acd_seconds: float | None
    pdd_p50_ms: int | None
    pdd_p95_ms: int | None
    far_network_failures: int = 0

    @property
    def network_failures(self) -> int:
        return self.attempts - self.effective


def should_de_prefer(figures: QualityFigures, *, threshold_ner: float, min_attempts: int) -> bool:
    """True if the carrier's NER is below `threshold_ner` over at least `min_attempts` attempts,
    not counting the failures it reported as the destination network's.

    A far network that is down (a national mobile network, a range holder) fails calls on
    every carrier alike: moving calls from one carrier to another changes nothing, and would
    punish carriers that work for hours after the outage (issue 13). So failures whose fault
    is the destination network (`AttemptOutcome.far_network_failure`) are set aside here; the
    NER shown (`ner`) still counts them, as ITU-T E.425 defines it.

    Below `min_attempts` the figures say too little (two failures out of three calls is bad
    luck, not a broken carrier), so the carrier keeps its place. A de-preferred carrier is tried
    after the others, not removed: it still carries calls when the others are full or failing.
    The comparison uses the exact counts, not the rounded `ner`.
    """
    if not 0 <= threshold_ner <= 1:
        raise InvalidInput("an NER threshold is between 0 and 1", threshold_ner=threshold_ner)
    if min_attempts < 1:
        raise InvalidInput("min_attempts must be at least 1", min_attempts=min_attempts)
    if figures.attempts < min_attempts:
        return False
    return figures.effective + figures.far_network_failures < threshold_ner * figures.attempts


def _at(outcome: AttemptOutcome) -> datetime:
    return outcome.at


class QualityWindow:
    """Recent attempt outcomes per carrier and destination country, in memory.

    Outcomes older than `longest_window` before the latest time seen (the newest outcome or
    `now` of a query) are dropped, and each (carrier, country) keeps at most
    `max_outcomes_per_key` outcomes (the newest), so memory stays bounded whatever the traffic.
    Outcomes may arrive out of order (the edge replays its spool): they are kept in time order.
    A window of length W at `now` holds the outcomes with `now - W < at <= now`.
    """

    def __init__(
        self,
        *,
        longest_window: timedelta = DEFAULT_LONGEST_WINDOW,
        max_outcomes_per_key: int = DEFAULT_MAX_OUTCOMES_PER_KEY,
    ) -> None:
        if longest_window <= timedelta(0):
            raise InvalidInput("the longest quality window must be positive")
        if max_outcomes_per_key < 1:
            raise InvalidInput("max_outcomes_per_key must be at least 1")
        self._longest_window = longest_window
        self._max_per_key = max_outcomes_per_key
        # carrier -> country -> outcomes, oldest first.
        self._outcomes: dict[str, dict[str, deque[AttemptOutcome]]] = {}
        self._latest: datetime | None = None

    @property
    def longest_window(self) -> timedelta:
        return self._longest_window

    def __len__(self) -> int:
        return sum(
            len(kept) for countries in self._outcomes.values() for kept in countries.values()
        )

    def carriers(self) -> list[str]:
        return sorted(self._outcomes)

    def countries(self, carrier: str) -> list[str]:
        return sorted(self._outcomes.get(carrier, {}))

    def record(self, outcome: AttemptOutcome) -> bool:
        """Keep an outcome; False if it is already too old to fall in any window (dropped)."""
        self._advance(outcome.at)
        assert self._latest is not None
        if outcome.at <= self._latest - self._longest_window:
            return False
        kept = self._outcomes.setdefault(outcome.carrier, {}).setdefault(outcome.country, deque())
        if len(kept) >= self._max_per_key:
            if outcome.at < kept[0].at:
                return False  # older than everything kept in a full key: the cap drops it
            kept.popleft()
        if not kept or kept[-1].at <= outcome.at:
            kept.append(outcome)
        else:
            insort(kept, outcome, key=_at)
        self._evict_key(outcome.carrier, outcome.country)
        return True

    def record_all(self, outcomes: Iterable[AttemptOutcome]) -> int:
        """Keep several outcomes (e.g. to warm up after a restart); returns how many were kept."""
        return sum(1 for outcome in outcomes if self.record(outcome))

    def evict(self, now: datetime) -> None:
        """Drop every outcome too old for the longest window at `now`."""
        self._advance(now)
        for carrier in list(self._outcomes):
            for country in list(self._outcomes[carrier]):
                self._evict_key(carrier, country)

    def figures(
        self, *, carrier: str, window: timedelta, now: datetime, country: str | None = None
    ) -> QualityFigures:
        """The carrier's figures over `window` ending at `now`, for one country or all of them."""
        self._check_window(window, now)
        self.evict(now)
        return self._figures(carrier=carrier, country=country, window=window, now=now)

    def all_figures(self, *, window: timedelta, now: datetime) -> list[QualityFigures]:
        """For each carrier (by code): its overall figures, then one per country (by code)."""
        self._check_window(window, now)
        self.evict(now)
        result: list[QualityFigures] = []
        for carrier in self.carriers():
            result.append(self._figures(carrier=carrier, country=None, window=window, now=now))
            result.extend(
                self._figures(carrier=carrier, country=country, window=window, now=now)
                for country in self.countries(carrier)
            )
        return result

    def ner_table(
        self, *, window: timedelta, now: datetime, min_attempts: int = 1
    ) -> dict[tuple[str, str], Decimal]:
        """Exact NER per (carrier, country), for keys with at least `min_attempts` attempts.

        The shape the quality-weighted routing strategy takes; a key left out counts as
        unknown there.
        """
        return ner_table(self.all_figures(window=window, now=now), min_attempts=min_attempts)

    def _figures(
        self, *, carrier: str, country: str | None, window: timedelta, now: datetime
    ) -> QualityFigures:
        countries = self._outcomes.get(carrier, {})
        if country is None:
            selected = list(countries.values())
        else:
            selected = [countries[country]] if country in countries else []
        in_window = (outcome for kept in selected for outcome in _within(kept, now - window, now))
        return _summarise(in_window, carrier=carrier, country=country, window=window, now=now)

    def _check_window(self, window: timedelta, now: datetime) -> None:
        if now.tzinfo is None:
            raise InvalidInput("now must be time-zone aware")
        if not timedelta(0) < window <= self._longest_window:
            raise InvalidInput(
                "a quality window is positive and no longer than the longest window kept",
                window=str(window),
                longest_window=str(self._longest_window),
            )

    def _advance(self, moment: datetime) -> None:
        if self._latest is None or moment > self._latest:
            self._latest = moment

    def _evict_key(self, carrier: str, country: str) -> None:
        assert self._latest is not None
        oldest_allowed = self._latest - self._longest_window
        countries = self._outcomes[carrier]
        kept = countries[country]
        while kept and kept[0].at <= oldest_allowed:
            kept.popleft()
        if not kept:
            del countries[country]
            if not countries:
                del self._outcomes[carrier]


def ner_table(
    all_figures: Iterable[QualityFigures], *, min_attempts: int = 1
) -> dict[tuple[str, str], Decimal]:
    """`QualityWindow.ner_table` from figures already summarised by `all_figures` (one pass
    over the outcomes serves both the de-preference verdicts and the routing table)."""
    table: dict[tuple[str, str], Decimal] = {}
    for figures in all_figures:
        if figures.country is None or figures.attempts < max(min_attempts, 1):
            continue
        ratio = Decimal(figures.effective) / Decimal(figures.attempts)
        table[(figures.carrier, figures.country)] = ratio.quantize(
            _RATIO_QUANTUM, rounding=ROUND_HALF_EVEN
        )
    return table


def _within(
    kept: deque[AttemptOutcome], after: datetime, until: datetime
) -> Iterator[AttemptOutcome]:
    """Outcomes with `after < at <= until`, newest first: walks only the window's own entries."""
    for outcome in reversed(kept):
        if outcome.at <= after:
            return
        if outcome.at <= until:
            yield outcome


def _nearest_rank(ordered: list[int], percent: int) -> int:
    """The nearest-rank percentile: the smallest value with at least `percent`% at or below it."""
    rank = max(1, -(-percent * len(ordered) // 100))  # ceil(percent / 100 * n), in integers
    return ordered[rank - 1]


def _summarise(
    outcomes: Iterable[AttemptOutcome],
    *,
    carrier: str,
    country: str | None,
    window: timedelta,
    now: datetime,
) -> QualityFigures:
    attempts = answered = effective = far_network = 0
    durations_ms: list[int] = []
    delays_ms: list[int] = []
    for outcome in outcomes:
        attempts += 1
        kind = outcome.outcome
        if kind is Outcome.ANSWERED:
            answered += 1
            if outcome.duration_ms is not None:
                durations_ms.append(outcome.duration_ms)
        if kind.effective:
            effective += 1
        elif outcome.far_network_failure:
            far_network += 1
        if outcome.pdd_ms is not None:
            delays_ms.append(outcome.pdd_ms)
    delays_ms.sort()
    return QualityFigures(
        carrier=carrier,
        country=country,
        window=window,
        at=now,
        attempts=attempts,
        answered=answered,
        effective=effective,
        asr=round(answered / attempts, _RATIO_PLACES) if attempts else None,
        ner=round(effective / attempts, _RATIO_PLACES) if attempts else None,
        acd_seconds=(
            round(sum(durations_ms) / len(durations_ms) / 1000, _ACD_PLACES)
            if durations_ms
            else None
        ),
        pdd_p50_ms=_nearest_rank(delays_ms, 50) if delays_ms else None,
        pdd_p95_ms=_nearest_rank(delays_ms, 95) if delays_ms else None,
        far_network_failures=far_network,
    )
