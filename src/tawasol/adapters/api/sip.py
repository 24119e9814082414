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
import ipaddress
import logging
import socket
import time
from dataclasses import replace

import orjson
from fastapi import APIRouter, Request, Response

from tawasol.adapters.api.latency import LatencyRing
from tawasol.adapters.api.schemas import (
    AuthorizeIn,
    AuthorizeOut,
    CallEventsIn,
    InboundIn,
    InboundOut,
    route_document,
)
from tawasol.adapters.api.services import ApiServices
from tawasol.domain.decision import CallRequest, Decision
from tawasol.domain.errors import CallNotGranted
from tawasol.services.verify_credentials import CredentialCheck

log = logging.getLogger(__name__)

router = APIRouter(prefix="/sip/v1", tags=["sip"])


def _brain(request: Request) -> ApiServices:
    brain: ApiServices = request.app.state.brain
    return brain


@router.post("/authorize", response_model=AuthorizeOut)
async def authorize(body: AuthorizeIn, request: Request) -> Response:
    """Decide a new call. A denial is a 200 with `allow: false` and the SIP reply to send."""
    content = decide(_brain(request), body, request.app.state.decision_latency)
    return Response(content=content, media_type="application/json")


def decide(brain: ApiServices, body: AuthorizeIn, latency: LatencyRing) -> bytes:
    """The JSON answer (`AuthorizeOut`) to a decision request; the time taken goes to `latency`.

    The caller's digest answer (`body.credentials`) is checked first: a missing, wrong or
    replayed one is refused without deciding, so it never counts against the subscriber
    (docs/security.md). The HA1 is in every answer: the edge checks the nonce with it."""
    started = time.perf_counter_ns()
    authorizer = brain.authorizer
    subscriber = authorizer.snapshot().subscribers.get(body.user)
    ha1 = subscriber.ha1 if subscriber else authorizer.fake_ha1(body.user)
    check = brain.credentials.verify(
        call_id=body.call_id,
        username=body.user,
        method=body.method,
        header=body.credentials,
        ha1=ha1,
        source_ip=body.source_ip,
        known_subscriber=subscriber is not None,
    )
    if check is not CredentialCheck.VERIFIED:
        answer = refused_answer(body.call_id, ha1, check.value)
    else:
        authorization = authorizer.authorize(
            CallRequest(sip_username=body.user, dialled=body.dialled, call_id=body.call_id)
        )
        answer = authorize_answer(body.call_id, authorization.ha1, authorization.decision)
        if authorization.decision.allowed:
            answer["grant"] = brain.grants.issue(
                call_id=body.call_id,
                username=body.user,
                max_duration_s=authorization.decision.max_duration_seconds,
            )
    content = orjson.dumps(answer)
    latency.record(time.perf_counter_ns() - started)
    return content


def refused_answer(call_id: str, ha1: str, reason: str) -> dict[str, object]:
    """The `AuthorizeOut` document for credentials the brain did not accept: nothing decided."""
    return {
        "call_id": call_id,
        "ha1": ha1,
        "allow": False,
        "reason": reason,
        "sip_code": 403,
        "sip_reason": "Forbidden",
        "max_duration_s": 0,
        "destination": None,
        "routes": [],
        "failover_codes": [],
        "grant": None,
    }


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
        "routes": [route_document(route) for route in decision.routes],
        "failover_codes": list(decision.failover_codes),
        "grant": None,
    }


@router.post("/inbound", response_model=InboundOut)
def inbound(body: InboundIn, request: Request) -> InboundOut:
    """Decide a call from an inbound trunk to a direct number (docs/direct-numbers.md).

    The source address must be an inbound trunk's; the caller ID (P-Asserted-Identity from a
    trusted trunk, else From) must be a verified one; the dialled pool number must be one of
    that subscriber's contacts. Then the decision is the softphone's for the subscriber
    calling the contact (same plan, fair use, routes, maximum duration). A refusal is a 200
    with `allow: false` and the SIP reply, recorded as a refused call either way."""
    brain = _brain(request)
    started = time.perf_counter_ns()
    resolution = brain.direct_numbers.resolve_inbound(
        call_id=body.call_id,
        source_ip=body.source_ip,
        dialled=body.dialled,
        asserted=body.asserted_identity or None,
        from_user=body.from_user or None,
        privacy=body.privacy or None,
    )
    outcome = resolution.outcome
    known = {
        "inbound_trunk": outcome.trunk.code if outcome.trunk else None,
        "caller_id": outcome.caller_id,
    }
    if resolution.request is None:
        code, phrase = outcome.sip_reply
        refusal = outcome.refusal.value if outcome.refusal else "unknown_subscriber"
        answer = refused_answer(body.call_id, "", refusal)
        answer.update(sip_code=code, sip_reason=phrase)
        return InboundOut.model_validate(
            {**answer, "user": "", "dialled": outcome.direct_number or body.dialled, **known}
        )
    authorization = brain.authorizer.authorize(resolution.request)
    decision = authorization.decision
    answer = authorize_answer(body.call_id, "", decision)
    if decision.allowed:
        answer["grant"] = brain.grants.issue(
            call_id=body.call_id,
            username=resolution.request.sip_username,
            max_duration_s=decision.max_duration_seconds,
        )
    request.app.state.decision_latency.record(time.perf_counter_ns() - started)
    return InboundOut.model_validate(
        {
            **answer,
            "user": resolution.request.sip_username,
            "dialled": resolution.request.dialled,
            **known,
        }
    )


