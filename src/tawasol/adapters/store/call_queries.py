"""The call detail record queries: folding events under a lock, and counting use with aggregates.

These run inside a transaction opened by `SqlStore`; they take its Session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Integer, and_, case, column, delete, func, insert, or_, select, values
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tawasol.adapters.store import mapping
from tawasol.adapters.store.models import CallAttemptRow, CallRow
from tawasol.adapters.store.types import UtcDateTime
from tawasol.domain.calls import CallAttempt, CallEvent, CallRecord
from tawasol.domain.decision import Usage
from tawasol.domain.errors import InvalidInput
from tawasol.domain.subscribers import Subscription
from tawasol.services.ports import CallFold

# Bound parameters per statement stay far below SQLite's limit (32,766 since 3.32).
CHUNK = 500

T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def group_events(events: Sequence[CallEvent]) -> dict[str, list[CallEvent]]:
    """Events per call id, in the order they were given; calls in order of first appearance."""
    grouped: dict[str, list[CallEvent]] = {}
    for event in events:
        grouped.setdefault(event.call_id, []).append(event)
    return grouped


def load_records(
    session: Session, call_ids: Sequence[str], *, lock: bool
) -> tuple[dict[str, CallRow], dict[str, CallRecord]]:
    """The rows and records of these calls that exist; with `lock`, rows are locked FOR UPDATE.

    Rows are locked in call-id order so that two transactions locking overlapping batches take
    their locks in the same order and cannot deadlock each other. SQLite ignores FOR UPDATE: its
    writers are already serialised by BEGIN IMMEDIATE.
    """
    rows: dict[str, CallRow] = {}
    for part in chunks(sorted(call_ids)):
        statement = select(CallRow).where(CallRow.call_id.in_(part)).order_by(CallRow.call_id)
        if lock:
            statement = statement.with_for_update()
        rows.update((row.call_id, row) for row in session.scalars(statement))
    attempts = load_attempts(session, list(rows))
    records = {
        call_id: mapping.call_from_row(row, attempts.get(call_id, []))
        for call_id, row in rows.items()
    }
    return rows, records


def load_attempts(session: Session, call_ids: Sequence[str]) -> dict[str, list[CallAttempt]]:
    table = CallAttemptRow.__table__
    grouped: dict[str, list[CallAttempt]] = {}
    for part in chunks(call_ids):
        result = session.execute(select(table).where(table.c.call_id.in_(part)))
        for call_id, items in mapping.attempts_by_call(result).items():
            grouped.setdefault(call_id, []).extend(items)
    return grouped


def fold_and_upsert(
    session: Session, events: Sequence[CallEvent], fold: CallFold, *, lock: bool
) -> list[CallRecord]:
    """Fold each call's events into its record and write the result with its attempts."""
    grouped = group_events(events)
    rows, existing = load_records(session, list(grouped), lock=lock)
    results: dict[str, CallRecord] = {}
    for call_id, call_events in grouped.items():
        record = fold(existing.get(call_id), call_events)
        if record.call_id != call_id:
            raise InvalidInput(
                "the fold returned a record for another call", call_id=call_id, got=record.call_id
            )
        results[call_id] = record
    # New rows are inserted in call-id order, like the locks: two batches racing to create the
    # same calls then wait on each other's unique key in one order and never deadlock.
    for call_id in sorted(results):
        values = mapping.call_values(results[call_id])
        row = rows.get(call_id)
        if row is None:
            session.add(CallRow(**values))
        else:
            for name, value in values.items():
                setattr(row, name, value)
    # Flush the calls first: attempts refer to them by call id.
    session.flush()
    for part in chunks(sorted(grouped)):
        session.execute(delete(CallAttemptRow).where(CallAttemptRow.call_id.in_(part)))
    attempt_rows = [item for record in results.values() for item in mapping.attempt_values(record)]
    if attempt_rows:
        session.execute(insert(CallAttemptRow), attempt_rows)
    return list(results.values())


def list_calls(session: Session, *, subscriber_id: int | None, limit: int) -> list[CallRecord]:
    statement = select(CallRow).order_by(CallRow.started_at.desc(), CallRow.id.desc())
    if subscriber_id is not None:
        statement = statement.where(CallRow.subscriber_id == subscriber_id)
    rows = list(session.scalars(statement.limit(max(0, limit))))
    attempts = load_attempts(session, [row.call_id for row in rows])
    return [mapping.call_from_row(row, attempts.get(row.call_id, [])) for row in rows]


