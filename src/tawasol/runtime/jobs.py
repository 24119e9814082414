"""The brain's background jobs: warm-up, carrier probing, the monitor's clock, reconciliation,
incident detection, the notices' sender and the billing run.

Each job receives the services it drives (never the composition root's store) and the
settings it needs as plain values.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tawasol.adapters.probing import OptionsProber, ProbeResult, probe_forever
from tawasol.adapters.sip.dialogs import DialogListUnavailable, dialog_call_ids
from tawasol.adapters.store.advisory_lock import PostgresAdvisoryLock
from tawasol.composition import Brain
from tawasol.runtime import Job, Runtime
from tawasol.runtime.leadership import ClusterLock, LeaderOnly
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.billing.run import RunSummary
from tawasol.services.billing.schedule import BillingJob
from tawasol.services.carrier_monitor import CarrierMonitor
from tawasol.services.incidents import IncidentTicker
from tawasol.services.payments.service import DunningSummary
from tawasol.services.ports import CallStore

log = logging.getLogger(__name__)

WARM_UP_WINDOW = timedelta(hours=1)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@dataclass
class CarrierProbing:
    """SIP OPTIONS to every carrier's gateways every `interval_s`; results go to the monitor.

    At start, probe round after round until every carrier could have changed state: a carrier
    that died while no brain watched is marked down in about `probe_down_after` probe timeouts,
    not `probe_down_after` intervals.
    """

    monitor: CarrierMonitor
    authorizer: CallAuthorizer
    timeout_s: float
    interval_s: float
    quick_rounds: int
    name: str = "carrier-probing"

    async def run(self, stop: asyncio.Event) -> None:
        def on_result(result: ProbeResult) -> None:
            self.monitor.on_probe(result.carrier, answered=result.answered, detail=result.detail)

        await probe_forever(
            prober=OptionsProber(timeout_s=self.timeout_s),
            carriers=lambda: self.authorizer.snapshot().carriers,
            on_result=on_result,
            interval_s=self.interval_s,
            stop=stop,
            quick_rounds=self.quick_rounds,
        )


@dataclass
class MonitorClock:
    """Once a second: capacity probing upward, operators' caps, quality de-preference."""

    monitor: CarrierMonitor
    interval_s: float = 1.0
    name: str = "carrier-monitor-tick"

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.monitor.tick)
            except Exception:
                log.exception("carrier monitor tick failed")
            await _pause(stop, self.interval_s)


@dataclass
class EdgeReconciliation:
    """At start, then every `interval_s`: calls the edge's dialog list does not have stop
    counting (their end event never came: the brain or Kamailio was restarted)."""

    authorizer: CallAuthorizer
    ctl_socket: Path
    interval_s: float
    name: str = "edge-reconciliation"

    async def run(self, stop: asyncio.Event) -> None:
        if not self.interval_s:
            return
        while not stop.is_set():
            try:
                live = await asyncio.to_thread(dialog_call_ids, self.ctl_socket)
            except DialogListUnavailable as error:
                log.info("calls in progress not reconciled with the edge: %s", error)
            else:
                gone = await asyncio.to_thread(self.authorizer.reconcile, live)
                if gone:
                    log.warning(
                        "%d call(s) counted as in progress were not in the edge's dialog "
                        "list: no longer counted (%s)",
                        len(gone),
                        ", ".join(gone[:10]),
                    )
            await _pause(stop, self.interval_s)


def warm_up(*, monitor: CarrierMonitor, calls: CallStore, now: datetime) -> None:
    """Carriers' states and quality figures survive a restart: the last known up/down and
    learned capacities from the carrier events, the last hour of calls into the windows."""
    monitor.restore()
    monitor.warm_up(calls.calls_since(since=now - WARM_UP_WINDOW))


def _billing_summary(summary: RunSummary) -> None:
    done = ", ".join(f"{k} {v}" for k, v in summary.rows() if v not in ("0", ""))
    log.info("billing: %s", done or "nothing due")
    for subscription_id, message in summary.errors[:20]:
        log.warning("billing: subscription %s not billed: %s", subscription_id, message)


def _dunning_summary(summary: DunningSummary) -> None:
    done = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("charged", summary.charged),
            ("paid", summary.paid),
            ("failed", summary.failed),
            ("held (outage)", summary.held),
            ("suspended", summary.suspended),
            ("events applied", summary.events_applied),
        )
        if value
    )
    log.info("dunning: %s", done or "nothing due")
    for message in summary.errors[:20]:
        log.warning("dunning: %s", message)


def billing_job(brain: Brain) -> BillingJob | None:
    """The billing run every `billing_run_interval_s`, then the dunning round, once the
    operator has set the VAT rates (none otherwise)."""
    settings = brain.settings
    if not settings.billing_vat_rates or not settings.billing_run_interval_s:
        return None
    return BillingJob(
        billing_run=lambda: brain.billing.run,
        clock=brain.clock,
        interval_s=settings.billing_run_interval_s,
        on_summary=_billing_summary,
        dunning=lambda at: brain.payments.run_dunning(at=at),
        on_dunning=_dunning_summary,
    )


def brain_runtime(brain: Brain, *, lock: ClusterLock | None = None) -> Runtime:
    """The background work of one brain process, from its settings.

    Probing, the monitor's clock, the incident ticker, the notice sender and billing run once across
    the cluster: on PostgreSQL, only on the brain holding the cluster lock (`lock`, default
    the database's advisory lock); on SQLite (one brain) without a lock. Warm-up and the
    reconciliation with this brain's edge are every brain's own."""
    settings = brain.settings
    billing = billing_job(brain)
    cluster_jobs: list[Job] = [
        CarrierProbing(
            monitor=brain.monitor,
            authorizer=brain.authorizer,
            timeout_s=settings.probe_timeout_ms / 1000,
            interval_s=settings.probe_interval_s,
            quick_rounds=max(settings.probe_down_after, settings.probe_up_after),
        ),
        MonitorClock(monitor=brain.monitor),
        IncidentTicker(brain.incidents, interval_s=settings.incident_tick_interval_ms / 1000),
        brain.notices.sender,
        *([billing] if billing is not None else []),
    ]
    url = settings.resolved_database_url
    if lock is None and url.startswith("postgresql"):
        lock = PostgresAdvisoryLock(url)
    own_jobs: list[Job] = [
        EdgeReconciliation(
            authorizer=brain.authorizer,
            ctl_socket=settings.resolved_kamailio_ctl_socket,
            interval_s=settings.edge_reconcile_interval_s,
        )
    ]
    jobs = own_jobs + ([LeaderOnly(cluster_jobs, lock=lock)] if lock else cluster_jobs)
    return Runtime(
        jobs,
        prepare=[lambda: warm_up(monitor=brain.monitor, calls=brain.calls, now=brain.clock())],
    )
