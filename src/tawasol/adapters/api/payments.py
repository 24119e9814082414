"""Payments over HTTP: the providers' webhooks (public, signed) and the operator's admin API.

`POST /payments/v1/webhooks/{provider}` takes a provider's event. It carries no bearer token
(the provider cannot send one): its authenticity is the provider's signature over the exact
body (Stripe's `Stripe-Signature`: HMAC-SHA256 of "<timestamp>.<body>" with the endpoint's
secret, timestamp within 5 minutes), checked before the body is parsed. The body is read up to
`Settings.payments_webhook_body_limit_bytes` (413 beyond it); a bad or missing signature is 400
`invalid_signature` and nothing is kept. A verified event is kept once and applied once; every
delivery of it gets 200 (a provider retries anything else).

`/admin/v1/payments/...`: the subscriber's payment methods (list, set up), payments, refunds
(full or partial, to the original method), dunning cases and the provider events kept.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from tawasol.adapters.api.admin import ADMIN_GUARDS
from tawasol.adapters.api.guard import BodyTooLarge, read_body
from tawasol.adapters.api.schemas import Amount, Currency, Id, Strict, Text
from tawasol.adapters.api.services import ApiServices
from tawasol.domain.money import Money
from tawasol.domain.payments.dunning import DunningCase
from tawasol.domain.payments.events import StoredEvent
from tawasol.domain.payments.methods import PaymentMethod
from tawasol.domain.payments.payments import Payment, Refund

webhooks = APIRouter(prefix="/payments/v1", tags=["payments"])
router = APIRouter(prefix="/admin/v1/payments", tags=["payments"], dependencies=ADMIN_GUARDS)


def _brain(request: Request) -> ApiServices:
    brain: ApiServices = request.app.state.brain
    return brain


# -- documents ----------------------------------------------------------------------------------
class EventReceivedOut(BaseModel):
    provider: str
    event_id: str
    type: str
    deliveries: int = Field(description="how many times this event was received")
    outcome: str


class PaymentMethodOut(BaseModel):
    id: int
    subscriber_id: int
    kind: str
    provider: str
    customer_reference: str
    method_reference: str
    status: str
    label: str
    expires: date | None
    created_at: datetime | None

    @classmethod
    def from_domain(cls, method: PaymentMethod) -> PaymentMethodOut:
        return cls(
            id=method.id,
            subscriber_id=method.subscriber_id,
            kind=method.kind.value,
            provider=method.provider,
            customer_reference=method.customer_reference,
            method_reference=method.method_reference,
            status=method.status.value,
            label=method.label,
            expires=method.expires,
            created_at=method.created_at,
        )


class MethodSetupIn(Strict):
    provider: Text = Field(min_length=1, max_length=32, description="stripe, manual ...")
    details: dict[str, Text] = Field(
        default={},
        max_length=20,
        description="the provider's: for stripe, payment_method (pm_..., from Stripe.js)",
    )


class MethodSetupOut(BaseModel):
    method: PaymentMethodOut
    action_url: str = Field(description="where the subscriber must go to finish (3-D Secure)")
    client_secret: str = Field(description="for Stripe.js in the portal's browser")


class PaymentOut(BaseModel):
    id: int
    subscriber_id: int
    method_id: int
    provider: str
    amount: str
    currency: str
    reference: str
    status: str
    provider_reference: str
    action_url: str
    failure_code: str | None
    failure_message: str
    created_at: datetime

    @classmethod
    def from_domain(cls, payment: Payment) -> PaymentOut:
        return cls(
            id=payment.id,
            subscriber_id=payment.subscriber_id,
            method_id=payment.method_id,
            provider=payment.provider,
            amount=str(payment.amount.amount),
            currency=payment.amount.currency,
            reference=payment.reference,
            status=payment.status.value,
            provider_reference=payment.provider_reference,
            action_url=payment.action_url,
            failure_code=payment.failure_code.value if payment.failure_code else None,
            failure_message=payment.failure_message,
            created_at=payment.created_at,
        )


class RefundIn(Strict):
    amount: Amount
    currency: Currency
    reference: Text = Field(
        min_length=1, max_length=100, description="the operator's: the same refund asked twice"
    )
    reason: Text = Field(default="", max_length=500)


class RefundOut(BaseModel):
    id: int
    payment_id: int
    amount: str
    currency: str
    status: str
    provider_reference: str
    reason: str

    @classmethod
    def from_domain(cls, refund: Refund) -> RefundOut:
        return cls(
            id=refund.id,
            payment_id=refund.payment_id,
            amount=str(refund.amount.amount),
            currency=refund.amount.currency,
            status=refund.status.value,
            provider_reference=refund.provider_reference,
            reason=refund.reason,
        )


class DunningCaseOut(BaseModel):
    reference: str
    subscriber_id: int
    subscription_id: int | None
    amount: str
    currency: str
    status: str
    opened_at: datetime
    attempts: int
    last_failure: str | None
    last_attempt_at: datetime | None
    next_charge_at: datetime | None
    suspend_at: datetime | None
    held_since: datetime | None
    suspended_at: datetime | None

    @classmethod
    def from_domain(cls, case: DunningCase, services: ApiServices) -> DunningCaseOut:
        schedule = services.settings.dunning_schedule()
        return cls(
            reference=case.reference,
            subscriber_id=case.subscriber_id,
            subscription_id=case.subscription_id,
            amount=str(case.amount.amount),
            currency=case.amount.currency,
            status=case.status.value,
            opened_at=case.opened_at,
            attempts=case.attempts,
            last_failure=case.last_failure.value if case.last_failure else None,
            last_attempt_at=case.last_attempt_at,
            next_charge_at=case.next_charge_at(schedule),
            suspend_at=None if case.status.closed else case.suspend_at(schedule),
            held_since=case.held_since,
            suspended_at=case.suspended_at,
        )


class ProviderEventOut(BaseModel):
    provider: str
    event_id: str
    type: str
    kind: str
    occurred_at: datetime
    received_at: datetime
    deliveries: int
    applied_at: datetime | None
    outcome: str

    @classmethod
    def from_domain(cls, stored: StoredEvent) -> ProviderEventOut:
        event = stored.event
        return cls(
            provider=event.provider,
            event_id=event.event_id,
            type=event.type,
            kind=event.kind.value,
            occurred_at=event.occurred_at,
            received_at=stored.received_at,
            deliveries=stored.deliveries,
            applied_at=stored.applied_at,
            outcome=stored.outcome,
        )


# -- the providers' webhooks --------------------------------------------------------------------
@webhooks.post("/webhooks/{provider}", response_model=EventReceivedOut)
async def receive_event(provider: str, request: Request) -> EventReceivedOut:
    """A provider's event (see the module docstring): 200 once kept and applied (again for a
    redelivery), 400 `invalid_signature`, 413 too large, 422 not an event."""
    services = _brain(request)
    limit = services.settings.payments_webhook_body_limit_bytes
    announced = request.headers.get("content-length")
    try:
        body = await read_body(
            request.receive,
            limit=limit,
            announced=int(announced) if announced and announced.isdigit() else None,
        )
    except BodyTooLarge:
        raise HTTPException(413, f"a webhook body is at most {limit} bytes") from None
    headers = {name.lower(): value for name, value in request.headers.items()}
    stored = await run_in_threadpool(
        services.payments.receive, provider=provider, body=body, headers=headers
    )
    return EventReceivedOut(
        provider=stored.event.provider,
        event_id=stored.event.event_id,
        type=stored.event.type,
        deliveries=stored.deliveries,
        outcome=stored.outcome,
    )


# -- the operator -------------------------------------------------------------------------------
@router.get("/subscribers/{subscriber_id}/methods", response_model=list[PaymentMethodOut])
def list_methods(subscriber_id: Id, request: Request) -> list[PaymentMethodOut]:
    """The subscriber's payment methods, oldest first (replaced and revoked ones included)."""
    services = _brain(request)
    services.catalog.get_subscriber(subscriber_id)
    return [PaymentMethodOut.from_domain(m) for m in services.payments.methods(subscriber_id)]


