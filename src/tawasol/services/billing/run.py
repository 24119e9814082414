"""The billing run: renew what is due, defer renewals during long outages, credit closed
incidents, each step once.

`BillingRun.run(at=...)` walks the subscriptions whose period has ended by `at` and the
incidents closed since `at - credit_lookback`. Every step (the first invoice of a subscription,
one renewal, one expiry, one incident's credit note for one subscription) is applied with its
own idempotency key in one transaction (`BillingStore.apply`): re-running the run, or running it
again after it was killed at any point, writes nothing twice and leaves no gap in the numbering.

Where the store offers `BulkBilling` (PostgreSQL) the first invoices, renewals and credits of
the plain cases are written many per transaction, with the same keys and results; the run bills
what it leaves over one by one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from tawasol.domain.billing.documents import Document as BillingDocument
from tawasol.domain.billing.documents import DocumentKind, DocumentLine, IssuingEntity
from tawasol.domain.billing.ledger import EntryKind, LedgerEntry
from tawasol.domain.billing.lifecycle import BillingTerms, first_terms, next_period
from tawasol.domain.billing.outage_credits import (
    CreditPolicy,
    DeferralWindow,
    OutageCredit,
    Remedy,
    outage_credit,
    renewal_deferral_windows,
    renewal_deferred_until,
)
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import Plan
from tawasol.domain.errors import InvalidInput, TawasolError
from tawasol.domain.outages import OutagePeriod
from tawasol.domain.subscribers import Subscription, SubscriptionStatus
from tawasol.services.billing.ports import (
    BillingCustomer,
    BillingItem,
    BillingStep,
    BillingStore,
    BulkBilling,
    BulkOutcome,
    PaidPeriod,
    Payments,
)
from tawasol.services.billing.reports import OUTAGE_CREDIT_PREFIX
from tawasol.services.ports import OutageHistory

# How far back a renewal looks for the outage that may defer it, and a credit run for closed
# incidents (each step is idempotent, so looking back further only costs time).
OUTAGE_LOOKBACK = timedelta(days=60)


@dataclass(frozen=True)
class BillingSettings:
    """The operator's billing configuration (from `Settings`, see docs/billing.md)."""

    entity: IssuingEntity
    vat: VatTable
    credit_policy: CreditPolicy = field(default_factory=CreditPolicy)
    credit_lookback: timedelta = timedelta(days=90)


@dataclass
class RunSummary:
    """What one run did (or, dry, would do)."""

    first_invoices: int = 0
    renewals: int = 0
    deferred: int = 0
    expired: int = 0
    credit_notes: int = 0
    extensions: int = 0
    already_done: int = 0
    charged: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    credited: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    errors: list[tuple[int, str]] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str]]:
        """(what, how many / how much) for a summary table."""
        rows = [
            ("first invoices", str(self.first_invoices)),
            ("renewals charged", str(self.renewals)),
            ("renewals deferred (outage)", str(self.deferred)),
            ("subscriptions expired", str(self.expired)),
            ("outage credit notes", str(self.credit_notes)),
            ("outage extensions", str(self.extensions)),
            ("steps already done", str(self.already_done)),
            ("errors", str(len(self.errors))),
        ]
        rows += [(f"charged {c}", str(a)) for c, a in sorted(self.charged.items())]
        rows += [(f"credited {c}", str(a)) for c, a in sorted(self.credited.items())]
        return rows


Progress = Callable[[int, int], None]


