"""The brain's background work, above the adapters: jobs a runtime starts and stops.

A job is a class with `async run(stop)` that returns when `stop` is set; one failing round
never ends it. `Runtime` runs a list of jobs as asyncio tasks: `await runtime.start()` in the
app's lifespan (`tawasol serve`, hence `tawasol up`), `await runtime.stop()` on shutdown.
`runtime.jobs.brain_runtime(brain)` holds the brain's jobs today (warm-up, carrier probing, the
monitor's clock, reconciliation with the edge's dialogs); notices and billing runs join it.
`runtime.processes` starts the brain and the Kamailio edge as child processes (`tawasol up`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Job(Protocol):
    """One piece of background work."""

    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; never raise for a failed round (log it)."""
        ...


class Runtime:
    """Runs jobs while the brain serves; `start` then `stop`, once each."""

    def __init__(self, jobs: Sequence[Job], *, prepare: Sequence[Callable[[], None]] = ()) -> None:
        """`prepare` runs (in a thread, in order) before any job starts and before `start`
        returns: the app serves no request before it is done (the warm-up)."""
        self._jobs = tuple(jobs)
        self._prepare = tuple(prepare)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def job_names(self) -> tuple[str, ...]:
        return tuple(job.name for job in self._jobs)

    async def start(self) -> None:
        self._stop.clear()
        for step in self._prepare:
            await asyncio.to_thread(step)
        self._tasks = [asyncio.create_task(self._guarded(job), name=job.name) for job in self._jobs]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _guarded(self, job: Job) -> None:
        try:
            await job.run(self._stop)
        except Exception:
            log.exception("background job %s ended by an error", job.name)
