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
    # one finding per carrier and country; the reason names the destination that fails
    assert [(f.kind, f.carrier, f.scope) for f in findings] == [
        (FindingKind.CARRIER, "flat", OutageScope("MA"))
    ]
    assert "MA mobile (Maroc Telecom)" in findings[0].reason
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


def test_given_a_cut_seen_by_calls_then_by_probes_then_one_carrier_finding_from_the_first() -> None:
    detector = IncidentDetector()
    start = feed(detector, seconds=60, fails={})
    cut = {("flat", scope): 1.0 for scope in (MAROC_TELECOM, ORANGE)}
    seen = feed(detector, start=start, seconds=20, fails=cut)
    (by_calls,) = detector.findings(seen)
    detector.observe_carrier_event(CarrierEvent("flat", seen, CarrierEventKind.DOWN, "probes"))
    (by_probes,) = detector.findings(seen + timedelta(seconds=1))
    assert by_calls.key == by_probes.key == ("carrier", "flat", OutageScope("MA"))
    assert by_probes.since == by_calls.since < seen


def test_given_flat_down_and_per_minute_short_then_only_the_cut_faces_customers() -> None:
    """The seed's first day: the flat-rate carrier is cut (down by probes), then the per-minute
    carrier cannot take the load (capacity learned below contract) and calls fail. Both are
    carrier findings; the customers' outage is put on the cut (the oldest), never on a
    destination finding, and never on two incidents at once."""
    detector = IncidentDetector()
    start = feed(detector, seconds=60, fails={})
    detector.observe_carrier_event(CarrierEvent("flat", start, CarrierEventKind.DOWN, "probes"))
    later = start + timedelta(seconds=30)
    detector.observe_carrier_event(
        CarrierEvent("per_minute", later, CarrierEventKind.CAPACITY_LEARNED, "cause 34", 5)
    )
    end = feed(
        detector,
        start=later,
        seconds=120,
        carriers=("per_minute",),
        fails={("per_minute", MAROC_TELECOM): 0.5, ("per_minute", ORANGE): 0.5},
    )
    findings = {f.carrier: f for f in detector.findings(end)}
    assert set(findings) == {"flat", "per_minute"}
    assert all(f.kind is FindingKind.CARRIER for f in findings.values())
    assert findings["flat"].customer_facing and findings["flat"].impact is OutageImpact.PARTIAL
    assert not findings["per_minute"].customer_facing


def test_given_the_cut_recovers_before_customers_then_no_destination_finding_in_between() -> None:
    """The carrier's hold ends a little before the customers' (their calls succeed a moment
    after it is up): the customers' recovering alarm must not become a destination outage."""
    settings = DetectionSettings(recovery_hold=timedelta(seconds=30))
    detector = IncidentDetector(settings)
    start = feed(detector, seconds=60, fails={})
    detector.observe_carrier_event(CarrierEvent("flat", start, CarrierEventKind.DOWN, "probes"))
    failing = feed(
        detector,
        start=start,
        seconds=120,
        carriers=("per_minute",),
        fails={("per_minute", MAROC_TELECOM): 0.6, ("per_minute", ORANGE): 0.6},
    )
    assert any(f.customer_facing for f in detector.findings(failing))
    detector.observe_carrier_event(CarrierEvent("flat", failing, CarrierEventKind.UP, "probes"))
    at = failing
    for second in range(1, 90):
        at = feed(detector, start=at, seconds=1, fails={}, seed=second)
        assert all(f.kind is FindingKind.CARRIER for f in detector.findings(at)), second
        if second > 15:  # 30 calls delivered in a row: customers are no longer affected
            assert not any(f.customer_facing for f in detector.findings(at)), second
    # per_minute, tried second again, gets no attempt: its alarm ends when it goes stale
    assert detector.findings(at + settings.agreement_window) == []


def night_with_half_of_flat_refused(seed: int) -> tuple[timedelta | None, list[tuple]]:
    """3 calls per destination per minute, either carrier tried first, half of flat's calls
    refused: when the first finding came after the fault began, and what it said."""
    detector = IncidentDetector()
    scopes = (MAROC_TELECOM, ORANGE, INWI, OutageScope("MA", NumberKind.FIXED, "Maroc Telecom"))
    rng = random.Random(seed)
    for round_ in range(45):
        at = T0
        for index, scope in enumerate(scopes):
            at = T0 + timedelta(seconds=round_ * 20 + index * 5)
            hunt = ("flat", "per_minute") if rng.random() < 0.5 else ("per_minute", "flat")
            for carrier in hunt:
                failed = carrier == "flat" and rng.random() < 0.5
                detector.observe_attempt(carrier=carrier, scope=scope, failed=failed, at=at)
                if not failed:
                    break
            detector.observe_call(scope=scope, failed=False, at=at)
        findings = detector.findings(at)
        if findings:
            return at - T0, [(f.kind, f.carrier, f.scope) for f in findings]
    return None, []


def test_given_half_a_carriers_calls_refused_at_night_then_its_pooled_stream_finds_it() -> None:
    """Few calls per destination (night): a destination sees about four of the carrier's
    failures in five minutes, short of the six an alarm needs; all of them towards the
    country together do: found as the carrier every night, within five minutes on half of
    them (a destination's own stream alone rarely within fifteen)."""
    nights = [night_with_half_of_flat_refused(seed) for seed in range(1, 7)]
    assert all(
        found == [(FindingKind.CARRIER, "flat", OutageScope("MA"))] for _, found in nights
    ), nights
    within = [delay for delay, _ in nights if delay is not None and delay <= timedelta(minutes=5)]
    assert len(within) >= 3, nights


