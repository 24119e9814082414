"""The payments service: payment methods, collections, refunds, provider events and dunning.

- `set_up_method` saves a payment method through its provider; once active it replaces the
  subscriber's previous one, and an unpaid renewal (an open dunning case) is charged to it at
  once.
- `collect` is billing's `Payments` port: the billing run hands it each charge it wrote; it is
  charged to the subscriber's active method (never twice: the payment is stored under its
  idempotency key before the request goes out with that key). No debit while the subscriber's
  destination is in a customer-facing outage: the collection waits in a dunning case, held.
- `refund` gives back all or part of a paid payment to the method that paid it.
- `take_event` keeps a provider event once and applies it once (`receive` verifies a webhook
  first): a payment settled, refused, awaiting authentication, refunded, taken back.
- `run_dunning` (the billing job runs it after each billing run) retries, tells, suspends and
  releases along `DunningSchedule` (`tawasol.domain.payments.dunning`).

Every money movement becomes a ledger entry under the provider's reference of that movement,
so the same fact reported by the synchronous answer, a webhook and its redeliveries is written
once; a brain killed between keeping an event and applying it applies it when the event comes
again or at the next dunning round (`apply_pending_events`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from tawasol.domain.billing.ledger import EntryKind, LedgerEntry
from tawasol.domain.errors import Conflict, InvalidInput, NotFound, TawasolError, Unavailable
from tawasol.domain.money import Money
from tawasol.domain.notices import NoticeOccasion
from tawasol.domain.payments.dunning import (
    DunningAction,
    DunningCase,
    DunningSchedule,
    DunningStatus,
)
from tawasol.domain.payments.events import EventKind, ProviderEvent, StoredEvent
from tawasol.domain.payments.methods import Payer, PaymentMethod, PaymentMethodStatus
from tawasol.domain.payments.outcomes import (
    ChargeOutcome,
    Failed,
    FailureCode,
    Paid,
    PaymentStatus,
    Pending,
    RefundOutcome,
    RefundStatus,
    RequiresAction,
)
from tawasol.domain.payments.payments import Payment, Refund, check_refund
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.billing.ports import BillingStep, BillingStore
from tawasol.services.payments.notices import OutboxPaymentNotices
from tawasol.services.payments.ports import (
    DunningStore,
    MethodSetup,
    PaymentProvider,
    PaymentStore,
    ProviderEventLog,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentSettings:
    """`update_url` is where a subscriber updates their payment method (the portal's page;
    `{subscriber}` is replaced by their id), sent in every dunning notice."""

    schedule: DunningSchedule = field(default_factory=DunningSchedule)
    update_url: str = ""


@dataclass
class DunningSummary:
    """What one dunning round did."""

    charged: int = 0
    paid: int = 0
    failed: int = 0
    held: int = 0
    suspended: int = 0
    events_applied: int = 0
    errors: list[str] = field(default_factory=list)


class PaymentService:
    """See the module docstring."""

    def __init__(
        self,
        *,
        providers: Mapping[str, PaymentProvider],
        store: PaymentStore,
        events: ProviderEventLog,
        dunning: DunningStore,
        billing: BillingStore,
        payers: Callable[[int], Payer],
        held: Callable[[int], bool],
        notices: OutboxPaymentNotices | None,
        clock: Callable[[], datetime],
        settings: PaymentSettings | None = None,
    ) -> None:
        """`payers` gives a subscriber's contact details (NotFound); `held` whether the
        subscriber's destination is in a customer-facing outage now."""
        self._providers = dict(providers)
        self._store = store
        self._events = events
        self._dunning = dunning
        self._billing = billing
        self._payers = payers
        self._held = held
        self._notices = notices
        self._clock = clock
        self._settings = settings or PaymentSettings()

    @property
    def store(self) -> PaymentStore:
        return self._store

    @property
    def dunning(self) -> DunningStore:
        return self._dunning

    @property
    def events(self) -> ProviderEventLog:
        return self._events

    def provider(self, name: str) -> PaymentProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise InvalidInput(
                f"no payment provider {name!r} is configured",
                provider=name,
                configured=sorted(self._providers),
            ) from None

    # -- payment methods ----------------------------------------------------------------------
    def set_up_method(
        self, *, subscriber_id: int, provider: str, details: Mapping[str, str]
    ) -> MethodSetup:
        """Save a payment method (see `PaymentProvider.set_up`); the same details given twice
        give the same method. Raises NotFound, InvalidInput, PaymentDeclined, Unavailable."""
        payer = self._payers(subscriber_id)
        adapter = self.provider(provider)
        known = [
            m for m in self._store.methods(subscriber_id=subscriber_id) if m.provider == provider
        ]
        if known and known[-1].customer_reference and "customer" not in details:
            # one customer at the provider per subscriber: a new card joins their earlier ones
            details = {**details, "customer": known[-1].customer_reference}
        digest = hashlib.sha256(repr(sorted(details.items())).encode()).hexdigest()[:24]
        setup = adapter.set_up(
            payer=payer, details=details, idempotency_key=f"setup:{subscriber_id}:{digest}"
        )
        method = self._store.find_method(
            provider=setup.method.provider, method_reference=setup.method.method_reference
        )
        if method is None:
            method = self._store.add_method(replace(setup.method, created_at=self._clock()))
        elif method.subscriber_id != subscriber_id:
            raise Conflict(
                "this payment method belongs to another subscriber",
                payment_method_id=method.id,
            )
        if setup.method.status is PaymentMethodStatus.ACTIVE:
            method = self._activate(method)
        return replace(setup, method=method)

    def methods(self, subscriber_id: int | None = None) -> list[PaymentMethod]:
        return list(self._store.methods(subscriber_id=subscriber_id))

    def active_method(self, subscriber_id: int) -> PaymentMethod | None:
        return next(
            (
                m
                for m in reversed(self._store.methods(subscriber_id=subscriber_id))
                if m.status is PaymentMethodStatus.ACTIVE
            ),
            None,
        )

    def _activate(self, method: PaymentMethod) -> PaymentMethod:
        """`method` becomes the subscriber's active one (the previous is replaced), and what
        the subscriber owes in dunning is charged to it now."""
        if method.status is not PaymentMethodStatus.ACTIVE:
            method = self._store.save_method(method.changed_to(PaymentMethodStatus.ACTIVE))
        for other in self._store.methods(subscriber_id=method.subscriber_id):
            if other.id != method.id and other.status is PaymentMethodStatus.ACTIVE:
                self._store.save_method(other.changed_to(PaymentMethodStatus.REPLACED))
        for case in self._dunning.cases(subscriber_id=method.subscriber_id):
            if not self._held(case.subscriber_id):
                self._charge_case(case, at=self._clock())
        return method

    # -- collections --------------------------------------------------------------------------
    def collect(self, *, subscriber_id: int, amount: Money, reference: str) -> PaymentStatus:
        """Billing's `Payments` port: charge `amount` for the billing charge `reference` to
        the subscriber's active method. A subscriber who never gave one pays by transfer
        (pending, recorded by the operator). Held (outage), refused or awaiting the
        subscriber's authentication, the charge goes to dunning. Collecting a reference again
        charges nothing more."""
        payments = self._store.payments(reference=reference)
        if any(p.status is PaymentStatus.PAID for p in payments):
            return PaymentStatus.PAID
        if payments or self._dunning.case(reference) is not None:
            return PaymentStatus.PENDING  # collected already: dunning follows it
        if not self._store.methods(subscriber_id=subscriber_id):
            return PaymentStatus.PENDING  # manual: the operator records the transfer
        at = self._clock()
        if self._held(subscriber_id):
            case = self._open_case(reference, subscriber_id, amount, at=at)
            self._dunning.save_case(case.held(at))
            log.info(
                "collection of %s held: the subscriber's destination is in an outage", reference
            )
            return PaymentStatus.PENDING
        payment = self._charge(reference, subscriber_id, amount, at=at)
        return payment.status if payment is not None else PaymentStatus.FAILED

    def _open_case(
        self, reference: str, subscriber_id: int, amount: Money, *, at: datetime
    ) -> DunningCase:
        case, _ = self._dunning.open_case(
            DunningCase(
                reference=reference,
                subscriber_id=subscriber_id,
                subscription_id=None,
                amount=amount,
                opened_at=at,
            )
        )
        return case

    def _charge(
        self, reference: str, subscriber_id: int, amount: Money, *, at: datetime
    ) -> Payment | None:
        """Charge `amount` for `reference` to the subscriber's active method (a payment sent
        but never answered is sent again with its own key) and apply the outcome; None when
        the subscriber has no usable method (dunning is told)."""
        method = self.active_method(subscriber_id)
        previous = self._store.payments(reference=reference)
        if method is None:
            case = self._dunning.case(reference) or self._open_case(
                reference, subscriber_id, amount, at=at
            )
            failure = Failed(FailureCode.METHOD_REVOKED, "no active payment method")
            self._on_failure(case, None, failure, at=at)
            return None
        unanswered = next(
            (p for p in previous if p.status is PaymentStatus.PENDING and not p.provider_reference),
            None,
        )
        if unanswered is not None and unanswered.method_id == method.id:
            payment = unanswered
        else:
            payment, _ = self._store.start_payment(
                Payment(
                    idempotency_key=f"charge:{reference}:{len(previous) + 1}",
                    subscriber_id=subscriber_id,
                    method_id=method.id,
                    provider=method.provider,
                    amount=amount,
                    reference=reference,
                    status=PaymentStatus.PENDING,
                    created_at=at,
                )
            )
        outcome: ChargeOutcome
        if not method.usable_on(at.date()):
            outcome = Failed(FailureCode.EXPIRED_CARD, f"{method.label or 'the card'} expired")
        else:
            try:
                outcome = self.provider(method.provider).charge(
                    method=method,
                    amount=amount,
                    idempotency_key=payment.idempotency_key,
                    description=reference,
                )
            except Unavailable as error:
                # Nothing known: the dunning round sends it again with the same key.
                log.warning("payment %s not answered: %s", payment.idempotency_key, error.message)
                if self._dunning.case(reference) is None:
                    self._open_case(reference, subscriber_id, amount, at=at)
                return payment
        return self._apply_outcome(payment, outcome, at=at, answer=True)

    def _charge_case(self, case: DunningCase, *, at: datetime) -> Payment | None:
        if case.status.closed:
            return None
        return self._charge(case.reference, case.subscriber_id, case.amount, at=at)

    def _apply_outcome(
        self, payment: Payment, outcome: ChargeOutcome, *, at: datetime, answer: bool = False
    ) -> Payment:
        """Record what a payment came to and do what follows, once per change of status: the
        ledger and dunning on success; a dunning case (opened if need be), a notice with the
        link to update the payment method on refusal; the authentication link on action. The
        same outcome told again (the answer, then its webhook, then the webhook's
        redeliveries) only fills in references; `answer` True: the provider's answer to a
        request just sent, which is an attempt whatever its status."""
        before = payment
        payment = payment.after(outcome)
        if payment != before:
            payment = self._store.save_payment(payment)
        case = self._dunning.case(payment.reference)
        if payment.status is PaymentStatus.PAID:
            self._write_payment(payment, at=at)  # idempotent: keyed by the provider's id
            if case is not None and not case.status.closed:
                self._recover(case, at=at)
            return payment
        if payment.status is before.status and not answer:
            return payment  # told already (a redelivered or late event)
        if case is None and payment.status is not PaymentStatus.PENDING:
            # refused, or waiting for the subscriber: dunning follows it from now
            case = self._open_case(payment.reference, payment.subscriber_id, payment.amount, at=at)
        if isinstance(outcome, Failed) and case is not None:
            self._on_failure(case, payment, outcome, at=at)
        elif isinstance(outcome, RequiresAction):
            if case is not None:
                self._dunning.save_case(case.charged(at=at))
            self._tell(
                payment.subscriber_id,
                NoticeOccasion.PAYMENT_ACTION,
                payment.id,
                payment.amount,
                link=outcome.action_url,
            )
        elif isinstance(outcome, Pending) and case is not None:
            self._dunning.save_case(case.charged(at=at))
        return payment

    def _write_payment(self, payment: Payment, *, at: datetime) -> None:
        account = self._billing.account(
            subscriber_id=payment.subscriber_id, currency=payment.amount.currency
        )
        key = payment.ledger_key
        entry = LedgerEntry(
            account.id, EntryKind.PAYMENT, payment.amount, key, at, reference=payment.reference
        )
        self._billing.apply(BillingStep(key, entries=(entry,)), entity_code="", number_prefix="")

    def _on_failure(
        self, case: DunningCase, payment: Payment | None, outcome: Failed, *, at: datetime
    ) -> None:
        case = self._dunning.save_case(case.failed(outcome.code, at=at))
        next_try = case.next_charge_at(self._settings.schedule)
        self._tell(
            case.subscriber_id,
            NoticeOccasion.PAYMENT_FAILED,
            # one notice per refused payment; a refusal with no payment sent (no usable
            # method) is told once per attempt of its case
            payment.id if payment is not None else -(case.id * 100 + case.attempts),
            case.amount,
            link=self._update_link(case.subscriber_id),
            failure=outcome.code,
            next_try=next_try,
        )

    def _recover(self, case: DunningCase, *, at: datetime) -> None:
        was_suspended = case.status is DunningStatus.SUSPENDED
        self._dunning.save_case(case.recovered(at=at))
        if was_suspended:
            self._resume(case, at=at)
            self._tell(
                case.subscriber_id,
                NoticeOccasion.PAYMENT_RESUMED,
                case.id,
                case.amount,
                link="",
            )

    # -- subscriptions ------------------------------------------------------------------------
    def _suspend(self, case: DunningCase, *, at: datetime) -> DunningCase:
        subscription_id = case.subscription_id
        for item in self._billing.current_items(subscriber_id=case.subscriber_id):
            subscription = item.subscription
            if subscription.status is not SubscriptionStatus.ACTIVE:
                continue
            suspended = subscription.changed_to(SubscriptionStatus.SUSPENDED, now=at)
            self._billing.apply(
                BillingStep(f"dunning-suspend:{case.reference}:{subscription.id}", suspended),
                entity_code="",
                number_prefix="",
            )
            subscription_id = subscription.id
        case = self._dunning.save_case(
            replace(case.suspended(at=at), subscription_id=subscription_id)
        )
        self._tell(
            case.subscriber_id,
            NoticeOccasion.PAYMENT_SUSPENDED,
            case.id,
            case.amount,
            link=self._update_link(case.subscriber_id),
        )
        return case

    def _resume(self, case: DunningCase, *, at: datetime) -> None:
        if case.subscription_id is None:
            return
        for item in self._billing.current_items(subscriber_id=case.subscriber_id):
            subscription = item.subscription
            if (
                subscription.id != case.subscription_id
                or subscription.status is not SubscriptionStatus.SUSPENDED
            ):
                continue
            try:
                active = subscription.changed_to(SubscriptionStatus.ACTIVE, now=at)
            except Conflict as error:  # its period ended meanwhile: the operator decides
                log.warning("subscription %s not resumed: %s", subscription.id, error.message)
                continue
            self._billing.apply(
                BillingStep(f"dunning-resume:{case.reference}:{subscription.id}", active),
                entity_code="",
                number_prefix="",
            )

    # -- dunning ------------------------------------------------------------------------------
    def run_dunning(self, *, at: datetime | None = None) -> DunningSummary:
        """One round over every open case (see the module docstring); safe to re-run."""
        at = at or self._clock()
        summary = DunningSummary()
        summary.events_applied = self.apply_pending_events()
        schedule = self._settings.schedule
        for case in self._dunning.cases(open_only=True):
            if self._awaiting_provider(case):
                continue
            try:
                self._dunning_step(case, schedule, at=at, summary=summary)
            except TawasolError as error:
                summary.errors.append(f"{case.reference}: {error.message}")
        return summary

    def _awaiting_provider(self, case: DunningCase) -> bool:
        """Whether a payment of the case was accepted and waits for its outcome (a SEPA
        debit before its collection date): no retry, no suspension meanwhile."""
        return any(
            payment.status is PaymentStatus.PENDING and payment.provider_reference
            for payment in self._store.payments(reference=case.reference)
        )

    def _dunning_step(
        self, case: DunningCase, schedule: DunningSchedule, *, at: datetime, summary: DunningSummary
    ) -> None:
        held = self._held(case.subscriber_id)
        action = case.action(schedule, at=at, held=held)
        if action is DunningAction.HOLD:
            if case.held_since is None:
                self._dunning.save_case(case.held(at))
            summary.held += 1
            return
        if case.held_since is not None:
            case = self._dunning.save_case(case.released(at))
        if action is DunningAction.SUSPEND:
            case = self._suspend(case, at=at)
            summary.suspended += 1
            action = case.action(schedule, at=at, held=False)
        if action is DunningAction.CHARGE:
            payment = self._charge_case(case, at=at)
            summary.charged += 1
            if payment is not None and payment.status is PaymentStatus.PAID:
                summary.paid += 1
            elif payment is None or payment.status is PaymentStatus.FAILED:
                summary.failed += 1

    def case(self, reference: str) -> DunningCase:
        case = self._dunning.case(reference)
        if case is None:
            raise NotFound("no dunning case for this charge", reference=reference)
        return case

    def close_case(self, reference: str) -> DunningCase:
        """The operator gives up collecting (cancelled, written off): no more retries."""
        return self._dunning.save_case(self.case(reference).closed(at=self._clock()))

    def record_outside_payment(self, *, subscriber_id: int, amount: Money) -> None:
        """A payment recorded by the operator (bank transfer) settles the subscriber's open
        dunning cases it covers, oldest first, and resumes their calls."""
        left = amount.amount
        at = self._clock()
        for case in self._dunning.cases(subscriber_id=subscriber_id):
            if case.amount.currency != amount.currency or case.amount.amount > left:
                continue
            left -= case.amount.amount
            was_suspended = case.status is DunningStatus.SUSPENDED
            self._dunning.save_case(case.recovered(at=at))
            if was_suspended:
                self._resume(case, at=at)

    # -- refunds ------------------------------------------------------------------------------
    def refund(self, *, payment_id: int, amount: Money, reference: str, reason: str = "") -> Refund:
        """Give back `amount` of payment `payment_id` to the method that paid it, once per
        `reference` (the operator's). Raises NotFound, InvalidInput (more than left to refund,
        another currency, a payment not paid), Unavailable (nothing refunded: try again)."""
        if not reference.strip():
            raise InvalidInput("a refund needs a reference (the operator's, for idempotency)")
        payment = self._store.payment(payment_id)
        key = f"refund:{payment.id}:{reference.strip()}"
        for known in self._store.refunds(payment_id=payment.id):
            if known.idempotency_key == key:
                if known.amount != amount:
                    raise Conflict(
                        f"refund reference {reference!r} was used for {known.amount}",
                        refund_id=known.id,
                    )
                if known.status is RefundStatus.PENDING and not known.provider_reference:
                    return self._send_refund(payment, known)
                return known
        check_refund(payment, self._store.refunds(payment_id=payment.id), amount)
        refund, _ = self._store.start_refund(
            Refund(
                idempotency_key=key,
                payment_id=payment.id,
                amount=amount,
                status=RefundStatus.PENDING,
                created_at=self._clock(),
                reason=reason,
            )
        )
        return self._send_refund(payment, refund)

    def _send_refund(self, payment: Payment, refund: Refund) -> Refund:
        outcome = self.provider(payment.provider).refund(
            payment=payment, amount=refund.amount, idempotency_key=refund.idempotency_key
        )
        return self._apply_refund(refund, outcome)

    def _apply_refund(self, refund: Refund, outcome: RefundOutcome) -> Refund:
        if refund.status is not RefundStatus.SUCCEEDED:
            refund = self._store.save_refund(
                replace(
                    refund,
                    status=outcome.status,
                    provider_reference=outcome.provider_reference or refund.provider_reference,
                )
            )
        if refund.status is RefundStatus.SUCCEEDED:
            payment = self._store.payment(refund.payment_id)
            account = self._billing.account(
                subscriber_id=payment.subscriber_id, currency=refund.amount.currency
            )
            key = f"refund:{payment.provider}:{refund.provider_reference or refund.idempotency_key}"
            entry = LedgerEntry(
                account.id,
                EntryKind.REFUND,
                refund.amount,
                key,
                self._clock(),
                reference=payment.reference,
            )
            self._billing.apply(
                BillingStep(key, entries=(entry,)), entity_code="", number_prefix=""
            )
        return refund

    # -- provider events ----------------------------------------------------------------------
    def receive(self, *, provider: str, body: bytes, headers: Mapping[str, str]) -> StoredEvent:
        """A webhook: verified by its provider (InvalidSignature before anything is read or
        kept), then `take_event`."""
        event = self.provider(provider).verify_event(body=body, headers=headers)
        return self.take_event(event)

    def take_event(self, event: ProviderEvent) -> StoredEvent:
        """Keep `event` (once per provider and id) and apply it unless applied already."""
        stored = self._events.keep(event, at=self._clock())
        if stored.applied_at is not None:
            return stored
        outcome = self._apply_event(event)
        at = self._clock()
        self._events.mark_applied(
            provider=event.provider, event_id=event.event_id, at=at, outcome=outcome
        )
        return replace(stored, applied_at=at, outcome=outcome)

    def apply_pending_events(self, *, limit: int = 100) -> int:
        """Apply events kept but not applied (the brain died in between); how many."""
        done = 0
        for stored in self._events.unapplied(limit=limit):
            self.take_event(stored.event)
            done += 1
        return done

    def _apply_event(self, event: ProviderEvent) -> str:
        at = self._clock()
        kind = event.kind
        if kind in (
            EventKind.PAYMENT_SUCCEEDED,
            EventKind.PAYMENT_FAILED,
            EventKind.PAYMENT_REQUIRES_ACTION,
        ):
            payment = self._event_payment(event)
            if payment is None:
                return f"ignored: no payment {event.payment_reference or event.idempotency_key}"
            outcome: ChargeOutcome
            if kind is EventKind.PAYMENT_SUCCEEDED:
                outcome = Paid(event.payment_reference)
            elif kind is EventKind.PAYMENT_FAILED:
                outcome = Failed(
                    event.failure_code or FailureCode.CARD_DECLINED,
                    event.failure_message,
                    event.payment_reference,
                )
            else:
                outcome = RequiresAction(event.payment_reference, payment.action_url)
            after = self._apply_outcome(payment, outcome, at=at)
            return f"payment {after.id} {after.status.value}"
        if kind in (EventKind.REFUND_SUCCEEDED, EventKind.REFUND_FAILED):
            refund = self._store.find_refund(provider_reference=event.refund_reference)
            if refund is None:
                return f"ignored: no refund {event.refund_reference}"
            status = (
                RefundStatus.SUCCEEDED
                if kind is EventKind.REFUND_SUCCEEDED
                else RefundStatus.FAILED
            )
            refund = self._apply_refund(refund, RefundOutcome(status, event.refund_reference))
            return f"refund {refund.id} {refund.status.value}"
        if kind is EventKind.CHARGEBACK:
            return self._chargeback(event, at=at)
        if kind in (EventKind.METHOD_ACTIVE, EventKind.METHOD_FAILED, EventKind.METHOD_REVOKED):
            method = self._store.find_method(
                provider=event.provider, method_reference=event.method_reference
            )
            if method is None:
                return f"ignored: no payment method {event.method_reference}"
            if kind is EventKind.METHOD_ACTIVE:
                if method.status is PaymentMethodStatus.PENDING:
                    method = self._activate(method)
            elif method.status in (PaymentMethodStatus.PENDING, PaymentMethodStatus.ACTIVE):
                method = self._store.save_method(method.changed_to(PaymentMethodStatus.REVOKED))
            return f"payment method {method.id} {method.status.value}"
        return "ignored"

    def _event_payment(self, event: ProviderEvent) -> Payment | None:
        if event.idempotency_key:
            found = self._store.find_payment(idempotency_key=event.idempotency_key)
            if found is not None:
                return found
        if event.payment_reference:
            return self._store.find_payment(
                provider=event.provider, provider_reference=event.payment_reference
            )
        return None

    def _chargeback(self, event: ProviderEvent, *, at: datetime) -> str:
        payment = self._event_payment(event)
        if payment is None or payment.status is not PaymentStatus.PAID:
            return f"ignored: no paid payment {event.payment_reference}"
        amount = event.amount or payment.amount
        account = self._billing.account(
            subscriber_id=payment.subscriber_id, currency=amount.currency
        )
        key = f"chargeback:{event.provider}:{event.event_id}"
        entry = LedgerEntry(
            account.id, EntryKind.CHARGEBACK, amount, key, at, reference=payment.reference
        )
        self._billing.apply(BillingStep(key, entries=(entry,)), entity_code="", number_prefix="")
        if event.failure_code is not None:
            self._dun_again(payment, Failed(event.failure_code, event.failure_message), at=at)
        return f"payment {payment.id} taken back ({amount})"

    def _dun_again(self, payment: Payment, failure: Failed, *, at: datetime) -> None:
        """A paid charge taken back with a reason (a SEPA return: AM04, AC04 ...) is unpaid
        again: its dunning case opens anew from now (retry days and grace period counted from
        the return), and the refusal is told and scheduled like any other."""
        case = self._dunning.case(payment.reference)
        if case is None:
            case = self._open_case(payment.reference, payment.subscriber_id, payment.amount, at=at)
        elif case.status.closed:
            case = self._dunning.save_case(
                replace(
                    case,
                    status=DunningStatus.OPEN,
                    opened_at=at,
                    attempts=0,
                    last_failure=None,
                    held_since=None,
                    held_for=timedelta(0),
                    closed_at=None,
                )
            )
        self._on_failure(case, payment, failure, at=at)

    # -- notices ------------------------------------------------------------------------------
    def _update_link(self, subscriber_id: int) -> str:
        return self._settings.update_url.replace("{subscriber}", str(subscriber_id))

    def _tell(
        self,
        subscriber_id: int,
        occasion: NoticeOccasion,
        sequence: int,
        amount: Money,
        *,
        link: str,
        failure: FailureCode | None = None,
        next_try: datetime | None = None,
    ) -> None:
        if self._notices is None:
            return
        self._notices.tell(
            payer=self._payers(subscriber_id),
            occasion=occasion,
            sequence=sequence,
            amount=amount,
            link=link,
            failure=failure,
            next_try=next_try,
        )
