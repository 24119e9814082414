"""The services over the in-memory stores, with the one sample operator: the catalog service,
the call event recorder and the carrier monitor, each through its narrow port."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tawasol.adapters.memory import MemoryStore
from tawasol.domain.calls import CallEvent, CallEventType
from tawasol.domain.carrier_health import CarrierEventKind, ProbeThresholds
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.decision import CallRequest
from tawasol.domain.errors import Conflict
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.carrier_monitor import CarrierMonitor
from tawasol.services.catalog import CatalogService
from tawasol.services.record_call_events import CallEventRecorder
from tawasol.services.sample_operator import SAMPLE_SUBSCRIBERS, seed_sample_operator

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MOBILE = "00212661234567"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Services:
    """The brain's services wired as composition.build_brain wires them, on a MemoryStore."""

    def __init__(self, store: MemoryStore | None = None) -> None:
        self.clock = Clock()
        self.store = store or MemoryStore(clock=self.clock)
        self.authorizer = CallAuthorizer(
            catalog=self.store,
            calls=self.store,
            clock=self.clock,
            realm="tawasol.local",
            fake_ha1_secret=b"secret",
        )
        self.monitor = CarrierMonitor(
            store=self.store,
            authorizer=self.authorizer,
            clock=self.clock,
            thresholds=ProbeThresholds(down_after=3, up_after=2),
        )
        self.catalog = CatalogService(
            store=self.store, authorizer=self.authorizer, clock=self.clock
        )
        self.recorder = CallEventRecorder(
            store=self.store, authorizer=self.authorizer, listeners=[self.monitor]
        )


@pytest.fixture
def services() -> Services:
    wired = Services()
    seed_sample_operator(wired.catalog, now=NOW)
    return wired


# -- CatalogService -----------------------------------------------------------------------------
def test_given_the_sample_operator_when_seeded_again_then_refused_and_nothing_changes(
    services: Services,
) -> None:
    revision = services.store.catalog_revision()
    with pytest.raises(Conflict):
        seed_sample_operator(services.catalog, now=NOW)
    assert services.store.catalog_revision() == revision
    assert len(services.catalog.list_subscribers()) == len(SAMPLE_SUBSCRIBERS)


def test_given_a_plan_edited_then_the_next_decision_reads_it_at_once(
    services: Services,
) -> None:
    assert services.authorizer.authorize(CallRequest("amina", MOBILE, "c0")).decision.allowed
    plan = services.catalog.get_plan("maroc-illimite-mois")
    tunisia_only = frozenset({DestinationRule("TN", NumberKind.MOBILE)})
    services.catalog.update_plan(replace(plan, destinations=tunisia_only, cost_ceilings=()))
    decision = services.authorizer.explain(CallRequest("amina", MOBILE), now=NOW)
    assert not decision.allowed


def test_given_a_plan_change_then_one_subscription_runs_and_the_old_one_is_cancelled(
    services: Services,
) -> None:
    amina = services.catalog.find_subscriber("amina")
    assert amina is not None
    services.catalog.change_plan(subscriber_id=amina.id, plan_code="maroc-illimite-an")
    running = [
        s for s in services.catalog.list_subscriptions(subscriber_id=amina.id) if s.status.current
    ]
    assert [s.plan_code for s in running] == ["maroc-illimite-an"]
    assert any(
        s.status is SubscriptionStatus.CANCELLED
        for s in services.catalog.list_subscriptions(subscriber_id=amina.id)
    )


# -- CallEventRecorder --------------------------------------------------------------------------
def test_given_an_allowed_call_when_its_events_arrive_then_it_is_filed_rated_and_freed(
    services: Services,
) -> None:
    decision = services.authorizer.authorize(CallRequest("amina", MOBILE, "call-1")).decision
    assert decision.allowed and services.authorizer.active_calls() == 1
    route = decision.routes[0]
    start = NOW + timedelta(seconds=1)
    records = services.recorder.record(
        [
            CallEvent(
                "call-1",
                CallEventType.ATTEMPT,
                start,
                "amina",
                MOBILE,
                attempt=1,
                carrier=route.carrier,
                gateway=route.gateway,
                sip_code=200,
                pdd_ms=900,
                billing=route.billing.value,
            ),
            CallEvent("call-1", CallEventType.ANSWER, start + timedelta(seconds=3)),
            CallEvent(
                "call-1", CallEventType.END, start + timedelta(seconds=63), duration_ms=60_000
            ),
        ]
    )
    (record,) = records
    assert record.subscription_id == decision.subscription_id
    assert record.status.value == "completed"
    assert services.store.get_call("call-1") == record
    assert services.authorizer.active_calls() == 0


def test_given_the_same_events_twice_then_one_record(services: Services) -> None:
    events = [
        CallEvent("call-2", CallEventType.ATTEMPT, NOW, "bilal", MOBILE, attempt=1,
                  carrier="ma-minute", gateway="gw1", sip_code=486, pdd_ms=None),
        CallEvent("call-2", CallEventType.FAILURE, NOW + timedelta(seconds=2)),
    ]  # fmt: skip
    first = services.recorder.record(events)
    second = services.recorder.record(events)
    assert first == second
    assert len(services.store.list_calls(limit=10)) == 1


# -- CarrierMonitor -----------------------------------------------------------------------------
def test_given_probes_fail_then_the_carrier_is_down_for_decisions_and_after_a_restart(
    services: Services,
) -> None:
    events = [services.monitor.on_probe("ma-flat", answered=False) for _ in range(3)]
    assert [e.kind for e in events if e is not None] == [CarrierEventKind.DOWN]
    assert services.authorizer.carrier_states()["ma-flat"].up is False
    routes = services.authorizer.explain(CallRequest("amina", MOBILE), now=NOW).routes
    assert "ma-flat" not in {route.carrier for route in routes}
    # a brain started on the same store takes the last known state from the events
    restarted = Services(services.store)
    restarted.monitor.restore()
    assert restarted.authorizer.carrier_states()["ma-flat"].up is False


def test_given_an_operator_cap_then_the_board_shows_it_and_every_brain_reloads(
    services: Services,
) -> None:
    revision = services.store.catalog_revision()
    services.monitor.set_capacity("ma-flat", 0)
    assert services.store.carrier_capacities() == {"ma-flat": 0}
    assert services.store.catalog_revision() > revision
    board = {row.carrier.code: row for row in services.monitor.statuses()}
    assert board["ma-flat"].operator_cap == 0
    assert board["ma-flat"].state.effective_channels == 0
