"""Call events folded into one call detail record, whatever their order or repetition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.calls import (
    CallAttempt,
    CallEvent,
    CallEventType,
    CallRecord,
    CallStatus,
    apply_event,
    new_record,
)

T0 = datetime(2026, 1, 14, 20, 30, tzinfo=UTC)
CALL_ID = "a84b4c76e66710@pc33"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def attempt(
    number: int, seconds: float, carrier: str, sip_code: int | None, pdd_ms: int | None = None
) -> CallEvent:
    return CallEvent(
        call_id=CALL_ID,
        type=CallEventType.ATTEMPT,
        at=at(seconds),
        sip_username="amina",
        dialled="00212661234567",
        attempt=number,
        carrier=carrier,
        gateway="gw1",
        sip_code=sip_code,
        pdd_ms=pdd_ms,
    )


def answer(seconds: float, carrier: str = "ma-minute") -> CallEvent:
    return CallEvent(CALL_ID, CallEventType.ANSWER, at(seconds), carrier=carrier)


def end(seconds: float, duration_ms: int | None = None, cause: str = "caller") -> CallEvent:
    return CallEvent(
        CALL_ID, CallEventType.END, at(seconds), duration_ms=duration_ms, hangup_cause=cause
    )


def failure(seconds: float, sip_code: int) -> CallEvent:
    return CallEvent(CALL_ID, CallEventType.FAILURE, at(seconds), sip_code=sip_code)


def fold(events: Sequence[CallEvent]) -> CallRecord:
    record = new_record(events[0])
    for call_event in events:
        record = apply_event(record, call_event)
    return record


# A call to Morocco: the flat-rate carrier answers 503 after 1 s, the per-minute carrier rings
# after 140 ms and is answered at 3 s; the caller hangs up at 64 s, so 61 s of conversation.
ANSWERED_CALL = [
    attempt(1, 1.0, "ma-flat", 503),
    attempt(2, 3.0, "ma-minute", 200, pdd_ms=140),
    answer(3.0),
    end(64.0),
]


def test_given_an_answered_call_when_events_folded_then_duration_from_answer_to_end() -> None:
    record = fold(ANSWERED_CALL)

    assert record.status is CallStatus.COMPLETED
    assert record.finished
    assert record.started_at == at(1.0)
    assert record.answered_at == at(3.0)
    assert record.ended_at == at(64.0)
    assert record.duration_ms == 61_000
    assert record.carrier == "ma-minute"
    assert record.final_sip_code == 200
    assert record.hangup_cause == "caller"
    assert (record.sip_username, record.dialled) == ("amina", "00212661234567")
    assert [(a.attempt, a.carrier, a.sip_code) for a in record.attempts] == [
        (1, "ma-flat", 503),
        (2, "ma-minute", 200),
    ]
    assert record.pdd_ms == 140


def test_given_the_edge_measured_the_duration_when_end_arrives_then_that_duration_is_kept() -> None:
    record = fold([*ANSWERED_CALL[:3], end(64.0, duration_ms=60_750)])

    assert record.duration_ms == 60_750


def test_given_a_negative_measured_duration_when_end_arrives_then_zero() -> None:
    record = fold([*ANSWERED_CALL[:3], end(64.0, duration_ms=-20)])

    assert record.duration_ms == 0


def test_given_a_call_in_progress_when_only_answered_then_no_duration_yet() -> None:
    record = fold(ANSWERED_CALL[:3])

    assert record.status is CallStatus.ANSWERED
    assert not record.finished
    assert record.duration_ms is None


def test_given_a_call_ringing_when_only_attempted_then_in_progress() -> None:
    record = fold([attempt(1, 1.0, "ma-flat", None)])

    assert record.status is CallStatus.IN_PROGRESS
    assert record.pdd_ms is None


def test_given_the_callee_busy_when_events_folded_then_failed_with_486() -> None:
    record = fold([attempt(1, 1.0, "ma-flat", 503), attempt(2, 4.0, "ma-minute", 486, 200)])
    record = apply_event(record, failure(4.0, 486))

    assert record.status is CallStatus.FAILED
    assert record.final_sip_code == 486
    assert record.answered_at is None
    assert record.duration_ms is None
    assert record.ended_at == at(4.0)


def test_given_an_end_replayed_after_the_duration_is_known_then_nothing_changes() -> None:
    record = fold(ANSWERED_CALL)

    replayed = apply_event(record, end(500.0, duration_ms=999_000, cause="callee"))

    assert replayed == record


def test_given_an_attempt_replayed_without_its_outcome_then_the_outcome_is_kept() -> None:
    record = fold(ANSWERED_CALL)

    replayed = apply_event(record, attempt(1, 1.0, "ma-flat", None))

    assert replayed.attempts == record.attempts


def test_given_two_attempts_rang_when_pdd_asked_then_the_first_to_ring() -> None:
    # The flat-rate carrier rang after 900 ms, then failed; the per-minute one rang after 140 ms.
    # The docstring's definition: the post-dial delay of the attempt that rang first.
    record = fold(
        [attempt(1, 1.0, "ma-flat", 503, pdd_ms=900), attempt(2, 3.0, "ma-minute", 200, 140)]
    )

    assert record.pdd_ms == 900


def test_given_an_event_of_another_call_when_applied_then_refused() -> None:
    record = fold(ANSWERED_CALL)

    with pytest.raises(ValueError, match="another call"):
        apply_event(record, CallEvent("other-call", CallEventType.END, at(70.0)))


def test_given_the_end_before_the_answer_when_folded_then_same_duration() -> None:
    record = fold([ANSWERED_CALL[3], ANSWERED_CALL[2], ANSWERED_CALL[1], ANSWERED_CALL[0]])

    assert record.duration_ms == 61_000
    assert record.started_at == at(1.0)


# --- Properties: order and repetition do not matter -----------------------------------------


@dataclass(frozen=True)
class Scenario:
    """The events of one call, in the order they happened."""

    events: tuple[CallEvent, ...]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A call with 1-3 attempts that is answered (then maybe ended) or fails (then maybe ends)."""
    events: list[CallEvent] = []
    clock = 0.0
    attempts = draw(st.integers(min_value=1, max_value=3))
    answered = draw(st.booleans())
    carriers = ["ma-flat", "ma-minute", "tn-minute"]
    for number in range(1, attempts + 1):
        clock += draw(st.floats(min_value=0.001, max_value=10.0))
        last = number == attempts
        if last and answered:
            sip_code = 200
        elif last:
            sip_code = draw(st.sampled_from([404, 408, 480, 486, 503, 603]))
        else:
            sip_code = draw(st.sampled_from([408, 500, 502, 503, 504]))
        pdd_ms = draw(st.none() | st.integers(min_value=0, max_value=10_000))
        if draw(st.booleans()):
            # The edge may report the attempt starting, before its outcome.
            events.append(attempt(number, clock, carriers[number - 1], None))
        events.append(attempt(number, clock, carriers[number - 1], sip_code, pdd_ms))
    if answered:
        events.append(answer(clock, carriers[attempts - 1]))
        if draw(st.booleans()):
            talk = draw(st.floats(min_value=0.0, max_value=7200.0))
            measured = draw(st.none() | st.integers(min_value=0, max_value=7_200_000))
            events.append(end(clock + talk, measured))
    else:
        events.append(failure(clock, events[-1].sip_code or 500))
        if draw(st.booleans()):
            events.append(end(clock + draw(st.floats(min_value=0.0, max_value=5.0))))
    return Scenario(tuple(events))


