"""The admin API for billing (`/admin/v1/billing/...`): ledgers, invoices and credit notes
(JSON, HTML, PDF), manual payments and refunds, the subscription lifecycle, billing runs and
reports. Same guards as every admin route; errors go through the one error table
(`errors.ERROR_TABLE`): billing not set up is 422 `invalid_configuration`, a refused transition
409 `conflict`, bad money 422 `invalid_input`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from tawasol.adapters.api.admin import ADMIN_GUARDS
from tawasol.adapters.api.schemas import Id, Instant
from tawasol.adapters.api.schemas.billing import (
    AccountOut,
    CancellationIn,
    CreditsOut,
    DocumentOut,
    LifecycleOut,
    MarginOut,
    MomentIn,
    MoneyMovementIn,
    MoneyMovementOut,
    PlanChangeNowIn,
    RevenueOut,
    RunIn,
    RunOut,
)
from tawasol.adapters.api.services import ApiServices, BillingServices
from tawasol.adapters.documents.render import document_pdf, render_html
from tawasol.domain.money import Money
from tawasol.services.billing.reports import credits_per_incident

router = APIRouter(prefix="/admin/v1/billing", tags=["billing"], dependencies=ADMIN_GUARDS)


def _brain(request: Request) -> ApiServices:
    brain: ApiServices = request.app.state.brain
    return brain


def _billing(request: Request) -> BillingServices:
    return _brain(request).billing


def _when(request: Request, at: datetime | None) -> datetime:
    return at or _brain(request).clock()


# -- ledger and documents -----------------------------------------------------------------------
@router.get("/subscribers/{subscriber_id}/ledger", response_model=list[AccountOut])
def get_ledger(subscriber_id: Id, request: Request) -> list[AccountOut]:
    """The subscriber's accounts (one per currency), their entries and balances."""
    _brain(request).catalog.get_subscriber(subscriber_id)
    accounts = _billing(request).store.accounts(subscriber_id=subscriber_id)
    return [AccountOut.from_domain(account) for account in accounts]


@router.get("/subscribers/{subscriber_id}/documents", response_model=list[DocumentOut])
def list_documents(subscriber_id: Id, request: Request) -> list[DocumentOut]:
    """The subscriber's invoices and credit notes, oldest first."""
    _brain(request).catalog.get_subscriber(subscriber_id)
    documents = _billing(request).store.subscriber_documents(subscriber_id=subscriber_id)
    return [DocumentOut.from_domain(document) for document in documents]


@router.get("/documents/{number}", response_model=DocumentOut)
def get_document(number: str, request: Request) -> DocumentOut:
    return DocumentOut.from_domain(_billing(request).store.document(number))


@router.get("/documents/{number}/html", response_class=HTMLResponse)
def get_document_html(number: str, request: Request) -> HTMLResponse:
    """The document as issued, in its subscriber's language (fr, en, ar right to left)."""
    billing = _billing(request)
    document = billing.store.document(number)
    return HTMLResponse(render_html(document, billing.run.settings.entity))


@router.get("/documents/{number}/pdf", response_class=Response)
def get_document_pdf(number: str, request: Request) -> Response:
    """The PDF sent to the subscriber (Factur-X for a business)."""
    billing = _billing(request)
    document = billing.store.document(number)
    return Response(
        document_pdf(document, billing.run.settings.entity),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{document.number}.pdf"'},
    )


# -- payments and refunds ---------------------------------------------------------------------
def _money_movement(
    request: Request, subscriber_id: int, body: MoneyMovementIn, *, refund: bool
) -> MoneyMovementOut:
    billing = _billing(request)
    money = Money.parse(body.amount, body.currency)
    record = billing.payments.refund if refund else billing.payments.record
    recorded = record(
        subscriber_id=subscriber_id,
        amount=money,
        reference=body.reference,
        at=_brain(request).clock(),
    )
    account = billing.store.account(subscriber_id=subscriber_id, currency=money.currency)
    return MoneyMovementOut(
        recorded=recorded, balance=str(account.balance.amount), currency=money.currency
    )


@router.post("/subscribers/{subscriber_id}/payments", response_model=MoneyMovementOut)
def post_payment(subscriber_id: Id, body: MoneyMovementIn, request: Request) -> MoneyMovementOut:
    """Record a payment received by bank transfer or cash (once per reference)."""
    return _money_movement(request, subscriber_id, body, refund=False)


