"""The billing admin API's documents: ledgers, invoices and credit notes, payments, lifecycle
commands, runs and reports. Amounts are decimal strings with their ISO 4217 currency, never
JSON numbers (a float would round them)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tawasol.adapters.api.schemas.fields import (
    Amount,
    Code,
    Currency,
    Id,
    Instant,
    Strict,
    Text,
)
from tawasol.domain.billing.documents import Document
from tawasol.domain.billing.ledger import Account
from tawasol.domain.billing.lifecycle import CancelReason
from tawasol.services.billing.lifecycle import LifecycleOutcome, Timing
from tawasol.services.billing.run import RunSummary


class EntryOut(BaseModel):
    kind: str
    amount: str
    idempotency_key: str
    reference: str
    description: str
    recorded_at: datetime


class AccountOut(BaseModel):
    """One account (currency) of a subscriber: balance > 0 when the subscriber owes."""

    currency: str
    balance: str
    entries: list[EntryOut]

    @classmethod
    def from_domain(cls, account: Account) -> AccountOut:
        return cls(
            currency=account.currency,
            balance=str(account.balance.amount),
            entries=[
                EntryOut(
                    kind=entry.kind.value,
                    amount=str(entry.amount.amount),
                    idempotency_key=entry.idempotency_key,
                    reference=entry.reference,
                    description=entry.description,
                    recorded_at=entry.recorded_at,
                )
                for entry in account.entries
            ],
        )


class DocumentOut(BaseModel):
    number: str
    kind: str
    issued_at: datetime
    subscriber_id: int
    currency: str
    total_net: str
    total_vat: str
    total_gross: str
    corrects: str
    locale: str

    @classmethod
    def from_domain(cls, document: Document) -> DocumentOut:
        return cls(
            number=document.number,
            kind=document.kind.value,
            issued_at=document.issued_at,
            subscriber_id=document.subscriber_id,
            currency=document.currency,
            total_net=str(document.total_net.amount),
            total_vat=str(document.total_vat.amount),
            total_gross=str(document.total_gross.amount),
            corrects=document.corrects,
            locale=document.locale,
        )


class MoneyMovementIn(Strict):
    """A payment received or a refund paid out by bank transfer or cash."""

    amount: Amount
    currency: Currency
    reference: Text = Field(min_length=1, max_length=140, description="the transfer's reference")


class MoneyMovementOut(BaseModel):
    recorded: bool = Field(description="false: this reference was recorded already")
    balance: str
    currency: str


class PlanChangeNowIn(Strict):
    plan_code: Code
    timing: Timing = Timing.NOW
    at: Instant | None = Field(default=None, description="default: now")
    acknowledged_incidents: list[Id] = Field(default=[], max_length=100)


class CancellationIn(Strict):
    timing: Timing = Timing.NOW
    reason: CancelReason = CancelReason.CUSTOMER
    at: Instant | None = None


class MomentIn(Strict):
    at: Instant | None = None


class LifecycleOut(BaseModel):
    subscription_id: int
    plan_code: str
    status: str
    period_start: datetime
    period_end: datetime
    next_plan_code: str | None
    cancel_at_period_end: bool
    charged: str
    credited: str
    currency: str
    documents: list[str]

    @classmethod
    def from_domain(cls, outcome: LifecycleOutcome) -> LifecycleOut:
        subscription = outcome.subscription
        return cls(
            subscription_id=subscription.id,
            plan_code=subscription.plan_code,
            status=subscription.status.value,
            period_start=subscription.period_start,
            period_end=subscription.period_end,
            next_plan_code=outcome.terms.next_plan_code,
            cancel_at_period_end=outcome.terms.cancel_at_period_end,
            charged=str(outcome.charged.amount),
            credited=str(outcome.credited.amount),
            currency=outcome.charged.currency,
            documents=list(outcome.documents),
        )


class RunIn(Strict):
    at: Instant | None = Field(default=None, description="bill as of this time; default now")
    dry_run: bool = Field(default=True, description="show what the run would do, write nothing")


class RunOut(BaseModel):
    at: datetime
    dry_run: bool
    summary: dict[str, str]
    errors: list[dict[str, str | int]]

    @classmethod
    def from_domain(cls, at: datetime, dry_run: bool, summary: RunSummary) -> RunOut:
        return cls(
            at=at,
            dry_run=dry_run,
            summary=dict(summary.rows()),
            errors=[{"subscription_id": i, "message": m} for i, m in summary.errors],
        )


def _rounded(digits: str) -> BeforeValidator:
    """A report amount (Decimal) as text rounded to `digits` for display."""
    return BeforeValidator(lambda amount: str(Decimal(amount).quantize(Decimal(digits))))


# Report amounts as text: exact, or rounded for display (the report keeps them exact).
Exact = Annotated[str, BeforeValidator(str)]
Cents = Annotated[str, _rounded("0.01")]
Tenths = Annotated[str, _rounded("0.1")]


class RevenueOut(BaseModel):
    """A `RevenueRow`, read by field name."""

    model_config = ConfigDict(from_attributes=True)

    plan_code: str
    currency: str
    charged: Exact
    credited: Exact
    vat: Exact
    net: Exact


class MarginOut(BaseModel):
    """A `MarginRow`, read by field name; amounts rounded to the hundredth for display."""

    model_config = ConfigDict(from_attributes=True)

    plan_code: str
    destination: str
    currency: str
    minutes: Tenths
    revenue: Cents
    cdr_cost: Cents
    flat_rate_cost: Cents
    margin: Cents


class CreditsOut(BaseModel):
    incident_id: int
    currency: str
    credited: str
