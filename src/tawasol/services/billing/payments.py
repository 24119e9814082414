"""Payments the operator records by hand (bank transfer, cash): `PaymentMethodKind.MANUAL`.

Card, SEPA and PayPal go through `tawasol.services.payments` (the `PaymentProvider` port); a
subscriber without an active method pays by transfer, which this records. A manual
payment is a ledger entry of kind `payment` under the key the operator gives (the bank's
transfer reference), so recording the same transfer twice records it once.
"""

from __future__ import annotations

from datetime import datetime

from tawasol.domain.billing.ledger import EntryKind, LedgerEntry
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.outcomes import PaymentStatus
from tawasol.services.billing.ports import BillingStep, BillingStore


class ManualPayments:
    """The `Payments` port for money that arrives outside the platform."""

    def __init__(self, *, store: BillingStore) -> None:
        self._store = store

    def collect(self, *, subscriber_id: int, amount: Money, reference: str) -> PaymentStatus:
        """Nothing to collect: the operator records the transfer when it arrives."""
        return PaymentStatus.PENDING

    def record(self, *, subscriber_id: int, amount: Money, reference: str, at: datetime) -> bool:
        """Record a payment received; False when this reference was recorded already.

        Raises InvalidInput for a non-positive amount or an empty reference, NotFound for an
        unknown subscriber.
        """
        if not reference.strip():
            raise InvalidInput("a manual payment needs the transfer's reference")
        self._store.customer(subscriber_id)
        account = self._store.account(subscriber_id=subscriber_id, currency=amount.currency)
        key = f"payment:manual:{reference.strip()}"
        entry = LedgerEntry(
            account.id, EntryKind.PAYMENT, amount, key, at, reference=reference.strip()
        )
        return self._store.apply(
            BillingStep(key, entries=(entry,)), entity_code="", number_prefix=""
        )

    def refund(self, *, subscriber_id: int, amount: Money, reference: str, at: datetime) -> bool:
        """Record money paid back to the subscriber (by bank transfer), once per reference;
        False when this reference was recorded already.

        A refund pays out what the account holds in the subscriber's favour (credit notes
        after a cancellation or an outage) from money actually received: larger than the
        credit balance, or than the payments not yet refunded, it is refused with InvalidInput
        and nothing is written. NotFound for an unknown subscriber.
        """
        if not reference.strip():
            raise InvalidInput("a refund needs the transfer's reference")
        if amount.amount <= 0:
            raise InvalidInput("a refund is a positive amount", amount=str(amount))
        self._store.customer(subscriber_id)
        account = self._store.account(subscriber_id=subscriber_id, currency=amount.currency)
        key = f"refund:manual:{reference.strip()}"
        if self._store.applied(key):
            return False
        owed = Money(-account.balance.amount, account.currency)
        if amount > owed:
            raise InvalidInput(
                f"a refund of {amount} is more than the account holds in the subscriber's "
                f"favour ({owed if owed.amount > 0 else Money(owed.amount * 0, owed.currency)})",
                refund=str(amount),
                owed=str(owed),
            )
        entry = LedgerEntry(
            account.id, EntryKind.REFUND, amount, key, at, reference=reference.strip()
        )
        return self._store.apply(
            BillingStep(key, entries=(entry,)), entity_code="", number_prefix=""
        )
