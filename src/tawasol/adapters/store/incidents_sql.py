"""`IncidentStore` (and billing's `OutageHistory`) on SQLAlchemy, SQLite or PostgreSQL.

Shares the engine of `SqlStore` (`SqlIncidentStore(store.engine)`). Writes use optimistic
locking on `incidents.version`: an UPDATE that finds another version changes nothing and the
whole change is refused with Conflict. The outage-period query is one indexed range query over
`incident_impact` joined to its incident's scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Engine, delete, or_, select, update
from sqlalchemy.orm import Session

from tawasol.adapters.store.incident_models import (
    IncidentAuditRow,
    IncidentImpactRow,
    IncidentRow,
    IncidentUpdateRow,
)
from tawasol.adapters.store.sessions import Transactions
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.incidents import (
    ImpactStretch,
    Incident,
    IncidentKind,
    IncidentState,
    IncidentUpdate,
)
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope
from tawasol.services.incident_ports import (
    AuditEntry,
    IncidentChange,
    IncidentStore,
    check_aware,
)


class SqlIncidentStore:
    """Thread-safe: each call checks out its own connection from the shared engine."""

    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    def add_incident(self, incident: Incident, *, author: str) -> Incident:
        check_aware(incident.started_at)
        with self._transactions.writing() as session:
            row = IncidentRow(**_columns(incident))
            session.add(row)
            session.flush()
            stored = replace(incident, id=row.id)
            _write_children(session, stored, known_updates=0)
            session.add(
                IncidentAuditRow(
                    incident_id=row.id,
                    at=incident.started_at,
                    author=author,
                    action="opened",
                    version=incident.version,
                )
            )
        return stored

    def save_incidents(
        self, changes: Sequence[IncidentChange], *, author: str, action: str, at: datetime
    ) -> list[Incident]:
        check_aware(at)
        with self._transactions.writing() as session:
            for change in changes:
                incident = change.incident
                known = session.scalar(select(IncidentRow.id).where(IncidentRow.id == incident.id))
                if known is None:
                    raise NotFound("no such incident", incident_id=incident.id)
                result = session.execute(
                    update(IncidentRow)
                    .where(
                        IncidentRow.id == incident.id,
                        IncidentRow.version == change.expected_version,
                    )
                    .values(**_columns(incident))
                )
                if result.rowcount != 1:  # type: ignore[attr-defined]
                    raise Conflict(
                        "the incident changed since it was read: read it again",
                        incident_id=incident.id,
                    )
                stored_updates = len(
                    session.scalars(
                        select(IncidentUpdateRow.id).where(
                            IncidentUpdateRow.incident_id == incident.id
                        )
                    ).all()
                )
                _write_children(session, incident, known_updates=stored_updates)
                session.add(
                    IncidentAuditRow(
                        incident_id=incident.id,
                        at=at,
                        author=author,
                        action=action,
                        version=incident.version,
                    )
                )
        return [change.incident for change in changes]

    def get_incident(self, incident_id: int) -> Incident:
        with self._transactions.reading() as session:
            row = session.get(IncidentRow, incident_id)
            if row is None:
                raise NotFound("no such incident", incident_id=incident_id)
            return _load(session, [row])[0]

    def list_incidents(self, *, open_only: bool = False, limit: int = 100) -> list[Incident]:
        query = select(IncidentRow).order_by(IncidentRow.started_at.desc(), IncidentRow.id.desc())
        if open_only:
            query = query.where(IncidentRow.state != IncidentState.RESOLVED.value)
        with self._transactions.reading() as session:
            return _load(session, list(session.scalars(query.limit(limit))))

    def incident_audit(self, incident_id: int) -> list[AuditEntry]:
        query = (
            select(IncidentAuditRow)
            .where(IncidentAuditRow.incident_id == incident_id)
            .order_by(IncidentAuditRow.id)
        )
        with self._transactions.reading() as session:
            return [
                AuditEntry(row.incident_id, row.at, row.author, row.action, row.version)
                for row in session.scalars(query)
            ]

    def outage_periods(self, *, start: datetime, end: datetime) -> Sequence[OutagePeriod]:
        check_aware(start, end)
        query = (
            select(IncidentImpactRow, IncidentRow)
            .join(IncidentRow, IncidentRow.id == IncidentImpactRow.incident_id)
            .where(
                IncidentImpactRow.start < end,
                or_(IncidentImpactRow.end.is_(None), IncidentImpactRow.end > start),
                IncidentRow.scope_country.is_not(None),
            )
            .order_by(IncidentImpactRow.start, IncidentImpactRow.incident_id)
        )
        with self._transactions.reading() as session:
            return [
                OutagePeriod(
                    incident_id=incident.id,
                    scope=_scope(incident),  # type: ignore[arg-type]
                    start=stretch.start,
                    end=stretch.end,
                    impact=OutageImpact(stretch.impact),
                )
                for stretch, incident in session.execute(query)
            ]

    def closed_incidents_since(self, since: datetime) -> Sequence[int]:
        check_aware(since)
        query = (
            select(IncidentRow.id)
            .where(
                IncidentRow.resolved_at >= since,
                IncidentRow.scope_country.is_not(None),
                IncidentRow.id.in_(select(IncidentImpactRow.incident_id)),
            )
            .order_by(IncidentRow.id)
        )
        with self._transactions.reading() as session:
            return list(session.scalars(query))


def _columns(incident: Incident) -> dict[str, object]:
    scope = incident.scope
    return {
        "kind": incident.kind.value,
        "title": incident.title,
        "state": incident.state.value,
        "started_at": incident.started_at,
        "resolved_at": incident.resolved_at,
        "carrier_code": incident.carrier,
        "scope_country": scope.country if scope else None,
        "scope_kind": scope.number_kind.value if scope and scope.number_kind else None,
        "scope_range_holder": scope.range_holder if scope else None,
        "automatic": incident.automatic,
        "postmortem": incident.postmortem,
        "merged_into": incident.merged_into,
        "version": incident.version,
    }


def _write_children(session: Session, incident: Incident, *, known_updates: int) -> None:
    # The timeline is append-only: only entries not stored yet are written.
    for position, entry in enumerate(incident.updates[known_updates:], start=known_updates):
        session.add(
            IncidentUpdateRow(
                incident_id=incident.id,
                position=position,
                at=entry.at,
                author=entry.author,
                state=entry.state.value,
                message=dict(entry.message),
                automatic=entry.automatic,
                notify=entry.notify,
            )
        )
    # Impact stretches are few and their last one changes: rewritten whole.
    session.execute(delete(IncidentImpactRow).where(IncidentImpactRow.incident_id == incident.id))
    for stretch in incident.impact:
        session.add(
            IncidentImpactRow(
                incident_id=incident.id,
                start=stretch.start,
                end=stretch.end,
                impact=stretch.impact.value,
            )
        )


def _scope(row: IncidentRow) -> OutageScope | None:
    if row.scope_country is None:
        return None
    return OutageScope(
        country=row.scope_country,
        number_kind=NumberKind(row.scope_kind) if row.scope_kind else None,
        range_holder=row.scope_range_holder,
    )


def _load(session: Session, rows: list[IncidentRow]) -> list[Incident]:
    ids = [row.id for row in rows]
    updates: dict[int, list[IncidentUpdate]] = {incident_id: [] for incident_id in ids}
    impact: dict[int, list[ImpactStretch]] = {incident_id: [] for incident_id in ids}
    if ids:
        for update_row in session.scalars(
            select(IncidentUpdateRow)
            .where(IncidentUpdateRow.incident_id.in_(ids))
            .order_by(IncidentUpdateRow.incident_id, IncidentUpdateRow.position)
        ):
            updates[update_row.incident_id].append(
                IncidentUpdate(
                    at=update_row.at,
                    author=update_row.author,
                    state=IncidentState(update_row.state),
                    message=dict(update_row.message),
                    automatic=update_row.automatic,
                    notify=update_row.notify,
                )
            )
        for impact_row in session.scalars(
            select(IncidentImpactRow)
            .where(IncidentImpactRow.incident_id.in_(ids))
            .order_by(IncidentImpactRow.incident_id, IncidentImpactRow.start)
        ):
            impact[impact_row.incident_id].append(
                ImpactStretch(impact_row.start, impact_row.end, OutageImpact(impact_row.impact))
            )
    return [
        Incident(
            id=row.id,
            kind=IncidentKind(row.kind),
            title=row.title,
            state=IncidentState(row.state),
            started_at=row.started_at,
            carrier=row.carrier_code,
            scope=_scope(row),
            automatic=row.automatic,
            resolved_at=row.resolved_at,
            postmortem=row.postmortem,
            merged_into=row.merged_into,
            updates=tuple(updates[row.id]),
            impact=tuple(impact[row.id]),
            version=row.version,
        )
        for row in rows
    ]


def _implements_the_port(store: SqlIncidentStore) -> IncidentStore:
    return store
