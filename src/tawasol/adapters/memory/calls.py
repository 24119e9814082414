"""`CallStore` in memory: call detail records folded from events, under one lock."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from tawasol.adapters.memory._aware import utc
from tawasol.domain.calls import CallEvent, CallRecord
from tawasol.domain.decision import Usage
from tawasol.domain.errors import InvalidInput
from tawasol.domain.subscribers import Subscription
from tawasol.services.ports import CallFold


class MemoryCallStore:
    """Records keyed by call id, in the order they were first stored."""

    def __init__(self) -> None:
        self._calls_lock = threading.Lock()
        self._records: dict[str, CallRecord] = {}
        self._order: dict[str, int] = {}

    def apply_call_events(self, events: Sequence[CallEvent], fold: CallFold) -> list[CallRecord]:
        for event in events:
            utc(event.at)
        grouped: dict[str, list[CallEvent]] = {}
        for event in events:
            grouped.setdefault(event.call_id, []).append(event)
        with self._calls_lock:
            results: dict[str, CallRecord] = {}
            for call_id, call_events in grouped.items():
                record = fold(self._records.get(call_id), call_events)
                if record.call_id != call_id:
                    raise InvalidInput(
                        "the fold returned a record for another call",
                        call_id=call_id,
                        got=record.call_id,
                    )
                results[call_id] = _stored(record)
            for call_id in sorted(results):
                self._put(results[call_id])
            return list(results.values())

    def record_refusals(self, records: Sequence[CallRecord]) -> int:
        unique = {record.call_id: _stored(record) for record in records}
        with self._calls_lock:
            fresh = [call_id for call_id in sorted(unique) if call_id not in self._records]
            for call_id in fresh:
                self._put(unique[call_id])
            return len(fresh)

    def count_calls(self, *, since: datetime, until: datetime) -> dict[str, int]:
        counts = {"total": 0, "answered": 0, "refused": 0}
        for record in self._all():
            if not since <= record.started_at < until:
                continue
            counts["total"] += 1
            if record.answered_at is not None:
                counts["answered"] += 1
            if record.refusal_reason is not None:
                counts["refused"] += 1
                key = f"refused:{record.refusal_reason}"
                counts[key] = counts.get(key, 0) + 1
        counts["not_answered"] = counts["total"] - counts["answered"] - counts["refused"]
        return counts

    def get_call(self, call_id: str) -> CallRecord | None:
        with self._calls_lock:
            return self._records.get(call_id)

    def list_calls(
        self,
        *,
        subscriber_id: int | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[CallRecord]:
        found = [
            record
            for record in self._all()
            if (subscriber_id is None or record.subscriber_id == subscriber_id)
            and (since is None or record.started_at >= since)
        ]
        return list(reversed(found))[: max(0, limit)]

    def open_calls(self, *, started_after: datetime) -> list[CallRecord]:
        return [record for record in self._all() if _open_since(record, started_after)]

    def usage(
        self, subscriptions: Sequence[Subscription], *, now: datetime, open_call_horizon: timedelta
    ) -> dict[int, Usage]:
        since = now - open_call_horizon
        records = self._all()
        result: dict[int, Usage] = {}
        for subscription in subscriptions:
            answered_ms = 0
            active = 0
            numbers: set[str] = set()
            for record in records:
                if record.subscription_id != subscription.id:
                    continue
                in_period = subscription.period_start <= record.started_at < subscription.period_end
                if in_period and record.answered_at is not None:
                    answered_ms += record.duration_ms or 0
                    if record.destination:
                        # Only numbers that answered count against the distinct-number limit.
                        numbers.add(record.destination)
                if _open_since(record, since):
                    active += 1
            result[subscription.id] = Usage(
                answered_seconds=answered_ms // 1000,
                distinct_numbers=frozenset(numbers),
                active_calls=active,
            )
        return result

    def calls_since(self, *, since: datetime, limit: int = 100_000) -> list[CallRecord]:
        return [record for record in self._all() if record.started_at >= since][: max(0, limit)]

    # -- inside ---------------------------------------------------------------------------
    def _put(self, record: CallRecord) -> None:
        self._order.setdefault(record.call_id, len(self._order))
        self._records[record.call_id] = record

    def _all(self) -> list[CallRecord]:
        """Oldest first: by start, then in the order they were first stored."""
        with self._calls_lock:
            records = list(self._records.values())
            order = dict(self._order)
        return sorted(records, key=lambda record: (record.started_at, order[record.call_id]))


def _open_since(record: CallRecord, since: datetime) -> bool:
    """Not finished (no end, not failed) and started after `since`, as the SQL store counts."""
    failed = record.answered_at is None and record.final_sip_code is not None
    return record.ended_at is None and not failed and record.started_at > since


def _stored(record: CallRecord) -> CallRecord:
    """As the SQL store reads a record back: instants in UTC, attempts by number, without the
    carrier's Retry-After (news for the monitor, not part of the record)."""
    attempts = tuple(
        replace(attempt, at=utc(attempt.at), retry_after_s=None)
        for attempt in sorted(record.attempts, key=lambda item: item.attempt)
    )
    return replace(
        record,
        started_at=utc(record.started_at),
        answered_at=utc(record.answered_at),
        ended_at=utc(record.ended_at),
        attempts=attempts,
    )