class BillingRun:
    """Renewals, deferrals and outage credits (see the module docstring)."""

    def __init__(
        self,
        *,
        store: BillingStore,
        plans: Callable[[], Mapping[str, Plan]],
        outages: OutageHistory,
        settings: BillingSettings,
        payments: Payments | None = None,
        bulk: bool = True,
    ) -> None:
        """`bulk` False bills one subscription at a time even where the store can do more
        (the tests compare both paths)."""
        self._store = store
        self._bulk = bulk
        self._plans = plans
        self._outages = outages
        self._settings = settings
        self._payments = payments

    def run(
        self, *, at: datetime, dry_run: bool = False, progress: Progress | None = None
    ) -> RunSummary:
        """Bill everything due at `at` (aware). With `dry_run` nothing is written."""
        if at.tzinfo is None:
            raise InvalidInput("the billing run's time must carry a time zone offset")
        summary = RunSummary()
        plans = self._plans()
        outages = list(self._outages.outage_periods(start=at - OUTAGE_LOOKBACK, end=at))
        incidents = list(self._outages.closed_incidents_since(at - self._settings.credit_lookback))
        bulk = self._bulk_store(dry_run=dry_run)
        if bulk is not None:
            outcome = bulk.renew_in_bulk(
                at=at,
                plans=plans,
                deferrals=self._deferral_windows(plans, outages),
                vat=self._settings.vat,
                entity_code=self._settings.entity.code,
                number_prefix=self._settings.entity.number_prefix,
                want_charges=self._payments is not None,
            )
            summary.first_invoices += outcome.first_invoices
            summary.renewals += outcome.applied
            summary.deferred += outcome.deferred
            self._count_bulk(outcome, summary)
            items = (
                list(self._store.items_due(before=at, subscription_ids=outcome.left_over))
                if outcome.left_over
                else []
            )
        else:
            items = list(self._store.items_due(before=at))
        total = len(items) + len(incidents)
        for done, item in enumerate(items, start=1):
            try:
                self._bill(item, plans, outages, at=at, dry_run=dry_run, summary=summary)
            except TawasolError as error:
                summary.errors.append((item.subscription.id, error.message))
            if progress:
                progress(done, total)
        for done, incident_id in enumerate(incidents, start=len(items) + 1):
            self.credit_incident(incident_id, at=at, dry_run=dry_run, summary=summary)
            if progress:
                progress(done, total)
        return summary

    def _bulk_store(self, *, dry_run: bool) -> BulkBilling | None:
        if not self._bulk or dry_run or self._settings.credit_policy.remedy is not Remedy.CREDIT:
            return None
        return self._store.bulk_billing()

    def _deferral_windows(
        self, plans: Mapping[str, Plan], outages: Sequence[OutagePeriod]
    ) -> dict[str, list[DeferralWindow]]:
        return {
            code: windows
            for code, plan in plans.items()
            if (
                windows := renewal_deferral_windows(
                    periods=outages,
                    plan_rules=plan.destinations,
                    policy=self._settings.credit_policy,
                )
            )
        }

    def _count_bulk(self, outcome: BulkOutcome, summary: RunSummary) -> None:
        for currency, amount in outcome.charged.items():
            summary.charged[currency] += amount.amount
        for currency, amount in outcome.credited.items():
            summary.credited[currency] += amount.amount
        if self._payments is not None:
            for subscriber_id, amount, reference in outcome.charges:
                self._payments.collect(
                    subscriber_id=subscriber_id, amount=amount, reference=reference
                )

    # -- renewals -----------------------------------------------------------------------------
    def _bill(
        self,
        item: BillingItem,
        plans: Mapping[str, Plan],
        outages: Sequence[OutagePeriod],
        *,
        at: datetime,
        dry_run: bool,
        summary: RunSummary,
    ) -> None:
        subscription, customer, terms = item.subscription, item.customer, item.terms
        if terms is None:
            plan = plans[subscription.plan_code]
            terms = first_terms(subscription, plan)
            step = self._charge_step(
                f"first:{subscription.id}", subscription, terms, plan, customer, at=at
            )
            summary.first_invoices += self._apply(step, dry_run=dry_run, summary=summary)
        # Renew period after period until the current one contains `at` (a run missed for a
        # while catches up), unless something stops it.
        while subscription.period_end <= at and subscription.status is SubscriptionStatus.ACTIVE:
            if terms.cancel_at_period_end:
                ended = subscription.changed_to(SubscriptionStatus.EXPIRED, now=at)
                step = BillingStep(f"expire:{subscription.id}", ended, terms)
                summary.expired += self._apply(step, dry_run=dry_run, summary=summary)
                return
            plan = plans[terms.next_plan_code or subscription.plan_code]
            due = subscription.period_end
            resume = renewal_deferred_until(
                due_at=due,
                periods=[p for p in outages if p.start <= due],
                plan_rules=plan.destinations,
                policy=self._settings.credit_policy,
            )
            if resume is not None and (resume > at or resume == due):
                summary.deferred += 1
                return
            period, anchor = next_period(
                subscription, terms, plan.period, customer.time_zone, starting=resume
            )
            subscription = replace(
                subscription,
                plan_code=plan.code,
                period_start=period.start,
                period_end=period.end,
            )
            terms = replace(
                terms,
                anchor=anchor,
                period_index=period.index,
                price_paid=plan.price,
                next_plan_code=None,
            )
            step = self._charge_step(
                f"renew:{subscription.id}:{period.start.isoformat()}",
                subscription,
                terms,
                plan,
                customer,
                at=at,
            )
            summary.renewals += self._apply(step, dry_run=dry_run, summary=summary)

    def _charge_step(
        self,
        key: str,
        subscription: Subscription,
        terms: BillingTerms,
        plan: Plan,
        customer: BillingCustomer,
        *,
        at: datetime,
    ) -> BillingStep:
        """Charge `plan` for the subscription's current period: entry, invoice, paid period."""
        account = self._store.account(
            subscriber_id=customer.subscriber_id, currency=plan.price.currency
        )
        line = DocumentLine(
            description=plan.name(customer.locale),
            period_start=subscription.period_start,
            period_end=subscription.period_end,
            quantity=1,
            split=self._settings.vat.split(plan.price, customer.country),
        )
        invoice = self._document(DocumentKind.INVOICE, key, account.id, customer, (line,), at)
        entry = LedgerEntry(account.id, EntryKind.CHARGE, plan.price, key, at, reference=key)
        paid = PaidPeriod(
            subscription.id,
            customer.subscriber_id,
            plan.code,
            terms.period_index,
            subscription.period_start,
            subscription.period_end,
            plan.price,
            key,
        )
        return BillingStep(key, subscription, terms, (entry,), (invoice,), paid)

    def _document(
        self,
        kind: DocumentKind,
        key: str,
        account_id: int,
        customer: BillingCustomer,
        lines: tuple[DocumentLine, ...],
        at: datetime,
    ) -> BillingDocument:
        return BillingDocument(
            kind=kind,
            entity_code=self._settings.entity.code,
            issued_at=at,
            account_id=account_id,
            subscriber_id=customer.subscriber_id,
            customer_name=customer.name,
            customer_address=customer.address,
            customer_country=customer.country,
            locale=customer.locale,
            lines=lines,
            idempotency_key=key,
            business=customer.business,
        )

    def _apply(self, step: BillingStep, *, dry_run: bool, summary: RunSummary) -> bool:
        """Apply (or, dry, check) a step; True when it was new."""
        if dry_run:
            applied = not self._store.applied(step.idempotency_key)
        else:
            applied = self._store.apply(
                step,
                entity_code=self._settings.entity.code,
                number_prefix=self._settings.entity.number_prefix,
            )
        if not applied:
            summary.already_done += 1
            return False
        for entry in step.entries:
            if entry.kind is EntryKind.CHARGE:
                summary.charged[entry.amount.currency] += entry.amount.amount
            elif entry.kind is EntryKind.CREDIT:
                summary.credited[entry.amount.currency] += entry.amount.amount
        if self._payments is not None and not dry_run:
            for entry in step.entries:
                if entry.kind is EntryKind.CHARGE:
                    self._payments.collect(
                        subscriber_id=step.documents[0].subscriber_id,
                        amount=entry.amount,
                        reference=entry.idempotency_key,
                    )
        return True

    # -- for the lifecycle commands (services/billing/lifecycle.py) ---------------------------
    @property
    def settings(self) -> BillingSettings:
        return self._settings

    def plans(self) -> Mapping[str, Plan]:
        return self._plans()

    def first_invoice(self, item: BillingItem, *, at: datetime) -> BillingItem:
        """`item` once billing has met it: a subscription the run has not invoiced yet gets
        its first invoice now, under the run's own key (`first:<id>`), so the run never
        invoices it again. Unchanged when it has terms already."""
        if item.terms is not None:
            return item
        plan = self._plans()[item.subscription.plan_code]
        terms = first_terms(item.subscription, plan)
        step = self._charge_step(
            f"first:{item.subscription.id}", item.subscription, terms, plan, item.customer, at=at
        )
        self._apply(step, dry_run=False, summary=RunSummary())
        return BillingItem(item.subscription, item.customer, terms)

    # The step charging a plan for the subscription's current period (entry, invoice and
    # paid period), not applied: what the run itself writes for a renewal.
    charge_step = _charge_step

    def credit_note(
        self,
        key: str,
        account_id: int,
        customer: BillingCustomer,
        lines: tuple[DocumentLine, ...],
        *,
        at: datetime,
    ) -> BillingDocument:
        """A credit note draft of the run's issuing entity."""
        return self._document(DocumentKind.CREDIT_NOTE, key, account_id, customer, lines, at)

    def apply(self, step: BillingStep) -> bool:
        """Apply `step` (numbering its documents, handing its charges to the payments port);
        False when its key was applied already."""
        return self._apply(step, dry_run=False, summary=RunSummary())

    # -- outage credits -----------------------------------------------------------------------
    def credit_incident(
        self,
        incident_id: int,
        *,
        at: datetime,
        dry_run: bool = False,
        summary: RunSummary | None = None,
    ) -> RunSummary:
        """One credit note (or extension) per subscription whose paid periods the closed
        incident `incident_id` touched; each at most once, whatever the number of runs."""
        summary = summary if summary is not None else RunSummary()
        since = at - self._settings.credit_lookback
        periods = [
            p
            for p in self._outages.outage_periods(start=since, end=at)
            if p.incident_id == incident_id
        ]
        if not periods or any(p.end is None or p.end > at for p in periods):
            return summary  # not customer-facing, or not closed at `at`
        start = min(p.start for p in periods)
        end = max(p.end for p in periods if p.end is not None)
        plans = self._plans()
        left_over: set[int] | None = None
        bulk = self._bulk_store(dry_run=dry_run)
        if bulk is not None:
            outcome = bulk.credit_in_bulk(
                at=at,
                incident_id=incident_id,
                periods=periods,
                plans=plans,
                policy=self._settings.credit_policy,
                vat=self._settings.vat,
                entity_code=self._settings.entity.code,
                number_prefix=self._settings.entity.number_prefix,
            )
            summary.credit_notes += outcome.applied
            self._count_bulk(outcome, summary)
            left_over = outcome.left_over
            if not left_over:
                return summary
        by_subscription: dict[int, list[PaidPeriod]] = defaultdict(list)
        for paid in self._store.paid_periods(start=start, end=end):
            if left_over is None or paid.subscription_id in left_over:
                by_subscription[paid.subscription_id].append(paid)
        policy = self._settings.credit_policy
        for subscription_id, paid_periods in by_subscription.items():
            key = f"{OUTAGE_CREDIT_PREFIX}{incident_id}:{subscription_id}"
            if self._store.applied(key):
                summary.already_done += 1
                continue
            credits: list[tuple[PaidPeriod, OutageCredit]] = []
            for paid in paid_periods:
                credit = outage_credit(
                    incident_id=incident_id,
                    periods=periods,
                    paid=paid.period,
                    price_paid=paid.price_paid,
                    plan_rules=plans[paid.plan_code].destinations,
                    policy=policy,
                )
                if credit.due:
                    credits.append((paid, credit))
            if not credits:
                continue
            try:
                self._credit(key, credits, plans, at=at, dry_run=dry_run, summary=summary)
            except TawasolError as error:
                summary.errors.append((subscription_id, error.message))
        return summary

    def _credit(
        self,
        key: str,
        credits: Sequence[tuple[PaidPeriod, OutageCredit]],
        plans: Mapping[str, Plan],
        *,
        at: datetime,
        dry_run: bool,
        summary: RunSummary,
    ) -> None:
        first = credits[0][0]
        customer = self._store.customer(first.subscriber_id)
        if self._settings.credit_policy.remedy is Remedy.EXTEND:
            raise InvalidInput(
                "outage extensions are applied by the operator for now: set the credit policy's "
                "remedy to credit",
            )
        currency = first.price_paid.currency
        account = self._store.account(subscriber_id=first.subscriber_id, currency=currency)
        # One entry per paid period, referencing that period's charge: what other incidents
        # credited for it already is subtracted, so all credits together never exceed the
        # price paid for the period.
        amounts = []
        for paid, credit in credits:
            left = paid.price_paid - account.total(EntryKind.CREDIT, reference=paid.charge_key)
            amounts.append((paid, credit, min(credit.amount, left)))
        amounts = [(paid, credit, amount) for paid, credit, amount in amounts if amount.amount > 0]
        if not amounts:
            return
        lines = tuple(
            DocumentLine(
                description=f"{plans[paid.plan_code].name(customer.locale)}: outage "
                f"{credit.counted.days} d {credit.counted.seconds // 3600} h",
                period_start=paid.start,
                period_end=paid.end,
                quantity=1,
                split=self._settings.vat.split(amount, customer.country),
            )
            for paid, credit, amount in amounts
        )
        note = self._document(DocumentKind.CREDIT_NOTE, key, account.id, customer, lines, at)
        note = replace(note, corrects=", ".join(paid.charge_key for paid, _, _ in amounts))
        entries = tuple(
            LedgerEntry(
                account.id,
                EntryKind.CREDIT,
                amount,
                f"{key}:{paid.charge_key}",
                at,
                reference=paid.charge_key,
            )
            for paid, _, amount in amounts
        )
        step = BillingStep(key, entries=entries, documents=(note,))
        summary.credit_notes += self._apply(step, dry_run=dry_run, summary=summary)
