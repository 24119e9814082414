"""The brain's HTTP application: the SIP decision API, the admin API, health, OpenAPI."""

from __future__ import annotations

from fastapi import FastAPI, Request

from tawasol import __version__
from tawasol.adapters.api import admin, sip
from tawasol.adapters.api.errors import install_error_handlers
from tawasol.composition import Brain


def create_app(brain: Brain) -> FastAPI:
    app = FastAPI(
        title="tawasol",
        version=__version__,
        description="The brain of an operator of unlimited international calling plans.",
    )
    app.state.brain = brain
    install_error_handlers(app)
    app.include_router(sip.router)
    app.include_router(admin.router)

    @app.get("/health", tags=["health"])
    def health(request: Request) -> dict[str, object]:
        """Up, and the catalog revision this brain decides with."""
        snapshot = request.app.state.brain.authorizer.snapshot()
        return {"status": "ok", "version": __version__, "catalog_revision": snapshot.revision}

    return app
