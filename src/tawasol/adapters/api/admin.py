"""The operator's admin API: plans, subscribers, subscriptions, carriers, calls, explain.

Every route needs `Authorization: Bearer <admin token>`; with no token configured the admin API
refuses everything rather than run open.
"""

from __future__ import annotations

import hmac
import ipaddress
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tawasol.adapters.api.schemas import (
    AccountOut,
    BusinessIn,
    CallOut,
    CallReportOut,
    CarrierSchema,
    CountryIn,
    ExplainIn,
    ExplainOut,
    Id,
    Instant,
    Limit,
    Offset,
    PasswordIn,
    PlanChangeIn,
    PlanSchema,
    SubscriberIn,
    SubscriberOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionStatusIn,
)
from tawasol.adapters.api.services import ApiServices
from tawasol.config import Settings
from tawasol.domain.decision import CallRequest
from tawasol.domain.errors import Conflict, InvalidInput, NotFound
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.billing.lifecycle import Timing

# Statuses the billing lifecycle commands set, with their money and dates.
_BILLED_STATUSES = frozenset({SubscriptionStatus.PAUSED, SubscriptionStatus.CANCELLED})

_bearer = HTTPBearer(auto_error=False)


def _brain(request: Request) -> ApiServices:
    brain: ApiServices = request.app.state.brain
    return brain


def _guard_sale(request: Request, plan_code: str, acknowledged: list[int]) -> None:
    """409 destination_unavailable for a plan in an outage the buyer did not acknowledge."""
    brain = _brain(request)
    brain.sales_guard.check(brain.catalog.get_plan(plan_code), acknowledged=acknowledged)


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


def refuse_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is an error, not silently ignored: an
    operator who writes `?sinse=` must not read every call as if filtered."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:  # pragma: no cover - always set on a matched route
        return
    known = {param.alias for param in _query_params(dependant)}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidInput(
            f"unknown query parameter {unknown[0]!r}"
            + (f" (this route takes: {', '.join(sorted(known))})" if known else ""),
            unknown=unknown,
        )


def _query_params(dependant: Any) -> list[Any]:
    params = list(dependant.query_params)
    for sub in dependant.dependencies:
        params.extend(_query_params(sub))
    return params


# What every admin router (admin, carriers, security) checks first, declared once so that no
# router forgets one (the security router did not refuse unknown query parameters).
ADMIN_GUARDS = [Depends(require_admin), Depends(refuse_unknown_query)]

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=ADMIN_GUARDS)


# -- plans ------------------------------------------------------------------------------------
@router.get("/plans", response_model=list[PlanSchema])
def list_plans(request: Request) -> list[PlanSchema]:
    return [PlanSchema.from_domain(plan) for plan in _brain(request).catalog.list_plans()]


@router.get("/plans/{code}", response_model=PlanSchema)
def get_plan(code: str, request: Request) -> PlanSchema:
    return PlanSchema.from_domain(_brain(request).catalog.get_plan(code))


@router.put("/plans/{code}", response_model=PlanSchema)
def put_plan(code: str, body: PlanSchema, request: Request) -> PlanSchema:
    """Replace an existing plan (404 when there is none: create with POST)."""
    _same_code(code, body.code)
    return PlanSchema.from_domain(_brain(request).catalog.update_plan(body.to_domain()))


@router.post("/plans", response_model=PlanSchema, status_code=201)
def post_plan(body: PlanSchema, request: Request) -> PlanSchema:
    """Create a plan (409 `conflict` when the code exists: change it with PUT)."""
    return PlanSchema.from_domain(_brain(request).catalog.add_plan(body.to_domain()))


# -- subscribers ------------------------------------------------------------------------------
@router.get("/subscribers", response_model=list[SubscriberOut])
def list_subscribers(
    request: Request, offset: Offset = 0, limit: Limit = 100
) -> list[SubscriberOut]:
    subscribers = _brain(request).catalog.list_subscribers(offset=offset, limit=limit)
    return [SubscriberOut.from_domain(subscriber) for subscriber in subscribers]


@router.post("/subscribers", response_model=AccountOut, status_code=201)
def post_subscriber(body: SubscriberIn, request: Request) -> AccountOut:
    """Create a subscriber (and with `plan_code` their subscription, all or nothing). Without a
    password the platform generates one and returns it in this answer only."""
    if body.plan_code is not None:
        _guard_sale(request, body.plan_code, body.acknowledged_incidents)
    account = _brain(request).catalog.add_subscriber(
        name=body.name,
        email=body.email,
        phone=body.phone,
        locale=body.locale,
        time_zone=body.time_zone,
        sip_username=body.sip_username,
        password=body.password,
        caller_ids=tuple(body.caller_ids),
        plan_code=body.plan_code,
        country=body.country,
        business=body.business,
    )
    return AccountOut.from_account(account.subscriber, account.password)


