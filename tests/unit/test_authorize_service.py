"""The call authorizer service with an in-memory store: caching, calls in progress, channels."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tawasol.domain.calls import CallAttempt, CallRecord
from tawasol.domain.carriers import CarrierState
from tawasol.domain.decision import CallRequest
from tawasol.domain.subscribers import Subscriber, Subscription, SubscriptionStatus
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.ports import CatalogSnapshot
from tawasol.services.ports.live_counters import LiveCounters
from tawasol.services.sample_operator import sample_carriers, sample_plans

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
MOBILE = "00212661234567"


class MemoryCatalog:
    """The part of the Store port the authorizer reads, counting how often it is read."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self.snapshot = snapshot
        self.loads = 0
        self.revision_reads = 0
        self.open: list[CallRecord] = []

    def catalog_revision(self) -> int:
        self.revision_reads += 1
        return self.snapshot.revision

    def load_catalog(self) -> CatalogSnapshot:
        self.loads += 1
        return self.snapshot

    def usage(self, subscriptions, *, now, open_call_horizon):
        return {}

    def open_calls(self, *, started_after):
        return list(self.open)


def operator(revision: int = 1, subscribers: int = 3) -> CatalogSnapshot:
    people = {}
    subscriptions = {}
    for index in range(1, subscribers + 1):
        name = f"user{index}"
        people[name] = Subscriber(
            id=index,
            name=name,
            email="",
            phone="+33612345678",
            locale="fr",
            time_zone="Europe/Paris",
            sip_username=name,
            ha1="a" * 32,
        )
        subscriptions[index] = [
            Subscription(
                id=index,
                subscriber_id=index,
                plan_code="maroc-illimite-mois",
                status=SubscriptionStatus.ACTIVE,
                period_start=NOW - timedelta(days=1),
                period_end=NOW + timedelta(days=29),
            )
        ]
    return CatalogSnapshot(
        revision=revision,
        plans={plan.code: plan for plan in sample_plans()},
        subscribers=people,
        subscriptions=subscriptions,
        carriers=sample_carriers(),
    )


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def authorizer(
    store: MemoryCatalog, clock: Clock, counters: LiveCounters | None = None
) -> CallAuthorizer:
    return CallAuthorizer(
        catalog=store,
        calls=store,
        clock=clock,
        realm="tawasol.local",
        fake_ha1_secret=b"secret",
        refresh_interval=timedelta(seconds=1),
        counters=counters,
    )


def user1_call(call_id: str, *, started_at: datetime = NOW, **fields: Any) -> CallRecord:
    """A call record of user1 (subscriber 1, subscription 1) to +212661234567, with `fields`."""
    return CallRecord(
        call_id=call_id,
        started_at=started_at,
        subscriber_id=1,
        subscription_id=1,
        destination="+212661234567",
        **fields,
    )


def test_given_many_calls_within_the_refresh_interval_then_the_store_is_read_once() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    service = authorizer(store, clock)
    for index in range(50):
        service.authorize(CallRequest("user1", MOBILE, call_id=f"c{index}"))
        service.forget_call(f"c{index}")
    assert store.loads == 1
    assert store.revision_reads == 1


def test_given_catalog_changed_then_reloaded_after_the_interval_only_when_revision_moved() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    service = authorizer(store, clock)
    service.authorize(CallRequest("user1", MOBILE))
    clock.now += timedelta(seconds=2)
    service.authorize(CallRequest("user1", MOBILE))
    assert store.loads == 1  # checked, same revision
    store.snapshot = replace(operator(revision=2), subscribers={})
    clock.now += timedelta(seconds=2)
    decision = service.authorize(CallRequest("user1", MOBILE)).decision
    assert store.loads == 2
    assert decision.reason.value == "unknown_subscriber"


def test_given_same_call_asked_twice_then_it_does_not_count_against_itself() -> None:
    service = authorizer(MemoryCatalog(operator()), Clock())
    first = service.authorize(CallRequest("user1", MOBILE, call_id="same"))
    again = service.authorize(CallRequest("user1", MOBILE, call_id="same"))
    other = service.authorize(CallRequest("user1", MOBILE, call_id="other"))
    assert first.decision.allowed and again.decision.allowed
    assert other.decision.reason.value == "concurrent_limit"
    assert service.channels_in_use("ma-flat") == 1


def test_unknown_user_gets_a_stable_fake_ha1_and_known_user_the_real_one() -> None:
    service = authorizer(MemoryCatalog(operator()), Clock())
    ghost = service.authorize(CallRequest("ghost", MOBILE)).ha1
    assert ghost == service.authorize(CallRequest("ghost", MOBILE)).ha1
    assert ghost != "a" * 32
    assert service.authorize(CallRequest("user1", MOBILE)).ha1 == "a" * 32


