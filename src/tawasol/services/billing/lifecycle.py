"""Subscription lifecycle commands: change plan, cancel, pause, resume, each with its money.

The rules (pro-rata shares, refund cases and their legal sources, the state machine) are in
`tawasol.domain.billing.lifecycle` and `tawasol.domain.subscribers.TRANSITIONS`; this service
loads the subscriber's one running subscription, asks the domain, and writes the result as one
`BillingStep` (ledger entries, documents, the subscription's new state and terms) in one
transaction: a refused command writes nothing, an accepted one writes all of it.

A plan change *now* keeps the subscriber's one subscription: its plan, period and terms
change in place, the unused part of the old plan is credited (a credit note correcting the
old period's invoice) and the new plan is invoiced for a period starting now. A subscription
billing has not invoiced yet gets its first invoice first, under the billing run's own key, so
that the unused part credited is a part that was charged.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from tawasol.domain.billing.documents import Document, DocumentLine
from tawasol.domain.billing.ledger import EntryKind, LedgerEntry
from tawasol.domain.billing.lifecycle import (
    BillingTerms,
    CancelReason,
    RefundPolicy,
    cancellation_refund,
    paused,
    plan_change_now,
    resumed,
)
from tawasol.domain.catalog import Plan
from tawasol.domain.errors import Conflict, InvalidInput, NotFound
from tawasol.domain.money import Money
from tawasol.domain.subscribers import Subscription, SubscriptionStatus
from tawasol.services.billing.ports import BillingItem, BillingStep, BillingStore, PaidPeriod
from tawasol.services.billing.run import BillingRun


class Timing(enum.StrEnum):
    """When a plan change or a cancellation takes effect."""

    NOW = "now"
    PERIOD_END = "period_end"


@dataclass(frozen=True)
class LifecycleOutcome:
    """What a command did: the subscription and its terms after it, the amounts charged and
    credited (zero when none) and the documents issued (numbers)."""

    subscription: Subscription
    terms: BillingTerms
    charged: Money
    credited: Money
    documents: tuple[str, ...] = ()


class SubscriptionLifecycle:
    """Plan change, cancellation, pause and resume of a subscriber's running subscription."""

    def __init__(
        self, *, store: BillingStore, run: BillingRun, refund_policy: RefundPolicy
    ) -> None:
        self._store = store
        self._run = run
        self._refund_policy = refund_policy

    # -- plan change ------------------------------------------------------------------------
    def change_plan(
        self, *, subscriber_id: int, plan_code: str, timing: Timing, at: datetime
    ) -> LifecycleOutcome:
        """Move the subscriber to `plan_code`, now or at the end of the paid period.

        Now: the unused part of the old plan is credited pro rata (never more than was paid
        for the period, less what outages credited already) and the new plan is charged for a
        period starting at `at`. At period end: the next renewal uses the new plan.
        Raises NotFound (subscriber, plan, no running subscription), Conflict (not active, the
        same plan, not on sale, already ending) and InvalidInput (a plan in another currency:
        a change of currency is a new contract; nothing is written).
        """
        item = self._running(subscriber_id, at=at)
        plan = self._plan(plan_code)
        subscription, terms = item.subscription, _terms(item)
        if plan.code == subscription.plan_code:
            raise Conflict(
                f"subscriber {subscriber_id} is on plan {plan.code} already", plan=plan.code
            )
        if not plan.on_sale:
            raise Conflict(f"plan {plan.code} is not on sale", plan=plan.code)
        if subscription.status is not SubscriptionStatus.ACTIVE:
            raise Conflict(
                f"subscription {subscription.id} is {subscription.status.value}: only an active "
                "subscription changes plan (resume it, or settle what is due, first)",
                subscription_id=subscription.id,
            )
        if terms.cancel_at_period_end:
            raise Conflict(
                f"subscription {subscription.id} ends at its period end: it changes plan no more",
                subscription_id=subscription.id,
            )
        zero = Money(terms.price_paid.amount * 0, terms.price_paid.currency)
        if timing is Timing.PERIOD_END:
            _same_currency(plan, terms)
            new_terms = replace(terms, next_plan_code=plan.code)
            key = f"next-plan:{subscription.id}:{plan.code}:{at.isoformat()}"
            self._run.apply(BillingStep(key, terms=new_terms))
            return LifecycleOutcome(subscription, new_terms, zero, zero)
        if not subscription.period_start <= at < subscription.period_end:
            raise Conflict(
                f"subscription {subscription.id}'s paid period is "
                f"{subscription.period_start.isoformat()} to "
                f"{subscription.period_end.isoformat()}: run billing first",
                subscription_id=subscription.id,
            )
        change = plan_change_now(
            subscription, terms, new_plan=plan, at=at, time_zone=item.customer.time_zone
        )
        key = f"plan-change:{subscription.id}:{at.isoformat()}"
        credit, paid, credit_lines = self._unused_credit(item, change.credit, at=at)
        moved = replace(
            subscription,
            plan_code=plan.code,
            period_start=change.new_period.start,
            period_end=change.new_period.end,
        )
        new_terms = BillingTerms(subscription.id, change.new_period.start, 0, plan.price)
        charge = self._run.charge_step(key, moved, new_terms, plan, item.customer, at=at)
        entries, documents = self._credit_parts(
            item,
            credit,
            paid,
            credit_lines,
            note_key=f"{key}:credit",
            at=at,
            description=f"unused part of {subscription.plan_code}",
        )
        step = replace(
            charge,
            entries=(*entries, *charge.entries),
            documents=(*documents, *charge.documents),
        )
        self._run.apply(step)
        return LifecycleOutcome(
            moved, new_terms, change.charge, credit, self._issued(subscriber_id, key)
        )

    # -- cancellation -----------------------------------------------------------------------
    def cancel(
        self,
        *,
        subscriber_id: int,
        timing: Timing,
        reason: CancelReason,
        at: datetime,
    ) -> LifecycleOutcome:
        """Cancel the running subscription now or at its period end.

        Now: it is cancelled at once and, where the reason gives one (withdrawal within 14
        days, a price change, a long outage, the operator's decision; a plain customer
        cancellation only under the operator's policy), the unused part is credited by a
        credit note; paying that money back is `ManualPayments.refund`. At period end: no
        renewal, the billing run expires it. Raises NotFound, Conflict (a transition the
        state machine refuses) and InvalidInput (a withdrawal after 14 days).
        """
        item = self._running(subscriber_id, at=at)
        subscription, terms = item.subscription, _terms(item)
        zero = Money(terms.price_paid.amount * 0, terms.price_paid.currency)
        if timing is Timing.PERIOD_END:
            if subscription.status is not SubscriptionStatus.ACTIVE:
                raise Conflict(
                    f"subscription {subscription.id} is {subscription.status.value}: cancel it "
                    "now (a subscription that is not active does not reach a renewal)",
                    subscription_id=subscription.id,
                )
            new_terms = replace(terms, cancel_at_period_end=True, next_plan_code=None)
            key = f"cancel-at-end:{subscription.id}"
            self._run.apply(BillingStep(key, terms=new_terms))
            return LifecycleOutcome(subscription, new_terms, zero, zero)
        cancelled = subscription.changed_to(SubscriptionStatus.CANCELLED, now=at)
        # Time spent paused was not used: the unused part runs from the pause.
        used_until = min(terms.paused_at or at, at)
        refund = cancellation_refund(
            subscription,
            terms,
            at=used_until,
            reason=reason,
            policy=self._refund_policy,
            first_start=subscription.created_at or terms.anchor,
        )
        key = f"cancel:{subscription.id}"
        credit, paid, lines_ = self._unused_credit(item, refund, at=used_until)
        entries, documents = self._credit_parts(
            item,
            credit,
            paid,
            lines_,
            note_key=key,
            at=at,
            description=f"cancellation ({reason.value}): unused part",
        )
        self._run.apply(BillingStep(key, cancelled, terms, entries, documents))
        return LifecycleOutcome(cancelled, terms, zero, credit, self._issued(subscriber_id, key))

    # -- pause and resume -------------------------------------------------------------------
    def pause(self, *, subscriber_id: int, at: datetime) -> LifecycleOutcome:
        """Put the running subscription on hold: no calls, no renewal (Conflict unless
        active)."""
        item = self._running(subscriber_id, at=at)
        subscription, terms = paused(item.subscription, _terms(item), at=at)
        self._run.apply(
            BillingStep(f"pause:{subscription.id}:{at.isoformat()}", subscription, terms)
        )
        zero = Money(terms.price_paid.amount * 0, terms.price_paid.currency)
        return LifecycleOutcome(subscription, terms, zero, zero)

    def resume(self, *, subscriber_id: int, at: datetime) -> LifecycleOutcome:
        """Resume a paused subscription; its period end moves on by the time paused (Conflict
        unless paused)."""
        item = self._running(subscriber_id, at=at)
        subscription, terms = resumed(item.subscription, _terms(item), at=at)
        key = f"resume:{subscription.id}:{at.isoformat()}"
        self._run.apply(BillingStep(key, subscription, terms))
        zero = Money(terms.price_paid.amount * 0, terms.price_paid.currency)
        return LifecycleOutcome(subscription, terms, zero, zero)

    # -- helpers ----------------------------------------------------------------------------
    def _running(self, subscriber_id: int, *, at: datetime) -> BillingItem:
        """The subscriber's one running subscription, invoiced once at least."""
        if at.tzinfo is None:
            raise InvalidInput("a lifecycle command's time must carry a time zone offset")
        items = self._store.current_items(subscriber_id=subscriber_id)
        if not items:
            raise NotFound(
                f"subscriber {subscriber_id} has no running subscription",
                subscriber_id=subscriber_id,
            )
        if len(items) > 1:
            ids = [item.subscription.id for item in items]
            raise Conflict(
                f"subscriber {subscriber_id} has {len(items)} running subscriptions ({ids}): "
                "cancel all but one first",
                subscription_ids=ids,
            )
        return self._run.first_invoice(items[0], at=at)

    def _plan(self, plan_code: str) -> Plan:
        try:
            return self._run.plans()[plan_code]
        except KeyError:
            raise NotFound(f"no plan {plan_code}", plan=plan_code) from None

    def _unused_credit(
        self, item: BillingItem, share: Money, *, at: datetime
    ) -> tuple[Money, PaidPeriod | None, tuple[DocumentLine, ...]]:
        """The credit for the unused part `share`, bounded by what is left of the period's
        price once earlier credits (outages) are taken off; its paid period and note lines."""
        subscription = item.subscription
        paid = _current_paid(
            self._store.paid_periods(start=subscription.period_start, end=subscription.period_end),
            subscription,
        )
        if paid is None or share.amount <= 0:
            return share, paid, ()
        account = self._store.account(
            subscriber_id=subscription.subscriber_id, currency=share.currency
        )
        left = paid.price_paid - account.total(EntryKind.CREDIT, reference=paid.charge_key)
        credit = min(share, left)
        if credit.amount <= 0:
            return credit, paid, ()
        name = self._plan(paid.plan_code).name(item.customer.locale)
        line = DocumentLine(
            description=f"{name}: unused part from {at.date().isoformat()}",
            period_start=min(max(at, paid.start), paid.end),
            period_end=paid.end,
            quantity=1,
            split=self._run.settings.vat.split(credit, item.customer.country),
        )
        return credit, paid, (line,)

    def _credit_parts(
        self,
        item: BillingItem,
        credit: Money,
        paid: PaidPeriod | None,
        lines: tuple[DocumentLine, ...],
        *,
        note_key: str,
        at: datetime,
        description: str,
    ) -> tuple[tuple[LedgerEntry, ...], tuple[Document, ...]]:
        """The credit entry (key `<note_key>` ending in `:credit`, referencing the period's
        charge so that later credits see it) and its credit note; nothing without lines."""
        if not lines:
            return (), ()
        account = self._store.account(
            subscriber_id=item.subscription.subscriber_id, currency=credit.currency
        )
        reference = paid.charge_key if paid else ""
        entry_key = note_key if note_key.endswith(":credit") else f"{note_key}:credit"
        entry = LedgerEntry(
            account.id, EntryKind.CREDIT, credit, entry_key, at, reference, description
        )
        note = self._run.credit_note(note_key, account.id, item.customer, lines, at=at)
        return (entry,), (replace(note, corrects=reference),)

    def _issued(self, subscriber_id: int, key: str) -> tuple[str, ...]:
        return tuple(
            document.number
            for document in self._store.subscriber_documents(subscriber_id=subscriber_id)
            if document.idempotency_key == key or document.idempotency_key.startswith(f"{key}:")
        )


def _terms(item: BillingItem) -> BillingTerms:
    if item.terms is None:  # pragma: no cover - _running invoices it first
        raise Conflict("billing has not met this subscription yet")
    return item.terms


def _same_currency(plan: Plan, terms: BillingTerms) -> None:
    if plan.price.currency != terms.price_paid.currency:
        raise InvalidInput(
            f"plan {plan.code} is sold in {plan.price.currency}; this subscription is paid in "
            f"{terms.price_paid.currency}: a change of currency is a new contract",
            plan=plan.code,
        )


def _current_paid(periods: Sequence[PaidPeriod], subscription: Subscription) -> PaidPeriod | None:
    """The charged period the subscription is in now (the latest one starting at its start)."""
    own = [
        p
        for p in periods
        if p.subscription_id == subscription.id and p.start == subscription.period_start
    ]
    return own[-1] if own else None