def calls_since(session: Session, *, since: datetime, limit: int) -> list[CallRecord]:
    """Calls started at or after `since`, oldest first, at most `limit` (the oldest ones)."""
    statement = (
        select(CallRow)
        .where(CallRow.started_at >= since)
        .order_by(CallRow.started_at, CallRow.id)
        .limit(max(0, limit))
    )
    rows = list(session.scalars(statement))
    attempts = load_attempts(session, [row.call_id for row in rows])
    return [mapping.call_from_row(row, attempts.get(row.call_id, [])) for row in rows]


def _open_since(since: datetime) -> ColumnElement[bool]:
    """Calls not finished, as `CallRecord.finished` defines it (no end, not failed), that
    started after `since`: older ones lost their end event and are no longer counted."""
    return and_(
        CallRow.ended_at.is_(None),
        or_(CallRow.answered_at.is_not(None), CallRow.final_sip_code.is_(None)),
        CallRow.started_at > since,
    )


def open_calls(session: Session, *, started_after: datetime) -> list[CallRecord]:
    """Oldest first."""
    statement = (
        select(CallRow).where(_open_since(started_after)).order_by(CallRow.started_at, CallRow.id)
    )
    rows = list(session.scalars(statement))
    attempts = load_attempts(session, [row.call_id for row in rows])
    return [mapping.call_from_row(row, attempts.get(row.call_id, [])) for row in rows]


def usage(
    session: Session,
    subscriptions: Sequence[Subscription],
    *,
    now: datetime,
    open_call_horizon: timedelta,
) -> dict[int, Usage]:
    """Per subscription, aggregates computed by the database over its period's calls.

    The subscriptions' periods are sent as a VALUES list joined to `calls`, so one statement
    covers hundreds of subscriptions with different periods, using the
    (subscription_id, started_at) index.
    """
    unique = list({subscription.id: subscription for subscription in subscriptions}.values())
    since = now - open_call_horizon
    answered: dict[int, int] = {}
    active: dict[int, int] = {}
    numbers: dict[int, set[str]] = {}
    for part in chunks(unique):
        periods = (
            values(
                column("subscription_id", Integer()),
                column("period_start", UtcDateTime()),
                column("period_end", UtcDateTime()),
                name="periods",
            )
            .data([(item.id, item.period_start, item.period_end) for item in part])
            .cte("periods")
        )
        in_period = and_(
            CallRow.started_at >= periods.c.period_start,
            CallRow.started_at < periods.c.period_end,
        )
        open_call = _open_since(since)
        answered_ms = case(
            (and_(in_period, CallRow.answered_at.is_not(None)), CallRow.duration_ms), else_=0
        )
        totals = (
            select(
                periods.c.subscription_id,
                func.coalesce(func.sum(answered_ms), 0),
                func.count(case((open_call, 1))),
            )
            .join(CallRow, CallRow.subscription_id == periods.c.subscription_id)
            .where(or_(in_period, open_call))
            .group_by(periods.c.subscription_id)
        )
        for subscription_id, total_ms, open_calls in session.execute(totals):
            answered[subscription_id] = int(total_ms or 0) // 1000
            active[subscription_id] = int(open_calls)
        distinct = (
            select(periods.c.subscription_id, CallRow.destination)
            .join(CallRow, CallRow.subscription_id == periods.c.subscription_id)
            # Only numbers that answered count against the distinct-number limit: a family
            # retrying an unreachable relative, or a stranger failing our password check with
            # a subscriber's username, must not use up the subscriber's quota.
            .where(in_period, CallRow.destination != "", CallRow.answered_at.is_not(None))
            .distinct()
        )
        for subscription_id, destination in session.execute(distinct):
            numbers.setdefault(subscription_id, set()).add(destination)
    return {
        item.id: Usage(
            answered_seconds=answered.get(item.id, 0),
            distinct_numbers=frozenset(numbers.get(item.id, ())),
            active_calls=active.get(item.id, 0),
        )
        for item in unique
    }