@router.post("/subscribers/{subscriber_id}/refunds", response_model=MoneyMovementOut)
def post_refund(subscriber_id: Id, body: MoneyMovementIn, request: Request) -> MoneyMovementOut:
    """Record money paid back (once per reference); more than the account holds in the
    subscriber's favour, or than was paid, is refused (422) and nothing is written."""
    return _money_movement(request, subscriber_id, body, refund=True)


# -- the subscription lifecycle ---------------------------------------------------------------
@router.post("/subscribers/{subscriber_id}/plan-change", response_model=LifecycleOut)
def post_plan_change(subscriber_id: Id, body: PlanChangeNowIn, request: Request) -> LifecycleOut:
    """Change plan now (unused part credited, new plan invoiced) or at period end. A plan in
    another currency is 422 and nothing is written."""
    brain = _brain(request)
    brain.sales_guard.check(
        brain.catalog.get_plan(body.plan_code), acknowledged=body.acknowledged_incidents
    )
    outcome = brain.billing.lifecycle.change_plan(
        subscriber_id=subscriber_id,
        plan_code=body.plan_code,
        timing=body.timing,
        at=_when(request, body.at),
    )
    brain.authorizer.invalidate()
    return LifecycleOut.from_domain(outcome)


@router.post("/subscribers/{subscriber_id}/cancellation", response_model=LifecycleOut)
def post_cancellation(subscriber_id: Id, body: CancellationIn, request: Request) -> LifecycleOut:
    """Cancel now (unused part credited where the reason gives a refund) or at period end."""
    outcome = _billing(request).lifecycle.cancel(
        subscriber_id=subscriber_id,
        timing=body.timing,
        reason=body.reason,
        at=_when(request, body.at),
    )
    _brain(request).authorizer.invalidate()
    return LifecycleOut.from_domain(outcome)


def _hold(request: Request, subscriber_id: int, body: MomentIn, *, pause: bool) -> LifecycleOut:
    lifecycle = _billing(request).lifecycle
    command = lifecycle.pause if pause else lifecycle.resume
    outcome = command(subscriber_id=subscriber_id, at=_when(request, body.at))
    _brain(request).authorizer.invalidate()
    return LifecycleOut.from_domain(outcome)


@router.post("/subscribers/{subscriber_id}/pause", response_model=LifecycleOut)
def post_pause(subscriber_id: Id, body: MomentIn, request: Request) -> LifecycleOut:
    """Put the running subscription on hold: no calls, no renewal (409 unless active)."""
    return _hold(request, subscriber_id, body, pause=True)


@router.post("/subscribers/{subscriber_id}/resume", response_model=LifecycleOut)
def post_resume(subscriber_id: Id, body: MomentIn, request: Request) -> LifecycleOut:
    """Resume: the period end moves on by the time paused (409 unless paused)."""
    return _hold(request, subscriber_id, body, pause=False)


# -- runs and reports -------------------------------------------------------------------------
@router.post("/runs", response_model=RunOut)
def post_run(body: RunIn, request: Request) -> RunOut:
    """Run billing as of `at` (default now); a dry run (the default) writes nothing."""
    at = _when(request, body.at)
    summary = _billing(request).run.run(at=at, dry_run=body.dry_run)
    return RunOut.from_domain(at, body.dry_run, summary)


@router.get("/reports/revenue", response_model=list[RevenueOut])
def get_revenue(
    request: Request, start: Annotated[Instant, Query()], end: Annotated[Instant, Query()]
) -> list[RevenueOut]:
    """Invoiced less credited per plan in [start, end), net of VAT."""
    report = _billing(request).reports.period(start=start, end=end)
    return [RevenueOut.model_validate(row) for row in report.revenue]


@router.get("/reports/margins", response_model=list[MarginOut])
def get_margins(
    request: Request, start: Annotated[Instant, Query()], end: Annotated[Instant, Query()]
) -> list[MarginOut]:
    """Revenue, carrier cost (CDRs + flat-rate fees spread) and margin per plan and
    destination in [start, end)."""
    report = _billing(request).reports.period(start=start, end=end)
    return [MarginOut.model_validate(row) for row in report.margins]


@router.get("/reports/credits", response_model=list[CreditsOut])
def get_credits(request: Request) -> list[CreditsOut]:
    """Outage credit notes' total per incident (VAT included)."""
    billing = _billing(request)
    totals = credits_per_incident(
        billing.store.documents(entity_code=billing.run.settings.entity.code)
    )
    return [
        CreditsOut(incident_id=incident, currency=currency, credited=str(total))
        for (incident, currency), total in sorted(totals.items())
    ]
