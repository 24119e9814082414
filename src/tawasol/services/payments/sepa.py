"""SEPA Direct Debit as the operator runs it: mandates, pre-notified collections, the pain.008
file for each collection date, the bank's returns, refunds by credit transfer (pain.001).

The flow (docs/payments.md, "SEPA Direct Debit"):

1. The operator records the subscriber's signed mandate (`add_mandate`): IBAN checked, SEPA
   zone checked, a unique mandate reference.
2. A charge to collect (`schedule`, through the `PaymentProvider` adapter when billing renews)
   becomes a *collection* dated at least the mandate's pre-notification period later, on a
   TARGET2 business day, and its *pre-notification* is queued in the notices outbox in the
   subscriber's language.
3. `batch(collection_date=D)` writes one pain.008 file with every collection due by D whose
   subscriber was told this amount a full period before D. A collection whose amount must go
   down (a credit note arrived: never collect more than is owed) is told again and waits; one
   whose mandate ended is cancelled. The payments service learns each collection as paid
   (`payment_succeeded`, under the collection's reference `TWS-<id>`).
4. `import_returns` applies the bank's R-transactions: each returned presentation becomes a
   `chargeback` for the payments service (dunning follows, by reason code), and a mandate the
   bank says is unusable (AC04, MD01 ...) is closed.
5. `refund` queues money to give back to the account debited; `transfers(execution_date=D)`
   writes the pain.001 file paying every queued refund.

Every step is keyed and safe to run again after a crash: a batch or a returns file run twice
writes nothing twice, and the events handed to the payments service are deduplicated there by
their ids.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Protocol

from tawasol.domain.errors import Conflict, InvalidInput, TawasolError
from tawasol.domain.money import Money
from tawasol.domain.notices import NoticeOccasion
from tawasol.domain.payments.events import EventKind, ProviderEvent
from tawasol.domain.payments.methods import Payer
from tawasol.domain.payments.outcomes import FailureCode
from tawasol.domain.payments.sepa import (
    DEFAULT_PRENOTIFICATION_DAYS,
    BankAccount,
    Mandate,
    MandateState,
    SequenceType,
    collection_date,
    is_target_day,
    next_target_day,
)
from tawasol.domain.payments.sepa_collections import (
    BatchKind,
    CollectionState,
    Creditor,
    CreditTransfer,
    Prenotification,
    Presentation,
    SepaBatch,
    prenotification_text,
)
from tawasol.domain.payments.sepa_collections import Collection as SepaCollection
from tawasol.domain.payments.sepa_returns import SepaReturn
from tawasol.services.payments.notices import OutboxPaymentNotices
from tawasol.services.payments.sepa_ports import SepaFiles, SepaStore

log = logging.getLogger(__name__)

SEPA = "sepa"
# A charge returned for insufficient funds is presented once more (EPC guidance on AM04:
# one re-presentation), never a third time.
MAX_PRESENTATIONS = 2


class PresentationsUsed(Conflict):
    """A charge was presented and re-presented, and returned both times."""

    error_id = "sepa_presentations_used"


class PaymentEventSink(Protocol):
    """Where the SEPA service reports what the bank did, as provider events: the payments
    service keeps each once (by provider and event id) and applies it (ledger, dunning,
    payment method status)."""

    def take_event(self, event: ProviderEvent) -> object: ...


def payment_reference(collection_id: int) -> str:
    """The provider reference of a collection's payment (`Payment.provider_reference`)."""
    return f"TWS-{collection_id}"


def collection_id_of(provider_reference: str) -> int:
    """The collection a payment's provider reference names; InvalidInput otherwise."""
    prefix, _, number = provider_reference.partition("-")
    if prefix != "TWS" or not number.isdigit():
        raise InvalidInput(
            "not a SEPA collection's reference", provider_reference=provider_reference
        )
    return int(number)


