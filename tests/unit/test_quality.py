"""Quality figures per carrier and destination: classification (E.425 / RFC 3398), ASR, NER,
ACD, PDD percentiles over sliding windows, and de-preference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.errors import InvalidInput
from tawasol.domain.quality import (
    AttemptOutcome,
    Outcome,
    QualityFigures,
    QualityWindow,
    attempt_outcome,
    q850_cause_from_reason,
    should_de_prefer,
)

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
FIVE_MINUTES = timedelta(minutes=5)
ONE_HOUR = timedelta(hours=1)


def outcome(
    *,
    seconds_ago: float = 30,
    carrier: str = "ma-minute",
    country: str = "MA",
    sip_code: int | None,
    cause: int | None = None,
    pdd_ms: int | None = None,
    duration_ms: int | None = None,
) -> AttemptOutcome:
    return AttemptOutcome(
        carrier=carrier,
        country=country,
        at=NOW - timedelta(seconds=seconds_ago),
        sip_code=sip_code,
        q850_cause=cause,
        answered=sip_code == 200,
        pdd_ms=pdd_ms,
        duration_ms=duration_ms,
    )


def answered(
    duration_ms: int | None,
    *,
    pdd_ms: int | None = None,
    seconds_ago: float = 30,
    carrier: str = "ma-minute",
    country: str = "MA",
) -> AttemptOutcome:
    return outcome(
        sip_code=200,
        pdd_ms=pdd_ms,
        duration_ms=duration_ms,
        seconds_ago=seconds_ago,
        carrier=carrier,
        country=country,
    )


# --- Classification (ITU-T E.425, RFC 3398) --------------------------------------------------


@pytest.mark.parametrize(
    ("sip_code", "cause", "expected"),
    [
        (200, None, Outcome.ANSWERED),
        (486, None, Outcome.USER_BUSY),
        (600, None, Outcome.USER_BUSY),
        (486, 17, Outcome.USER_BUSY),
        (408, 18, Outcome.NO_ANSWER),  # RFC 3398: cause 18 -> 408, it rang out
        (408, 19, Outcome.NO_ANSWER),
        (480, 19, Outcome.NO_ANSWER),  # RFC 3398: cause 19 -> 480
        (480, None, Outcome.NO_ANSWER),  # RFC 3398 §8.2.6.1: 480 -> cause 18
        (480, 20, Outcome.REJECTED),  # subscriber absent: terminal unavailability
        (603, None, Outcome.REJECTED),
        (403, 21, Outcome.REJECTED),  # RFC 3398: cause 21 -> 403, the callee refused
        (487, None, Outcome.ABANDONED),  # the caller hung up first
        (404, None, Outcome.ADDRESS_ERROR),
        (404, 1, Outcome.ADDRESS_ERROR),
        (484, 28, Outcome.ADDRESS_ERROR),
        (410, 22, Outcome.ADDRESS_ERROR),
        (408, None, Outcome.NETWORK_FAILURE),  # a timer expired somewhere in the network
        (403, None, Outcome.NETWORK_FAILURE),  # the carrier refuses us, not the callee
        (404, 3, Outcome.NETWORK_FAILURE),  # no route to destination: a carrier's gap
        (500, None, Outcome.NETWORK_FAILURE),
        (502, 27, Outcome.NETWORK_FAILURE),
        (503, None, Outcome.NETWORK_FAILURE),
        (503, 34, Outcome.NETWORK_FAILURE),
        (503, 38, Outcome.NETWORK_FAILURE),
        (503, 41, Outcome.NETWORK_FAILURE),
        (503, 42, Outcome.NETWORK_FAILURE),
        (503, 47, Outcome.NETWORK_FAILURE),
        (504, None, Outcome.NETWORK_FAILURE),
        (488, None, Outcome.NETWORK_FAILURE),
        (None, None, Outcome.NETWORK_FAILURE),  # local timeout: the carrier stayed silent
        (None, 17, Outcome.NETWORK_FAILURE),
        (503, 17, Outcome.USER_BUSY),  # the terminating network's cause wins over the code
        (480, 16, Outcome.NO_ANSWER),  # cause 16 is not telling: fall back to the code
    ],
)
def test_given_final_code_and_cause_when_classified_then_e425_category(
    sip_code: int | None, cause: int | None, expected: Outcome
) -> None:
    assert (
        attempt_outcome(sip_code=sip_code, q850_cause=cause, answered=sip_code == 200) is expected
    )


def test_only_network_failures_are_not_effective() -> None:
    assert [kind for kind in Outcome if not kind.effective] == [Outcome.NETWORK_FAILURE]


@pytest.mark.parametrize(
    ("header", "cause"),
    [
        ("Q.850;cause=17", 17),
        ('Q.850 ;cause=16 ;text="Terminated"', 16),
        ("Reason: Q.850;cause=34", 34),
        ('SIP;cause=486;text="Busy, really", q.850;cause=17;text="User busy"', 17),
        ('SIP;cause=200;text="Call completed elsewhere"', None),
        ("Q.850;text=busy", None),
        ("Q.850;cause=abc", None),
        ("Q.850;cause=0", None),
        ("Q.850;cause=200", None),
        ("", None),
    ],
)
def test_given_reason_header_when_read_then_q850_cause(header: str, cause: int | None) -> None:
    assert q850_cause_from_reason(header) == cause


@pytest.mark.parametrize(
    "fields",
    [
        {"at": datetime(2026, 1, 10, 12, 0)},  # naive
        {"country": "ma"},
        {"country": "MAR"},
        {"carrier": ""},
        {"sip_code": 180},
        {"sip_code": 486, "answered": True},
        {"sip_code": 200, "answered": False},
        {"sip_code": None, "answered": True},
        {"sip_code": 486, "duration_ms": 1000},
        {"sip_code": 200, "answered": True, "duration_ms": -1},
        {"sip_code": 486, "pdd_ms": -5},
        {"sip_code": 486, "q850_cause": 0},
        {"sip_code": 486, "q850_cause": 128},
    ],
)
def test_given_inconsistent_attempt_when_built_then_refused(fields: dict[str, object]) -> None:
    values: dict[str, object] = {
        "carrier": "ma-minute",
        "country": "MA",
        "at": NOW,
        "sip_code": 486,
        "answered": False,
    }
    values.update(fields)
    with pytest.raises(InvalidInput):
        AttemptOutcome(**values)  # type: ignore[arg-type]


# --- Figures worked out by hand --------------------------------------------------------------


def scripted_mix() -> list[AttemptOutcome]:
    """Ten attempts to Morocco on one carrier in the last five minutes."""
    return [
        answered(60_000, pdd_ms=1_200, seconds_ago=10),
        answered(180_000, pdd_ms=1_800, seconds_ago=20),
        answered(30_000, pdd_ms=2_500, seconds_ago=30),
        outcome(sip_code=486, cause=17, seconds_ago=40),  # busy, never rang
        outcome(sip_code=480, cause=19, pdd_ms=1_500, seconds_ago=50),  # rang out
        outcome(sip_code=408, cause=18, pdd_ms=2_000, seconds_ago=60),  # rang out
        outcome(sip_code=503, seconds_ago=70),  # carrier congested
        outcome(sip_code=None, seconds_ago=80),  # carrier silent: our timer fired
        outcome(sip_code=408, seconds_ago=90),  # a timer fired in the carrier's network
        outcome(sip_code=603, pdd_ms=3_000, seconds_ago=100),  # callee declined
    ]


def test_given_scripted_mix_when_measured_then_figures_match_hand_arithmetic() -> None:
    window = QualityWindow()
    window.record_all(scripted_mix())

    figures = window.figures(carrier="ma-minute", country="MA", window=FIVE_MINUTES, now=NOW)

    assert figures.attempts == 10
    assert figures.answered == 3
    # Effective: 3 answered + 1 busy + 2 no answer (480/19, 408/18) + 1 declined = 7.
    # Network failures: 503, local timeout, 408 without cause = 3.
    assert figures.effective == 7
    assert figures.network_failures == 3
    assert figures.asr == 0.3  # 3 / 10
    assert figures.ner == 0.7  # 7 / 10
    # ACD: (60 + 180 + 30) s / 3 answered calls = 270 / 3 = 90.0 s.
    assert figures.acd_seconds == 90.0
    # PDD of the 6 attempts that rang, sorted: 1200 1500 1800 2000 2500 3000 (ms).
    # Nearest rank: p50 -> ceil(0.50 * 6) = 3rd = 1800; p95 -> ceil(0.95 * 6) = ceil(5.7) = 6th.
    assert figures.pdd_p50_ms == 1_800
    assert figures.pdd_p95_ms == 3_000


def test_given_answered_call_not_ended_when_measured_then_in_asr_but_not_in_acd() -> None:
    window = QualityWindow()
    window.record_all(scripted_mix())
    window.record(answered(None, pdd_ms=800, seconds_ago=5))  # still talking

    figures = window.figures(carrier="ma-minute", country="MA", window=FIVE_MINUTES, now=NOW)

    assert figures.attempts == 11
    assert figures.answered == 4
    assert figures.asr == 0.3636  # 4 / 11 = 0.363636...
    assert figures.ner == 0.7273  # 8 / 11 = 0.727272...
    assert figures.acd_seconds == 90.0  # still (60 + 180 + 30) / 3
    # 7 delays: 800 1200 1500 1800 2000 2500 3000; p50 -> ceil(3.5) = 4th; p95 -> ceil(6.65) = 7th
    assert figures.pdd_p50_ms == 1_800
    assert figures.pdd_p95_ms == 3_000


def test_given_twenty_delays_when_measured_then_p95_is_the_nineteenth() -> None:
    window = QualityWindow()
    # PDD 100, 200, ..., 2000 ms on 20 attempts that rang out unanswered.
    window.record_all(
        outcome(sip_code=480, cause=19, pdd_ms=100 * step, seconds_ago=step)
        for step in range(1, 21)
    )
    figures = window.figures(carrier="ma-minute", window=FIVE_MINUTES, now=NOW)
    # p50 -> ceil(0.50 * 20) = 10th = 1000 ms; p95 -> ceil(0.95 * 20) = 19th = 1900 ms.
    assert (figures.pdd_p50_ms, figures.pdd_p95_ms) == (1_000, 1_900)
    assert figures.asr == 0.0
    assert figures.ner == 1.0
    assert figures.acd_seconds is None


def test_given_no_attempts_when_measured_then_ratios_are_none() -> None:
    figures = QualityWindow().figures(carrier="nobody", window=FIVE_MINUTES, now=NOW)
    assert figures == QualityFigures(
        carrier="nobody",
        country=None,
        window=FIVE_MINUTES,
        at=NOW,
        attempts=0,
        answered=0,
        effective=0,
        asr=None,
        ner=None,
        acd_seconds=None,
        pdd_p50_ms=None,
        pdd_p95_ms=None,
    )


# --- Sliding windows -------------------------------------------------------------------------


def test_given_outcome_six_minutes_old_then_out_of_five_minutes_but_in_the_hour() -> None:
    window = QualityWindow(longest_window=ONE_HOUR)
    window.record(outcome(sip_code=503, seconds_ago=6 * 60))
    window.record(answered(120_000, seconds_ago=60))

    five = window.figures(carrier="ma-minute", country="MA", window=FIVE_MINUTES, now=NOW)
    hour = window.figures(carrier="ma-minute", country="MA", window=ONE_HOUR, now=NOW)

    assert (five.attempts, five.asr, five.ner) == (1, 1.0, 1.0)
    assert (hour.attempts, hour.asr, hour.ner) == (2, 0.5, 0.5)  # 1 answered, 1 failure / 2


def test_given_outcome_exactly_window_old_then_out_of_that_window() -> None:
    window = QualityWindow()
    window.record(outcome(sip_code=503, seconds_ago=5 * 60))
    assert window.figures(carrier="ma-minute", window=FIVE_MINUTES, now=NOW).attempts == 0


def test_given_time_passes_when_queried_later_then_old_outcomes_are_evicted() -> None:
    window = QualityWindow(longest_window=ONE_HOUR)
    window.record_all(scripted_mix())
    assert len(window) == 10

    later = NOW + timedelta(minutes=61)
    figures = window.figures(carrier="ma-minute", window=ONE_HOUR, now=later)

    assert figures.attempts == 0
    assert len(window) == 0
    assert window.carriers() == []  # empty keys are dropped too


def test_given_outcome_older_than_longest_window_when_recorded_then_dropped() -> None:
    window = QualityWindow(longest_window=ONE_HOUR)
    assert window.record(answered(1_000, seconds_ago=0))
    assert not window.record(outcome(sip_code=503, seconds_ago=2 * 3600))
    assert len(window) == 1


def test_given_outcomes_out_of_order_when_recorded_then_windows_stay_right() -> None:
    window = QualityWindow(longest_window=ONE_HOUR)
    window.record(answered(1_000, seconds_ago=10))
    window.record(outcome(sip_code=503, seconds_ago=600))  # a replayed, older outcome
    window.record(outcome(sip_code=486, seconds_ago=100))

    five = window.figures(carrier="ma-minute", window=FIVE_MINUTES, now=NOW)
    hour = window.figures(carrier="ma-minute", window=ONE_HOUR, now=NOW)

    assert (five.attempts, five.effective) == (2, 2)
    assert (hour.attempts, hour.effective) == (3, 2)


def test_given_outcomes_after_now_when_measured_then_not_counted() -> None:
    window = QualityWindow()
    window.record(outcome(sip_code=503, seconds_ago=-30))
    window.record(outcome(sip_code=486, seconds_ago=30))
    assert window.figures(carrier="ma-minute", window=FIVE_MINUTES, now=NOW).attempts == 1


def test_given_cap_per_key_when_exceeded_then_oldest_outcomes_go() -> None:
    window = QualityWindow(max_outcomes_per_key=3)
    window.record_all(outcome(sip_code=503, seconds_ago=50 - step) for step in range(5))
    window.record(outcome(sip_code=486, seconds_ago=1))
    assert len(window) == 3
    figures = window.figures(carrier="ma-minute", window=FIVE_MINUTES, now=NOW)
    assert (figures.attempts, figures.effective) == (3, 1)
    # Older than everything kept in a full key: dropped rather than evicting a newer one.
    assert not window.record(outcome(sip_code=486, seconds_ago=200))


@pytest.mark.parametrize("window_length", [timedelta(0), timedelta(seconds=-1), timedelta(hours=2)])
def test_given_window_not_kept_when_queried_then_refused(window_length: timedelta) -> None:
    with pytest.raises(InvalidInput):
        QualityWindow(longest_window=ONE_HOUR).figures(
            carrier="ma-minute", window=window_length, now=NOW
        )


def test_given_naive_now_when_queried_then_refused() -> None:
    with pytest.raises(InvalidInput):
        QualityWindow().figures(
            carrier="ma-minute", window=FIVE_MINUTES, now=datetime(2026, 1, 10, 12, 0)
        )


# --- Per carrier and per destination ---------------------------------------------------------


def test_given_two_carriers_and_countries_then_figures_are_kept_apart() -> None:
    window = QualityWindow()
    window.record_all(
        [
            # atlas to Morocco: 2 answered of 2.
            answered(60_000, carrier="atlas", country="MA", seconds_ago=10),
            answered(120_000, carrier="atlas", country="MA", seconds_ago=20),
            # atlas to Tunisia: 1 busy, 3 failures.
            outcome(sip_code=486, carrier="atlas", country="TN", seconds_ago=30),
            outcome(sip_code=503, carrier="atlas", country="TN", seconds_ago=40),
            outcome(sip_code=503, carrier="atlas", country="TN", seconds_ago=50),
            outcome(sip_code=None, carrier="atlas", country="TN", seconds_ago=60),
            # carthage to Morocco: 1 failure.
            outcome(sip_code=502, carrier="carthage", country="MA", seconds_ago=70),
        ]
    )

    def get(carrier: str, country: str | None) -> QualityFigures:
        return window.figures(carrier=carrier, country=country, window=FIVE_MINUTES, now=NOW)

    assert (get("atlas", "MA").attempts, get("atlas", "MA").ner) == (2, 1.0)
    assert (get("atlas", "TN").attempts, get("atlas", "TN").ner) == (4, 0.25)  # 1 / 4
    overall = get("atlas", None)
    # 6 attempts: 2 answered, 3 effective (2 answered + 1 busy).
    assert (overall.attempts, overall.answered, overall.effective) == (6, 2, 3)
    assert overall.asr == 0.3333  # 2 / 6
    assert overall.ner == 0.5  # 3 / 6
    assert overall.acd_seconds == 90.0  # (60 + 120) / 2
    assert (get("carthage", "MA").attempts, get("carthage", "MA").ner) == (1, 0.0)
    assert get("carthage", "TN").attempts == 0

    listed = window.all_figures(window=FIVE_MINUTES, now=NOW)
    assert [(figures.carrier, figures.country) for figures in listed] == [
        ("atlas", None),
        ("atlas", "MA"),
        ("atlas", "TN"),
        ("carthage", None),
        ("carthage", "MA"),
    ]
    assert window.ner_table(window=FIVE_MINUTES, now=NOW) == {
        ("atlas", "MA"): Decimal("1.0000"),
        ("atlas", "TN"): Decimal("0.2500"),
        ("carthage", "MA"): Decimal("0.0000"),
    }
    assert window.ner_table(window=FIVE_MINUTES, now=NOW, min_attempts=2) == {
        ("atlas", "MA"): Decimal("1.0000"),
        ("atlas", "TN"): Decimal("0.2500"),
    }


# --- De-preference ---------------------------------------------------------------------------


def figures_with(attempts: int, effective: int) -> QualityFigures:
    return QualityFigures(
        carrier="ma-minute",
        country="MA",
        window=FIVE_MINUTES,
        at=NOW,
        attempts=attempts,
        answered=0,
        effective=effective,
        asr=0.0 if attempts else None,
        ner=round(effective / attempts, 4) if attempts else None,
        acd_seconds=None,
        pdd_p50_ms=None,
        pdd_p95_ms=None,
    )


@pytest.mark.parametrize(
    ("attempts", "effective", "de_preferred"),
    [
        (20, 15, True),  # NER 0.75 < 0.80 over 20 attempts
        (20, 16, False),  # NER 0.80 is not below 0.80
        (20, 19, False),
        (19, 0, False),  # every attempt failed, but 19 attempts are too few to judge
        (0, 0, False),
        (1000, 799, True),
    ],
)
def test_given_ner_and_attempts_when_judged_then_de_preferred_below_threshold(
    attempts: int, effective: int, de_preferred: bool
) -> None:
    figures = figures_with(attempts, effective)
    assert should_de_prefer(figures, threshold_ner=0.8, min_attempts=20) is de_preferred


def test_given_failing_carrier_in_window_then_de_preferred() -> None:
    window = QualityWindow()
    window.record_all(scripted_mix())  # NER 0.7 over 10 attempts
    figures = window.figures(carrier="ma-minute", window=FIVE_MINUTES, now=NOW)
    # one of its 3 network failures is the far network's: judged on 8 of 10, not 7
    assert figures.far_network_failures == 1
    assert should_de_prefer(figures, threshold_ner=0.85, min_attempts=10)
    assert not should_de_prefer(figures, threshold_ner=0.8, min_attempts=10)
    assert not should_de_prefer(figures, threshold_ner=0.85, min_attempts=11)


@pytest.mark.parametrize(("threshold", "min_attempts"), [(-0.1, 10), (1.1, 10), (0.8, 0)])
def test_given_nonsense_threshold_when_judged_then_refused(
    threshold: float, min_attempts: int
) -> None:
    with pytest.raises(InvalidInput):
        should_de_prefer(figures_with(10, 5), threshold_ner=threshold, min_attempts=min_attempts)


# --- Properties ------------------------------------------------------------------------------

_CODES = [None, 200, 403, 404, 408, 480, 484, 486, 487, 488, 500, 502, 503, 504, 600, 603]
_CAUSES = [None, 1, 3, 16, 17, 18, 19, 20, 21, 27, 28, 31, 34, 38, 41, 42, 47, 102]


@st.composite
def attempt_outcomes(draw: st.DrawFn) -> AttemptOutcome:
    sip_code = draw(st.sampled_from(_CODES))
    success = sip_code == 200
    return AttemptOutcome(
        carrier=draw(st.sampled_from(["atlas", "carthage"])),
        country=draw(st.sampled_from(["MA", "TN", "DZ"])),
        at=NOW - timedelta(milliseconds=draw(st.integers(min_value=0, max_value=7_200_000))),
        sip_code=sip_code,
        q850_cause=draw(st.sampled_from(_CAUSES)),
        answered=success,
        pdd_ms=draw(st.none() | st.integers(min_value=0, max_value=30_000)),
        duration_ms=draw(st.none() | st.integers(min_value=0, max_value=7_200_000))
        if success
        else None,
    )


@settings(max_examples=200, deadline=None)
@given(
    outcomes=st.lists(attempt_outcomes(), max_size=60),
    window_minutes=st.integers(min_value=1, max_value=60),
)
def test_asr_never_exceeds_ner_and_percentiles_are_ordered(
    outcomes: list[AttemptOutcome], window_minutes: int
) -> None:
    window = QualityWindow(longest_window=ONE_HOUR)
    window.record_all(outcomes)
    length = timedelta(minutes=window_minutes)
    for figures in window.all_figures(window=length, now=NOW):
        assert figures.attempts >= 1 or figures.asr is None
        if figures.asr is None or figures.ner is None:
            continue
        assert 0.0 <= figures.asr <= figures.ner <= 1.0
        assert 0 <= figures.answered <= figures.effective <= figures.attempts
        if figures.pdd_p50_ms is not None:
            assert figures.pdd_p95_ms is not None
            assert figures.pdd_p50_ms <= figures.pdd_p95_ms
    # The overall figures of a carrier add up its countries' figures.
    for carrier in window.carriers():
        overall = window.figures(carrier=carrier, window=length, now=NOW)
        by_country = [
            window.figures(carrier=carrier, country=country, window=length, now=NOW)
            for country in window.countries(carrier)
        ]
        assert overall.attempts == sum(figures.attempts for figures in by_country)
        assert overall.effective == sum(figures.effective for figures in by_country)
    # Brute force: the window holds exactly the outcomes with now - length < at <= now.
    expected = sum(1 for item in outcomes if NOW - length < item.at <= NOW)
    got = sum(
        figures.attempts
        for figures in window.all_figures(window=length, now=NOW)
        if figures.country is not None
    )
    assert got == expected


def test_failures_the_carrier_reports_as_the_far_networks_do_not_de_prefer_it() -> None:
    """A range holder down (Q.850 38, network out of order; 502; 504) fails calls on every
    carrier alike: the carrier keeps its place. Its own failures (503 + cause 34, silence) do
    count; the NER shown counts both (E.425)."""
    window = QualityWindow()
    at = NOW - timedelta(seconds=30)
    far = [(503, 38), (502, None), (504, None), (503, 27)] * 5
    for index, (code, cause) in enumerate(far):
        window.record(
            AttemptOutcome(carrier="ma-flat", country="MA", at=at, sip_code=code, q850_cause=cause)
        )
        if index % 2:
            window.record(
                AttemptOutcome(carrier="ma-flat", country="MA", at=at, sip_code=200, answered=True)
            )
    (figures,) = [f for f in window.all_figures(window=FIVE_MINUTES, now=NOW) if f.country is None]
    assert (figures.attempts, figures.effective, figures.far_network_failures) == (30, 10, 20)
    assert figures.ner == 0.3333
    assert not should_de_prefer(figures, threshold_ner=0.6, min_attempts=20)
    for _ in range(30):  # the carrier's own failures: no channel, or no answer at all
        window.record(
            AttemptOutcome(carrier="ma-flat", country="MA", at=at, sip_code=503, q850_cause=34)
        )
    (figures,) = [f for f in window.all_figures(window=FIVE_MINUTES, now=NOW) if f.country is None]
    assert should_de_prefer(figures, threshold_ner=0.6, min_attempts=20)
