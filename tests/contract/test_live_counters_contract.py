"""The `LiveCounters` contract: what every implementation (in process, Redis) must do with calls
in progress, carriers' channels, the period's use, versions and carriers' states."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from support.stores import redis_live_counters
from tawasol.domain.carriers import CarrierState
from tawasol.domain.decision import Usage
from tawasol.services.live_counters import InProcessLiveCounters
from tawasol.services.ports.live_counters import LiveCounters, OpenCall

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
def counters(request: pytest.FixtureRequest) -> Iterator[LiveCounters]:
    if request.param == "in_process":
        yield InProcessLiveCounters()
    else:
        with redis_live_counters() as shared:
            yield shared


def a_call(subscription_id: int = 1, *, reserved: int = 600, minutes: int = 2) -> OpenCall:
    return OpenCall(
        subscription_id=subscription_id,
        destination="+212661234567",
        expires_at=NOW + timedelta(minutes=minutes),
        carriers=("atlas", "orbit"),
        max_duration=timedelta(seconds=reserved),
        reserved_seconds=reserved,
        opened_at=NOW,
    )


def test_given_a_call_opened_then_its_slot_and_reserved_seconds_count(
    counters: LiveCounters,
) -> None:
    assert counters.open("c1", a_call())
    assert counters.open("c2", a_call(reserved=300))
    assert counters.calls_in_progress(1) == 2
    assert counters.reserved_seconds(1) == 900
    assert counters.calls_in_progress() == 2
    assert counters.calls_in_progress(2) == 0
    assert set(counters.open_calls()) == {"c1", "c2"}


def test_given_the_same_call_opened_twice_then_it_counts_once(counters: LiveCounters) -> None:
    assert counters.open("c1", a_call())
    assert not counters.open("c1", a_call(reserved=999))
    assert counters.calls_in_progress(1) == 1
    assert counters.reserved_seconds(1) == 600


def test_given_a_call_released_then_slot_seconds_and_channel_are_free(
    counters: LiveCounters,
) -> None:
    counters.open("c1", a_call())
    counters.hold_channel("c1", "atlas")
    counters.release("c1")
    counters.release("c1")  # twice, or an unknown call: nothing more
    counters.release("never-seen")
    assert counters.calls_in_progress(1) == 0
    assert counters.reserved_seconds(1) == 0
    assert counters.channels_in_use().get("atlas", 0) == 0
    assert counters.get("c1") is None


def test_given_calls_past_their_expiry_then_expire_frees_only_those(
    counters: LiveCounters,
) -> None:
    counters.open("short", a_call(minutes=1))
    counters.open("long", a_call(minutes=10))
    counters.hold_channel("short", "atlas")
    assert counters.expire(NOW) == []
    assert counters.expire(NOW + timedelta(minutes=1)) == ["short"]
    assert set(counters.open_calls()) == {"long"}
    assert counters.channels_in_use().get("atlas", 0) == 0


def test_given_an_answer_then_the_call_is_held_until_the_new_expiry_once(
    counters: LiveCounters,
) -> None:
    counters.open("c1", a_call(minutes=1))
    counters.note_answer("c1", expires_at=NOW + timedelta(hours=1))
    counters.note_answer("c1", expires_at=NOW + timedelta(minutes=2))  # a second answer
    call = counters.get("c1")
    assert call is not None and call.answered
    assert call.expires_at == NOW + timedelta(hours=1)
    assert counters.expire(NOW + timedelta(minutes=30)) == []


def test_given_channels_taken_in_turn_then_each_knows_how_many_were_held_before_it(
    counters: LiveCounters,
) -> None:
    for call_id in ("a", "b", "c"):
        counters.open(call_id, a_call())
        counters.hold_channel(call_id, "atlas")
    assert counters.channels_in_use()["atlas"] == 3
    assert counters.held_carrier("b") == "atlas"
    assert counters.routing_order("a") < counters.routing_order("b") < counters.routing_order("c")
    assert counters.channels_held_before("atlas", "c") == 2
    assert counters.channels_held_before("atlas", "a") == 0
    # a call holding nothing there sees every channel held
    assert counters.channels_held_before("atlas", "unknown") == 3
    assert counters.routing_order("unknown") == 0


def test_given_a_call_moves_to_the_next_carrier_then_its_channel_moves_and_requeues(
    counters: LiveCounters,
) -> None:
    counters.open("a", a_call())
    counters.open("b", a_call())
    counters.hold_channel("a", "atlas")
    counters.hold_channel("b", "atlas")
    before = counters.routing_order("a")
    counters.hold_channel("a", "atlas")  # re-confirmed: keeps its place
    assert counters.routing_order("a") == before
    counters.hold_channel("a", "orbit")
    assert counters.channels_in_use().get("atlas") == 1
    assert counters.channels_in_use().get("orbit") == 1
    assert counters.routing_order("a") > counters.routing_order("b")
    counters.hold_channel("a", None)
    assert counters.held_carrier("a") is None
    assert counters.channels_in_use().get("orbit", 0) == 0


def test_the_period_use_is_reset_from_the_store_and_grows_with_answered_calls(
    counters: LiveCounters,
) -> None:
    counters.reset_usage(
        {1: Usage(answered_seconds=60, distinct_numbers=frozenset({"+212600000001"}))}
    )
    counters.add_usage(1, answered_seconds=30, destination="+212600000002")
    counters.add_usage(1, destination="+212600000002")  # the same number again
    counters.add_usage(2, answered_seconds=5)
    one = counters.usage(1)
    assert one is not None
    assert one.answered_seconds == 90
    assert one.distinct_numbers == {"+212600000001", "+212600000002"}
    two = counters.usage(2)
    assert two is not None and two.answered_seconds == 5
    assert counters.usage(3) is None
    counters.reset_usage({})
    assert counters.usage(1) is None


def test_calls_in_progress_are_not_part_of_the_period_use(counters: LiveCounters) -> None:
    counters.reset_usage({1: Usage(answered_seconds=60, active_calls=4, reserved_seconds=99)})
    counters.open("c1", a_call())
    used = counters.usage(1)
    assert used is not None
    assert (used.active_calls, used.reserved_seconds) == (0, 0)
    assert counters.calls_in_progress(1) == 1


def test_open_calls_is_a_copy(counters: LiveCounters) -> None:
    counters.open("c1", a_call())
    seen = counters.open_calls()
    counters.release("c1")
    assert "c1" in seen
    assert counters.open_calls() == {}


def test_current_usage_merges_the_period_and_the_calls_in_progress(counters: LiveCounters) -> None:
    assert counters.current_usage(1) is None
    counters.open("c1", a_call(reserved=600))
    assert counters.current_usage(1) == Usage(active_calls=1, reserved_seconds=600)
    counters.reset_usage({1: Usage(answered_seconds=60)})
    merged = counters.current_usage(1)
    assert merged == Usage(answered_seconds=60, active_calls=1, reserved_seconds=600)
    counters.release("c1")
    assert counters.current_usage(1) == Usage(answered_seconds=60)


def test_given_a_version_read_when_nothing_changed_then_the_call_opens(
    counters: LiveCounters,
) -> None:
    used, version = counters.decision_usage(1)
    assert used is None
    assert counters.open("c1", a_call(), if_version=version)
    used, after = counters.decision_usage(1)
    assert used == Usage(active_calls=1, reserved_seconds=600)
    assert after != version


def test_given_two_deciders_read_the_same_version_then_only_the_first_opens(
    counters: LiveCounters,
) -> None:
    """Two brains decide the last slot of a one-call subscriber at once: one call gets it."""
    _, version = counters.decision_usage(1)
    assert counters.open("first", a_call(), if_version=version)
    assert not counters.open("second", a_call(), if_version=version)
    assert counters.calls_in_progress(1) == 1
    assert counters.get("second") is None


@pytest.mark.parametrize("change", ["release", "add_usage", "reset_usage", "expire"])
def test_every_change_to_a_subscription_moves_its_version(
    counters: LiveCounters, change: str
) -> None:
    counters.open("held", a_call(minutes=1))
    _, version = counters.decision_usage(1)
    if change == "release":
        counters.release("held")
    elif change == "add_usage":
        counters.add_usage(1, answered_seconds=10)
    elif change == "reset_usage":
        counters.reset_usage({})
    else:
        assert counters.expire(NOW + timedelta(minutes=1)) == ["held"]
    assert not counters.open("next", a_call(), if_version=version)
    assert counters.open("next", a_call(), if_version=counters.decision_usage(1)[1])


def test_another_subscription_changing_leaves_the_version_alone(counters: LiveCounters) -> None:
    _, version = counters.decision_usage(1)
    counters.open("other", a_call(subscription_id=2))
    counters.add_usage(2, answered_seconds=30)
    assert counters.open("mine", a_call(), if_version=version)


def test_carrier_states_are_kept_without_channels(counters: LiveCounters) -> None:
    assert counters.carrier_conditions() == {}
    counters.set_carrier_condition(
        "atlas", CarrierState(up=False, channels_in_use=7, effective_channels=12)
    )
    counters.set_carrier_condition("orbit", CarrierState(de_preferred=True))
    assert counters.carrier_conditions() == {
        "atlas": CarrierState(up=False, effective_channels=12),
        "orbit": CarrierState(de_preferred=True),
    }
    counters.set_carrier_condition("atlas", CarrierState())
    assert counters.carrier_conditions()["atlas"] == CarrierState()


def test_an_open_call_keeps_every_field(counters: LiveCounters) -> None:
    call = a_call()
    counters.open("c1", call)
    assert counters.get("c1") == call
    bare = OpenCall(subscription_id=3, destination="+22507000000", expires_at=NOW)
    counters.open("bare", bare)
    assert counters.get("bare") == bare
    counters.note_answer("bare", expires_at=NOW + timedelta(seconds=90))
    assert counters.get("bare") == OpenCall(
        subscription_id=3,
        destination="+22507000000",
        expires_at=NOW + timedelta(seconds=90),
        answered=True,
    )
