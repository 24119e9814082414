"""The brain's HTTP application: the SIP decision API, the admin API, health, OpenAPI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline

from tawasol import __version__
from tawasol.adapters.api import admin, carriers, incidents, public, security, sip
from tawasol.adapters.api.carriers import MAX_RATE_DECK_BYTES
from tawasol.adapters.api.errors import install_error_handlers
from tawasol.adapters.api.guard import RequestGuard
from tawasol.adapters.api.latency import LatencyRing
from tawasol.adapters.api.sip_fast import SipFastPath
from tawasol.adapters.probing import OptionsProber, ProbeResult, probe_forever
from tawasol.adapters.sip.dialogs import DialogListUnavailable, dialog_call_ids
from tawasol.composition import Brain
from tawasol.services.incidents import IncidentTicker


def create_app(brain: Brain, *, background: bool = True) -> FastAPI:
    """The brain's app. `background` runs carrier probing and the monitor's clock while the app
    is served (off in tests that drive the monitor by hand)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = []
        if background:
            await asyncio.to_thread(_warm_up, brain)
            tasks = [
                asyncio.create_task(_probe(brain, stop)),
                asyncio.create_task(_tick(brain, stop)),
                asyncio.create_task(_reconcile_with_edge(brain, stop)),
                asyncio.create_task(
                    IncidentTicker(
                        brain.incidents,
                        interval_s=brain.settings.incident_tick_interval_ms / 1000,
                    ).run(stop)
                ),
                asyncio.create_task(brain.notices.sender.run(stop)),
            ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    # /docs and /redoc from assets shipped in the package (fastapi-offline): an operator's
    # network often has no internet, and FastAPI's default pages load them from a CDN.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="tawasol",
        version=__version__,
        description="The brain of an operator of unlimited international calling plans.",
    )
    app.state.brain = brain
    app.state.decision_latency = LatencyRing()
    install_error_handlers(app)
    # The edge's two requests skip the framework (see sip_fast): same models, same answers.
    app.add_middleware(SipFastPath)
    # Added last, so outermost: tokens and body sizes are checked before anything reads a body.
    settings = brain.settings
    app.add_middleware(
        RequestGuard,
        edge_token=settings.resolved_edge_token(),
        admin_token=settings.admin_token.get_secret_value(),
        admin_body_limit_bytes=settings.admin_body_limit_bytes,
        large_bodies={("PUT", "/rates"): MAX_RATE_DECK_BYTES},
    )
    app.include_router(sip.router)
    app.include_router(carriers.router)
    app.include_router(admin.router)
    app.include_router(security.router)
    app.include_router(incidents.router)
    app.include_router(public.router)

    @app.get("/health", tags=["health"])
    def health(request: Request) -> dict[str, object]:
        """Up, and the catalog revision this brain decides with."""
        snapshot = request.app.state.brain.authorizer.snapshot()
        return {"status": "ok", "version": __version__, "catalog_revision": snapshot.revision}

    return app


log = logging.getLogger(__name__)


async def _probe(brain: Brain, stop: asyncio.Event) -> None:
    settings = brain.settings
    prober = OptionsProber(timeout_s=settings.probe_timeout_ms / 1000)

    def on_result(result: ProbeResult) -> None:
        brain.monitor.on_probe(result.carrier, answered=result.answered, detail=result.detail)

    await probe_forever(
        prober=prober,
        carriers=lambda: brain.authorizer.snapshot().carriers,
        on_result=on_result,
        interval_s=settings.probe_interval_s,
        stop=stop,
        # At start, probe round after round until every carrier could have changed state: a
        # carrier that died while no brain watched is marked down in about
        # `probe_down_after` probe timeouts, not `probe_down_after` intervals.
        quick_rounds=max(settings.probe_down_after, settings.probe_up_after),
    )


async def _tick(brain: Brain, stop: asyncio.Event) -> None:
    """Once a second: capacity probing upward, operators' caps, quality de-preference."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(brain.monitor.tick)
        except Exception:
            log.exception("carrier monitor tick failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def _reconcile_with_edge(brain: Brain, stop: asyncio.Event) -> None:
    """At start, then every `edge_reconcile_interval_s`: calls the edge's dialog list does not
    have stop counting (their end event never came: the brain or Kamailio was restarted)."""
    interval_s = brain.settings.edge_reconcile_interval_s
    if not interval_s:
        return
    socket = brain.settings.resolved_kamailio_ctl_socket
    while not stop.is_set():
        try:
            live = await asyncio.to_thread(dialog_call_ids, socket)
        except DialogListUnavailable as error:
            log.info("calls in progress not reconciled with the edge: %s", error)
        else:
            gone = await asyncio.to_thread(brain.authorizer.reconcile, live)
            if gone:
                log.warning(
                    "%d call(s) counted as in progress were not in the edge's dialog list: "
                    "no longer counted (%s)",
                    len(gone),
                    ", ".join(gone[:10]),
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


def _warm_up(brain: Brain) -> None:
    """Carriers' states and quality figures survive a restart: the last known up/down and
    learned capacities from the carrier events, the last hour of calls into the windows."""
    brain.monitor.restore()
    since = brain.clock() - timedelta(hours=1)
    brain.monitor.warm_up(brain.store.calls_since(since=since))
