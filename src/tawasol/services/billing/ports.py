"""The ports billing persists and pays through, each with an in-memory implementation
(`tawasol.adapters.store.billing_memory`) and a SQL one (`...billing_sql`) passing the same
contract tests.

Every write of a billing step goes through `BillingStore.apply` as one transaction: the ledger
entries, the documents (numbered there, so a number is only ever used by a committed document:
no gap), the subscription's new period and status, its billing terms and the documents to send.
A step carries an idempotency key; applying a key a second time changes nothing, which is what
makes the billing run safe to re-run after a crash at any point.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tawasol.domain.billing.calendar import BillingPeriod
from tawasol.domain.billing.documents import Document
from tawasol.domain.billing.ledger import Account, LedgerEntry
from tawasol.domain.billing.lifecycle import BillingTerms
from tawasol.domain.billing.outage_credits import CreditPolicy, DeferralWindow
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import Plan
from tawasol.domain.money import Money
from tawasol.domain.outages import OutagePeriod
from tawasol.domain.payments.outcomes import PaymentStatus
from tawasol.domain.subscribers import Subscription


@dataclass(frozen=True)
class BillingCustomer:
    """Who a document is addressed to: name, postal address, country of residence (VAT; ""
    when unknown, which VAT refuses), locale of the documents, time zone of the calendar, and
    whether a business (Factur-X)."""

    subscriber_id: int
    name: str
    email: str
    country: str
    time_zone: str
    locale: str
    address: str = ""
    business: bool = False


@dataclass(frozen=True)
class BillingItem:
    """A running subscription as billing sees it; `terms` None until billing first meets it."""

    subscription: Subscription
    customer: BillingCustomer
    terms: BillingTerms | None


@dataclass(frozen=True)
class PaidPeriod:
    """A period a subscription was charged for, and how much (what credits are bounded by)."""

    subscription_id: int
    subscriber_id: int
    plan_code: str
    index: int
    start: datetime
    end: datetime
    price_paid: Money
    charge_key: str

    @property
    def period(self) -> BillingPeriod:
        return BillingPeriod(self.index, self.start, self.end)


@dataclass(frozen=True)
class BillingStep:
    """One atomic billing step for one subscription (see the module docstring)."""

    idempotency_key: str
    subscription: Subscription | None = None  # its new state; None: unchanged
    terms: BillingTerms | None = None  # its new billing terms; None: unchanged
    entries: tuple[LedgerEntry, ...] = ()
    documents: tuple[Document, ...] = ()
    paid: PaidPeriod | None = None  # the period this step charged, if any


class BillingStore(Protocol):
    """Accounts, ledger entries, documents and billing terms."""

    def bulk_billing(self) -> BulkBilling | None:
        """The same steps many subscriptions per transaction on this store's database, or
        None where it cannot (then the run bills one subscription at a time)."""
        ...

    def items_due(
        self, *, before: datetime, subscription_ids: Collection[int] | None = None
    ) -> Sequence[BillingItem]:
        """Running subscriptions whose period ends at or before `before`, or that billing has
        not met yet, oldest period end first; only those of `subscription_ids` when given
        (what a bulk pass left over)."""
        ...

    def paid_periods(self, *, start: datetime, end: datetime) -> Sequence[PaidPeriod]:
        """Every charged period overlapping [start, end), by subscription then start."""
        ...

    def customer(self, subscriber_id: int) -> BillingCustomer:
        """Raises NotFound."""
        ...

    def account(self, *, subscriber_id: int, currency: str) -> Account:
        """The subscriber's account in `currency` with its entries (created empty if new)."""
        ...

    def applied(self, idempotency_key: str) -> bool:
        """Whether a step with this key was applied."""
        ...

    def apply(self, step: BillingStep, *, entity_code: str, number_prefix: str) -> bool:
        """Apply `step` in one transaction, numbering its documents in the entity's sequence.
        False (and nothing written) when its key was applied already. Raises Conflict when an
        entry's idempotency key is used by another entry, InvalidInput for entries the account
        refuses (a refund larger than what was paid): then nothing is written."""
        ...

    def documents(self, *, entity_code: str) -> Sequence[Document]:
        """Every issued document of the entity, in sequence order."""
        ...

    def current_items(self, *, subscriber_id: int) -> Sequence[BillingItem]:
        """The subscriber's subscriptions that have not ended (neither cancelled nor expired),
        oldest first, with their terms. Raises NotFound for an unknown subscriber."""
        ...

    def accounts(self, *, subscriber_id: int) -> Sequence[Account]:
        """The subscriber's accounts (one per currency) that hold entries, by currency (an
        account opened but never written to is left out)."""
        ...

    def subscriber_documents(self, *, subscriber_id: int) -> Sequence[Document]:
        """The subscriber's issued documents, oldest first."""
        ...

    def document(self, number: str) -> Document:
        """The issued document with this printed number; raises NotFound."""
        ...


