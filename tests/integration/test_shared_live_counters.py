"""Two brains sharing the live counters in Redis (issue 19): decisions stay exact whichever
brain takes them, a dead brain's holds heal on the other, a brain that starts rebuilds from
the store what Redis lacks, and carriers' states set on one brain route the other's calls.

Each "brain" is a `CallAuthorizer` of its own (its own lock, its own Redis connection) on the
same key prefix; the catalog is in memory (the store is not what is tested here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from support.stores import redis_live_counters, redis_prefix
from tawasol.adapters.redis import RedisLiveCounters
from tawasol.domain.calls import CallRecord
from tawasol.domain.catalog import FairUse
from tawasol.domain.decision import CallRequest
from tawasol.services.authorize_call import CallAuthorizer
from unit.test_authorize_service import MOBILE, NOW, Clock, MemoryCatalog, authorizer, operator

pytestmark = pytest.mark.redis

PLAN = "maroc-illimite-mois"  # one call at a time


@pytest.fixture
def prefix() -> Iterator[str]:
    with redis_prefix() as shared:
        yield shared


def brain(store: MemoryCatalog, clock: Clock, counters: RedisLiveCounters) -> CallAuthorizer:
    return authorizer(store, clock, counters)


def _attempt(
    decider: CallAuthorizer, call_id: str, barrier: threading.Barrier, allowed: list[str]
) -> None:
    barrier.wait(timeout=10)
    decision = decider.authorize(CallRequest("user1", MOBILE, call_id=call_id)).decision
    if decision.allowed:
        allowed.append(call_id)


def test_given_a_one_call_subscriber_when_two_brains_decide_at_once_then_one_call_is_allowed(
    prefix: str,
) -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    with redis_live_counters(prefix) as one, redis_live_counters(prefix) as two:
        brains = [brain(store, clock, one), brain(store, clock, two)]
        for round_number in range(15):
            allowed: list[str] = []
            barrier = threading.Barrier(8)
            threads = [
                threading.Thread(
                    target=_attempt,
                    args=(brains[index % 2], f"r{round_number}-c{index}", barrier, allowed),
                )
                for index in range(8)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert len(allowed) == 1, (round_number, allowed)
            assert brains[0].active_calls() == brains[1].active_calls() == 1
            brains[round_number % 2].forget_call(allowed[0])  # ended: the next round starts
        assert one.calls_in_progress(1) == 0


def test_given_a_10_minute_plan_then_two_brains_cannot_grant_it_twice_at_once(
    prefix: str,
) -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    plans = dict(store.snapshot.plans)
    plans[PLAN] = replace(plans[PLAN], fair_use=FairUse(None, 10, None, 5))
    store.snapshot = replace(store.snapshot, plans=plans)
    with redis_live_counters(prefix) as one, redis_live_counters(prefix) as two:
        first = brain(store, clock, one).authorize(CallRequest("user1", MOBILE, call_id="a"))
        second = brain(store, clock, two).authorize(CallRequest("user1", MOBILE, call_id="b"))
    assert first.decision.max_duration == timedelta(minutes=10)
    assert second.decision.reason.value == "fair_use_exceeded"


def test_given_a_brain_dies_holding_a_call_then_the_other_frees_it_after_its_ring_time(
    prefix: str,
) -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    with redis_live_counters(prefix) as one, redis_live_counters(prefix) as two:
        dead = brain(store, clock, one)
        assert dead.authorize(CallRequest("user1", MOBILE, call_id="lost")).decision.allowed
        survivor = brain(store, clock, two)
        refused = survivor.authorize(CallRequest("user1", MOBILE, call_id="x")).decision
        assert refused.reason.value == "concurrent_limit"
        assert survivor.channels_in_use("ma-flat") == 1

        clock.now = NOW + timedelta(minutes=6, seconds=6)  # past the longest ring hold
        assert survivor.authorize(CallRequest("user1", MOBILE, call_id="y")).decision.allowed
        assert survivor.active_calls() == 1
        assert survivor.channels_in_use("ma-flat") == 1


def _talking(call_id: str, subscription: int) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        started_at=NOW - timedelta(minutes=5),
        subscriber_id=subscription,
        subscription_id=subscription,
        destination="+212661234567",
        answered_at=NOW - timedelta(minutes=4),
        carrier="ma-flat",
    )


def test_given_redis_lost_its_data_when_brains_start_then_the_store_rebuilds_it_once(
    prefix: str,
) -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    store.open = [_talking("up-1", 1), _talking("up-2", 2)]
    with redis_live_counters(prefix) as one, redis_live_counters(prefix) as two:
        first, second = brain(store, clock, one), brain(store, clock, two)
        first.snapshot()
        second.snapshot()  # a second brain starting counts the same calls, not twice
        assert one.calls_in_progress() == 2
        assert second.active_calls() == 2
        refused = second.authorize(CallRequest("user1", MOBILE, call_id="n")).decision
        assert refused.reason.value == "concurrent_limit"
        assert first.authorize(CallRequest("user3", MOBILE, call_id="m")).decision.allowed


def test_given_a_carrier_marked_down_on_one_brain_then_the_other_routes_around_it(
    prefix: str,
) -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    with redis_live_counters(prefix) as one, redis_live_counters(prefix) as two:
        monitor_side, other = brain(store, clock, one), brain(store, clock, two)
        before = other.authorize(CallRequest("user1", MOBILE, call_id="a")).decision
        assert before.routes[0].carrier == "ma-flat"
        other.forget_call("a")

        monitor_side.set_carrier_up("ma-flat", False)

        after = other.authorize(CallRequest("user1", MOBILE, call_id="b")).decision
        assert [route.carrier for route in after.routes] == ["ma-minute"]
        assert other.carrier_states()["ma-flat"].up is False
