"""The incidents' own port: where incidents, their timelines, impact and audit are kept.

`IncidentStore` is one aggregate's port (incidents with their updates and impact stretches);
it also answers `OutageHistory`, the contract billing reads. Two implementations pass the same
contract tests (tests/integration/test_incident_store.py): `InMemoryIncidentStore` below, for
unit tests and the embedded demo, and `adapters.store.incidents_sql.SqlIncidentStore` on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from tawasol.domain.errors import Conflict, InvalidInput, NotFound
from tawasol.domain.incidents import Incident, IncidentState
from tawasol.domain.outages import OutagePeriod

__all__ = ["AuditEntry", "InMemoryIncidentStore", "IncidentChange", "IncidentStore"]


@dataclass(frozen=True)
class AuditEntry:
    """Who changed which incident, when, how (`action`: opened, updated, impact, resolved,
    reopened, merged), and the version the change produced."""

    incident_id: int
    at: datetime
    author: str
    action: str
    version: int


@dataclass(frozen=True)
class IncidentChange:
    """A changed incident and the version it had when it was read (optimistic locking)."""

    incident: Incident
    expected_version: int


class IncidentStore(Protocol):
    """Incidents, their timelines and impact, the audit of every change, and outage history.

    Times are timezone-aware UTC. Raises NotFound for an unknown id, Conflict when an incident
    changed since it was read, Unavailable when the store cannot answer.
    """

    def add_incident(self, incident: Incident, *, author: str) -> Incident:
        """Store a new incident (its id is 0) and return it with its id; audited "opened"."""
        ...

    def save_incidents(
        self, changes: Sequence[IncidentChange], *, author: str, action: str, at: datetime
    ) -> list[Incident]:
        """Store the changed incidents all together or none (a merge changes two)."""
        ...

    def get_incident(self, incident_id: int) -> Incident: ...

    def list_incidents(self, *, open_only: bool = False, limit: int = 100) -> list[Incident]:
        """Newest first (by start)."""
        ...

    def incident_audit(self, incident_id: int) -> list[AuditEntry]:
        """Oldest first."""
        ...

    # -- OutageHistory (services.ports), read by billing ------------------------------------
    def outage_periods(self, *, start: datetime, end: datetime) -> Sequence[OutagePeriod]: ...

    def closed_incidents_since(self, since: datetime) -> Sequence[int]: ...


def check_aware(*moments: datetime) -> None:
    if any(moment.tzinfo is None for moment in moments):
        raise InvalidInput("incident store times must be time-zone aware")


def periods_overlapping(
    incidents: Sequence[Incident], *, start: datetime, end: datetime
) -> list[OutagePeriod]:
    """The outage periods of `incidents` that overlap [start, end), oldest first."""
    periods = [
        period
        for incident in incidents
        for period in incident.outage_periods()
        if period.start < end and (period.end is None or period.end > start)
    ]
    return sorted(periods, key=lambda period: (period.start, period.incident_id))


class InMemoryIncidentStore:
    """`IncidentStore` in a dict, thread-safe; the reference the SQL store is tested against."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._incidents: dict[int, Incident] = {}
        self._audit: list[AuditEntry] = []

    def add_incident(self, incident: Incident, *, author: str) -> Incident:
        check_aware(incident.started_at)
        with self._lock:
            stored = replace(incident, id=len(self._incidents) + 1)
            self._incidents[stored.id] = stored
            self._audit.append(
                AuditEntry(stored.id, incident.started_at, author, "opened", stored.version)
            )
            return stored

    def save_incidents(
        self, changes: Sequence[IncidentChange], *, author: str, action: str, at: datetime
    ) -> list[Incident]:
        check_aware(at)
        with self._lock:
            for change in changes:
                current = self._incidents.get(change.incident.id)
                if current is None:
                    raise NotFound("no such incident", incident_id=change.incident.id)
                if current.version != change.expected_version:
                    raise Conflict(
                        "the incident changed since it was read: read it again",
                        incident_id=change.incident.id,
                    )
            for change in changes:
                self._incidents[change.incident.id] = change.incident
                self._audit.append(
                    AuditEntry(change.incident.id, at, author, action, change.incident.version)
                )
            return [change.incident for change in changes]

    def get_incident(self, incident_id: int) -> Incident:
        with self._lock:
            incident = self._incidents.get(incident_id)
        if incident is None:
            raise NotFound("no such incident", incident_id=incident_id)
        return incident

    def list_incidents(self, *, open_only: bool = False, limit: int = 100) -> list[Incident]:
        with self._lock:
            incidents = list(self._incidents.values())
        chosen = [i for i in incidents if i.state is not IncidentState.RESOLVED or not open_only]
        chosen.sort(key=lambda incident: (incident.started_at, incident.id), reverse=True)
        return chosen[:limit]

    def incident_audit(self, incident_id: int) -> list[AuditEntry]:
        with self._lock:
            return [entry for entry in self._audit if entry.incident_id == incident_id]

    def outage_periods(self, *, start: datetime, end: datetime) -> Sequence[OutagePeriod]:
        check_aware(start, end)
        with self._lock:
            incidents = list(self._incidents.values())
        return periods_overlapping(incidents, start=start, end=end)

    def closed_incidents_since(self, since: datetime) -> Sequence[int]:
        check_aware(since)
        with self._lock:
            incidents = list(self._incidents.values())
        return sorted(
            incident.id
            for incident in incidents
            if incident.resolved_at is not None
            and incident.resolved_at >= since
            and incident.merged_into is None
            and incident.outage_periods()
        )
