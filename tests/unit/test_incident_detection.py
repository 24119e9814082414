"""Incident detection: carrier vs destination, customer impact, noise, recovery (pure domain)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
from tawasol.domain.errors import InvalidInput
from tawasol.domain.incident_detection import DetectionSettings, FindingKind, IncidentDetector
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutageScope

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MAROC_TELECOM = OutageScope("MA", NumberKind.MOBILE, "Maroc Telecom")
ORANGE = OutageScope("MA", NumberKind.MOBILE, "Orange")
INWI = OutageScope("MA", NumberKind.MOBILE, "Inwi")


def feed(
    detector: IncidentDetector,
    *,
    seconds: int,
    start: datetime = T0,
    fails: dict[tuple[str, OutageScope], float],
    scopes: tuple[OutageScope, ...] = (MAROC_TELECOM, ORANGE),
    carriers: tuple[str, ...] = ("flat", "per_minute"),
    seed: int = 1,
) -> datetime:
    """One call per second per scope, hunting the carriers in order; returns the end time."""
    rng = random.Random(seed)
    for second in range(seconds):
        at = start + timedelta(seconds=second)
        for scope in scopes:
            call_failed = True
            for carrier in carriers:
                failed = rng.random() < fails.get((carrier, scope), 0.02)
                detector.observe_attempt(carrier=carrier, scope=scope, failed=failed, at=at)
                if not failed:
                    call_failed = False
                    break
            detector.observe_call(scope=scope, failed=call_failed, at=at)
    return start + timedelta(seconds=seconds)


def test_given_normal_noise_when_an_hour_passes_then_no_finding() -> None:
    detector = IncidentDetector()
    end = feed(detector, seconds=3600, fails={})
    assert detector.findings(end) == []


def test_given_one_carrier_fails_a_destination_when_the_other_delivers_then_carrier_internal() -> (
    None
):
    detector = IncidentDetector()
    end = feed(detector, seconds=120, fails={("flat", MAROC_TELECOM): 1.0})
    findings = detector.findings(end)
    assert [(f.kind, f.carrier, f.scope) for f in findings] == [
        (FindingKind.CARRIER, "flat", MAROC_TELECOM)
    ]
    assert not findings[0].customer_facing  # failover absorbed it


def test_given_range_holder_down_on_both_carriers_then_one_destination_finding() -> None:
    detector = IncidentDetector()
    fails = {("flat", MAROC_TELECOM): 1.0, ("per_minute", MAROC_TELECOM): 1.0}
    end = feed(detector, seconds=120, fails=fails)
    findings = detector.findings(end)
    assert [(f.kind, f.carrier, f.scope) for f in findings] == [
        (FindingKind.DESTINATION, None, MAROC_TELECOM)
    ]
    assert findings[0].customer_facing and findings[0].impact is OutageImpact.MAJOR


def test_given_every_range_holder_down_then_the_finding_widens_to_the_kind() -> None:
    detector = IncidentDetector()
    fails = {(c, s): 1.0 for c in ("flat", "per_minute") for s in (MAROC_TELECOM, ORANGE)}
    end = feed(detector, seconds=120, fails=fails)
    assert [f.scope for f in detector.findings(end)] == [OutageScope("MA", NumberKind.MOBILE)]


def test_given_carrier_marked_down_by_probes_then_carrier_finding_at_that_time() -> None:
    detector = IncidentDetector()
    end = feed(detector, seconds=60, fails={})
    detector.observe_carrier_event(CarrierEvent("flat", end, CarrierEventKind.DOWN, "probes"))
    (finding,) = detector.findings(end)
    assert (finding.kind, finding.carrier, finding.since) == (FindingKind.CARRIER, "flat", end)
    assert finding.scope == OutageScope("MA")
    assert not finding.customer_facing


def test_given_carrier_capped_below_demand_when_calls_fail_then_customer_facing_partial() -> None:
    detector = IncidentDetector()
    start = feed(detector, seconds=60, fails={})
    detector.observe_carrier_event(
        CarrierEvent("per_minute", start, CarrierEventKind.CAPACITY_LEARNED, "cause 34", 5)
    )
    # flat is down: only per_minute carries, and refuses half the calls
    end = feed(
        detector,
        start=start,
        seconds=120,
        carriers=("per_minute",),
        fails={("per_minute", MAROC_TELECOM): 0.5, ("per_minute", ORANGE): 0.5},
    )
    findings = [f for f in detector.findings(end) if f.carrier == "per_minute"]
    assert findings and all(f.kind is FindingKind.CARRIER for f in findings)
    assert any(f.customer_facing and f.impact is OutageImpact.PARTIAL for f in findings)


def test_given_outage_when_recovery_holds_then_finding_clears_only_after_the_hold() -> None:
    settings = DetectionSettings(recovery_hold=timedelta(minutes=2))
    detector = IncidentDetector(settings)
    fails = {("flat", MAROC_TELECOM): 1.0, ("per_minute", MAROC_TELECOM): 1.0}
    broken_until = feed(detector, seconds=60, fails=fails)
    assert detector.findings(broken_until)
    healed = feed(detector, start=broken_until, seconds=60, fails={})
    assert detector.findings(healed), "a minute of recovery is less than the hold"
    later = feed(detector, start=healed, seconds=120, fails={})
    # flat answers first again: per_minute gets no attempts, its alarm ends when it goes stale
    assert all(f.kind is FindingKind.CARRIER for f in detector.findings(later))
    assert detector.findings(later + settings.agreement_window) == []


def test_given_a_burst_of_three_failures_then_no_alarm() -> None:
    detector = IncidentDetector()
    at = T0
    for index in range(200):
        failed = index in (100, 101, 102)
        detector.observe_attempt(carrier="flat", scope=INWI, failed=failed, at=at)
        detector.observe_attempt(carrier="per_minute", scope=INWI, failed=False, at=at)
        at += timedelta(seconds=1)
    assert detector.findings(at) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"baseline_floor": 0.0},
        {"outage_failure_share": 0.1},
        {"alarm_threshold": 0},
        {"min_failures": 50},
        {"major_share": 1.5},
        {"agreement_window": timedelta(0)},
    ],
)
def test_given_contradictory_settings_then_refused(changes: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        DetectionSettings(**changes)  # type: ignore[arg-type]
