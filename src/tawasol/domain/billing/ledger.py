"""The ledger: every amount a subscriber's account owes or was given, as append-only entries.

An *account* holds one subscriber's money in one currency. Each *entry* says what happened
(a charge for a period, a payment received, a credit note, a refund paid out, a chargeback from
the bank, an operator's adjustment) with a positive amount; its kind gives the direction. The
*balance* is derived, never stored: the sum of the entries, positive when the subscriber owes
money. Nothing is edited or deleted: a mistake is corrected by a new entry (double-entry
bookkeeping's rule, and the French Code de commerce art. L123-22 on records that cannot be
altered).

Every entry carries an *idempotency key* chosen by whoever writes it ("renewal:42:7" for period
7 of subscription 42, "outage-credit:3:42" for incident 3 on subscription 42): writing the same
entry twice records it once, writing a different entry under a used key is refused. Re-running
the billing run or replaying an incident therefore never charges or credits twice.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.money import Money


class EntryKind(enum.StrEnum):
    """What an entry records, and so which way it moves the balance (+: the subscriber owes)."""

    CHARGE = "charge"  # an invoice for a period or a plan change: +
    PAYMENT = "payment"  # money received: -
    CREDIT = "credit"  # a credit note (outage, pro-rata): -
    REFUND = "refund"  # money paid back to the subscriber: + (their credit is used up)
    CHARGEBACK = "chargeback"  # the bank took a payment back: +
    ADJUSTMENT = "adjustment"  # an operator's correction, either sign

    @property
    def sign(self) -> int:
        return -1 if self in (EntryKind.PAYMENT, EntryKind.CREDIT) else 1


@dataclass(frozen=True)
class LedgerEntry:
    """One line of an account's history.

    `amount` is positive (an adjustment may be negative: a correction in the subscriber's
    favour); `reference` names the document or period it belongs to (an invoice number, a
    subscription period), `recorded_at` is when it was written (UTC).
    """

    account_id: int
    kind: EntryKind
    amount: Money
    idempotency_key: str
    recorded_at: datetime
    reference: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise InvalidInput("a ledger entry needs an idempotency key of 1-200 characters")
        if self.recorded_at.tzinfo is None:
            raise InvalidInput("ledger times must be time-zone aware")
        if self.kind is EntryKind.ADJUSTMENT:
            if self.amount.amount == 0:
                raise InvalidInput("an adjustment of zero records nothing")
        elif self.amount.amount <= 0:
            raise InvalidInput(
                f"a {self.kind.value} is a positive amount; its kind gives the direction",
                amount=str(self.amount),
            )

    @property
    def signed_amount(self) -> Decimal:
        """The entry's effect on the balance (+: the subscriber owes more)."""
        return self.amount.amount * self.kind.sign

    def same_as(self, other: LedgerEntry) -> bool:
        """Whether `other` records the same fact (its time of writing aside)."""
        return (
            self.account_id,
            self.kind,
            self.amount,
            self.idempotency_key,
            self.reference,
        ) == (other.account_id, other.kind, other.amount, other.idempotency_key, other.reference)


@dataclass(frozen=True)
class Account:
    """A subscriber's account in one currency and its entries, oldest first."""

    id: int
    subscriber_id: int
    currency: str
    entries: tuple[LedgerEntry, ...] = ()

    def __post_init__(self) -> None:
        for entry in self.entries:
            self._check_belongs(entry)

    def _check_belongs(self, entry: LedgerEntry) -> None:
        if entry.account_id != self.id:
            raise InvalidInput("entry of another account", account_id=entry.account_id)
        if entry.amount.currency != self.currency:
            raise InvalidInput(
                f"account {self.id} is kept in {self.currency}, not {entry.amount.currency}",
                account_id=self.id,
                currency=entry.amount.currency,
            )

    @property
    def balance(self) -> Money:
        """What the subscriber owes (negative: what the operator owes them)."""
        return Money(sum((e.signed_amount for e in self.entries), Decimal(0)), self.currency)

    def total(self, *kinds: EntryKind, reference: str | None = None) -> Money:
        """The sum of the entries of these kinds (optionally for one reference)."""
        return Money(
            sum(
                (
                    e.amount.amount
                    for e in self.entries
                    if e.kind in kinds and (reference is None or e.reference == reference)
                ),
                Decimal(0),
            ),
            self.currency,
        )

    @property
    def refundable(self) -> Money:
        """The most that can be paid back: payments received, less what was refunded or
        taken back by the bank already."""
        return self.total(EntryKind.PAYMENT) - self.total(EntryKind.REFUND, EntryKind.CHARGEBACK)

    def find(self, idempotency_key: str) -> LedgerEntry | None:
        return next((e for e in self.entries if e.idempotency_key == idempotency_key), None)

    def check_new(self, entry: LedgerEntry) -> bool:
        """Whether `entry` must be written: False if the same entry is there already.

        Raises Conflict for a different entry under a used key, InvalidInput for an entry of
        another account or currency, and for a refund larger than what can be refunded.
        """
        self._check_belongs(entry)
        existing = self.find(entry.idempotency_key)
        if existing is not None:
            if existing.same_as(entry):
                return False
            raise Conflict(
                f"idempotency key {entry.idempotency_key!r} already records another entry",
                idempotency_key=entry.idempotency_key,
            )
        if entry.kind is EntryKind.REFUND and entry.amount > self.refundable:
            raise InvalidInput(
                f"a refund of {entry.amount} is more than was paid and not yet refunded "
                f"({self.refundable})",
                refund=str(entry.amount),
                refundable=str(self.refundable),
            )
        return True

    def appended(self, entry: LedgerEntry) -> Account:
        """This account with `entry` added (unchanged if it is there already); see check_new."""
        if not self.check_new(entry):
            return self
        return Account(self.id, self.subscriber_id, self.currency, (*self.entries, entry))

    def appended_all(self, entries: Iterable[LedgerEntry]) -> Account:
        account = self
        for entry in entries:
            account = account.appended(entry)
        return account