@dataclass
class BatchOutcome:
    """What `batch` did: the file written (None when nothing was due), how many collections
    it holds, those told a new amount, those cancelled, and why the others wait."""

    batch: SepaBatch | None = None
    included: int = 0
    renotified: int = 0
    cancelled: int = 0
    waiting: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ReturnsOutcome:
    """What `import_returns` did: returns applied now, returns applied already (the same
    file, or the same return in another), per reason code, the mandates closed, and the
    lines that name no collection of this platform."""

    applied: int = 0
    already: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    mandates_closed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


class SepaDirectDebit:
    """The SEPA Direct Debit use cases (see the module docstring).

    `notices` queues the pre-notifications (on the channels the operator configured);
    `payers(subscriber_id)` gives who to write to (NotFound for an unknown subscriber);
    `owed(subscriber_id, currency)` what their account owes now (None: amounts are not
    checked against the ledger); `events` receives what the bank did (None: nobody is told,
    e.g. a platform without the payments service).
    """

    def __init__(
        self,
        *,
        store: SepaStore,
        files: SepaFiles,
        notices: OutboxPaymentNotices,
        payers: Callable[[int], Payer],
        creditor: Creditor | None,
        clock: Callable[[], datetime],
        prenotification_days: int = DEFAULT_PRENOTIFICATION_DAYS,
        owed: Callable[[int, str], Money] | None = None,
        events: PaymentEventSink | None = None,
    ) -> None:
        self._store = store
        self._files = files
        self._notices = notices
        self._payers = payers
        self._creditor = creditor
        self._clock = clock
        self._days = prenotification_days
        self._owed = owed
        self._events = events

    @property
    def store(self) -> SepaStore:
        return self._store

    def report_to(self, events: PaymentEventSink) -> None:
        """Hand what the bank did to `events` from now on (the payments service, which is
        built with this service's provider: hence after it)."""
        self._events = events

    def _today(self) -> date:
        return self._clock().date()

    def _need_creditor(self) -> Creditor:
        if self._creditor is None:
            raise InvalidInput(
                "SEPA Direct Debit is not set up: set TAWASOL_PAYMENTS_SEPA_CREDITOR_ID, "
                "_CREDITOR_NAME and _CREDITOR_IBAN (docs/payments.md)"
            )
        return self._creditor

    # -- mandates ------------------------------------------------------------------------------
    def add_mandate(
        self,
        *,
        subscriber_id: int,
        iban: str,
        holder: str,
        signed_on: date,
        bic: str = "",
        reference: str = "",
        prenotification_days: int | None = None,
    ) -> Mandate:
        """Record a signed mandate. Raises NotFound (subscriber), InvalidInput (IBAN, BIC,
        name, reference, a signature date in the future, an account outside the SEPA zone),
        Conflict (the reference is another mandate's)."""
        self._payers(subscriber_id)
        account = BankAccount.parse(iban=iban, holder=holder, bic=bic)
        if signed_on > self._today():
            raise InvalidInput(
                "a mandate's signature date cannot be in the future",
                signed_on=signed_on.isoformat(),
            )
        days = self._days if prenotification_days is None else prenotification_days
        if reference:
            return self._store.add_mandate(
                Mandate(reference, subscriber_id, account, signed_on, days)
            )
        known = len(self._store.mandates(subscriber_id=subscriber_id))
        for number in range(known + 1, known + 20):
            try:
                return self._store.add_mandate(
                    Mandate(
                        f"TWS-{subscriber_id}-M{number}", subscriber_id, account, signed_on, days
                    )
                )
            except Conflict:
                continue
        raise Conflict("no free mandate reference: give one", subscriber_id=subscriber_id)

    def revoke_mandate(self, reference: str, *, reason: str = "") -> tuple[Mandate, int]:
        """Revoke a mandate (the subscriber withdrew it): nothing more is collected under it;
        its scheduled collections are cancelled (their charges go to dunning through the
        payments service). Returns the mandate and how many collections were cancelled.
        NotFound; Conflict when it is not active."""
        mandate = self._store.mandate(reference)
        ended = mandate.ended(
            MandateState.REVOKED, on=self._today(), reason=reason or "revoked by the subscriber"
        )
        self._store.save_mandate(ended)
        cancelled = 0
        for collection in self._store.collections(
            state=CollectionState.SCHEDULED, subscriber_id=mandate.subscriber_id
        ):
            if collection.mandate_reference == reference:
                self._cancel(collection, FailureCode.METHOD_REVOKED, "mandate revoked")
                cancelled += 1
        self._emit(
            ProviderEvent(
                provider=SEPA,
                event_id=f"mandate-revoked:{reference}",
                type="mandate.revoked",
                kind=EventKind.METHOD_REVOKED,
                occurred_at=self._clock(),
                payload=f"mandate {reference} revoked: {ended.state_reason}",
                method_reference=reference,
            )
        )
        return ended, cancelled

    def mandates(self, *, subscriber_id: int | None = None) -> list[Mandate]:
        """Mandates with their state today (an unused one past 36 months shows expired)."""
        today = self._today()
        return [
            m if m.state_on(today) is m.state else _expired(m, today)
            for m in self._store.mandates(subscriber_id=subscriber_id)
        ]

    # -- collections ---------------------------------------------------------------------------
    def schedule(
        self,
        *,
        mandate_reference: str,
        amount: Money,
        reference: str,
        charge: str = "",
        description: str = "",
    ) -> SepaCollection:
        """A collection of `amount` under the mandate, for the payment `reference` of the
        billing charge `charge`, on the earliest TARGET2 day a pre-notification sent today
        allows; the pre-notification is queued. Once per `reference`; and while a collection
        of the same charge is still scheduled, that one is returned (a retry never debits
        twice). Raises NotFound (mandate), Conflict (mandate not active, or the charge was
        presented and re-presented already: `PresentationsUsed`), InvalidInput (not euros)."""
        mandate = self._store.mandate(mandate_reference)
        today = self._today()
        mandate.check_collectable(today)
        if charge:
            earlier = self._store.collections(charge=charge)
            waiting = [c for c in earlier if c.state is CollectionState.SCHEDULED]
            if waiting:
                return waiting[0]
            returned = [c for c in earlier if c.state is CollectionState.RETURNED]
            if len(returned) >= MAX_PRESENTATIONS:
                raise PresentationsUsed(
                    f"charge {charge} was presented {len(returned)} times and returned each "
                    "time: SEPA allows one re-presentation; the subscriber must pay another "
                    "way",
                    charge=charge,
                )
        collection, prenotification = self._store.add_collection(
            SepaCollection(
                subscriber_id=mandate.subscriber_id,
                mandate_reference=mandate.reference,
                amount=amount,
                reference=reference,
                charge=charge,
                due_on=collection_date(
                    notified_on=today, prenotification_days=mandate.prenotification_days
                ),
                created_at=self._clock(),
            )
        )
        if prenotification is not None:
            self._queue(prenotification, collection, mandate, what=description or reference)
        return collection

    def queue_prenotifications(self) -> int:
        """Queue the pre-notifications stored but not queued (a process stopped in between);
        returns how many."""
        done = 0
        for prenotification in self._store.unqueued_prenotifications():
            collection = self._store.collection(prenotification.collection_id)
            mandate = self._store.mandate(collection.mandate_reference)
            self._queue(prenotification, collection, mandate, what=collection.reference)
            done += 1
        return done

    def _queue(
        self,
        prenotification: Prenotification,
        collection: SepaCollection,
        mandate: Mandate,
        *,
        what: str,
    ) -> None:
        payer = self._payers(collection.subscriber_id)
        creditor = self._need_creditor()
        self._notices.queue(
            payer=payer,
            occasion=NoticeOccasion.SEPA_PRENOTIFICATION,
            sequence=prenotification.id,
            written=prenotification_text(
                locale=payer.locale,
                name=payer.name,
                amount=prenotification.amount,
                due_on=prenotification.due_on,
                what=what,
                mandate=mandate,
                creditor=str(creditor.identifier),
            ),
        )
        self._store.mark_queued(prenotification.id, at=self._clock())

    def _cancel(self, collection: SepaCollection, code: FailureCode | None, why: str) -> None:
        """Not collected. With `code` the payments service learns the payment failed (dunning
        follows); without (nothing owed any more: credit notes paid it) it is told nothing."""
        self._store.cancel_collection(collection.id)
        if code is None:
            return
        self._emit(
            ProviderEvent(
                provider=SEPA,
                event_id=f"cancelled:{collection.id}",
                type="collection.cancelled",
                kind=EventKind.PAYMENT_FAILED,
                occurred_at=self._clock(),
                payload=f"collection {collection.id} cancelled: {why}",
                payment_reference=payment_reference(collection.id),
                failure_code=code,
                failure_message=why,
            )
        )

    # -- the pain.008 file ---------------------------------------------------------------------
    def batch(self, *, collection_date: date) -> BatchOutcome:
        """Write the pain.008 batch collected on `collection_date` (see the module docstring).

        Raises InvalidInput when the date is not a TARGET2 business day (naming the next
        one) or is not after today (SDD Core files reach the bank at the latest the TARGET2
        day before). Nothing due: no file, `batch` None.
        """
        creditor = self._need_creditor()
        today = self._today()
        if not is_target_day(collection_date):
            raise InvalidInput(
                f"{collection_date.isoformat()} is not a TARGET2 business day: the next one "
                f"is {next_target_day(collection_date).isoformat()}",
                collection_date=collection_date.isoformat(),
            )
        if collection_date <= today:
            raise InvalidInput(
                "a collection date must be after today: the file reaches the bank the "
                "business day before at the latest",
                collection_date=collection_date.isoformat(),
            )
        self.queue_prenotifications()
        for earlier in self._store.batches(
            kind=BatchKind.DIRECT_DEBIT, execution_date=collection_date
        ):
            self._report_collected(earlier)  # events a stopped run may not have handed over
        outcome = BatchOutcome()
        owed: dict[int, Decimal] = {}
        debits: list[tuple[Presentation, Mandate]] = []
        first_in_batch: set[str] = set()
        for collection in self._store.collections(
            state=CollectionState.SCHEDULED, due_by=collection_date
        ):
            mandate = self._store.mandate(collection.mandate_reference)
            if mandate.state_on(collection_date) is not MandateState.ACTIVE:
                self._cancel(
                    collection,
                    FailureCode.METHOD_REVOKED,
                    f"mandate {mandate.reference} is {mandate.state_on(collection_date).value}",
                )
                outcome.cancelled += 1
                continue
            amount = collection.amount
            if self._owed is not None:
                left = owed.setdefault(
                    collection.subscriber_id,
                    self._owed(collection.subscriber_id, amount.currency).amount,
                )
                if left <= 0:
                    self._cancel(collection, None, "nothing owed any more")
                    outcome.cancelled += 1
                    continue
                if left < amount.amount:
                    self._renotify(collection, Money(left, amount.currency), mandate)
                    outcome.renotified += 1
                    owed[collection.subscriber_id] = Decimal(0)
                    continue
                owed[collection.subscriber_id] = left - amount.amount
            if not collection.ready_on(collection_date, mandate):
                outcome.waiting.append((collection.id, _why_waiting(collection, mandate)))
                continue
            if mandate.sequence_type is SequenceType.FIRST and mandate.reference in first_in_batch:
                outcome.waiting.append(
                    (collection.id, "a first collection under its mandate is in this file")
                )
                continue
            first_in_batch.add(mandate.reference)
            presentation = Presentation(
                end_to_end_id=collection.end_to_end_id(collection.presentations + 1),
                collection_id=collection.id,
                batch_id=0,
                mandate_reference=mandate.reference,
                sequence_type=mandate.sequence_type,
                amount=amount,
                collection_date=collection_date,
            )
            debits.append((presentation, mandate))
        if not debits:
            return outcome
        created_at, message_id = self._next_file(BatchKind.DIRECT_DEBIT)
        xml = self._files.direct_debits(
            creditor=creditor, message_id=message_id, created_at=created_at, debits=debits
        )
        batch = self._store.add_debit_batch(
            _file(
                BatchKind.DIRECT_DEBIT,
                message_id,
                collection_date,
                created_at,
                [p.amount for p, _ in debits],
                xml,
            ),
            [p for p, _ in debits],
        )
        outcome.batch = batch
        outcome.included = len(debits)
        self._report_collected(batch)
        return outcome

    def _renotify(self, collection: SepaCollection, amount: Money, mandate: Mandate) -> None:
        changed = collection.renotified(amount=amount, on=self._today(), mandate=mandate)
        prenotification = self._store.renotify(changed)
        self._queue(prenotification, changed, mandate, what=collection.reference)

    def change_amount(self, collection_id: int, amount: Money) -> SepaCollection:
        """Collect `amount` instead (the charge changed): the subscriber is told again and the
        date moves to a full pre-notification period from today. Conflict unless scheduled."""
        collection = self._store.collection(collection_id)
        if collection.state is not CollectionState.SCHEDULED:
            raise Conflict(
                f"collection {collection_id} is {collection.state.value}: its amount is fixed",
                collection_id=collection_id,
            )
        if amount == collection.amount:
            return collection
        mandate = self._store.mandate(collection.mandate_reference)
        self._renotify(collection, amount, mandate)
        return self._store.collection(collection_id)

    def _report_collected(self, batch: SepaBatch) -> None:
        for presentation in self._store.presentations(batch_id=batch.id):
            self._emit(
                ProviderEvent(
                    provider=SEPA,
                    event_id=f"collected:{presentation.end_to_end_id}",
                    type="collection.submitted",
                    kind=EventKind.PAYMENT_SUCCEEDED,
                    occurred_at=_moment(presentation.collection_date),
                    payload=(
                        f"{presentation.end_to_end_id} in {batch.message_id}, "
                        f"{presentation.sequence_type.value} {presentation.amount} on "
                        f"{presentation.collection_date.isoformat()}"
                    ),
                    payment_reference=payment_reference(presentation.collection_id),
                    amount=presentation.amount,
                )
            )

    # -- the bank's returns --------------------------------------------------------------------
    def import_returns(self, returns: Sequence[SepaReturn]) -> ReturnsOutcome:
        """Apply the bank's R-transactions (see the module docstring). A line that names no
        presentation of this platform is listed in `unknown` and the others still apply;
        a return larger than what was collected is refused (InvalidInput, nothing of that
        line written)."""
        outcome = ReturnsOutcome()
        for sepa_return in returns:
            presentation = self._store.presentation(sepa_return.end_to_end_id)
            if presentation is None:
                outcome.unknown.append(sepa_return.end_to_end_id)
                continue
            if (
                sepa_return.amount.currency != presentation.amount.currency
                or sepa_return.amount > presentation.amount
            ):
                raise InvalidInput(
                    f"the return of {sepa_return.end_to_end_id} takes back {sepa_return.amount}, "
                    f"more than the {presentation.amount} collected",
                    end_to_end_id=sepa_return.end_to_end_id,
                )
            reason = sepa_return.reason
            close = (
                f"{reason.code} {reason.meaning}, returned {sepa_return.booked_on.isoformat()}"
                if reason.close_mandate
                else ""
            )
            if self._store.record_return(sepa_return, close_mandate=close):
                outcome.applied += 1
                outcome.by_reason[reason.code] = outcome.by_reason.get(reason.code, 0) + 1
                if close:
                    outcome.mandates_closed.append(presentation.mandate_reference)
            else:
                outcome.already += 1
            self._report_return(sepa_return, presentation, close)
        return outcome

    def _report_return(
        self, sepa_return: SepaReturn, presentation: Presentation, close: str
    ) -> None:
        reason = sepa_return.reason
        occurred = _moment(sepa_return.booked_on)
        self._emit(
            ProviderEvent(
                provider=SEPA,
                event_id=f"return:{sepa_return.end_to_end_id}",
                type=f"return.{reason.code}",
                kind=EventKind.CHARGEBACK,
                occurred_at=occurred,
                payload=(
                    f"{sepa_return.end_to_end_id} returned {reason.code} ({reason.meaning}), "
                    f"{sepa_return.amount}, booked {sepa_return.booked_on.isoformat()}, bank "
                    f"reference {sepa_return.bank_reference or '-'}"
                ),
                payment_reference=payment_reference(presentation.collection_id),
                method_reference=presentation.mandate_reference,
                amount=sepa_return.amount,
                failure_code=reason.failure,
                failure_message=f"{reason.code} {reason.meaning}",
            )
        )
        if close:
            self._emit(
                ProviderEvent(
                    provider=SEPA,
                    event_id=f"mandate-closed:{presentation.mandate_reference}",
                    type="mandate.closed",
                    kind=EventKind.METHOD_REVOKED,
                    occurred_at=occurred,
                    payload=f"mandate {presentation.mandate_reference} closed: {close}",
                    method_reference=presentation.mandate_reference,
                )
            )

    # -- refunds by credit transfer ------------------------------------------------------------
    def refund(
        self, *, collection_id: int, amount: Money, idempotency_key: str, remittance: str = ""
    ) -> CreditTransfer:
        """Queue `amount` to pay back to the account the collection debited, once per
        `idempotency_key`. Raises NotFound, InvalidInput when it is more than what the
        collection brought in and was not paid back already (a returned collection brought
        nothing)."""
        collection = self._store.collection(collection_id)
        mandate = self._store.mandate(collection.mandate_reference)
        existing = [t for t in self._store.transfers() if t.idempotency_key == idempotency_key]
        if existing:
            return existing[0]
        collected = (
            collection.amount
            if collection.state is CollectionState.SUBMITTED
            else Money(Decimal(0), collection.amount.currency)
        )
        given = sum(
            (t.amount.amount for t in self._store.transfers() if t.collection_id == collection_id),
            Decimal(0),
        )
        left = Money(collected.amount - given, collected.currency)
        if amount > left:
            raise InvalidInput(
                f"a refund of {amount} is more than collection {collection_id} has left to "
                f"refund ({left} of {collected} collected)",
                collection_id=collection_id,
                refund=str(amount),
                refundable=str(left),
            )
        transfer, _ = self._store.add_transfer(
            CreditTransfer(
                idempotency_key=idempotency_key,
                subscriber_id=collection.subscriber_id,
                collection_id=collection_id,
                account=mandate.account,
                amount=amount,
                remittance=remittance or f"Refund {payment_reference(collection_id)}",
                created_at=self._clock(),
            )
        )
        return transfer

    def transfers(self, *, execution_date: date) -> SepaBatch | None:
        """Write the pain.001 file paying every queued refund on `execution_date` (a TARGET2
        business day, today or later); None when none is queued. Each refund is reported as
        done to the payments service (`refund_succeeded`, reference `TWR-<id>`)."""
        creditor = self._need_creditor()
        if not is_target_day(execution_date) or execution_date < self._today():
            raise InvalidInput(
                "the execution date must be a TARGET2 business day, today or later: "
                f"{next_target_day(max(execution_date, self._today())).isoformat()} is",
                execution_date=execution_date.isoformat(),
            )
        for earlier in self._store.batches(kind=BatchKind.CREDIT_TRANSFER):
            self._report_refunds(earlier)
        pending = list(self._store.transfers(pending_only=True))
        if not pending:
            return None
        created_at, message_id = self._next_file(BatchKind.CREDIT_TRANSFER)
        xml = self._files.credit_transfers(
            creditor=creditor,
            message_id=message_id,
            created_at=created_at,
            execution_date=execution_date,
            transfers=pending,
        )
        batch = self._store.add_transfer_batch(
            _file(
                BatchKind.CREDIT_TRANSFER,
                message_id,
                execution_date,
                created_at,
                [t.amount for t in pending],
                xml,
            ),
            [t.id for t in pending],
        )
        self._report_refunds(batch)
        return batch

    def _report_refunds(self, batch: SepaBatch) -> None:
        for transfer in self._store.transfers():
            if transfer.batch_id != batch.id:
                continue
            self._emit(
                ProviderEvent(
                    provider=SEPA,
                    event_id=f"transferred:{transfer.end_to_end_id}",
                    type="refund.transferred",
                    kind=EventKind.REFUND_SUCCEEDED,
                    occurred_at=_moment(batch.execution_date),
                    payload=f"{transfer.end_to_end_id} {transfer.amount} in {batch.message_id}",
                    payment_reference=payment_reference(transfer.collection_id),
                    refund_reference=transfer.end_to_end_id,
                    amount=transfer.amount,
                )
            )

    def _next_file(self, kind: BatchKind) -> tuple[datetime, str]:
        """The creation time and message id of the next file of `kind` (unique: the store
        refuses a message id used before)."""
        created_at = self._clock()
        number = len(self._store.batches(kind=kind)) + 1
        code = "DD" if kind is BatchKind.DIRECT_DEBIT else "CT"
        return created_at, f"TWS-{code}-{created_at:%Y%m%d%H%M%S}-{number}"

    def _emit(self, event: ProviderEvent) -> None:
        if self._events is None:
            return
        try:
            self._events.take_event(event)
        except TawasolError as error:
            # Kept and applied by the payments service, or refused there for a reason it
            # logs; the bank's fact stays recorded here and is handed over again next run.
            log.warning("payments service refused SEPA event %s: %s", event.event_id, error)