def test_given_first_carrier_failed_then_the_channel_moves_to_the_next_one() -> None:
    service = authorizer(MemoryCatalog(operator()), Clock())
    service.authorize(CallRequest("user1", MOBILE, call_id="c1"))
    assert service.channels_in_use("ma-flat") == 1
    failed = user1_call(
        "c1",
        country="MA",
        kind="mobile",
        attempts=(CallAttempt(1, "ma-flat", "gw1", 503, None, NOW),),
    )
    service.observe({"c1": None}, [failed])
    assert service.channels_in_use("ma-flat") == 0
    assert service.channels_in_use("ma-minute") == 1
    ended = replace(failed, final_sip_code=486, ended_at=NOW)
    service.observe({"c1": failed}, [ended])
    assert service.channels_in_use("ma-minute") == 0


def test_given_a_call_from_before_a_restart_is_open_then_it_counts_until_it_ends() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    store.open = [user1_call("old", started_at=NOW - timedelta(minutes=3))]
    service = authorizer(store, clock)
    assert service.authorize(CallRequest("user1", MOBILE)).decision.reason.value == (
        "concurrent_limit"
    )
    ended = replace(
        store.open[0], answered_at=NOW - timedelta(minutes=2), ended_at=NOW, duration_ms=120_000
    )
    service.observe({"old": store.open[0]}, [ended])
    assert service.authorize(CallRequest("user1", MOBILE)).decision.allowed


def test_given_a_carrier_condition_then_the_next_decision_uses_it() -> None:
    service = authorizer(MemoryCatalog(operator()), Clock())
    service.set_carrier_state("ma-flat", CarrierState(up=False))
    routes = service.authorize(CallRequest("user1", MOBILE)).decision.routes
    assert [route.carrier for route in routes] == ["ma-minute"]
    service.set_carrier_state("ma-flat", CarrierState(up=True, effective_channels=0))
    routes = service.authorize(CallRequest("user2", MOBILE)).decision.routes
    assert [route.carrier for route in routes] == ["ma-minute"]
    service.set_carrier_state("ma-flat", CarrierState())
    routes = service.authorize(CallRequest("user3", MOBILE)).decision.routes
    assert [route.carrier for route in routes] == ["ma-flat", "ma-minute"]


def test_carrier_states_carry_every_field_of_the_condition_and_the_channels_in_use() -> None:
    # every field set away from its default, so a field the decision's copy forgot shows
    condition = CarrierState(up=False, channels_in_use=99, effective_channels=7, de_preferred=True)
    assert all(getattr(condition, field.name) != field.default for field in fields(CarrierState))
    service = authorizer(MemoryCatalog(operator()), Clock())
    service.set_carrier_state("ma-flat", condition)
    service.set_carrier_state("ma-minute", CarrierState())
    service.authorize(CallRequest("user1", MOBILE, call_id="c1"))  # ma-flat down: ma-minute
    states = service.carrier_states()
    assert states["ma-flat"] == replace(condition, channels_in_use=0)
    assert states["ma-minute"] == CarrierState(channels_in_use=1)


def test_given_a_call_never_reported_then_it_stops_counting_after_its_max_duration() -> None:
    store, clock = MemoryCatalog(operator()), Clock()
    service = authorizer(store, clock)
    assert service.authorize(CallRequest("user1", MOBILE, call_id="lost")).decision.allowed
    clock.now += timedelta(hours=2, minutes=6)
    assert service.authorize(CallRequest("user1", MOBILE, call_id="next")).decision.allowed


def test_given_the_password_check_failed_after_the_decision_then_nothing_is_used_up() -> None:
    service = authorizer(MemoryCatalog(operator()), Clock())
    assert service.authorize(CallRequest("user1", MOBILE, call_id="probe")).decision.allowed
    refused = user1_call("probe", final_sip_code=403, ended_at=NOW, hangup_cause="auth_failed")
    service.observe({"probe": None}, [refused])
    state = service.decision_state(NOW)
    assert state.usage[1].active_calls == 0
    assert state.usage[1].distinct_numbers == frozenset()
    assert service.channels_in_use("ma-flat") == 0


def test_given_an_answered_call_then_its_number_counts_as_distinct() -> None:
    service = authorizer(MemoryCatalog(operator()), Clock())
    service.authorize(CallRequest("user1", MOBILE, call_id="talk"))
    answered = user1_call("talk", answered_at=NOW, carrier="ma-flat")
    service.observe({"talk": None}, [answered])
    assert service.decision_state(NOW).usage[1].distinct_numbers == {"+212661234567"}


def test_given_a_burst_then_a_refusal_is_explained_only_by_calls_routed_before_it() -> None:
    service = authorizer(MemoryCatalog(operator(subscribers=5)), Clock())
    for index in range(1, 6):
        service.authorize(CallRequest(f"user{index}", MOBILE, call_id=f"c{index}"))
    assert service.channels_in_use("ma-flat") == 5
    assert service.channels_held_before("ma-flat", "c3") == 2
    assert service.routing_order("c1") < service.routing_order("c3") < service.routing_order("c5")
    # An answer on the carrier it was sent to keeps the call's place in line.
    answered = user1_call("c1", answered_at=NOW, carrier="ma-flat")
    order = service.routing_order("c1")
    service.observe({"c1": None}, [answered])
    assert service.routing_order("c1") == order