def summary(record: CallRecord) -> tuple[object, ...]:
    return (
        record.duration_ms,
        record.answered_at,
        record.attempts,
        record.started_at,
        record.ended_at,
        record.final_sip_code,
        record.carrier,
        record.status,
        record.pdd_ms,
    )


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_any_order_with_duplicates_gives_the_same_record_as_the_events_once_in_order(
    scenario: Scenario, data: st.DataObject
) -> None:
    events = list(scenario.events)
    duplicates = data.draw(st.lists(st.sampled_from(events), max_size=6))
    shuffled = data.draw(st.permutations(events + duplicates))

    in_order = fold(events)
    replayed = fold(shuffled)

    assert summary(replayed) == summary(in_order)


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios(), data=st.data())
def test_a_recorded_duration_never_changes_when_more_events_arrive(
    scenario: Scenario, data: st.DataObject
) -> None:
    events = list(scenario.events)
    arrivals = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events)))))

    record = new_record(arrivals[0])
    recorded: int | None = None
    for arrival in arrivals:
        record = apply_event(record, arrival)
        if recorded is not None:
            assert record.duration_ms == recorded
        recorded = record.duration_ms


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios())
def test_applying_every_event_a_second_time_changes_nothing(scenario: Scenario) -> None:
    record = fold(scenario.events)

    for call_event in scenario.events:
        assert apply_event(record, call_event) == record


def test_given_attempt_numbers_when_recorded_then_attempts_sorted_by_number() -> None:
    record = fold([attempt(3, 5.0, "tn-minute", 503), attempt(1, 1.0, "ma-flat", 503)])

    assert [item.attempt for item in record.attempts] == [1, 3]
    assert isinstance(record.attempts[0], CallAttempt)