def _expired(mandate: Mandate, today: date) -> Mandate:
    from dataclasses import replace

    return replace(
        mandate,
        state=MandateState.EXPIRED,
        state_changed_on=mandate.expires_on(),
        state_reason="no collection for 36 months",
    )


def _file(
    kind: BatchKind,
    message_id: str,
    execution_date: date,
    created_at: datetime,
    amounts: Sequence[Money],
    xml: str,
) -> SepaBatch:
    total = sum((amount.amount for amount in amounts), Decimal(0))
    return SepaBatch(
        kind=kind,
        message_id=message_id,
        execution_date=execution_date,
        created_at=created_at,
        transactions=len(amounts),
        control_sum=Money(total, "EUR"),
        xml=xml,
    )


def _why_waiting(collection: SepaCollection, mandate: Mandate) -> str:
    if collection.notified_on is None:
        return "pre-notification not queued yet"
    if collection.notified_amount != collection.amount:
        return "the new amount's pre-notification is not queued yet"
    earliest = collection.notified_on + timedelta(days=mandate.prenotification_days)
    return (
        f"announced for {collection.due_on.isoformat()}, pre-notified on "
        f"{collection.notified_on.isoformat()}: collectable from {earliest.isoformat()}"
    )


__all__ = [
    "SEPA",
    "BatchOutcome",
    "PaymentEventSink",
    "PresentationsUsed",
    "ReturnsOutcome",
    "SepaDirectDebit",
    "collection_id_of",
    "payment_reference",
]
