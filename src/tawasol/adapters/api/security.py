"""What the operator sees of attacks on subscribers' credentials (docs/security.md)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from tawasol.adapters.api.admin import require_admin
from tawasol.composition import Brain

router = APIRouter(
    prefix="/admin/v1/security", tags=["security"], dependencies=[Depends(require_admin)]
)


class AuthFailureReportOut(BaseModel):
    sip_username: str
    source_ip: str
    failures: int
    first_at: datetime
    last_at: datetime
    known_subscriber: bool


@router.get("/auth-failures", response_model=list[AuthFailureReportOut])
def auth_failures(request: Request) -> list[AuthFailureReportOut]:
    """Repeated failed authentications per (username, source address) since the brain started,
    oldest first: one report each time another `sip_auth_failures` failures arrive within
    `sip_auth_window_s`. The edge locks that pair out and bans the address meanwhile."""
    brain: Brain = request.app.state.brain
    return [
        AuthFailureReportOut.model_validate(report, from_attributes=True)
        for report in brain.credentials.reports()
    ]
