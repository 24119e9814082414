"""Payments and refunds: each attempt to take money, and each amount given back.

A *payment* is one charge of one amount to one payment method for one billing charge (its
`reference`, the ledger key of the invoice's charge: `renew:42:2026-10-01T00:00:00+00:00`).
Its `idempotency_key` is sent with every request to the provider, so a request repeated after a
timeout or a crash never charges twice (Stripe keeps a key 24 hours; the key is also unique in
the platform's store, for ever). A retry of a failed renewal is a new payment with a new key
(`<reference>#2`): the provider must not answer it with the first attempt's refusal.

A *refund* gives back all or part of a paid payment, to the same method (a card refund goes to
the card; SEPA by credit transfer to the mandate's IBAN). The refunds of a payment never add up
to more than it paid (`check_refund`). The ledger records a payment as a `payment` entry and a
refund as a `refund` entry, each under the provider's reference, so the same fact told twice
(a webhook delivered three times) is written once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.outcomes import (
    ChargeOutcome,
    Failed,
    FailureCode,
    PaymentStatus,
    RefundStatus,
    RequiresAction,
    status_of,
)


@dataclass(frozen=True)
class Payment:
    """One charge attempt (see the module docstring). `id` is 0 until stored."""

    idempotency_key: str
    subscriber_id: int
    method_id: int
    provider: str
    amount: Money
    reference: str
    status: PaymentStatus
    created_at: datetime
    provider_reference: str = ""
    action_url: str = ""
    failure_code: FailureCode | None = None
    failure_message: str = ""
    id: int = 0

    def __post_init__(self) -> None:
        if self.amount.amount <= 0:
            raise InvalidInput("a payment is a positive amount", amount=str(self.amount))
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise InvalidInput("a payment needs an idempotency key of 1-200 characters")

    def after(self, outcome: ChargeOutcome) -> Payment:
        """This payment once `outcome` is known. `paid` is final: a late failure or action
        request about a paid payment (events out of order) changes nothing."""
        if self.status is PaymentStatus.PAID:
            return self
        return replace(
            self,
            status=status_of(outcome),
            provider_reference=outcome.provider_reference or self.provider_reference,
            action_url=outcome.action_url if isinstance(outcome, RequiresAction) else "",
            failure_code=outcome.code if isinstance(outcome, Failed) else None,
            failure_message=outcome.message if isinstance(outcome, Failed) else "",
        )

    @property
    def ledger_key(self) -> str:
        """The idempotency key of this payment's ledger entry: the provider's own id of the
        money movement when there is one, so every report of it writes one entry."""
        return f"payment:{self.provider}:{self.provider_reference or self.idempotency_key}"


@dataclass(frozen=True)
class Refund:
    """Money given back on one payment, to the method that paid it. `id` 0 until stored."""

    idempotency_key: str
    payment_id: int
    amount: Money
    status: RefundStatus
    created_at: datetime
    reason: str = ""
    provider_reference: str = ""
    id: int = 0

    def __post_init__(self) -> None:
        if self.amount.amount <= 0:
            raise InvalidInput("a refund is a positive amount", amount=str(self.amount))
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise InvalidInput("a refund needs an idempotency key of 1-200 characters")


def refundable(payment: Payment, refunds: Iterable[Refund]) -> Money:
    """What is left to refund on `payment`: what it paid less the refunds not failed."""
    if payment.status is not PaymentStatus.PAID:
        return Money(Decimal(0), payment.amount.currency)
    given = sum(
        (r.amount.amount for r in refunds if r.status is not RefundStatus.FAILED), Decimal(0)
    )
    return Money(payment.amount.amount - given, payment.amount.currency)


def check_refund(payment: Payment, refunds: Iterable[Refund], amount: Money) -> None:
    """Raises InvalidInput unless `amount` can be refunded on `payment`: a positive amount in
    its currency, of a paid payment, at most what is left (full or partial refunds)."""
    if amount.currency != payment.amount.currency:
        raise InvalidInput(
            f"payment {payment.id} was made in {payment.amount.currency}, not {amount.currency}",
            payment_id=payment.id,
        )
    if amount.amount <= 0:
        raise InvalidInput("a refund is a positive amount", amount=str(amount))
    if payment.status is not PaymentStatus.PAID:
        raise InvalidInput(
            f"payment {payment.id} is {payment.status.value}: only a paid payment is refunded",
            payment_id=payment.id,
            status=payment.status.value,
        )
    left = refundable(payment, refunds)
    if amount > left:
        raise InvalidInput(
            f"a refund of {amount} is more than payment {payment.id} has left to refund "
            f"({left} of {payment.amount})",
            payment_id=payment.id,
            refund=str(amount),
            refundable=str(left),
        )
