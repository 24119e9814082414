"""The brain's HTTP application: the SIP decision API, the admin API, health, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline

from tawasol import __version__
from tawasol.adapters.api import (
    admin,
    billing,
    carriers,
    direct_numbers,
    incidents,
    payments,
    public,
    security,
    sip,
)
from tawasol.adapters.api.carriers import MAX_RATE_DECK_BYTES
from tawasol.adapters.api.errors import install_error_handlers
from tawasol.adapters.api.guard import RequestGuard
from tawasol.adapters.api.latency import LatencyRing
from tawasol.adapters.api.services import ApiServices, BackgroundWork
from tawasol.adapters.api.sip_fast import (
    MAX_BODY_BYTES,
    ASGIApp,
    Receive,
    Scope,
    Send,
    SipFastPath,
)


class BrainApp(FastAPI):
    """The FastAPI app, with the edge's two requests answered in front of the framework.

    `POST /sip/v1/authorize` and `POST /sip/v1/events` (every call, and ten batches a second)
    go straight to `edge_front`: the same `RequestGuard` and `SipFastPath` that sit inside the
    framework's middleware stack, without the stack itself (FastAPI's telemetry hook, which
    reads the environment on each request, its body-limit and error middlewares, Starlette's
    exception middleware): about 7% of the brain's CPU per call. Everything else, those paths
    with any other method included, goes through FastAPI unchanged. (fastapi-offline builds
    a plain `FastAPI`; `create_app` makes it a `BrainApp`, which only adds this method.)"""

    edge_front: SipFastPath | RequestGuard | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.edge_front is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] in MAX_BODY_BYTES
        ):
            scope["app"] = self  # what Starlette sets: the handlers read `app.state`
            await self.edge_front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(brain: ApiServices, *, background: BackgroundWork | None = None) -> BrainApp:
    """The brain's app over its services. `background` (`tawasol.runtime.Runtime`: carrier
    probing, the monitor's clock...) is started and stopped with the app; none in tests that
    drive the monitor by hand."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background is not None:
            await background.start()
        try:
            yield
        finally:
            if background is not None:
                await background.stop()

    # /docs and /redoc from assets shipped in the package (fastapi-offline): an operator's
    # network often has no internet, and FastAPI's default pages load them from a CDN.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="tawasol",
        version=__version__,
        description="The brain of an operator of unlimited international calling plans.",
    )
    app.__class__ = BrainApp
    assert isinstance(app, BrainApp)
    app.state.brain = brain
    app.state.decision_latency = LatencyRing()
    install_error_handlers(app)
    # The edge's two requests skip the framework (see sip_fast): same models, same answers.
    app.add_middleware(SipFastPath)
    # Added last, so outermost: tokens and body sizes are checked before anything reads a body.
    settings = brain.settings
    edge_token = settings.resolved_edge_token()

    def guard(app: ASGIApp) -> RequestGuard:
        return RequestGuard(
            app,
            edge_token=edge_token,
            admin_token=settings.admin_token.get_secret_value(),
            admin_body_limit_bytes=settings.admin_body_limit_bytes,
            large_bodies={("PUT", "/rates"): MAX_RATE_DECK_BYTES},
        )

    app.add_middleware(guard)
    # The same two layers in front of the framework for the edge's requests (BrainApp).
    app.edge_front = guard(SipFastPath(partial(FastAPI.__call__, app)))
    app.include_router(sip.router)
    app.include_router(carriers.router)
    app.include_router(admin.router)
    app.include_router(direct_numbers.router)
    app.include_router(billing.router)
    app.include_router(payments.router)
    app.include_router(payments.webhooks)
    app.include_router(security.router)
    app.include_router(incidents.router)
    app.include_router(public.router)

    @app.get("/health", tags=["health"])
    def health(request: Request) -> dict[str, object]:
        """Up, and the catalog revision this brain decides with."""
        snapshot = request.app.state.brain.authorizer.snapshot()
        return {"status": "ok", "version": __version__, "catalog_revision": snapshot.revision}

    return app