def test_given_the_biggest_range_holder_down_then_no_carrier_blamed_on_the_way() -> None:
    """Maroc Telecom is most of the traffic: each carrier's pooled stream alarms, but the
    failures pile up on a destination where the other carrier fails too: a destination."""
    detector = IncidentDetector()
    start = feed(detector, seconds=120, fails={}, scopes=(MAROC_TELECOM, MAROC_TELECOM, ORANGE))
    fails = {("flat", MAROC_TELECOM): 1.0, ("per_minute", MAROC_TELECOM): 1.0}
    at = start
    for second in range(120):
        at = feed(
            detector, start=at, seconds=1, fails=fails, scopes=(MAROC_TELECOM, ORANGE), seed=second
        )
        assert all(f.kind is FindingKind.DESTINATION for f in detector.findings(at)), second
    assert [f.scope for f in detector.findings(at)] == [MAROC_TELECOM]


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


TUNISIE_TELECOM = OutageScope("TN", NumberKind.FIXED, "Tunisie Telecom")
OOREDOO = OutageScope("TN", NumberKind.MOBILE, "Ooredoo")


def call_a_minute(
    detector: IncidentDetector,
    *,
    start: datetime,
    minutes: int,
    fails: dict[str, list[bool]] | None = None,
    scope: OutageScope = TUNISIE_TELECOM,
) -> datetime:
    """One call a minute to `scope`, trying flat then per_minute; `fails[carrier][i]` says
    whether minute i's attempt on that carrier fails (none fail by default)."""
    at = start
    for minute in range(minutes):
        at = start + timedelta(minutes=minute)
        call_failed = True
        for carrier in ("flat", "per_minute"):
            failed = (fails or {}).get(carrier, [False] * minutes)[minute]
            detector.observe_attempt(carrier=carrier, scope=scope, failed=failed, at=at)
            if not failed:
                call_failed = False
                break
        detector.observe_call(scope=scope, failed=call_failed, at=at)
    return at


def test_given_a_call_a_minute_when_four_fail_on_both_carriers_then_destination_found() -> None:
    """A quiet destination (a call a minute, the other Tunisian one busy and delivered): four
    calls in a row fail on both carriers. Each carrier alone has four failures, short of the
    six an alarm needs; together they are two independent witnesses of one far network down,
    and customers' calls fail too: the destination is found at the fourth call, not the
    sixth (more than five minutes later)."""
    detector = IncidentDetector()
    start = call_a_minute(detector, start=T0, minutes=120)
    call_a_minute(detector, start=T0, minutes=120, scope=OOREDOO)
    failing = [True] * 4
    at = call_a_minute(
        detector,
        start=start + timedelta(minutes=1),
        minutes=4,
        fails={"flat": failing, "per_minute": failing},
    )
    findings = detector.findings(at)
    assert [(f.kind, f.scope) for f in findings] == [(FindingKind.DESTINATION, TUNISIE_TELECOM)]
    # customers' calls failed: four of their last calls, after hours of delivered ones
    assert findings[0].customer_facing and findings[0].impact is OutageImpact.PARTIAL


def test_given_both_carriers_fail_different_calls_then_no_destination_finding() -> None:
    """Both carriers' evidence builds up towards one quiet destination, but never on the same
    calls: every call is delivered by the carrier tried second. Customers are not affected
    and the far network works: the carriers' agreement does not make a destination outage."""
    detector = IncidentDetector()
    at = call_a_minute(detector, start=T0, minutes=120)
    # Calls alternate the carrier tried first: each carrier fails the calls it gets first.
    for minute in range(1, 9):
        at = at + timedelta(minutes=1)
        first, second = ("flat", "per_minute") if minute % 2 else ("per_minute", "flat")
        detector.observe_attempt(carrier=first, scope=TUNISIE_TELECOM, failed=True, at=at)
        detector.observe_attempt(carrier=second, scope=TUNISIE_TELECOM, failed=False, at=at)
        detector.observe_call(scope=TUNISIE_TELECOM, failed=False, at=at)
        assert all(f.kind is not FindingKind.DESTINATION for f in detector.findings(at)), minute


def test_given_a_destination_found_by_agreement_when_calls_succeed_then_it_clears() -> None:
    """Alarms raised by agreement end as any alarm does: once recovery has held."""
    settings = DetectionSettings(recovery_hold=timedelta(minutes=5))
    detector = IncidentDetector(settings)
    start = call_a_minute(detector, start=T0, minutes=120)
    failing = [True] * 4
    at = call_a_minute(
        detector, start=start, minutes=4, fails={"flat": failing, "per_minute": failing}
    )
    assert detector.findings(at)
    # Calls are delivered again: a finding by agreement is resolved as any alarm is, after
    # recovery evidence (about eleven delivered calls) has held for the hold.
    healed = call_a_minute(detector, start=at + timedelta(minutes=1), minutes=12)
    assert detector.findings(healed), "recovery has not held for the hold yet"
    later = call_a_minute(detector, start=healed + timedelta(minutes=1), minutes=20)
    assert detector.findings(later + settings.agreement_window) == []
