"""Record every call the brain refuses as a call record with its reason code.

A refusal (`no_route`, `concurrent_limit`, `fair_use_exceeded`, `destination_not_in_plan`...)
never reaches a carrier, so the SIP edge sends no event for it; without this, an outage's
impact (how many calls got `no_route`) could only be read in Kamailio's log.

The decision path stays cheap: `refused()` builds a frozen record and appends it to a queue (a
deque append, no I/O). A writer thread inserts the queue in batches (one transaction per batch),
and on a database error keeps the batch and tries again, so a refusal is not lost to a
database restart; `close()` writes what is left. Only if the database stays away long enough for
`max_queued` refusals to pile up are the oldest dropped (counted in `dropped`, logged), so that a
flood during an outage cannot exhaust the brain's memory.

Not recorded: `unknown_subscriber` (nobody to file it under) and decisions without a call id
(`explain`). The SIP API only decides, and so only records, once the brain has verified the
caller's digest answer (docs/security.md): a stranger using a subscriber's username files
nothing under their name.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from tawasol.domain.calls import CallRecord
from tawasol.domain.decision import CallRequest, Decision, Reason
from tawasol.domain.errors import TawasolError

log = logging.getLogger(__name__)

NOT_RECORDED = frozenset({Reason.UNKNOWN_SUBSCRIBER})


class RefusalStore(Protocol):
    """The one store method the recorder needs."""

    def record_refusals(self, records: Sequence[CallRecord]) -> int: ...


def refusal_record(request: CallRequest, decision: Decision, now: datetime) -> CallRecord:
    """The call record of a refused call: started and ended at the decision, with the SIP
    reply the caller got and the reason code."""
    destination = decision.destination
    return CallRecord(
        call_id=request.call_id,
        started_at=now,
        sip_username=request.sip_username,
        dialled=request.dialled[:128],
        subscriber_id=decision.subscriber_id,
        subscription_id=decision.subscription_id,
        destination=destination.e164 if destination else "",
        country=destination.country if destination else "",
        kind=destination.kind.value if destination else "",
        ended_at=now,
        final_sip_code=decision.sip_code,
        refusal_reason=decision.reason.value,
        access=request.access,
        inbound_trunk=request.inbound_trunk,
        caller_id=request.caller_id,
    )


class RefusalRecorder:
    """Queues refused calls and writes them in batches off the request path; thread-safe."""

    def __init__(
        self,
        *,
        store: RefusalStore,
        batch_size: int = 500,
        interval_s: float = 0.2,
        max_queued: int = 200_000,
        writer_thread: bool = True,
    ) -> None:
        """`writer_thread` False: nothing is written until `flush()` or `close()` is called."""
        self._store = store
        self._writer_thread = writer_thread
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._queue: deque[CallRecord] = deque()
        self._max_queued = max_queued
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0

    def refused(self, request: CallRequest, decision: Decision, now: datetime) -> None:
        """Queue a refused call (the authorizer's hook). Never raises, never blocks on I/O."""
        if decision.allowed or not request.call_id or decision.reason in NOT_RECORDED:
            return
        self.refused_record(refusal_record(request, decision, now))

    def refused_record(self, record: CallRecord) -> None:
        """Queue a refused call's record built by the caller (calls to a direct number refused
        before any decision: untrusted source, unknown caller ID ...). Never raises."""
        with self._lock:
            if len(self._queue) >= self._max_queued:
                self._queue.popleft()
                self.dropped += 1
                if self.dropped % 1000 == 1:
                    log.error("refused calls dropped, the database is away: %s", self.dropped)
            self._queue.append(record)
            if self._writer_thread and self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="refusal-recorder", daemon=True
                )
                self._thread.start()
            if len(self._queue) >= self._batch_size:
                self._wake.set()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def flush(self) -> int:
        """Write everything queued now; returns how many records were written. Raises the
        store's error (the records stay queued)."""
        total = 0
        with self._write_lock:
            while True:
                with self._lock:
                    batch = [
                        self._queue.popleft()
                        for _ in range(min(self._batch_size, len(self._queue)))
                    ]
                if not batch:
                    return total
                try:
                    self._store.record_refusals(batch)
                except BaseException:
                    with self._lock:
                        self._queue.extendleft(reversed(batch))
                    raise
                total += len(batch)
                self.written += len(batch)

    def close(self) -> None:
        """Stop the writer and write what is left (best effort: the database may be away)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
        try:
            self.flush()
        except TawasolError as error:
            log.error("%s refused calls not recorded at exit: %s", self.pending(), error.message)

    def _run(self) -> None:
        delay = self._interval_s
        while not self._stop.is_set():
            self._wake.wait(delay)
            self._wake.clear()
            try:
                self.flush()
                delay = self._interval_s
            except TawasolError as error:
                # Kept queued; try again, less often while the database is away.
                delay = min(delay * 2, 5.0)
                log.warning("refused calls not recorded yet (%s queued): %s", self.pending(), error)
            except Exception:  # pragma: no cover - a bug must not kill the writer
                log.exception("refusal recorder failed")
                delay = min(delay * 2, 5.0)
