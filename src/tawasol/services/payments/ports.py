"""The payments port: what a payment provider does for the platform, and where payments are kept.

`PaymentProvider` is implemented once per way of paying (adapters/payments/: `StripeCards`,
SEPA Direct Debit, PayPal; `ManualProvider` for bank transfers and cash). The service
(`services/payments/service.PaymentService`) chooses the provider by the payment method's
`provider` name, records every request and outcome in the `PaymentStore`, writes the ledger
through billing's `BillingStore`, keeps every provider event once in the `ProviderEventLog` and
applies it once, and runs dunning over the `DunningStore`.

Idempotency: every request that can move money carries an idempotency key the service chose
and stored first (`Payment.idempotency_key`, `Refund.idempotency_key`); a provider must send it
along (Stripe's `Idempotency-Key` header, PayPal's `PayPal-Request-Id`) so that a request
repeated after a timeout or a crash is answered, not executed, a second time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tawasol.domain.money import Money
from tawasol.domain.payments.dunning import DunningCase
from tawasol.domain.payments.events import ProviderEvent, StoredEvent
from tawasol.domain.payments.methods import Payer, PaymentMethod, PaymentMethodKind
from tawasol.domain.payments.outcomes import ChargeOutcome, RefundOutcome
from tawasol.domain.payments.payments import Payment, Refund


@dataclass(frozen=True)
class MethodSetup:
    """What setting up a payment method gave: the method (`pending` while the subscriber must
    still act, `active` when it can be charged), and what the subscriber must do: open
    `action_url` (3-D Secure, a PayPal approval, a mandate to sign), or, in the portal's
    browser, confirm with `client_secret` (Stripe.js `confirmCardSetup`)."""

    method: PaymentMethod
    action_url: str = ""
    client_secret: str = ""


class PaymentProvider(Protocol):
    """One way of paying. Every method raises `Unavailable` when the provider cannot be
    reached (nothing is known then: the same request, same key, is sent again later) and
    `PaymentDeclined` when it refuses what it was given (a declined or expired card at set up)."""

    @property
    def name(self) -> str:
        """The provider's name, as stored on payment methods and events ("stripe")."""
        ...

    @property
    def kind(self) -> PaymentMethodKind: ...

    def set_up(
        self, *, payer: Payer, details: Mapping[str, str], idempotency_key: str
    ) -> MethodSetup:
        """Save a payment method for off-session charges. `details` are the provider's: a
        Stripe PaymentMethod id collected by Stripe.js (`payment_method`), a SEPA mandate (IBAN,
        mandate reference, signature date), a PayPal vault setup token. InvalidInput when a
        detail is missing or malformed."""
        ...

    def charge(
        self, *, method: PaymentMethod, amount: Money, idempotency_key: str, description: str
    ) -> ChargeOutcome:
        """Charge `amount` to `method`, off-session (the subscriber is not there): `Paid`,
        `RequiresAction` (the bank asks the cardholder to authenticate), `Failed` with a
        reason code, or `Pending` (settled later by an event)."""
        ...

    def refund(self, *, payment: Payment, amount: Money, idempotency_key: str) -> RefundOutcome:
        """Give back `amount` of a paid `payment` to the method that paid it (full or
        partial; the service checked it is not more than what is left)."""
        ...

    def verify_event(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Check that `body` comes from the provider (its signature, before parsing the body)
        and translate it. Raises `InvalidSignature` when it does not, InvalidInput when the
        body is not an event."""
        ...


class PaymentStore(Protocol):
    """Payment methods, payments (charge attempts) and refunds."""

    def add_method(self, method: PaymentMethod) -> PaymentMethod:
        """Store a new method (its id given). Conflict when (provider, method_reference) is
        known already."""
        ...

    def save_method(self, method: PaymentMethod) -> PaymentMethod:
        """Replace a stored method's status, label, expiry and details; NotFound."""
        ...

    def method(self, method_id: int) -> PaymentMethod:
        """NotFound."""
        ...

    def find_method(self, *, provider: str, method_reference: str) -> PaymentMethod | None: ...

    def methods(self, *, subscriber_id: int | None = None) -> Sequence[PaymentMethod]:
        """Methods, oldest first (every subscriber's when None)."""
        ...

    def start_payment(self, payment: Payment) -> tuple[Payment, bool]:
        """Store a payment before its request is sent: (the stored payment, True), or the
        payment already stored under its idempotency key and False."""
        ...

    def save_payment(self, payment: Payment) -> Payment:
        """Replace a stored payment's status, references and failure; NotFound."""
        ...

    def payment(self, payment_id: int) -> Payment:
        """NotFound."""
        ...

    def find_payment(
        self, *, idempotency_key: str = "", provider: str = "", provider_reference: str = ""
    ) -> Payment | None:
        """By the platform's key, or by the provider's reference (`pi_...`)."""
        ...

    def payments(
        self, *, subscriber_id: int | None = None, reference: str | None = None
    ) -> Sequence[Payment]:
        """Payments, oldest first, of one subscriber and/or for one billing charge."""
        ...

    def start_refund(self, refund: Refund) -> tuple[Refund, bool]:
        """Like `start_payment`, for a refund."""
        ...

    def save_refund(self, refund: Refund) -> Refund: ...

    def refunds(self, *, payment_id: int) -> Sequence[Refund]: ...

    def find_refund(self, *, provider_reference: str) -> Refund | None: ...


class ProviderEventLog(Protocol):
    """Every provider event as received, once per (provider, event_id), for audit."""

    def keep(self, event: ProviderEvent, *, at: datetime) -> StoredEvent:
        """Store `event` unless it is known; a known one only counts another delivery. Returns
        it as stored (`applied_at` set when it was applied already)."""
        ...

    def mark_applied(self, *, provider: str, event_id: str, at: datetime, outcome: str) -> None: ...

    def unapplied(self, *, limit: int = 100) -> Sequence[StoredEvent]:
        """Events kept but not applied (a brain died in between), oldest first."""
        ...

    def events(self, *, provider: str | None = None, limit: int = 100) -> Sequence[StoredEvent]:
        """The most recent events first."""
        ...


class DunningStore(Protocol):
    """Dunning cases, one per unpaid billing charge."""

    def open_case(self, case: DunningCase) -> tuple[DunningCase, bool]:
        """Store a new case: (it, True), or the case already open for its reference, False."""
        ...

    def save_case(self, case: DunningCase) -> DunningCase:
        """NotFound."""
        ...

    def case(self, reference: str) -> DunningCase | None: ...

    def cases(
        self, *, subscriber_id: int | None = None, open_only: bool = True
    ) -> Sequence[DunningCase]:
        """Cases, oldest first."""
        ...
