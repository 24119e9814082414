"""The `CallStore` contract: the same tests on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from support.stores import (
    DEC_1,
    NOV_1,
    answered_call,
    filing_under,
    fold,
    rated,
    subscription_for,
)
from tawasol.domain.calls import CallEvent, CallEventType, CallRecord
from tawasol.domain.decision import Usage
from tawasol.domain.errors import (
    InvalidInput,
)
from tawasol.domain.money import Money
from tawasol.domain.subscribers import Subscription
from tawasol.services.ports import Store


def test_events_arriving_in_several_batches_fold_into_the_stored_record(store: Store) -> None:
    events = answered_call("call-2", datetime(2026, 11, 3, 9, 0, tzinfo=UTC), 30_000)
    other = answered_call("call-3", datetime(2026, 11, 3, 9, 5, tzinfo=UTC), 5_000)

    first = store.apply_call_events(events[:2] + other[:1], fold)
    second = store.apply_call_events([*events[2:], *other[1:], events[0]], fold)

    assert [record.call_id for record in first] == ["call-2", "call-3"]
    assert first[0].status.value == "in_progress"
    assert [record.call_id for record in second] == ["call-2", "call-3"]
    assert [record.duration_ms for record in second] == [30_000, 5_000]
    assert [len(record.attempts) for record in second] == [2, 2]
    assert store.get_call("call-2") == second[0]


def test_calls_are_listed_newest_first_per_subscriber(store: Store) -> None:
    subscription = subscription_for(store)
    for minute in range(3):
        call_id = f"mine-{minute}"
        start = datetime(2026, 11, 5, 10, minute, tzinfo=UTC)
        store.apply_call_events(
            answered_call(call_id, start, 1000), filing_under(subscription, "+212661000000")
        )
    store.apply_call_events(
        answered_call("someone-else", datetime(2026, 11, 6, tzinfo=UTC), 1), fold
    )

    mine = store.list_calls(subscriber_id=subscription.subscriber_id)
    every = store.list_calls(limit=2)

    assert [record.call_id for record in mine] == ["mine-2", "mine-1", "mine-0"]
    assert all(len(record.attempts) == 2 for record in mine)
    assert [record.call_id for record in every] == ["someone-else", "mine-2"]


def test_a_naive_time_is_refused_not_stored(store: Store) -> None:
    naive = CallEvent("naive", CallEventType.ATTEMPT, datetime(2026, 11, 1, 10, 0), attempt=1)
    with pytest.raises(InvalidInput, match="naive"):
        store.apply_call_events([naive], fold)
    assert store.get_call("naive") is None


def test_usage_counts_the_period_with_hand_worked_numbers(store: Store) -> None:
    subscription = subscription_for(store)  # period [Nov 1, Dec 1)
    late = subscription_for(
        store,
        "karim",
        start=datetime(2026, 11, 15, tzinfo=UTC),
        end=datetime(2026, 12, 15, tzinfo=UTC),
    )
    idle = subscription_for(store, "idle")
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def file(number: str, events: list[CallEvent], owner: Subscription = subscription) -> None:
        store.apply_call_events(events, filing_under(owner, number))

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=UTC)

    def ringing(call_id: str, start: datetime) -> list[CallEvent]:
        return [CallEvent(call_id, CallEventType.ATTEMPT, start, attempt=1, carrier="atlas")]

    busy = CallEvent("a3", CallEventType.FAILURE, at(4, 10, 1), sip_code=486)
    october_31 = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    # Answered in the period: 61.5 s + 30.7 s = 92.2 s -> 92 s (floored once, on the total).
    file("+212600000001", answered_call("a1", at(2, 10), 61_500))
    file("+212600000002", answered_call("a2", at(3, 10), 30_700))
    # Failed (busy): no seconds, and not a distinct number (only answered numbers count).
    file("+212600000003", [*ringing("a3", at(4, 10)), busy])
    # Before the period, and at period_end exactly (outside [start, end)): count for nothing.
    file("+212600000009", answered_call("a4", october_31, 100_000))
    file("+212600000008", answered_call("a5", DEC_1, 50_000))
    # Talking now (answered, not ended), to a number already called: active, not distinct.
    file("+212600000001", answered_call("a6", at(20, 11), 0)[:3])
    # Ringing now: active, not yet distinct.
    file("+212600000005", ringing("a7", at(20, 11, 30)))
    # Never answered nor ended, started before the 4-hour horizon: neither distinct nor active.
    file("+212600000004", ringing("a8", at(20, 6)))
    # The later subscription's own period starts on Nov 15: b1 is before it.
    file("+212600000006", answered_call("b1", at(14, 9), 20_000), late)
    file("+212600000007", answered_call("b2", at(16, 9), 10_999), late)

    usage = store.usage(
        [subscription, late, idle, subscription], now=now, open_call_horizon=timedelta(hours=4)
    )

    assert usage == {
        subscription.id: Usage(
            answered_seconds=92,
            distinct_numbers=frozenset(
                {
                    "+212600000001",
                    "+212600000002",
                }
            ),
            active_calls=2,
        ),
        late.id: Usage(answered_seconds=10, distinct_numbers=frozenset({"+212600000007"})),
        idle.id: Usage(),
    }
    assert store.usage([], now=now, open_call_horizon=timedelta(hours=4)) == {}


def test_open_calls_are_those_neither_ended_nor_failed_since_a_time(store: Store) -> None:
    subscription = subscription_for(store)
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    talking = answered_call("talking", start + timedelta(minutes=5), 0)[:3]
    ringing = [CallEvent("ringing", CallEventType.ATTEMPT, start + timedelta(minutes=1), attempt=1)]
    failed = [
        CallEvent("failed", CallEventType.ATTEMPT, start, attempt=1),
        CallEvent("failed", CallEventType.FAILURE, start, sip_code=503),
    ]
    stale = [CallEvent("stale", CallEventType.ATTEMPT, start - timedelta(hours=5), attempt=1)]
    for events in (talking, ringing, failed, stale, answered_call("ended", start, 1_000)):
        store.apply_call_events(events, filing_under(subscription, "+212661000000"))

    found = store.open_calls(started_after=start - timedelta(hours=4))

    assert [record.call_id for record in found] == ["ringing", "talking"]
    assert found[1].subscription_id == subscription.id
    assert [attempt.attempt for attempt in found[1].attempts] == [1, 2]


def test_rated_calls_keep_billing_rate_increment_and_exact_cost(store: Store) -> None:
    start = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    events = answered_call("per-minute", start, 61_500)
    events[0] = replace(events[0], q850_cause=34, billing="per_minute")
    events[1] = replace(events[1], billing="flat_rate")
    rate = Money(Decimal("0.0780"), "EUR")

    (record,) = store.apply_call_events(
        events, rated("per_minute", rate, "60/60", Money(Decimal("0.156000"), "EUR"))
    )

    stored = store.get_call("per-minute")
    assert stored == record
    assert stored is not None
    assert stored.billing == "per_minute"
    assert stored.rate_per_minute == rate
    assert str(stored.rate_per_minute.amount) == "0.0780"
    assert stored.increment == "60/60"
    assert stored.cost == Money(Decimal("0.156000"), "EUR")
    assert str(stored.cost.amount) == "0.156000"
    assert [(item.q850_cause, item.billing) for item in stored.attempts] == [
        (34, "per_minute"),
        (None, "flat_rate"),
    ]
    assert store.list_calls() == [record]


def test_calls_since_are_those_started_at_or_after_oldest_first(store: Store) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for call_id, start in (
        ("later", now + timedelta(hours=1)),
        ("before", now - timedelta(seconds=1)),
        ("at-since", now),
        ("long-before", now - timedelta(days=3)),
        ("between", now + timedelta(minutes=30)),
    ):
        store.apply_call_events(answered_call(call_id, start, 1_000), fold)

    found = store.calls_since(since=now)

    assert [record.call_id for record in found] == ["at-since", "between", "later"]
    assert all(len(record.attempts) == 2 for record in found)
    assert found[0] == store.get_call("at-since")
    assert [record.call_id for record in store.calls_since(since=now, limit=2)] == [
        "at-since",
        "between",
    ]
    assert store.calls_since(since=now, limit=0) == []
    assert store.calls_since(since=now + timedelta(days=1)) == []


def test_refused_calls_are_recorded_once_and_counted_by_reason(store: Store) -> None:
    def refused(call_id: str, reason: str) -> CallRecord:
        return CallRecord(
            call_id=call_id,
            started_at=NOV_1,
            sip_username="amina",
            dialled="00212661234567",
            ended_at=NOV_1,
            final_sip_code=503,
            refusal_reason=reason,
        )

    assert store.record_refusals([refused("r1", "no_route"), refused("r2", "no_route")]) == 2
    # Asked again (a retransmitted INVITE), and one more: only the new one is written.
    assert store.record_refusals([refused("r1", "no_route"), refused("r3", "fair_use")]) == 1
    store.apply_call_events(answered_call("ok", NOV_1, 30_000), fold)
    assert store.get_call("r1") == refused("r1", "no_route")
    counts = store.count_calls(since=NOV_1, until=DEC_1)
    assert counts == {
        "total": 4,
        "answered": 1,
        "not_answered": 0,
        "refused": 3,
        "refused:fair_use": 1,
        "refused:no_route": 2,
    }
    assert [c.call_id for c in store.list_calls(since=DEC_1)] == []