@router.get("/inbound-numbers")
def inbound_numbers(request: Request) -> dict[str, list[str]]:
    """What the edge needs to send a new INVITE to `POST /sip/v1/inbound` rather than
    challenge it: the inbound trunks' addresses (networks allowed) and every form a
    Request-URI may give a pool number in (`+33184...`, `33184...`, `0184...`)."""
    return _brain(request).direct_numbers.edge_numbers()


@router.get("/stats")
def stats(request: Request) -> dict[str, object]:
    """Decision latency inside the brain (p50, p99, max in µs over the last 10,000 decisions)
    and the calls this brain counts as in progress; calls allowed to unlisted numbers (in no
    range libphonenumber lists, countries with incomplete metadata) since it started."""
    summary: dict[str, object] = dict(request.app.state.decision_latency.summary())
    summary["calls_in_progress"] = _brain(request).authorizer.active_calls()
    summary["unlisted_numbers_allowed"] = _brain(request).authorizer.unlisted_numbers_allowed()
    return summary


@router.get("/peers")
async def peers(request: Request) -> dict[str, list[str]]:
    """The addresses the edge must never ban: every configured carrier's gateways, enabled or
    not (a carrier taken out of service still hangs up the calls it carries), host names
    resolved here. The edge matches them against the source address of the packet, never
    against a header (docs/security.md, "Flood bans never ban carriers")."""
    carriers = _brain(request).catalog.list_carriers()
    hosts = sorted({gateway.host for carrier in carriers for gateway in carrier.gateways})
    addresses = await asyncio.to_thread(_resolve_all, hosts)
    return {"addresses": addresses}


def _resolve_all(hosts: list[str]) -> list[str]:
    addresses: set[str] = set()
    for host in hosts:
        try:
            addresses.add(str(ipaddress.ip_address(host)))
            continue
        except ValueError:
            pass
        try:
            found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
        except OSError as error:
            log.warning("carrier gateway %s does not resolve: %s", host, error)
            continue
        addresses.update(str(entry[4][0]) for entry in found)
    return sorted(addresses)


@router.post("/events")
async def events(body: CallEventsIn, request: Request) -> dict[str, int]:
    """Record call events; replaying the same events changes nothing."""
    return await record_events(_brain(request), body)


async def record_events(brain: ApiServices, body: CallEventsIn) -> dict[str, int]:
    """Write a batch of call events (in a worker thread: the store blocks).

    Only events of calls the brain allowed are taken (their grant, or this process's memory
    of the decision), and no call lasts longer than its decision allowed: an `end` event's
    duration is cut to the granted maximum. A batch with an event of a call the brain never
    allowed is refused whole (422 `call_not_granted`, the call ids in `details`): the edge's
    spool sets those events aside and sends the rest again."""
    domain_events = []
    refused: list[str] = []
    for event in body.events:
        limit_s = brain.grants.max_duration_s(
            call_id=event.call_id, username=event.user, grant=event.grant
        )
        if limit_s is None:
            refused.append(event.call_id)
            continue
        domain_event = event.to_domain()
        if domain_event.duration_ms is not None and domain_event.duration_ms > limit_s * 1000:
            log.warning(
                "call %s: %d ms reported, %d s granted: cut to the grant",
                event.call_id,
                domain_event.duration_ms,
                limit_s,
            )
            domain_event = replace(domain_event, duration_ms=limit_s * 1000)
        domain_events.append(domain_event)
    if refused:
        raise CallNotGranted(
            "call events for calls the brain did not allow", call_ids=sorted(set(refused))[:20]
        )
    records = await asyncio.to_thread(brain.recorder.record, domain_events)
    return {"accepted": len(domain_events), "calls": len(records)}
