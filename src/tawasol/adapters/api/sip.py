"""The SIP edge's API: one decision per new call, and the call events back.

Handlers stay thin: parse, call the service, serialise. Decisions are synchronous and CPU-only
(in-memory state), so they run in the event loop without a thread hop.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request

from tawasol.adapters.api.schemas import AuthorizeIn, AuthorizeOut, CallEventsIn
from tawasol.composition import Brain
from tawasol.domain.decision import CallRequest

router = APIRouter(prefix="/sip/v1", tags=["sip"])


def _brain(request: Request) -> Brain:
    brain: Brain = request.app.state.brain
    return brain


@router.post("/authorize", response_model=AuthorizeOut)
def authorize(body: AuthorizeIn, request: Request) -> AuthorizeOut:
    """Decide a new call. A denial is a 200 with `allow: false` and the SIP reply to send."""
    started = time.perf_counter_ns()
    authorization = _brain(request).authorizer.authorize(
        CallRequest(sip_username=body.user, dialled=body.dialled, call_id=body.call_id)
    )
    answer = AuthorizeOut.from_domain(body.call_id, authorization.ha1, authorization.decision)
    request.app.state.decision_latency.record(time.perf_counter_ns() - started)
    return answer


@router.get("/stats")
def stats(request: Request) -> dict[str, object]:
    """Decision latency inside the brain (p50, p99, max in µs over the last 10,000 decisions)
    and the calls this brain counts as in progress."""
    summary: dict[str, object] = dict(request.app.state.decision_latency.summary())
    summary["calls_in_progress"] = _brain(request).authorizer.active_calls()
    return summary


@router.post("/events")
async def events(body: CallEventsIn, request: Request) -> dict[str, int]:
    """Record call events; replaying the same events changes nothing."""
    brain = _brain(request)
    domain_events = [event.to_domain() for event in body.events]
    records = await asyncio.to_thread(brain.recorder.record, domain_events)
    return {"accepted": len(domain_events), "calls": len(records)}
