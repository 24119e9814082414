"""The incidents service on the in-memory store: findings become incidents once, a restart
follows them again, the operator's incidents are never resolved by detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
from tawasol.domain.incident_detection import DetectionSettings
from tawasol.domain.incidents import IncidentKind, IncidentState
from tawasol.domain.outages import OutageScope
from tawasol.services.incident_ports import InMemoryIncidentStore
from tawasol.services.incidents import IncidentService


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


SETTINGS = DetectionSettings(recovery_hold=timedelta(seconds=30))


def test_a_carrier_marked_down_opens_one_internal_incident_resolved_after_the_hold() -> None:
    clock, store = Clock(), InMemoryIncidentStore()
    service = IncidentService(store=store, clock=clock, settings=SETTINGS)
    service.on_carrier_event(CarrierEvent("ma-flat", clock.now, CarrierEventKind.DOWN, "probes"))
    (opened,) = service.tick()
    assert opened.kind is IncidentKind.CARRIER and opened.carrier == "ma-flat"
    assert opened.automatic and not opened.customer_facing
    assert service.tick() == []  # the same finding does not open a second incident

    # after a restart the open incident is followed, not opened again
    restarted = IncidentService(store=store, clock=clock, settings=SETTINGS)
    restarted.on_carrier_event(CarrierEvent("ma-flat", clock.now, CarrierEventKind.DOWN, "probes"))
    assert restarted.tick() == []
    restarted.on_carrier_event(CarrierEvent("ma-flat", clock.now, CarrierEventKind.UP, "probes"))
    clock.now += timedelta(seconds=10)
    assert restarted.tick() == []  # up, but not for the whole hold yet
    clock.now += timedelta(seconds=30)
    (closed,) = restarted.tick()
    assert closed.state is IncidentState.RESOLVED and closed.updates[-1].author == "detection"
    assert len(store.list_incidents()) == 1


def test_the_operators_incident_is_not_resolved_by_detection() -> None:
    clock, store = Clock(), InMemoryIncidentStore()
    service = IncidentService(store=store, clock=clock, settings=SETTINGS)
    opened = service.open(
        author="amina",
        kind=IncidentKind.MAINTENANCE,
        title="Planned work",
        message={"fr": "Travaux"},
        scope=OutageScope("TN"),
    )
    clock.now += timedelta(hours=1)
    assert service.tick() == []
    assert store.get_incident(opened.id).open


def test_impact_that_stops_and_starts_again_is_told_once_and_a_reopening_again() -> None:
    from tawasol.domain.incidents import new_incident, record_impact, reopen, resolve
    from tawasol.domain.notices import NoticeOccasion
    from tawasol.domain.outages import OutageImpact
    from tawasol.services.notices import occasions

    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    opened = new_incident(
        kind=IncidentKind.CARRIER,
        title="cut",
        started_at=at,
        author="detection",
        message={"en": "cut"},
        carrier="ma-flat",
        scope=OutageScope("MA"),
    )
    facing = record_impact(opened, impact=OutageImpact.PARTIAL, at=at)
    assert occasions(opened, facing) == [(NoticeOccasion.CUSTOMER_FACING, 1)]
    calm = record_impact(facing, impact=None, at=at + timedelta(minutes=1))
    again = record_impact(calm, impact=OutageImpact.PARTIAL, at=at + timedelta(minutes=2))
    assert occasions(calm, again) == [(NoticeOccasion.CUSTOMER_FACING, 1)]  # the same key
    closed = resolve(again, at=at + timedelta(minutes=3), author="detection", message={"en": "ok"})
    assert occasions(again, closed) == [(NoticeOccasion.RESOLVED, 1)]
    reopened = reopen(closed, at=at + timedelta(minutes=4), author="amina", message={"en": "no"})
    facing_again = record_impact(reopened, impact=OutageImpact.MAJOR, at=at + timedelta(minutes=4))
    assert occasions(reopened, facing_again) == [(NoticeOccasion.CUSTOMER_FACING, 2)]
