"""Live counters that heal (issue 9, faults 9 and 10): what a call holds while it is in
progress (its slot, its carrier channel, its share of the minutes quota), how long it holds it
when its events never come, and that explaining a call never touches any of it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from test_authorize_service import MOBILE, NOW, Clock, MemoryCatalog, authorizer, operator

from tawasol.domain.calls import CallRecord
from tawasol.domain.catalog import FairUse
from tawasol.domain.decision import CallRequest
from tawasol.services.authorize_call import CallAuthorizer

PLAN = "maroc-illimite-mois"  # 2 h per call, one call at a time


def _plan_with(store: MemoryCatalog, fair_use: FairUse) -> None:
    plans = dict(store.snapshot.plans)
    plans[PLAN] = replace(plans[PLAN], fair_use=fair_use)
    store.snapshot = replace(store.snapshot, plans=plans)


def _answered(call_id: str, *, at_offset: timedelta = timedelta(seconds=10)) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        started_at=NOW,
        subscriber_id=1,
        subscription_id=1,
        destination="+212661234567",
        answered_at=NOW + at_offset,
        carrier="ma-flat",
    )


def _ring_limit(service: CallAuthorizer) -> timedelta:
    # 2 routes (ma-flat, ma-minute) x the edge's 120 s ring timeout, plus 5 s for the event
    routes = len(service.explain(CallRequest("user2", MOBILE), now=NOW).routes)
    return timedelta(seconds=120 * routes + 5)


# -- fault 10: a slot is held for the longest ring time, not for the call's max duration -------
def test_given_an_allowed_call_whose_events_never_come_then_slot_and_channel_free_after_ring_time() -> (  # noqa: E501
    None
):
    store, clock = MemoryCatalog(operator()), Clock()
    service = authorizer(store, clock)
    assert service.authorize(CallRequest("user1", MOBILE, call_id="lost")).decision.allowed
    ring_limit = _ring_limit(service)
    assert ring_limit <= timedelta(minutes=6)

    clock.now = NOW + ring_limit - timedelta(seconds=2)
    still = service.authorize(CallRequest("user1", MOBILE, call_id="early")).decision
    assert still.reason.value == "concurrent_limit"
    assert service.channels_in_use("ma-flat") == 1

    clock.now = NOW + ring_limit + timedelta(seconds=1)
    assert service.authorize(CallRequest("user1", MOBILE, call_id="next")).decision.allowed
    assert service.active_calls() == 1  # "lost" is gone, "next" counts
    assert service.channels_in_use("ma-flat") == 1


def test_given_the_ring_hold_is_bounded_by_a_setting_then_many_routes_hold_no_longer() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    service = CallAuthorizer(
        catalog=store,
        calls=store,
        clock=clock,
        realm="tawasol.local",
        fake_ha1_secret=b"secret",
        ring_timeout_ms=120_000,
        ring_hold_max=timedelta(seconds=30),
    )
    assert service.authorize(CallRequest("user1", MOBILE, call_id="lost")).decision.allowed
    clock.now = NOW + timedelta(seconds=36)
    assert service.authorize(CallRequest("user1", MOBILE, call_id="next")).decision.allowed


def test_given_an_answered_call_then_it_holds_its_slot_until_max_duration_plus_margin() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    service = authorizer(store, clock)
    decision = service.authorize(CallRequest("user1", MOBILE, call_id="talk")).decision
    assert decision.max_duration == timedelta(hours=2)
    service.observe({"talk": None}, [_answered("talk")])

    clock.now = NOW + timedelta(hours=1)  # far past the ring time: still talking
    assert service.authorize(CallRequest("user1", MOBILE, call_id="b")).decision.reason.value == (
        "concurrent_limit"
    )
    clock.now = NOW + timedelta(seconds=10) + timedelta(hours=2, seconds=59)
    assert service.authorize(CallRequest("user1", MOBILE, call_id="c")).decision.reason.value == (
        "concurrent_limit"
    )
    clock.now = NOW + timedelta(seconds=10) + timedelta(hours=2, seconds=61)  # margin: 60 s
    assert service.authorize(CallRequest("user1", MOBILE, call_id="d")).decision.allowed


# -- fault 10: simultaneous calls share the minutes that are left ---------------------------------
def test_given_a_10_minute_plan_then_two_simultaneous_10_minute_calls_are_impossible() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    _plan_with(store, FairUse(None, 10, None, 5))
    service = authorizer(store, clock)

    first = service.authorize(CallRequest("user1", MOBILE, call_id="a")).decision
    second = service.authorize(CallRequest("user1", MOBILE, call_id="b")).decision

    assert first.max_duration == timedelta(minutes=10)
    assert not second.allowed
    assert second.reason.value == "fair_use_exceeded"
    explained = service.explain(CallRequest("user1", MOBILE), now=NOW).explanation
    assert "used 0 of 10 minutes this period, 10 more held by calls in progress" in explained


def test_given_a_minutes_quota_then_simultaneous_calls_get_what_is_left_and_ends_give_it_back() -> (
    None
):
    store, clock = MemoryCatalog(operator()), Clock()
    _plan_with(store, FairUse(timedelta(minutes=4), 10, None, 5))
    service = authorizer(store, clock)

    grants = [
        service.authorize(CallRequest("user1", MOBILE, call_id=f"c{index}")).decision
        for index in range(4)
    ]

    assert [decision.max_duration for decision in grants[:3]] == [
        timedelta(minutes=4),
        timedelta(minutes=4),
        timedelta(minutes=2),  # the remainder
    ]
    assert grants[3].reason.value == "fair_use_exceeded"
    # c0 is answered and talks one minute: its 4 minutes held become 1 minute used.
    service.observe({"c0": None}, [_answered("c0", at_offset=timedelta(0))])
    ended = replace(_answered("c0", at_offset=timedelta(0)), ended_at=NOW, duration_ms=60_000)
    service.observe({"c0": _answered("c0", at_offset=timedelta(0))}, [ended])
    after = service.authorize(CallRequest("user1", MOBILE, call_id="c4")).decision
    assert after.max_duration == timedelta(minutes=3)


def test_given_a_call_refused_after_the_decision_then_its_minutes_are_given_back() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    _plan_with(store, FairUse(None, 10, None, 5))
    service = authorizer(store, clock)
    service.authorize(CallRequest("user1", MOBILE, call_id="busy"))
    failed = replace(_answered("busy"), answered_at=None, carrier=None, final_sip_code=486)
    service.observe({"busy": None}, [failed])

    decision = service.authorize(CallRequest("user1", MOBILE, call_id="again")).decision

    assert decision.max_duration == timedelta(minutes=10)


# -- after a restart: the edge's dialog list decides which calls are still up ------------------
def test_given_a_restart_when_reconciled_with_the_edge_then_calls_it_lacks_stop_counting() -> None:
    store, clock = MemoryCatalog(operator(subscribers=3)), Clock()
    store.open = [
        replace(_answered("gone"), started_at=NOW - timedelta(minutes=20)),
        replace(
            _answered("up"),
            started_at=NOW - timedelta(minutes=5),
            subscriber_id=2,
            subscription_id=2,
        ),
    ]
    service = authorizer(store, clock)
    assert service.authorize(CallRequest("user1", MOBILE, call_id="x")).decision.reason.value == (
        "concurrent_limit"
    )
    assert service.authorize(CallRequest("user3", MOBILE, call_id="new")).decision.allowed

    # "new" was decided a moment ago: its dialog may not be listed yet, it is kept.
    assert service.reconcile(["up", "unrelated"]) == ["gone"]

    assert service.authorize(CallRequest("user1", MOBILE, call_id="x")).decision.allowed
    assert service.authorize(CallRequest("user2", MOBILE, call_id="y")).decision.reason.value == (
        "concurrent_limit"
    )
    clock.now = NOW + timedelta(seconds=30)
    assert sorted(service.reconcile(["up"])) == ["new", "x"]
    assert service.active_calls() == 1


def test_given_a_reconciled_call_when_the_catalog_changes_then_it_does_not_come_back() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    store.open = [replace(_answered("gone"), started_at=NOW - timedelta(minutes=3))]
    service = authorizer(store, clock)
    assert service.reconcile([]) == ["gone"]

    store.snapshot = replace(store.snapshot, revision=2)
    clock.now = NOW + timedelta(seconds=5)

    assert service.authorize(CallRequest("user1", MOBILE, call_id="x")).decision.allowed


# -- fault 9: explain is read-only ----------------------------------------------------------------
def test_given_calls_in_progress_when_explained_at_any_time_then_nothing_changes() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    _plan_with(store, FairUse(None, 10, None, 1))
    service = authorizer(store, clock)
    service.authorize(CallRequest("user1", MOBILE, call_id="live"))
    before = (
        service.active_calls(),
        service.channels_in_use("ma-flat"),
        service.decision_state(NOW).usage[1],
    )

    for offset in (timedelta(days=365), timedelta(hours=3), -timedelta(days=30), timedelta(0)):
        service.explain(CallRequest("user1", MOBILE), now=NOW + offset)
        service.explain(CallRequest("user2", MOBILE), now=NOW + offset)

    after = (
        service.active_calls(),
        service.channels_in_use("ma-flat"),
        service.decision_state(NOW).usage[1],
    )
    assert after == before
    again = service.authorize(CallRequest("user1", MOBILE, call_id="second")).decision
    assert again.reason.value == "fair_use_exceeded"  # the 10 minutes are still held