@router.get("/subscribers/{subscriber_id}", response_model=SubscriberOut)
def get_subscriber(subscriber_id: Id, request: Request) -> SubscriberOut:
    return SubscriberOut.from_domain(_brain(request).catalog.get_subscriber(subscriber_id))


@router.put("/subscribers/{subscriber_id}/password", response_model=AccountOut)
def put_password(subscriber_id: Id, body: PasswordIn, request: Request) -> AccountOut:
    """A new SIP password: the one given (checked for strength) or a generated one, returned in
    this answer only."""
    account = _brain(request).catalog.set_password(subscriber_id, body.password)
    return AccountOut.from_account(account.subscriber, account.password)


@router.put("/subscribers/{subscriber_id}/country", response_model=SubscriberOut)
def put_country(subscriber_id: Id, body: CountryIn, request: Request) -> SubscriberOut:
    """Record the country where the subscriber lives: the VAT of their next invoices follows
    it (Directive 2006/112/EC art. 58)."""
    return SubscriberOut.from_domain(
        _brain(request).catalog.set_country(subscriber_id, body.country)
    )


@router.put("/subscribers/{subscriber_id}/business", response_model=SubscriberOut)
def put_business(subscriber_id: Id, body: BusinessIn, request: Request) -> SubscriberOut:
    """Mark the subscriber a business customer or a consumer: a business is told personally
    of every customer-facing outage that touches it, short ones included, and gets Factur-X
    invoices."""
    return SubscriberOut.from_domain(
        _brain(request).catalog.set_business(subscriber_id, body.business)
    )


@router.put("/subscribers/{subscriber_id}/plan", response_model=SubscriptionOut)
def put_plan_change(subscriber_id: Id, body: PlanChangeIn, request: Request) -> SubscriptionOut:
    """Change plan now. Once billing is set up (VAT rates configured) this is the billing
    plan change (`POST /admin/v1/billing/subscribers/{id}/plan-change`): the one subscription
    changes plan, the unused part is credited and the new plan invoiced. Without billing the
    running subscription is cancelled and the new one starts, together."""
    _guard_sale(request, body.plan_code, body.acknowledged_incidents)
    brain = _brain(request)
    if brain.settings.billing_vat_rates:
        outcome = brain.billing.lifecycle.change_plan(
            subscriber_id=subscriber_id,
            plan_code=body.plan_code,
            timing=Timing.NOW,
            at=body.start or brain.clock(),
        )
        brain.authorizer.invalidate()
        return SubscriptionOut.from_domain(outcome.subscription)
    subscription = _brain(request).catalog.change_plan(
        subscriber_id=subscriber_id, plan_code=body.plan_code, start=body.start
    )
    return SubscriptionOut.from_domain(subscription)


@router.get("/subscribers/{subscriber_id}/subscriptions", response_model=list[SubscriptionOut])
def list_subscriptions(subscriber_id: Id, request: Request) -> list[SubscriptionOut]:
    catalog = _brain(request).catalog
    catalog.get_subscriber(subscriber_id)
    return [
        SubscriptionOut.from_domain(subscription)
        for subscription in catalog.list_subscriptions(subscriber_id=subscriber_id)
    ]


@router.post(
    "/subscribers/{subscriber_id}/subscriptions", response_model=SubscriptionOut, status_code=201
)
def post_subscription(subscriber_id: Id, body: SubscriptionIn, request: Request) -> SubscriptionOut:
    """Start a subscription (409 when one is running: change plan with PUT .../plan)."""
    _guard_sale(request, body.plan_code, body.acknowledged_incidents)
    subscription = _brain(request).catalog.subscribe(
        subscriber_id=subscriber_id, plan_code=body.plan_code, start=body.start, status=body.status
    )
    return SubscriptionOut.from_domain(subscription)


@router.patch("/subscriptions/{subscription_id}", response_model=SubscriptionOut)
def patch_subscription(
    subscription_id: Id, body: SubscriptionStatusIn, request: Request
) -> SubscriptionOut:
    """Change a subscription's status along an allowed transition (409 otherwise). Once
    billing is set up, pausing, resuming and cancelling move money or the paid period: they
    are refused here (409) and done through `/admin/v1/billing/subscribers/{id}/...`."""
    brain = _brain(request)
    if brain.settings.billing_vat_rates:
        current = brain.catalog.get_subscription(subscription_id)
        if body.status is not current.status and (
            body.status in _BILLED_STATUSES or current.status is SubscriptionStatus.PAUSED
        ):
            raise Conflict(
                f"with billing set up, a subscription becomes {body.status.value} through "
                f"/admin/v1/billing/subscribers/{current.subscriber_id}/pause, /resume or "
                "/cancellation: they credit, move the paid period and keep the ledger true",
                subscription_id=subscription_id,
            )
    subscription = brain.catalog.set_subscription_status(subscription_id, body.status)
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
    """Replace an existing carrier (404 when there is none: create with POST)."""
    _same_code(code, body.code)
    _refuse_own_edge(body, _brain(request).settings)
    return CarrierSchema.from_domain(_brain(request).catalog.update_carrier(body.to_domain()))