@router.post("/subscribers/{subscriber_id}/methods", response_model=MethodSetupOut)
def set_up_method(subscriber_id: Id, body: MethodSetupIn, request: Request) -> MethodSetupOut:
    """Save a payment method; `action_url` non-empty: the subscriber must authenticate."""
    setup = _brain(request).payments.set_up_method(
        subscriber_id=subscriber_id, provider=body.provider, details=body.details
    )
    return MethodSetupOut(
        method=PaymentMethodOut.from_domain(setup.method),
        action_url=setup.action_url,
        client_secret=setup.client_secret,
    )


@router.get("/subscribers/{subscriber_id}/payments", response_model=list[PaymentOut])
def list_payments(subscriber_id: Id, request: Request) -> list[PaymentOut]:
    services = _brain(request)
    services.catalog.get_subscriber(subscriber_id)
    return [
        PaymentOut.from_domain(p)
        for p in services.payments.store.payments(subscriber_id=subscriber_id)
    ]


@router.post("/payments/{payment_id}/refunds", response_model=RefundOut)
def refund(payment_id: Id, body: RefundIn, request: Request) -> RefundOut:
    """Refund all or part of a payment to the method that paid it, once per `reference`;
    more than is left to refund is 422 `invalid_input` and nothing is refunded."""
    result = _brain(request).payments.refund(
        payment_id=payment_id,
        amount=Money.parse(body.amount, body.currency),
        reference=body.reference,
        reason=body.reason,
    )
    return RefundOut.from_domain(result)


@router.get("/dunning", response_model=list[DunningCaseOut])
def list_dunning(
    request: Request,
    subscriber_id: Annotated[int | None, Query(ge=1)] = None,
    open_only: bool = True,
) -> list[DunningCaseOut]:
    """Dunning cases (open ones by default) with their next retry and suspension dates."""
    services = _brain(request)
    cases = services.payments.dunning.cases(subscriber_id=subscriber_id, open_only=open_only)
    return [DunningCaseOut.from_domain(case, services) for case in cases]


@router.get("/events", response_model=list[ProviderEventOut])
def list_events(
    request: Request,
    provider: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ProviderEventOut]:
    """The provider events kept (audit), most recent first."""
    events = _brain(request).payments.events.events(provider=provider, limit=limit)
    return [ProviderEventOut.from_domain(e) for e in events]
