"""What a payment provider tells afterwards, in the platform's terms.

A *provider event* is one message from a provider about something that happened on its side:
a Stripe webhook (`payment_intent.succeeded`, `setup_intent.succeeded` ...), a PayPal webhook, a
line of a bank's SEPA returns file (pain.002/camt.054 with an R-transaction reason code). The
adapter checks its authenticity (a signature, before reading the body) and translates it into
a `ProviderEvent`: the provider's own `event_id` and `type`, the body as received (`payload`,
kept for audit), and what it means (`kind` and the references it concerns).

Every event is kept once per (provider, event_id) and applied once: a delivery repeated
three times, or events arriving out of order (a `payment_failed` after a `succeeded` of the same
payment), change nothing twice (a paid payment stays paid: `Payment.after`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.outcomes import FailureCode


class EventKind(enum.StrEnum):
    """What an event means for the platform."""

    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_REQUIRES_ACTION = "payment_requires_action"
    REFUND_SUCCEEDED = "refund_succeeded"
    REFUND_FAILED = "refund_failed"
    CHARGEBACK = "chargeback"  # the payer's bank took a payment back (dispute, SEPA MD06)
    METHOD_ACTIVE = "method_active"  # a setup completed (SetupIntent succeeded, mandate signed)
    METHOD_FAILED = "method_failed"  # a setup failed (3-D Secure refused on the SetupIntent)
    METHOD_REVOKED = "method_revoked"  # detached card, revoked mandate, deleted token
    IGNORED = "ignored"  # kept for audit, nothing to do


@dataclass(frozen=True)
class ProviderEvent:
    """One provider event (see the module docstring).

    `payment_reference` is the provider's id of the payment it concerns (Stripe `pi_...`),
    `idempotency_key` the platform's key of that payment when the provider echoes it (Stripe
    metadata), `method_reference` the payment method's (Stripe `pm_...`, a mandate reference),
    `refund_reference` the refund's. `amount` is what moved, when the event says.
    """

    provider: str
    event_id: str
    type: str
    kind: EventKind
    occurred_at: datetime
    payload: str
    payment_reference: str = ""
    idempotency_key: str = ""
    method_reference: str = ""
    refund_reference: str = ""
    amount: Money | None = None
    failure_code: FailureCode | None = None
    failure_message: str = ""

    def __post_init__(self) -> None:
        if not self.provider or not self.event_id or len(self.event_id) > 200:
            raise InvalidInput("a provider event needs its provider and an id of 1-200 chars")
        if self.occurred_at.tzinfo is None:
            raise InvalidInput("a provider event's time must be time-zone aware")


@dataclass(frozen=True)
class StoredEvent:
    """A provider event as kept: when it was received and, once applied, when and with what
    result (`outcome`: "payment 12 paid", "ignored: unknown payment pi_..." ...)."""

    event: ProviderEvent
    received_at: datetime
    deliveries: int = 1
    applied_at: datetime | None = None
    outcome: str = ""
    id: int = 0