@router.post("/carriers", response_model=CarrierSchema, status_code=201)
def post_carrier(body: CarrierSchema, request: Request) -> CarrierSchema:
    """Create a carrier (409 `conflict` when the code exists: change it with PUT)."""
    _refuse_own_edge(body, _brain(request).settings)
    return CarrierSchema.from_domain(_brain(request).catalog.add_carrier(body.to_domain()))


def _refuse_own_edge(body: CarrierSchema, settings: Settings) -> None:
    """A gateway at tawasol's own SIP edge (`sip_listen`:`sip_port`) would send every call it
    is given back into the edge: a loop (RFC 3261 §16.3 loop detection would cut it with 482
    only after a round of forwarding). Refused with 422 naming the gateway."""

    def address(host: str) -> object:
        host = "127.0.0.1" if host.lower() == "localhost" else host.strip("[]")
        try:
            return ipaddress.ip_address(host)
        except ValueError:
            return host.lower()

    edge = address(settings.sip_listen)
    # An edge listening on every address (0.0.0.0) also answers on the loopback addresses.
    everywhere = getattr(edge, "is_unspecified", False)
    for index, gateway in enumerate(body.gateways):
        host = address(gateway.host)
        loops = host == edge or (everywhere and getattr(host, "is_loopback", False))
        if gateway.port == settings.sip_port and loops:
            raise InvalidInput(
                f"gateways[{index}]: {gateway.host}:{gateway.port} is tawasol's own SIP edge "
                "(sip_listen:sip_port): calls sent there would loop",
                field=f"gateways.{index}.host",
            )


def _same_code(path: str, body: str) -> None:
    if path != body:
        raise InvalidInput("the code in the path and in the body differ", path=path, body=body)


# -- calls ------------------------------------------------------------------------------------
@router.get("/calls", response_model=list[CallOut])
def list_calls(
    request: Request,
    subscriber_id: Id | None = None,
    since: Annotated[Instant | None, Query(description="calls started at or after")] = None,
    limit: Limit = 50,
) -> list[CallOut]:
    """Call detail records, newest first; refused calls included (with `refusal_reason`)."""
    records = _brain(request).calls.list_calls(
        subscriber_id=subscriber_id, since=since, limit=limit
    )
    return [CallOut.from_domain(record) for record in records]


@router.get("/calls/report", response_model=CallReportOut)
def calls_report(
    request: Request,
    since: Annotated[Instant, Query(description="from (included)")],
    until: Annotated[Instant | None, Query(description="to (excluded); default now")] = None,
) -> CallReportOut:
    """How many calls started in [since, until) were answered, not answered or refused, and
    the refusals per reason code (`no_route` during an outage...)."""
    brain = _brain(request)
    end = until or brain.clock()
    if end <= since:
        raise InvalidInput(
            "until must be after since", since=since.isoformat(), until=end.isoformat()
        )
    brain.refusals.flush()  # the report counts the refusals still queued
    counts = brain.calls.count_calls(since=since, until=end)
    return CallReportOut.from_counts(counts, since=since, until=end)


@router.get("/calls/{call_id}", response_model=CallOut)
def get_call(call_id: str, request: Request) -> CallOut:
    record = _brain(request).calls.get_call(call_id)
    if record is None:
        raise NotFound("no call with this call id", call_id=call_id)
    return CallOut.from_domain(record)


@router.post("/explain", response_model=ExplainOut)
def explain(body: ExplainIn, request: Request) -> ExplainOut:
    """The decision a call would get, with every reason: what support looks at. Includes the
    carriers' live state (down, full, capped) this brain holds."""
    brain = _brain(request)
    at: datetime = body.at or brain.clock()
    # SIP usernames are unique ignoring case: support may type `AMINA` for amina.
    found = brain.catalog.find_subscriber(body.sip_username)
    username = found.sip_username if found is not None else body.sip_username
    decision = brain.authorizer.explain(
        CallRequest(sip_username=username, dialled=body.dialled), now=at
    )
    return ExplainOut.from_domain(decision)
