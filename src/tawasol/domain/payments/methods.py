"""A subscriber's payment method: what renewals are charged to.

A *payment method* is the means a subscriber gave the operator to take money: a card saved at
Stripe (a PaymentMethod attached to a Customer after a SetupIntent, possibly authenticated with
3-D Secure), a SEPA Direct Debit mandate (the subscriber's signed authorisation for the
operator's creditor identifier to debit their IBAN), a PayPal vaulted payment token, or nothing
but the operator's bookkeeping (manual: bank transfer, cash at an agent).

The platform keeps only the provider's references (customer, method, mandate reference) and
what the subscriber recognises (`label`: "Visa •••• 4242 12/2027"): never a card number, and an
IBAN only masked. A subscriber has at most one *active* method; a new one that becomes active
replaces the previous one (`replaced`), which stays on record so that refunds of payments it made
still go back the way the money came in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from tawasol.domain.errors import Conflict, InvalidInput


class PaymentMethodKind(enum.StrEnum):
    """How a subscriber pays."""

    CARD = "card"  # a card saved at the card processor (Stripe), charged off-session
    SEPA = "sepa"  # SEPA Direct Debit under a mandate (Core scheme)
    PAYPAL = "paypal"  # a PayPal vaulted payment token
    MANUAL = "manual"  # bank transfer or cash the operator records by hand


class PaymentMethodStatus(enum.StrEnum):
    """Where a payment method stands. Only an `active` one is charged.

    pending -> active -> replaced | expired | revoked; pending -> revoked (setup abandoned or
    refused). `replaced`, `expired` and `revoked` are final: a new card is a new method.
    """

    PENDING = "pending"  # set up started: authentication (3-D Secure) or signature awaited
    ACTIVE = "active"  # renewals are charged to it
    REPLACED = "replaced"  # a newer method of the subscriber became active
    EXPIRED = "expired"  # a card past its expiry month; a mandate unused for 36 months
    REVOKED = "revoked"  # withdrawn: mandate revoked, card detached, token deleted, setup failed


_M = PaymentMethodStatus
METHOD_TRANSITIONS: dict[PaymentMethodStatus, frozenset[PaymentMethodStatus]] = {
    _M.PENDING: frozenset({_M.ACTIVE, _M.REVOKED}),
    _M.ACTIVE: frozenset({_M.REPLACED, _M.EXPIRED, _M.REVOKED}),
    _M.REPLACED: frozenset(),
    _M.EXPIRED: frozenset(),
    _M.REVOKED: frozenset(),
}


@dataclass(frozen=True)
class Payer:
    """Who pays, as a payment provider and the notices need them."""

    subscriber_id: int
    name: str
    email: str
    phone: str
    locale: str
    country: str = ""


@dataclass(frozen=True)
class PaymentMethod:
    """One payment method of one subscriber (see the module docstring).

    `provider` names the adapter that charges it ("stripe", "sepa", "paypal", "manual");
    `customer_reference` is the provider's customer (Stripe `cus_...`; "" where there is none),
    `method_reference` the method itself (Stripe `pm_...`, the SEPA mandate reference, the
    PayPal vault token id): unique per provider. `expires` is the last day a card can be
    charged (the end of its expiry month). `details` holds provider facts that are not secrets
    (a mandate's signature date, a masked IBAN, a card's brand). `id` is 0 until stored.
    """

    subscriber_id: int
    kind: PaymentMethodKind
    provider: str
    customer_reference: str
    method_reference: str
    status: PaymentMethodStatus
    label: str = ""
    expires: date | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None
    id: int = 0

    def __post_init__(self) -> None:
        if not self.provider or not self.method_reference:
            raise InvalidInput("a payment method needs its provider and its reference")
        if len(self.method_reference) > 200 or len(self.customer_reference) > 200:
            raise InvalidInput("a provider reference has at most 200 characters")

    def changed_to(self, status: PaymentMethodStatus) -> PaymentMethod:
        """This method with a new status, if `METHOD_TRANSITIONS` allows it (Conflict)."""
        if status is self.status:
            return self
        if status not in METHOD_TRANSITIONS[self.status]:
            raise Conflict(
                f"payment method {self.id} is {self.status.value}: it cannot become {status.value}",
                payment_method_id=self.id,
                status=self.status.value,
            )
        return replace(self, status=status)

    def usable_on(self, day: date) -> bool:
        """Active and, for a card, not past its expiry month on `day`."""
        return self.status is PaymentMethodStatus.ACTIVE and (
            self.expires is None or day <= self.expires
        )


def card_expiry(year: int, month: int) -> date:
    """The last day a card expiring `month`/`year` can be charged (cards are valid through
    the end of their expiry month: ISO/IEC 7813). Raises InvalidInput for a month out of 1-12."""
    if not 1 <= month <= 12 or not 2000 <= year <= 2200:
        raise InvalidInput("a card expiry is a month 1-12 of a year", year=year, month=month)
    following = date(year + month // 12, month % 12 + 1, 1)
    return date.fromordinal(following.toordinal() - 1)
