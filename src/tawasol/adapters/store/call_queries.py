"""The call detail record queries: folding events under a lock, and counting use with aggregates.

These run inside a transaction opened by `SqlStore`; they take its Session and never commit.
The call paths are SQLAlchemy Core on the tables (rows as plain mappings, executemany writes):
the ORM's unit of work (an object per call, attribute history, flush) cost most of the brain's
CPU under load. The Table's columns carry the same `Amount`/`UtcDateTime` types as the models,
so money stays Decimal and time stays aware.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    update,
    values,
)
from sqlalchemy.engine import RowMapping
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

CALLS = cast(Table, CallRow.__table__)
ATTEMPTS = cast(Table, CallAttemptRow.__table__)

# One UPDATE for every changed call of a batch (executemany); the call id is the key, not a
# column to set, hence its own parameter name.
_UPDATE_CALL = update(CALLS).where(CALLS.c.call_id == bindparam("b_call_id"))

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
) -> tuple[dict[str, RowMapping], dict[str, CallRecord]]:
    """The rows (column name -> value) and records of these calls that exist; with `lock`, rows
    are locked FOR UPDATE.

    Rows are locked in call-id order so that two transactions locking overlapping batches take
    their locks in the same order and cannot deadlock each other. SQLite ignores FOR UPDATE: its
    writers are already serialised by BEGIN IMMEDIATE.
    """
    connection = session.connection()
    rows: dict[str, RowMapping] = {}
    for part in chunks(sorted(set(call_ids))):
        statement = select(CALLS).where(CALLS.c.call_id.in_(part)).order_by(CALLS.c.call_id)
        if lock:
            statement = statement.with_for_update()
        rows.update((row["call_id"], row) for row in connection.execute(statement).mappings())
    attempts = load_attempts(connection, list(rows))
    records = {
        call_id: mapping.call_from_row(row, attempts.get(call_id, ()))
        for call_id, row in rows.items()
    }
    return rows, records


def load_attempts(connection: Connection, call_ids: Sequence[str]) -> dict[str, list[CallAttempt]]:
    grouped: dict[str, list[CallAttempt]] = {}
    for part in chunks(call_ids):
        result = connection.execute(select(ATTEMPTS).where(ATTEMPTS.c.call_id.in_(part)))
        for call_id, items in mapping.attempts_by_call(result).items():
            grouped.setdefault(call_id, []).extend(items)
    return grouped


def _records(session: Session, statement: Select[Any]) -> list[CallRecord]:
    """The calls `statement` (a select of the calls table) finds, with their attempts, in its
    order."""
    connection = session.connection()
    rows = connection.execute(statement).mappings().all()
    attempts = load_attempts(connection, [row["call_id"] for row in rows])
    return [mapping.call_from_row(row, attempts.get(row["call_id"], ())) for row in rows]


def fold_and_upsert(
    session: Session, events: Sequence[CallEvent], fold: CallFold, *, lock: bool
) -> list[CallRecord]:
    """Fold each call's events into its record and write the result with its attempts.

    Only what changed is written: a call whose folded record equals its row is not updated (a
    replayed spool changes nothing), and a call's attempts are replaced (delete + insert) only
    when they differ from the stored ones (an answer or end event changes no attempt).
    """
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
    new_calls: list[dict[str, Any]] = []
    changed_calls: list[dict[str, Any]] = []
    attempts_changed: list[str] = []
    for call_id in sorted(results):
        record = results[call_id]
        call_values = mapping.call_values(record)
        row = rows.get(call_id)
        if row is None:
            new_calls.append(call_values)
        elif any(row[name] != value for name, value in call_values.items()):
            del call_values["call_id"]
            call_values["b_call_id"] = call_id
            changed_calls.append(call_values)
        before = existing.get(call_id)
        if before is None:
            if record.attempts:
                attempts_changed.append(call_id)
        elif _sorted_attempts(record) != before.attempts:
            attempts_changed.append(call_id)
    connection = session.connection()
    # New rows are inserted in call-id order, like the locks: two batches racing to create the
    # same calls then wait on each other's unique key in one order and never deadlock. The
    # loser fails on that key and SqlStore runs the whole transaction again, finding the row.
    if new_calls:
        connection.execute(insert(CALLS), new_calls)
    if changed_calls:
        connection.execute(_UPDATE_CALL, changed_calls)
    # A new call has no attempts to delete (attempts refer to their call by a foreign key).
    stale = [call_id for call_id in attempts_changed if call_id in rows]
    for part in chunks(stale):
        connection.execute(delete(ATTEMPTS).where(ATTEMPTS.c.call_id.in_(part)))
    attempt_rows = [
        item for call_id in attempts_changed for item in mapping.attempt_values(results[call_id])
    ]
    if attempt_rows:
        connection.execute(insert(ATTEMPTS), attempt_rows)
    return list(results.values())


def _sorted_attempts(record: CallRecord) -> tuple[CallAttempt, ...]:
    """As `load_records` reads them back: by attempt number."""
    return tuple(sorted(record.attempts, key=lambda item: item.attempt))


def list_calls(
    session: Session, *, subscriber_id: int | None, since: datetime | None, limit: int
) -> list[CallRecord]:
    statement = select(CALLS).order_by(CALLS.c.started_at.desc(), CALLS.c.id.desc())
    if subscriber_id is not None:
        statement = statement.where(CALLS.c.subscriber_id == subscriber_id)
    if since is not None:
        statement = statement.where(CALLS.c.started_at >= since)
    return _records(session, statement.limit(max(0, limit)))


def calls_since(session: Session, *, since: datetime, limit: int) -> list[CallRecord]:
    """Calls started at or after `since`, oldest first, at most `limit` (the oldest ones)."""
    statement = (
        select(CALLS)
        .where(CALLS.c.started_at >= since)
        .order_by(CALLS.c.started_at, CALLS.c.id)
        .limit(max(0, limit))
    )
    return _records(session, statement)


def _open_since(since: datetime) -> ColumnElement[bool]:
    """Calls not finished, as `CallRecord.finished` defines it (no end, not failed), that
    started after `since`: older ones lost their end event and are no longer counted."""
    return and_(
        CALLS.c.ended_at.is_(None),
        or_(CALLS.c.answered_at.is_not(None), CALLS.c.final_sip_code.is_(None)),
        CALLS.c.started_at > since,
    )


def open_calls(session: Session, *, started_after: datetime) -> list[CallRecord]:
    """Oldest first."""
    statement = (
        select(CALLS).where(_open_since(started_after)).order_by(CALLS.c.started_at, CALLS.c.id)
    )
    return _records(session, statement)


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


def insert_new_calls(session: Session, records: Sequence[CallRecord]) -> int:
    """Insert the records whose call id is not stored yet (a refusal asked twice, or a call
    already recorded from its events, is kept as it is); returns how many were new."""
    unique = {record.call_id: record for record in records}
    connection = session.connection()
    known: set[str] = set()
    for part in chunks(sorted(unique)):
        known.update(connection.scalars(select(CALLS.c.call_id).where(CALLS.c.call_id.in_(part))))
    fresh = [
        mapping.call_values(unique[call_id]) for call_id in sorted(unique) if call_id not in known
    ]
    for rows in chunks(fresh):
        connection.execute(insert(CALLS), list(rows))
    return len(fresh)


def count_calls(session: Session, *, since: datetime, until: datetime) -> dict[str, int]:
    """Calls started in [since, until) by outcome: total, answered, failed (never answered,
    not refused), refused, and refused per reason code."""
    in_range = and_(CALLS.c.started_at >= since, CALLS.c.started_at < until)
    answered = func.count(case((CALLS.c.answered_at.is_not(None), 1)))
    refused = func.count(CALLS.c.refusal_reason)
    total, answered_count, refused_count = (
        session.connection().execute(select(func.count(), answered, refused).where(in_range)).one()
    )
    counts = {
        "total": int(total),
        "answered": int(answered_count),
        "refused": int(refused_count),
    }
    counts["not_answered"] = counts["total"] - counts["answered"] - counts["refused"]
    by_reason = (
        select(CALLS.c.refusal_reason, func.count())
        .where(in_range, CALLS.c.refusal_reason.is_not(None))
        .group_by(CALLS.c.refusal_reason)
    )
    for reason, count in session.connection().execute(by_reason):
        counts[f"refused:{reason}"] = int(count)
    return counts
