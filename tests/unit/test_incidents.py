"""Incident records: states, timeline in fr/ar/en, impact stretches, merge and reopen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.incidents import (
    Incident,
    IncidentKind,
    IncidentState,
    add_update,
    merge_into,
    new_incident,
    record_impact,
    reopen,
    resolve,
)
from tawasol.domain.outages import OutageImpact, OutageScope

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def incident(incident_id: int = 1) -> Incident:
    opened = new_incident(
        kind=IncidentKind.CARRIER,
        title="flat carrier cut",
        started_at=T0,
        author="detection",
        message={"en": "probes unanswered"},
        carrier="flat",
        scope=OutageScope("MA"),
        automatic=True,
    )
    return Incident(**{**opened.__dict__, "id": incident_id})


def test_given_resolved_incident_when_updated_then_conflict_until_reopened() -> None:
    closed = resolve(incident(), at=T0, author="amina", message={"fr": "Rétabli"})
    with pytest.raises(Conflict):
        add_update(closed, at=T0, author="amina", message={"en": "more"})
    with pytest.raises(Conflict):
        resolve(closed, at=T0, author="amina", message={"en": "again"})
    again = reopen(closed, at=T0 + timedelta(hours=1), author="amina", message={"en": "back"})
    assert again.state is IncidentState.INVESTIGATING and again.resolved_at is None
    assert add_update(again, at=T0, author="amina", message={"en": "ok"}).open


def test_the_state_moves_through_open_states_and_every_update_names_its_author() -> None:
    identified = add_update(
        incident(),
        at=T0,
        author="amina",
        message={"ar": "تم تحديد السبب"},
        state=IncidentState.IDENTIFIED,
    )
    monitoring = add_update(
        identified,
        at=T0,
        author="youssef",
        message={"fr": "Surveillance"},
        state=IncidentState.MONITORING,
    )
    assert monitoring.state is IncidentState.MONITORING
    assert [u.author for u in monitoring.updates] == ["detection", "amina", "youssef"]
    assert monitoring.version == 3
    with pytest.raises(InvalidInput):
        add_update(
            monitoring, at=T0, author="amina", message={"en": "x"}, state=IncidentState.RESOLVED
        )


@pytest.mark.parametrize(
    ("message", "author"),
    [
        ({}, "amina"),
        ({"de": "Störung"}, "amina"),
        ({"en": "   "}, "amina"),
        ({"en": "x" * 4001}, "amina"),
        ({"en": "fine"}, "  "),
    ],
)
def test_bad_updates_are_refused_clearly(message: dict[str, str], author: str) -> None:
    with pytest.raises(InvalidInput):
        add_update(incident(), at=T0, author=author, message=message)


def test_bad_incidents_are_refused_clearly() -> None:
    with pytest.raises(InvalidInput):
        new_incident(
            kind=IncidentKind.DESTINATION, title="x", started_at=T0, author="a", message={"en": "x"}
        )
    with pytest.raises(InvalidInput):
        new_incident(
            kind=IncidentKind.CARRIER, title="x", started_at=T0, author="a", message={"en": "x"}
        )
    with pytest.raises(InvalidInput):
        new_incident(
            kind=IncidentKind.MAINTENANCE,
            title="x",
            started_at=T0.replace(tzinfo=None),
            author="a",
            message={"en": "x"},
        )


def test_impact_stretches_open_change_and_close_and_become_outage_periods() -> None:
    hit = record_impact(incident(), impact=OutageImpact.MAJOR, at=T0)
    same = record_impact(hit, impact=OutageImpact.MAJOR, at=T0 + timedelta(minutes=1))
    assert same == hit
    partial = record_impact(hit, impact=OutageImpact.PARTIAL, at=T0 + timedelta(minutes=10))
    assert partial.customer_facing
    healed = record_impact(partial, impact=None, at=T0 + timedelta(minutes=30))
    assert not healed.customer_facing
    periods = healed.outage_periods()
    assert [(p.start, p.end, p.impact) for p in periods] == [
        (T0, T0 + timedelta(minutes=10), OutageImpact.MAJOR),
        (T0 + timedelta(minutes=10), T0 + timedelta(minutes=30), OutageImpact.PARTIAL),
    ]
    closed = resolve(partial, at=T0 + timedelta(hours=1), author="detection", message={"en": "ok"})
    assert closed.impact[-1].end == T0 + timedelta(hours=1)


def test_merge_resolves_the_duplicate_and_hands_its_impact_to_the_survivor() -> None:
    duplicate = record_impact(incident(1), impact=OutageImpact.MAJOR, at=T0)
    survivor = incident(2)
    closed, carried = merge_into(duplicate, survivor, at=T0 + timedelta(minutes=5), author="a")
    assert closed.state is IncidentState.RESOLVED and closed.merged_into == 2
    assert closed.impact == () and carried.impact[0].start == T0
    with pytest.raises(Conflict):
        reopen(closed, at=T0, author="a", message={"en": "x"})
    with pytest.raises(Conflict):
        merge_into(survivor, survivor, at=T0, author="a")
