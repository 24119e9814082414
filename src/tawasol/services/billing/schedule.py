"""The billing run on a timer, inside `tawasol up`: a background thread with start/stop.

Each tick runs `BillingRun.run(at=clock())`; a run that fails (the database away) is logged and
tried again at the next tick: every step is idempotent, so nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from tawasol.domain.errors import TawasolError
from tawasol.services.billing.run import BillingRun, RunSummary

log = logging.getLogger(__name__)


class BillingScheduler:
    """Runs billing every `interval` (the first run at start)."""

    def __init__(
        self,
        *,
        run: BillingRun,
        clock: Callable[[], datetime],
        interval: timedelta,
        on_summary: Callable[[RunSummary], None] = lambda _summary: None,
    ) -> None:
        if interval <= timedelta(0):
            raise ValueError("the billing interval must be positive")
        self._run = run
        self._clock = clock
        self._interval = interval
        self._on_summary = on_summary
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="billing", daemon=True)
        self._thread.start()

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Ask the loop to stop and wait for a run in progress to finish its current step."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._on_summary(self._run.run(at=self._clock()))
            except TawasolError as error:
                log.warning("billing run failed, tried again in %s: %s", self._interval, error)
            self.runs += 1
            self._stopping.wait(self._interval.total_seconds())
