"""One contract for `IncidentStore` and billing's `OutageHistory`: in memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.stores import BACKENDS, on_backend
from tawasol.adapters.store import SqlIncidentStore
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.incidents import (
    Incident,
    IncidentKind,
    IncidentState,
    add_update,
    merge_into,
    new_incident,
    record_impact,
    resolve,
)
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope
from tawasol.services.incident_ports import IncidentChange, IncidentStore, InMemoryIncidentStore
from tawasol.services.ports import OutageHistory

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
MAROC_TELECOM = OutageScope("MA", NumberKind.MOBILE, "Maroc Telecom")
ARABIC = "انقطاع في الاتصالات نحو شبكة اتصالات المغرب"


@pytest.fixture(params=BACKENDS)
def incidents(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IncidentStore]:
    yield from on_backend(
        request.param,
        tmp_path,
        memory=InMemoryIncidentStore,
        sql=SqlIncidentStore,
    )


def destination_incident(started_at: datetime = T0) -> Incident:
    return new_incident(
        kind=IncidentKind.DESTINATION,
        title="Maroc Telecom mobiles unreachable",
        started_at=started_at,
        author="detection",
        message={"fr": "Appels vers Maroc Telecom en échec", "ar": ARABIC},
        scope=MAROC_TELECOM,
        automatic=True,
    )


def save(store: IncidentStore, before: Incident, after: Incident, action: str) -> Incident:
    (stored,) = store.save_incidents(
        [IncidentChange(after, before.version)], author="amina", action=action, at=T0
    )
    return stored


def test_an_incident_round_trips_with_its_arabic_timeline_and_scope(
    incidents: IncidentStore,
) -> None:
    stored = incidents.add_incident(destination_incident(), author="detection")
    assert stored.id > 0
    loaded = incidents.get_incident(stored.id)
    assert loaded == stored
    assert loaded.updates[0].message["ar"] == ARABIC
    assert [entry.action for entry in incidents.incident_audit(stored.id)] == ["opened"]


def test_updates_impact_and_resolution_are_kept_and_audited(incidents: IncidentStore) -> None:
    opened = incidents.add_incident(destination_incident(), author="detection")
    impacted = record_impact(opened, impact=OutageImpact.MAJOR, at=T0 + timedelta(minutes=1))
    impacted = save(incidents, opened, impacted, "impact")
    updated = add_update(
        impacted,
        at=T0 + timedelta(minutes=5),
        author="amina",
        message={"en": "Maroc Telecom confirms a fault"},
        state=IncidentState.IDENTIFIED,
    )
    updated = save(incidents, impacted, updated, "updated")
    closed = resolve(
        updated,
        at=T0 + timedelta(hours=2),
        author="amina",
        message={"fr": "Rétabli"},
        postmortem="Fibre cut near Rabat.",
    )
    save(incidents, updated, closed, "resolved")

    loaded = incidents.get_incident(opened.id)
    assert loaded == closed
    assert [u.state for u in loaded.updates] == [
        IncidentState.INVESTIGATING,
        IncidentState.IDENTIFIED,
        IncidentState.RESOLVED,
    ]
    assert [(e.author, e.action, e.version) for e in incidents.incident_audit(opened.id)] == [
        ("detection", "opened", 1),
        ("amina", "impact", 2),
        ("amina", "updated", 3),
        ("amina", "resolved", closed.version),
    ]


def test_a_change_from_a_stale_read_is_a_conflict_and_writes_nothing(
    incidents: IncidentStore,
) -> None:
    opened = incidents.add_incident(destination_incident(), author="detection")
    first = add_update(opened, at=T0, author="amina", message={"en": "first"})
    second = add_update(opened, at=T0, author="youssef", message={"en": "second"})
    save(incidents, opened, first, "updated")
    with pytest.raises(Conflict):
        save(incidents, opened, second, "updated")
    assert incidents.get_incident(opened.id) == first


def test_unknown_incidents_are_not_found(incidents: IncidentStore) -> None:
    with pytest.raises(NotFound):
        incidents.get_incident(404)
    ghost = destination_incident()
    with pytest.raises(NotFound):
        incidents.save_incidents(
            [IncidentChange(ghost, 1)], author="amina", action="updated", at=T0
        )


def test_open_incidents_are_listed_newest_first(incidents: IncidentStore) -> None:
    older = incidents.add_incident(destination_incident(T0), author="detection")
    newer = incidents.add_incident(destination_incident(T0 + timedelta(hours=1)), author="d")
    save(incidents, older, resolve(older, at=T0, author="a", message={"en": "ok"}), "resolved")
    assert [i.id for i in incidents.list_incidents()] == [newer.id, older.id]
    assert [i.id for i in incidents.list_incidents(open_only=True)] == [newer.id]


def test_outage_periods_are_the_customer_facing_stretches_overlapping_the_range(
    incidents: IncidentStore,
) -> None:
    history: OutageHistory = incidents
    opened = incidents.add_incident(destination_incident(), author="detection")
    stretch = record_impact(opened, impact=OutageImpact.MAJOR, at=T0 + timedelta(minutes=10))
    stretch = record_impact(stretch, impact=OutageImpact.PARTIAL, at=T0 + timedelta(minutes=40))
    stretch = save(incidents, opened, stretch, "impact")
    internal = incidents.add_incident(
        new_incident(
            kind=IncidentKind.CARRIER,
            title="flat carrier cut",
            started_at=T0,
            author="detection",
            message={"en": "probes unanswered"},
            carrier="flat",
            scope=OutageScope("MA"),
        ),
        author="detection",
    )

    periods = history.outage_periods(start=T0, end=T0 + timedelta(hours=1))
    assert periods == [
        OutagePeriod(
            opened.id,
            MAROC_TELECOM,
            T0 + timedelta(minutes=10),
            T0 + timedelta(minutes=40),
            OutageImpact.MAJOR,
        ),
        OutagePeriod(
            opened.id, MAROC_TELECOM, T0 + timedelta(minutes=40), None, OutageImpact.PARTIAL
        ),
    ]
    assert internal.id not in {p.incident_id for p in periods}  # nobody was affected
    assert history.outage_periods(start=T0, end=T0 + timedelta(minutes=10)) == []
    assert periods[1].overlap(T0, T0 + timedelta(hours=1)) == timedelta(minutes=20)

    assert history.closed_incidents_since(T0) == []
    closed = resolve(stretch, at=T0 + timedelta(hours=2), author="amina", message={"en": "ok"})
    save(incidents, stretch, closed, "resolved")
    assert list(history.closed_incidents_since(T0 + timedelta(hours=1))) == [opened.id]
    assert history.closed_incidents_since(T0 + timedelta(hours=3)) == []
    (last,) = history.outage_periods(start=T0 + timedelta(minutes=50), end=T0 + timedelta(hours=3))
    assert last.end == T0 + timedelta(hours=2)


def test_a_merge_moves_the_impact_and_changes_both_or_neither(incidents: IncidentStore) -> None:
    first = incidents.add_incident(destination_incident(), author="detection")
    first_hit = save(
        incidents, first, record_impact(first, impact=OutageImpact.MAJOR, at=T0), "impact"
    )
    second = incidents.add_incident(destination_incident(T0 + timedelta(minutes=2)), author="d")
    duplicate, survivor = merge_into(first_hit, second, at=T0 + timedelta(minutes=3), author="a")
    incidents.save_incidents(
        [IncidentChange(duplicate, first_hit.version), IncidentChange(survivor, second.version)],
        author="amina",
        action="merged",
        at=T0,
    )
    assert incidents.get_incident(first.id).merged_into == second.id
    periods = incidents.outage_periods(start=T0, end=T0 + timedelta(hours=1))
    assert [p.incident_id for p in periods] == [second.id]

    # a merge from a stale read of the survivor changes neither
    third = incidents.add_incident(destination_incident(), author="detection")
    stale = incidents.get_incident(second.id)
    save(incidents, stale, add_update(stale, at=T0, author="b", message={"en": "x"}), "updated")
    duplicate, survivor = merge_into(third, stale, at=T0, author="a")
    with pytest.raises(Conflict):
        incidents.save_incidents(
            [IncidentChange(duplicate, third.version), IncidentChange(survivor, stale.version)],
            author="amina",
            action="merged",
            at=T0,
        )
    assert incidents.get_incident(third.id).open
