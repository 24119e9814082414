"""Background jobs that run once across a cluster of brains: on the one holding the job lock.

Several brains share one PostgreSQL database in the scaled mode; probing every carrier,
driving the carrier monitor, turning findings into incidents and sending notices must happen
once, not once per brain. `LeaderOnly` wraps those jobs: each brain tries to take the cluster
lock every `retry_s`; the one that holds it runs them, checks every `check_s` that it still
does, and stops them the moment it does not. When the holder dies its database session ends
and the lock with it, so another brain takes over within `retry_s` (plus the time PostgreSQL
needs to see the session gone: at once for a killed process, TCP keepalives for a lost host).

On SQLite there is one brain process: its jobs run without a lock, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from tawasol.runtime import Job

log = logging.getLogger(__name__)


class ClusterLock(Protocol):
    """A lock at most one process of the cluster holds (see adapters/store/advisory_lock)."""

    def try_acquire(self) -> bool: ...

    def held(self) -> bool: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class LeaderOnly:
    """Runs `jobs` only while this process holds `lock`; a job itself never sees the lock."""

    name = "cluster-leader"

    def __init__(
        self,
        jobs: Sequence[Job],
        *,
        lock: ClusterLock,
        retry_s: float = 2.0,
        check_s: float = 1.0,
    ) -> None:
        self._jobs = tuple(jobs)
        self._lock = lock
        self._retry_s = retry_s
        self._check_s = check_s
        self.leading = False

    @property
    def job_names(self) -> tuple[str, ...]:
        return tuple(job.name for job in self._jobs)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                if await asyncio.to_thread(self._lock.try_acquire):
                    await self._lead(stop)
                else:
                    await _pause(stop, self._retry_s)
        finally:
            await asyncio.to_thread(self._lock.close)

    async def _lead(self, stop: asyncio.Event) -> None:
        log.info("this brain holds the cluster lock: it runs %s", ", ".join(self.job_names))
        self.leading = True
        jobs_stop = asyncio.Event()
        tasks = [asyncio.create_task(_guarded(job, jobs_stop), name=job.name) for job in self._jobs]
        try:
            while not stop.is_set():
                await _pause(stop, self._check_s)
                if not await asyncio.to_thread(self._lock.held):
                    log.warning("cluster lock lost: this brain stops its background jobs")
                    break
        finally:
            self.leading = False
            jobs_stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(self._lock.release)


async def _guarded(job: Job, stop: asyncio.Event) -> None:
    try:
        await job.run(stop)
    except Exception:
        log.exception("background job %s ended by an error", job.name)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
