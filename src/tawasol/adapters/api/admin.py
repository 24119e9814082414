"""The operator's admin API: plans, subscribers, subscriptions, carriers, calls, explain.

Every route needs `Authorization: Bearer <admin token>`; with no token configured the admin API
refuses everything rather than run open.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tawasol.adapters.api.schemas import (
    CallOut,
    CarrierSchema,
    ExplainIn,
    ExplainOut,
    PasswordIn,
    PlanSchema,
    RouteOut,
    SubscriberIn,
    SubscriberOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionStatusIn,
)
from tawasol.composition import Brain
from tawasol.domain.decision import CallRequest
from tawasol.domain.errors import NotFound

_bearer = HTTPBearer(auto_error=False)


def _brain(request: Request) -> Brain:
    brain: Brain = request.app.state.brain
    return brain


def require_admin(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    expected = _brain(request).settings.admin_token.get_secret_value()
    if not expected:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin API disabled: no admin token set")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require_admin)])


# -- plans ------------------------------------------------------------------------------------
@router.get("/plans", response_model=list[PlanSchema])
def list_plans(request: Request) -> list[PlanSchema]:
    return [PlanSchema.from_domain(plan) for plan in _brain(request).catalog.list_plans()]


@router.get("/plans/{code}", response_model=PlanSchema)
def get_plan(code: str, request: Request) -> PlanSchema:
    return PlanSchema.from_domain(_brain(request).catalog.get_plan(code))


@router.put("/plans/{code}", response_model=PlanSchema)
def put_plan(code: str, body: PlanSchema, request: Request) -> PlanSchema:
    if body.code != code:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "code in path and body differ")
    return PlanSchema.from_domain(_brain(request).catalog.save_plan(body.to_domain()))


@router.post("/plans", response_model=PlanSchema, status_code=201)
def post_plan(body: PlanSchema, request: Request) -> PlanSchema:
    return PlanSchema.from_domain(_brain(request).catalog.save_plan(body.to_domain()))


# -- subscribers ------------------------------------------------------------------------------
@router.get("/subscribers", response_model=list[SubscriberOut])
def list_subscribers(
    request: Request,
    offset: int = Query(default=0, ge=0),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[SubscriberOut]:
    subscribers = _brain(request).catalog.list_subscribers(offset=offset, limit=limit)
    return [SubscriberOut.from_domain(subscriber) for subscriber in subscribers]


@router.post("/subscribers", response_model=SubscriberOut, status_code=201)
def post_subscriber(body: SubscriberIn, request: Request) -> SubscriberOut:
    subscriber = _brain(request).catalog.add_subscriber(
        name=body.name,
        email=body.email,
        phone=body.phone,
        locale=body.locale,
        time_zone=body.time_zone,
        sip_username=body.sip_username,
        password=body.password,
        caller_ids=tuple(body.caller_ids),
    )
    return SubscriberOut.from_domain(subscriber)


@router.get("/subscribers/{subscriber_id}", response_model=SubscriberOut)
def get_subscriber(subscriber_id: int, request: Request) -> SubscriberOut:
    return SubscriberOut.from_domain(_brain(request).catalog.get_subscriber(subscriber_id))


@router.put("/subscribers/{subscriber_id}/password", response_model=SubscriberOut)
def put_password(subscriber_id: int, body: PasswordIn, request: Request) -> SubscriberOut:
    subscriber = _brain(request).catalog.set_password(subscriber_id, body.password)
    return SubscriberOut.from_domain(subscriber)


@router.get("/subscribers/{subscriber_id}/subscriptions", response_model=list[SubscriptionOut])
def list_subscriptions(subscriber_id: int, request: Request) -> list[SubscriptionOut]:
    catalog = _brain(request).catalog
    catalog.get_subscriber(subscriber_id)
    return [
        SubscriptionOut.from_domain(subscription)
        for subscription in catalog.list_subscriptions(subscriber_id=subscriber_id)
    ]


@router.post(
    "/subscribers/{subscriber_id}/subscriptions", response_model=SubscriptionOut, status_code=201
)
def post_subscription(
    subscriber_id: int, body: SubscriptionIn, request: Request
) -> SubscriptionOut:
    subscription = _brain(request).catalog.subscribe(
        subscriber_id=subscriber_id, plan_code=body.plan_code, start=body.start, status=body.status
    )
    return SubscriptionOut.from_domain(subscription)


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def patch_subscription(
    subscription_id: int, body: SubscriptionStatusIn, request: Request
) -> SubscriptionOut:
    subscription = _brain(request).catalog.set_subscription_status(subscription_id, body.status)
    return SubscriptionOut.from_domain(subscription)


# -- carriers ---------------------------------------------------------------------------------
@router.get("/carriers", response_model=list[CarrierSchema])
def list_carriers(request: Request) -> list[CarrierSchema]:
    return [
        CarrierSchema.from_domain(carrier) for carrier in _brain(request).catalog.list_carriers()
    ]


@router.get("/carriers/{code}", response_model=CarrierSchema)
def get_carrier(code: str, request: Request) -> CarrierSchema:
    return CarrierSchema.from_domain(_brain(request).catalog.get_carrier(code))


@router.put("/carriers/{code}", response_model=CarrierSchema)
def put_carrier(code: str, body: CarrierSchema, request: Request) -> CarrierSchema:
    if body.code != code:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "code in path and body differ")
    return CarrierSchema.from_domain(_brain(request).catalog.save_carrier(body.to_domain()))


@router.post("/carriers", response_model=CarrierSchema, status_code=201)
def post_carrier(body: CarrierSchema, request: Request) -> CarrierSchema:
    return CarrierSchema.from_domain(_brain(request).catalog.save_carrier(body.to_domain()))


# -- calls ------------------------------------------------------------------------------------
@router.get("/calls", response_model=list[CallOut])
def list_calls(
    request: Request,
    subscriber_id: int | None = Query(default=None, ge=1),
    limit: int = Query(default=50, ge=1, le=1000),
) -> list[CallOut]:
    records = _brain(request).store.list_calls(subscriber_id=subscriber_id, limit=limit)
    return [CallOut.from_domain(record) for record in records]


@router.get("/calls/{call_id}", response_model=CallOut)
def get_call(call_id: str, request: Request) -> CallOut:
    record = _brain(request).store.get_call(call_id)
    if record is None:
        raise NotFound("no call with this call id", call_id=call_id)
    return CallOut.from_domain(record)


@router.post("/explain", response_model=ExplainOut)
def explain(body: ExplainIn, request: Request) -> ExplainOut:
    """The decision a call would get, with every reason: what support looks at."""
    brain = _brain(request)
    at: datetime = body.at or brain.clock()
    decision = brain.authorizer.explain(
        CallRequest(sip_username=body.sip_username, dialled=body.dialled), now=at
    )
    return ExplainOut(
        allow=decision.allowed,
        reason=decision.reason.value,
        sip_code=decision.sip_code,
        sip_reason=decision.sip_reason,
        max_duration_s=decision.max_duration_seconds,
        destination=decision.destination.e164 if decision.destination else None,
        routes=[RouteOut.from_domain(route) for route in decision.routes],
        explanation=list(decision.explanation),
    )
