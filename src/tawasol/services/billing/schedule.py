"""The billing run as a job of the brain's runtime (`tawasol serve`, hence `tawasol up`).

Every `interval_s` the job runs `BillingRun.run(at=clock())` in a worker thread, then the
payments' dunning round (`PaymentService.run_dunning`: retries, notices, suspensions, provider
events left unapplied); a run that
fails (the database away) is logged and tried again at the next round: every step is
idempotent, so nothing is lost or doubled. Several brains running it at once write each step
once (the step's key), but do the work twice: running jobs once per cluster is the runtime's
business, not this job's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from tawasol.services.billing.run import BillingRun, RunSummary
from tawasol.services.payments.service import DunningSummary

log = logging.getLogger(__name__)


class BillingJob:
    """Runs billing every `interval_s` seconds (the first run at start) until stopped."""

    name = "billing"

    def __init__(
        self,
        *,
        billing_run: Callable[[], BillingRun],
        clock: Callable[[], datetime],
        interval_s: float,
        on_summary: Callable[[RunSummary], None] = lambda _summary: None,
        dunning: Callable[[datetime], DunningSummary] | None = None,
        on_dunning: Callable[[DunningSummary], None] = lambda _summary: None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the billing interval must be positive")
        self._billing_run = billing_run
        self._clock = clock
        self._interval_s = interval_s
        self._on_summary = on_summary
        self._dunning = dunning
        self._on_dunning = on_dunning
        self.runs = 0

    def _once(self) -> RunSummary:
        return self._billing_run().run(at=self._clock())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self._on_summary(await asyncio.to_thread(self._once))
            except Exception:
                log.exception("billing run failed, tried again in %s s", self._interval_s)
            if self._dunning is not None:
                try:
                    self._on_dunning(await asyncio.to_thread(self._dunning, self._clock()))
                except Exception:
                    log.exception("dunning round failed, tried again in %s s", self._interval_s)
            self.runs += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
