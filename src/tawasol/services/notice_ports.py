"""The notices' ports: the outbox (queued notices, claimed, sent, failed) and the question
"who is affected by an outage of this scope". `InMemoryNoticeOutbox` is the reference the SQL
outbox (`adapters.store.notices_sql`) is tested against (tests/integration/test_notice_outbox.py).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from tawasol.domain.errors import NotFound
from tawasol.domain.notices import (
    Channel,
    DeliveryReceipt,
    Notice,
    NoticeStatus,
    Recipient,
    status_from_parts,
)
from tawasol.domain.outages import OutageScope

__all__ = ["AffectedSubscribers", "InMemoryNoticeOutbox", "NoticeOutbox"]


class NoticeOutbox(Protocol):
    """Notices waiting to be sent, being sent, sent or failed. Raises Unavailable when down."""

    def enqueue(self, notices: Sequence[Notice]) -> int:
        """Queue notices in one transaction; a notice whose key is queued already is skipped.
        Returns how many were new."""
        ...

    def claim(
        self,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        channels: Collection[Channel] | None = None,
    ) -> list[Notice]:
        """Take up to `limit` notices due at `now` (queued with next_attempt_at <= now, or
        claimed by a sender whose lease ran out), on `channels` only if given, and mark them
        sending until now + lease. Two senders never get the same notice."""
        ...

    def mark_sent(self, notice_id: int, *, at: datetime, references: Sequence[str] = ()) -> None:
        """The channel took the notice; `references` are the ids it gave each message (SMSC
        message ids of an SMS's parts), kept to match delivery receipts. Raises NotFound."""
        ...

    def record_receipt(self, receipt: DeliveryReceipt, *, at: datetime) -> int | None:
        """Record a delivery receipt against the part it references; the notice becomes
        delivered (every part delivered) or failed (a part failed, with the reason). Returns
        the notice's id, None for a reference nobody knows (a receipt for another system)."""
        ...

    def progress(self, *, incident_id: int | None = None) -> dict[Channel, dict[NoticeStatus, int]]:
        """How many notices are in each state, per channel."""
        ...

    def mark_retry(self, notice_id: int, *, error: str, next_attempt_at: datetime) -> None: ...

    def mark_failed(self, notice_id: int, *, error: str) -> None: ...

    def counts(self, *, incident_id: int | None = None) -> dict[NoticeStatus, int]: ...

    def list_notices(self, *, incident_id: int, limit: int = 1000) -> list[Notice]: ...


class AffectedSubscribers(Protocol):
    """Who is affected by an outage of `scope`: subscribers with an active subscription who
    called the scope since `since`, or whose plan sells nothing but that scope."""

    def affected(
        self, scope: OutageScope, *, since: datetime, now: datetime
    ) -> list[Recipient]: ...


class InMemoryNoticeOutbox:
    """`NoticeOutbox` in memory, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notices: dict[int, Notice] = {}
        self._keys: set[str] = set()
        self._leases: dict[int, datetime] = {}
        self._parts: dict[str, tuple[int, int]] = {}  # reference -> (notice id, part)
        self._part_states: dict[int, dict[int, str]] = {}

    def enqueue(self, notices: Sequence[Notice]) -> int:
        added = 0
        with self._lock:
            for notice in notices:
                if notice.key in self._keys:
                    continue
                stored = replace(notice, id=len(self._notices) + 1)
                self._notices[stored.id] = stored
                self._keys.add(notice.key)
                added += 1
        return added

    def claim(
        self,
        *,
        now: datetime,
        lease: timedelta,
        limit: int,
        channels: Collection[Channel] | None = None,
    ) -> list[Notice]:
        with self._lock:
            due = [
                notice
                for notice in self._notices.values()
                if (channels is None or notice.channel in channels)
                and (
                    (
                        notice.status is NoticeStatus.QUEUED
                        and (notice.next_attempt_at is None or notice.next_attempt_at <= now)
                    )
                    or (notice.status is NoticeStatus.SENDING and self._leases[notice.id] <= now)
                )
            ][:limit]
            claimed = []
            for notice in due:
                taken = replace(notice, status=NoticeStatus.SENDING, attempts=notice.attempts + 1)
                self._notices[notice.id] = taken
                self._leases[notice.id] = now + lease
                claimed.append(taken)
            return claimed

    def _change(self, notice_id: int, **changes: object) -> None:
        with self._lock:
            notice = self._notices.get(notice_id)
            if notice is None:
                raise NotFound("no such notice", notice_id=notice_id)
            self._notices[notice_id] = replace(notice, **changes)  # type: ignore[arg-type]

    def mark_sent(self, notice_id: int, *, at: datetime, references: Sequence[str] = ()) -> None:
        self._change(notice_id, status=NoticeStatus.SENT, sent_at=at, last_error=None)
        with self._lock:
            self._part_states[notice_id] = {}
            for part, reference in enumerate(references, start=1):
                self._parts[reference] = (notice_id, part)
                self._part_states[notice_id][part] = NoticeStatus.SENT.value

    def record_receipt(self, receipt: DeliveryReceipt, *, at: datetime) -> int | None:
        status = NoticeStatus.DELIVERED if receipt.delivered else NoticeStatus.FAILED
        with self._lock:
            found = self._parts.get(receipt.reference)
            if found is None:
                return None
            notice_id, part = found
            self._part_states[notice_id][part] = status.value
            notice = self._notices[notice_id]
            new = status_from_parts(list(self._part_states[notice_id].values()))
            if new is not None and notice.status is NoticeStatus.SENT:
                self._notices[notice_id] = replace(notice, status=new, last_error=receipt.reason)
            return notice_id

    def progress(self, *, incident_id: int | None = None) -> dict[Channel, dict[NoticeStatus, int]]:
        with self._lock:
            result: dict[Channel, dict[NoticeStatus, int]] = {}
            for notice in self._notices.values():
                if incident_id is None or notice.incident_id == incident_id:
                    states = result.setdefault(notice.channel, {})
                    states[notice.status] = states.get(notice.status, 0) + 1
            return result

    def mark_retry(self, notice_id: int, *, error: str, next_attempt_at: datetime) -> None:
        self._change(
            notice_id, status=NoticeStatus.QUEUED, last_error=error, next_attempt_at=next_attempt_at
        )

    def mark_failed(self, notice_id: int, *, error: str) -> None:
        self._change(notice_id, status=NoticeStatus.FAILED, last_error=error)

    def counts(self, *, incident_id: int | None = None) -> dict[NoticeStatus, int]:
        with self._lock:
            result: dict[NoticeStatus, int] = {}
            for notice in self._notices.values():
                if incident_id is None or notice.incident_id == incident_id:
                    result[notice.status] = result.get(notice.status, 0) + 1
            return result

    def list_notices(self, *, incident_id: int, limit: int = 1000) -> list[Notice]:
        with self._lock:
            return [n for n in self._notices.values() if n.incident_id == incident_id][:limit]
