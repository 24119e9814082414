"""The SIP edge's API: one decision per new call, and the call events back.

Handlers stay thin: parse, call the service, serialise. A decision is CPU-only on in-memory
state (~40 µs), so it runs in the event loop without a thread hop, and its answer is written as
JSON directly rather than through the response model: the model (`AuthorizeOut`) still
documents the shape in OpenAPI, and a test checks every answer against it.

Under load both requests are answered by `sip_fast.SipFastPath` in front of FastAPI, which
calls the same `decide` and `record_events` below; the routes here document the API and serve
it when the app runs without that wrapper.
"""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import APIRouter, Request, Response

from tawasol.adapters.api.latency import LatencyRing
from tawasol.adapters.api.schemas import AuthorizeIn, AuthorizeOut, CallEventsIn
from tawasol.composition import Brain
from tawasol.domain.decision import CallRequest, Decision

router = APIRouter(prefix="/sip/v1", tags=["sip"])


def _brain(request: Request) -> Brain:
    brain: Brain = request.app.state.brain
    return brain


@router.post("/authorize", response_model=AuthorizeOut)
async def authorize(body: AuthorizeIn, request: Request) -> Response:
    """Decide a new call. A denial is a 200 with `allow: false` and the SIP reply to send."""
    content = decide(_brain(request), body, request.app.state.decision_latency)
    return Response(content=content, media_type="application/json")


def decide(brain: Brain, body: AuthorizeIn, latency: LatencyRing) -> bytes:
    """The JSON answer (`AuthorizeOut`) to a decision request; the time taken goes to `latency`."""
    started = time.perf_counter_ns()
    authorization = brain.authorizer.authorize(
        CallRequest(sip_username=body.user, dialled=body.dialled, call_id=body.call_id)
    )
    answer = authorize_answer(body.call_id, authorization.ha1, authorization.decision)
    content = json.dumps(answer, separators=(",", ":")).encode()
    latency.record(time.perf_counter_ns() - started)
    return content


def authorize_answer(call_id: str, ha1: str, decision: Decision) -> dict[str, object]:
    """The `AuthorizeOut` document for a decision, built without the model's validation."""
    return {
        "call_id": call_id,
        "ha1": ha1,
        "allow": decision.allowed,
        "reason": decision.reason.value,
        "sip_code": decision.sip_code,
        "sip_reason": decision.sip_reason,
        "max_duration_s": decision.max_duration_seconds,
        "destination": decision.destination.e164 if decision.destination else None,
        "routes": [
            {
                "carrier": route.carrier,
                "gateway": route.gateway,
                "uri": route.uri,
                "timeout_ms": route.timeout_ms,
                "billing": route.billing.value,
                "cost_per_minute": (
                    str(route.cost_per_minute.amount) if route.cost_per_minute else None
                ),
                "currency": route.cost_per_minute.currency if route.cost_per_minute else None,
            }
            for route in decision.routes
        ],
        "failover_codes": list(decision.failover_codes),
    }


@router.get("/stats")
def stats(request: Request) -> dict[str, object]:
    """Decision latency inside the brain (p50, p99, max in µs over the last 10,000 decisions)
    and the calls this brain counts as in progress; calls allowed to unlisted numbers (in no
    range libphonenumber lists, countries with incomplete metadata) since it started."""
    summary: dict[str, object] = dict(request.app.state.decision_latency.summary())
    summary["calls_in_progress"] = _brain(request).authorizer.active_calls()
    summary["unlisted_numbers_allowed"] = _brain(request).authorizer.unlisted_numbers_allowed()
    return summary


@router.post("/events")
async def events(body: CallEventsIn, request: Request) -> dict[str, int]:
    """Record call events; replaying the same events changes nothing."""
    return await record_events(_brain(request), body)


async def record_events(brain: Brain, body: CallEventsIn) -> dict[str, int]:
    """Write a batch of call events (in a worker thread: the store blocks)."""
    domain_events = [event.to_domain() for event in body.events]
    records = await asyncio.to_thread(brain.recorder.record, domain_events)
    return {"accepted": len(domain_events), "calls": len(records)}