@dataclass
class BulkOutcome:
    """What a bulk billing call did: steps applied, renewals deferred, charges and credits
    written (to hand to the payments port and the summary), subscriptions left to the
    one-by-one path (`BillingRun` bills them itself)."""

    applied: int = 0  # renewals, or credit notes
    first_invoices: int = 0
    deferred: int = 0
    charges: list[tuple[int, Money, str]] = field(default_factory=list)  # subscriber, amount, key
    credited: dict[str, Money] = field(default_factory=dict)  # per currency
    charged: dict[str, Money] = field(default_factory=dict)  # per currency
    left_over: set[int] = field(default_factory=set)  # subscription ids


class BulkBilling(Protocol):
    """Renewals and outage credits of many subscriptions per transaction (set-based SQL), with
    the same results as the one-by-one path of `BillingRun` (tests compare them). A store that
    cannot do this does not implement it; the run then bills one subscription at a time.

    Each transaction covers a slice of subscriptions and is whole or nothing; every step keeps
    the idempotency key of the one-by-one path, so a crash and a re-run, either path, never
    bill twice and never leave a gap in the numbering.
    """

    def renew_in_bulk(
        self,
        *,
        at: datetime,
        plans: Mapping[str, Plan],
        deferrals: Mapping[str, Sequence[DeferralWindow]],
        vat: VatTable,
        entity_code: str,
        number_prefix: str,
        want_charges: bool,
    ) -> BulkOutcome:
        """Invoice the first period of every running subscription billing has not met yet
        (`first:<id>`, counted in `first_invoices`), then renew every active subscription due
        at `at` whose terms are plain (no change at period end, not paused), catching up
        missed periods, except those a deferral window of its plan holds back (counted in
        `deferred`). Both only for a plan among `plans` and a customer whose country of
        residence has a VAT rate: the others are returned in `left_over`, untouched."""
        ...

    def credit_in_bulk(
        self,
        *,
        at: datetime,
        incident_id: int,
        periods: Sequence[OutagePeriod],
        plans: Mapping[str, Plan],
        policy: CreditPolicy,
        vat: VatTable,
        entity_code: str,
        number_prefix: str,
    ) -> BulkOutcome:
        """The closed incident's credit notes (`outage-credit:<incident>:<subscription>`), as
        `BillingRun.credit_incident` issues them one by one. Subscriptions whose customer's
        country cannot be resolved in bulk are returned in `left_over`, untouched."""
        ...


class DocumentOutbox(Protocol):
    """Documents issued and not yet sent to the subscriber (the notices outbox drains it)."""

    def pending(self, *, limit: int = 100) -> Sequence[tuple[str, str]]:
        """(document number, recipient email), oldest first."""
        ...

    def mark_sent(self, number: str) -> None: ...


class Payments(Protocol):
    """Collects a billing charge (`tawasol.services.payments.service.PaymentService`, or
    `ManualPayments` where nothing is collected: the operator records transfers). `reference`
    is the charge's ledger key; collecting it twice charges once."""

    def collect(self, *, subscriber_id: int, amount: Money, reference: str) -> PaymentStatus: ...
