"""What the operator sees of attacks on subscribers' credentials (docs/security.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from tawasol.adapters.api.admin import ADMIN_GUARDS
from tawasol.composition import Brain
from tawasol.services.verify_credentials import AuthFailureReport

router = APIRouter(prefix="/admin/v1/security", tags=["security"], dependencies=ADMIN_GUARDS)


@router.get("/auth-failures", response_model=list[AuthFailureReport])
def auth_failures(request: Request) -> list[AuthFailureReport]:
    """Repeated failed authentications per (username, source address), oldest first: one
    report each time another `sip_auth_failures` failures arrive within `sip_auth_window_s`
    (`sip_username`, `source_ip`, `failures`, `first_at`, `last_at` as ISO 8601 UTC,
    `known_subscriber`). The edge locks that pair out and bans the address meanwhile."""
    brain: Brain = request.app.state.brain
    return brain.credentials.reports()
