"""What a charge or a refund came to, and what a failure's reason code means.

A provider answers a charge with one of four outcomes:

- `Paid`: the money is taken (Stripe PaymentIntent `succeeded`, PayPal capture `COMPLETED`);
- `RequiresAction`: the bank wants the cardholder to authenticate (3-D Secure, PSD2 strong
  customer authentication, Delegated Regulation (EU) 2018/389): the subscriber is sent
  `action_url` and the payment completes when they do (a provider event says so);
- `Failed`: refused, with a `FailureCode` (insufficient funds, expired card, AM04 ...);
- `Pending`: accepted, not settled yet (a SEPA debit before its collection date, a bank
  transfer the operator will record): a provider event or the bank's file settles it.

`FailureCode` is the platform's one table of refusal reasons, read by dunning: whether trying the
same method again can succeed (`retryable`) or the subscriber must give another one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date


class PaymentStatus(enum.StrEnum):
    """Where one payment (one charge attempt) stands; `paid` is final (a refund or a
    chargeback is a new fact about it, not a change of status)."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    PAID = "paid"
    FAILED = "failed"


class FailureCode(enum.StrEnum):
    """Why a charge was refused, in the platform's terms (providers' codes map to these)."""

    INSUFFICIENT_FUNDS = "insufficient_funds"  # card `insufficient_funds`; SEPA AM04
    CARD_DECLINED = "card_declined"  # generic decline: do not honour, try again later
    EXPIRED_CARD = "expired_card"
    INCORRECT_DETAILS = "incorrect_details"  # wrong number, CVC, IBAN (SEPA AC01)
    AUTHENTICATION_FAILED = "authentication_failed"  # 3-D Secure refused or abandoned
    ACCOUNT_CLOSED = "account_closed"  # SEPA AC04; card reported lost or stolen
    NO_MANDATE = "no_mandate"  # SEPA MD01: no valid mandate
    REFUND_REQUESTED = "refund_requested"  # SEPA MD06: the payer asked their bank back
    METHOD_REVOKED = "method_revoked"  # the method was withdrawn (mandate revoked, token gone)
    PROVIDER_ERROR = "provider_error"  # the provider failed to process it
    PROVIDER_UNAVAILABLE = "provider_unavailable"  # could not reach the provider

    @property
    def retryable(self) -> bool:
        """Whether charging the same method again later can succeed (dunning retries it);
        otherwise only a new payment method helps (dunning still tells and suspends)."""
        return self in _RETRYABLE


_RETRYABLE = frozenset(
    {
        FailureCode.INSUFFICIENT_FUNDS,
        FailureCode.CARD_DECLINED,
        FailureCode.PROVIDER_ERROR,
        FailureCode.PROVIDER_UNAVAILABLE,
    }
)


@dataclass(frozen=True)
class Paid:
    provider_reference: str


@dataclass(frozen=True)
class RequiresAction:
    provider_reference: str
    action_url: str


@dataclass(frozen=True)
class Failed:
    code: FailureCode
    message: str
    provider_reference: str = ""


@dataclass(frozen=True)
class Pending:
    provider_reference: str = ""
    expected_on: date | None = None  # a SEPA collection date, when known


ChargeOutcome = Paid | RequiresAction | Failed | Pending


def status_of(outcome: ChargeOutcome) -> PaymentStatus:
    if isinstance(outcome, Paid):
        return PaymentStatus.PAID
    if isinstance(outcome, RequiresAction):
        return PaymentStatus.REQUIRES_ACTION
    if isinstance(outcome, Failed):
        return PaymentStatus.FAILED
    return PaymentStatus.PENDING


class RefundStatus(enum.StrEnum):
    PENDING = "pending"  # asked, not settled (a SEPA credit transfer in the next pain.001)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class RefundOutcome:
    """What the provider said about a refund: `provider_reference` its id (Stripe `re_...`)."""

    status: RefundStatus
    provider_reference: str = ""
    message: str = ""
