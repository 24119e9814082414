"""The call detail records' port: events folded into records, refusals, usage, reports.

Implemented by `adapters.store.SqlStore` and `adapters.memory.MemoryCallStore`; both pass
`tests/contract/test_call_store.py`. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from tawasol.domain.calls import CallEvent, CallRecord
from tawasol.domain.decision import Usage
from tawasol.domain.subscribers import Subscription

# Folds the events of one call into its record: (record or None if new, events) -> record.
CallFold = Callable[[CallRecord | None, Sequence[CallEvent]], CallRecord]


class CallStore(Protocol):
    """Call detail records: one per call id, folded from the edge's events."""

    def apply_call_events(self, events: Sequence[CallEvent], fold: CallFold) -> list[CallRecord]:
        """In one transaction, per call id: lock the record (if any), fold the events, upsert.

        Returns the resulting records. Concurrent calls for the same call id are serialised.
        """
        ...

    def record_refusals(self, records: Sequence[CallRecord]) -> int:
        """Insert refused calls' records (a call id already stored is kept); how many new."""
        ...

    def count_calls(self, *, since: datetime, until: datetime) -> dict[str, int]:
        """Calls started in [since, until): `total`, `answered`, `not_answered`, `refused`, and
        `refused:<reason code>` per reason."""
        ...

    def get_call(self, call_id: str) -> CallRecord | None: ...

    def list_calls(
        self,
        *,
        subscriber_id: int | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[CallRecord]:
        """Newest first; with `since`, those started at or after it."""
        ...

    def open_calls(self, *, started_after: datetime) -> list[CallRecord]:
        """Calls not finished (no end, no failure) that started after the given time."""
        ...

    def usage(
        self, subscriptions: Sequence[Subscription], *, now: datetime, open_call_horizon: timedelta
    ) -> dict[int, Usage]:
        """Per subscription id, its use in its current period [period_start, period_end):
        answered seconds of finished calls, distinct destinations called (answered or not), and
        calls not finished that started after `now - open_call_horizon`."""
        ...

    def calls_since(self, *, since: datetime, limit: int = 100_000) -> list[CallRecord]:
        """Calls started at or after `since`, with their attempts, oldest first (to warm the
        quality windows after a restart)."""
        ...
