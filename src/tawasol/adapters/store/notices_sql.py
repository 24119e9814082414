"""The notices outbox and "who is affected" on SQLAlchemy (SQLite or PostgreSQL).

Claiming is one UPDATE ... WHERE id IN (due ids) AND still due, inside a write transaction
(BEGIN IMMEDIATE on SQLite; on PostgreSQL the due rows are selected FOR UPDATE SKIP LOCKED),
so two senders never take the same notice. Who is affected is answered with set-based queries
over the call records (distinct numbers called, distinct subscribers), never by walking every
subscriber.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tawasol.adapters.store.incident_models import NoticePartRow, NoticeRow
from tawasol.adapters.store.mapping import from_row, values_of
from tawasol.adapters.store.models import CallRow, PlanRow, SubscriberRow, SubscriptionRow
from tawasol.adapters.store.sessions import Transactions
from tawasol.domain.errors import InvalidNumber, NotFound
from tawasol.domain.notices import (
    Channel,
    DeliveryReceipt,
    Notice,
    NoticeOccasion,
    NoticeStatus,
    Recipient,
    status_from_parts,
)
from tawasol.domain.numbering import classify
from tawasol.domain.outages import OutageScope
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.notice_ports import AffectedSubscribers, NoticeOutbox

# Numbers per IN (...) list: well under SQLite's and PostgreSQL's parameter limits.
_CHUNK = 500


class SqlNoticeOutbox:
    """`NoticeOutbox` and `AffectedSubscribers` on the store's engine."""

    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    # -- outbox -----------------------------------------------------------------------------
    def enqueue(self, notices: Sequence[Notice]) -> int:
        if not notices:
            return 0
        added = 0
        with self._transactions.writing() as session:
            known: set[str] = set()
            keys = [notice.key for notice in notices]
            for start in range(0, len(keys), _CHUNK):
                known.update(
                    session.scalars(
                        select(NoticeRow.key).where(NoticeRow.key.in_(keys[start : start + _CHUNK]))
                    )
                )
            rows = []
            for notice in notices:
                if notice.key in known:
                    continue
                known.add(notice.key)
                rows.append(_row(notice))
            for start in range(0, len(rows), _CHUNK):
                session.execute(insert(NoticeRow), rows[start : start + _CHUNK])
            added = len(rows)
        return added

    def claim(
        self,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        channels: Collection[Channel] | None = None,
    ) -> list[Notice]:
        due = or_(
            and_(
                NoticeRow.status == NoticeStatus.QUEUED.value,
                or_(NoticeRow.next_attempt_at.is_(None), NoticeRow.next_attempt_at <= now),
            ),
            and_(NoticeRow.status == NoticeStatus.SENDING.value, NoticeRow.lease_until <= now),
        )
        if channels is not None:
            due = and_(due, NoticeRow.channel.in_([channel.value for channel in channels]))
        # Look before taking the write lock: an idle outbox costs the call path nothing.
        with self._transactions.reading() as session:
            if session.scalar(select(NoticeRow.id).where(due).limit(1)) is None:
                return []
        with self._transactions.writing() as session:
            query = select(NoticeRow.id).where(due).order_by(NoticeRow.id).limit(limit)
            if self._transactions.postgres:
                query = query.with_for_update(skip_locked=True)
            ids = list(session.scalars(query))
            if not ids:
                return []
            session.execute(
                update(NoticeRow)
                .where(NoticeRow.id.in_(ids))
                .values(
                    status=NoticeStatus.SENDING.value,
                    lease_until=now + lease,
                    attempts=NoticeRow.attempts + 1,
                )
            )
            rows = session.scalars(select(NoticeRow).where(NoticeRow.id.in_(ids))).all()
            return [_notice(row) for row in sorted(rows, key=lambda row: row.id)]

    def _change(self, notice_id: int, **values: object) -> None:
        with self._transactions.writing() as session:
            result = session.execute(
                update(NoticeRow).where(NoticeRow.id == notice_id).values(**values)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound("no such notice", notice_id=notice_id)

    def mark_sent(self, notice_id: int, *, at: datetime, references: Sequence[str] = ()) -> None:
        with self._transactions.writing() as session:
            result = session.execute(
                update(NoticeRow)
                .where(NoticeRow.id == notice_id)
                .values(status=NoticeStatus.SENT.value, sent_at=at, last_error=None)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise NotFound("no such notice", notice_id=notice_id)
            # a retry after a crash may have taken parts already: keep the latest references
            session.execute(delete(NoticePartRow).where(NoticePartRow.notice_id == notice_id))
            if references:
                session.execute(
                    insert(NoticePartRow),
                    [
                        {
                            "notice_id": notice_id,
                            "part": part,
                            "reference": reference,
                            "status": NoticeStatus.SENT.value,
                            "at": at,
                        }
                        for part, reference in enumerate(references, start=1)
                    ],
                )

    def record_receipt(self, receipt: DeliveryReceipt, *, at: datetime) -> int | None:
        status = NoticeStatus.DELIVERED if receipt.delivered else NoticeStatus.FAILED
        with self._transactions.writing() as session:
            part = session.scalars(
                select(NoticePartRow)
                .where(NoticePartRow.reference == receipt.reference)
                .order_by(NoticePartRow.id.desc())
                .limit(1)
            ).first()
            if part is None:
                return None
            part.status, part.error, part.at = status.value, receipt.reason, at
            session.flush()
            states = list(
                session.scalars(
                    select(NoticePartRow.status).where(NoticePartRow.notice_id == part.notice_id)
                )
            )
            notice_status = status_from_parts(states)
            if notice_status is not None:
                session.execute(
                    update(NoticeRow)
                    .where(
                        NoticeRow.id == part.notice_id,
                        NoticeRow.status == NoticeStatus.SENT.value,
                    )
                    .values(status=notice_status.value, last_error=receipt.reason)
                )
            return part.notice_id

    def mark_retry(self, notice_id: int, *, error: str, next_attempt_at: datetime) -> None:
        self._change(
            notice_id,
            status=NoticeStatus.QUEUED.value,
            last_error=error[:2000],
            next_attempt_at=next_attempt_at,
            lease_until=None,
        )

    def mark_failed(self, notice_id: int, *, error: str) -> None:
        self._change(notice_id, status=NoticeStatus.FAILED.value, last_error=error[:2000])

    def counts(self, *, incident_id: int | None = None) -> dict[NoticeStatus, int]:
        query = select(NoticeRow.status, func.count()).group_by(NoticeRow.status)
        if incident_id is not None:
            query = query.where(NoticeRow.incident_id == incident_id)
        with self._transactions.reading() as session:
            return {NoticeStatus(status): int(count) for status, count in session.execute(query)}

    def progress(self, *, incident_id: int | None = None) -> dict[Channel, dict[NoticeStatus, int]]:
        query = select(NoticeRow.channel, NoticeRow.status, func.count()).group_by(
            NoticeRow.channel, NoticeRow.status
        )
        if incident_id is not None:
            query = query.where(NoticeRow.incident_id == incident_id)
        result: dict[Channel, dict[NoticeStatus, int]] = {}
        with self._transactions.reading() as session:
            for channel, status, count in session.execute(query):
                result.setdefault(Channel(channel), {})[NoticeStatus(status)] = int(count)
        return result

    def list_notices(self, *, incident_id: int, limit: int = 1000) -> list[Notice]:
        query = (
            select(NoticeRow)
            .where(NoticeRow.incident_id == incident_id)
            .order_by(NoticeRow.id)
            .limit(limit)
        )
        with self._transactions.reading() as session:
            return [_notice(row) for row in session.scalars(query)]

    # -- who is affected --------------------------------------------------------------------
    def affected(self, scope: OutageScope, *, since: datetime, now: datetime) -> list[Recipient]:
        with self._transactions.reading() as session:
            covering, only_scope = _plans_for(session, scope)
            if not covering:
                return []
            active = (
                select(SubscriptionRow.subscriber_id)
                .where(
                    SubscriptionRow.plan_code.in_(covering),
                    SubscriptionRow.status == SubscriptionStatus.ACTIVE.value,
                    SubscriptionRow.period_start <= now,
                    SubscriptionRow.period_end > now,
                )
                .distinct()
            )
            callers = _callers(session, scope, since=since)
            ids = set(session.scalars(active)) & callers
            if only_scope:
                ids |= set(session.scalars(active.where(SubscriptionRow.plan_code.in_(only_scope))))
            recipients: list[Recipient] = []
            ordered = sorted(ids)
            for start in range(0, len(ordered), _CHUNK):
                for row in session.scalars(
                    select(SubscriberRow).where(
                        SubscriberRow.id.in_(ordered[start : start + _CHUNK])
                    )
                ):
                    recipients.append(
                        Recipient(row.id, row.name, row.email, row.phone, row.locale, row.business)
                    )
            return sorted(recipients, key=lambda recipient: recipient.subscriber_id)


def _plans_for(session: Session, scope: OutageScope) -> tuple[set[str], set[str]]:
    """Codes of plans that sell some of `scope`, and of those that sell nothing else."""
    covering: set[str] = set()
    only_scope: set[str] = set()
    for code, destinations in session.execute(select(PlanRow.code, PlanRow.destinations)):
        inside = [
            rule["country"] == scope.country
            and (scope.number_kind is None or rule["kind"] == scope.number_kind.value)
            for rule in destinations
        ]
        if any(inside):
            covering.add(code)
            # A plan of Maroc Telecom mobiles only does not exist: a range holder never makes
            # a plan "only this scope" (its subscribers call other holders too).
            if all(inside) and scope.range_holder is None:
                only_scope.add(code)
    return covering, only_scope


def _callers(session: Session, scope: OutageScope, *, since: datetime) -> set[int]:
    """Subscribers who called the scope since `since` (range holder: by the numbers called)."""
    where = [
        CallRow.started_at >= since,
        CallRow.country == scope.country,
        CallRow.subscriber_id.is_not(None),
    ]
    if scope.number_kind is not None:
        where.append(CallRow.kind == scope.number_kind.value)
    if scope.range_holder is None:
        found = session.scalars(select(CallRow.subscriber_id).where(*where).distinct())
        return {i for i in found if i is not None}
    numbers = list(session.scalars(select(CallRow.destination).where(*where).distinct()))
    held = [number for number in numbers if _range_holder(number) == scope.range_holder]
    callers: set[int] = set()
    for start in range(0, len(held), _CHUNK):
        callers.update(
            i
            for i in session.scalars(
                select(CallRow.subscriber_id)
                .where(*where, CallRow.destination.in_(held[start : start + _CHUNK]))
                .distinct()
            )
            if i is not None
        )
    return callers


def _range_holder(e164: str) -> str | None:
    try:
        return classify(e164).range_holder or None
    except InvalidNumber:
        return None


def _row(notice: Notice) -> dict[str, object]:
    return values_of(
        notice,
        leave_out=("id",),  # the database gives it
        key=notice.key,
        occasion=notice.occasion.value,
        channel=notice.channel.value,
        status=notice.status.value,
        lease_until=None,
    )


def _notice(row: NoticeRow) -> Notice:
    return from_row(
        Notice,
        row,
        occasion=NoticeOccasion(row.occasion),
        channel=Channel(row.channel),
        status=NoticeStatus(row.status),
    )


def _implements_the_ports(outbox: SqlNoticeOutbox) -> tuple[NoticeOutbox, AffectedSubscribers]:
    return outbox, outbox
