"""`SepaStore` on SQLAlchemy (SQLite or PostgreSQL), tables from migration 0013.

Writes that change several rows are one transaction each (a batch with its presentations,
collections and mandates; a return with its collection and mandate), so a process killed at
any point leaves all or nothing. Uniqueness (mandate reference, collection reference, message
id, end-to-end id, refund key) is the database's: two processes racing on the same key get one
row and a Conflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tawasol.adapters.store.sepa_models import (
    SepaBatchRow,
    SepaCollectionRow,
    SepaMandateRow,
    SepaPrenotificationRow,
    SepaPresentationRow,
    SepaTransferRow,
)
from tawasol.adapters.store.sessions import Transactions
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.money import Money
from tawasol.domain.payments.sepa import BankAccount, Mandate, MandateState, SequenceType
from tawasol.domain.payments.sepa_collections import (
    BatchKind,
    Collection,
    CollectionState,
    CreditTransfer,
    Prenotification,
    Presentation,
    SepaBatch,
)
from tawasol.domain.payments.sepa_returns import SepaReturn
from tawasol.services.payments.sepa_ports import SepaStore


class SqlSepaStore:
    """`SepaStore` on the store's engine. Thread-safe: a session per call."""

    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    # -- mandates -------------------------------------------------------------------------------
    def add_mandate(self, mandate: Mandate) -> Mandate:
        try:
            with self._transactions.writing() as session:
                row = SepaMandateRow(**_mandate_values(mandate))
                session.add(row)
                session.flush()
                return replace(mandate, id=row.id)
        except Conflict as error:
            raise Conflict(
                f"mandate reference {mandate.reference} is used already",
                mandate=mandate.reference,
            ) from error

    def save_mandate(self, mandate: Mandate) -> Mandate:
        with self._transactions.writing() as session:
            row = _mandate_row(session, mandate.reference)
            for name, value in _mandate_values(mandate).items():
                setattr(row, name, value)
            return _mandate(row)

    def mandate(self, reference: str) -> Mandate:
        with self._transactions.reading() as session:
            return _mandate(_mandate_row(session, reference))

    def mandates(self, *, subscriber_id: int | None = None) -> Sequence[Mandate]:
        query = select(SepaMandateRow).order_by(SepaMandateRow.id)
        if subscriber_id is not None:
            query = query.where(SepaMandateRow.subscriber_id == subscriber_id)
        with self._transactions.reading() as session:
            return [_mandate(row) for row in session.scalars(query)]

    # -- collections ----------------------------------------------------------------------------
    def add_collection(self, collection: Collection) -> tuple[Collection, Prenotification | None]:
        try:
            with self._transactions.writing() as session:
                found = session.scalars(
                    select(SepaCollectionRow).where(
                        SepaCollectionRow.reference == collection.reference
                    )
                ).one_or_none()
                if found is not None:
                    return _collection(found), None
                row = SepaCollectionRow(
                    subscriber_id=collection.subscriber_id,
                    mandate_reference=collection.mandate_reference,
                    amount=collection.amount.amount,
                    currency=collection.amount.currency,
                    reference=collection.reference,
                    charge_reference=collection.charge,
                    due_on=collection.due_on,
                    created_at=collection.created_at,
                    state=collection.state.value,
                    presentations=collection.presentations,
                    notified_on=None,
                    notified_amount=None,
                )
                session.add(row)
                session.flush()
                notice = self._add_prenotification(session, row)
                return _collection(row), notice
        except Conflict:
            # Another process stored the same reference between our look and our insert.
            with self._transactions.reading() as session:
                found = session.scalars(
                    select(SepaCollectionRow).where(
                        SepaCollectionRow.reference == collection.reference
                    )
                ).one()
                return _collection(found), None

    @staticmethod
    def _add_prenotification(session: Session, row: SepaCollectionRow) -> Prenotification:
        notice = SepaPrenotificationRow(
            collection_id=row.id,
            amount=row.amount,
            currency=row.currency,
            due_on=row.due_on,
            queued_at=None,
        )
        session.add(notice)
        session.flush()
        return _prenotification(notice)

    def renotify(self, collection: Collection) -> Prenotification:
        with self._transactions.writing() as session:
            row = _collection_row(session, collection.id, lock=True)
            if row.state != CollectionState.SCHEDULED.value:
                raise Conflict(
                    f"collection {row.id} is {row.state}: it is not told again",
                    collection_id=row.id,
                )
            row.amount = collection.amount.amount
            row.due_on = collection.due_on
            return self._add_prenotification(session, row)

    def cancel_collection(self, collection_id: int) -> Collection:
        with self._transactions.writing() as session:
            row = _collection_row(session, collection_id, lock=True)
            if row.state == CollectionState.SCHEDULED.value:
                row.state = CollectionState.CANCELLED.value
            return _collection(row)

    def collection(self, collection_id: int) -> Collection:
        with self._transactions.reading() as session:
            return _collection(_collection_row(session, collection_id))

    def collections(
        self,
        *,
        state: CollectionState | None = None,
        due_by: date | None = None,
        subscriber_id: int | None = None,
        charge: str | None = None,
    ) -> Sequence[Collection]:
        query = select(SepaCollectionRow).order_by(SepaCollectionRow.due_on, SepaCollectionRow.id)
        if state is not None:
            query = query.where(SepaCollectionRow.state == state.value)
        if due_by is not None:
            query = query.where(SepaCollectionRow.due_on <= due_by)
        if subscriber_id is not None:
            query = query.where(SepaCollectionRow.subscriber_id == subscriber_id)
        if charge is not None:
            query = query.where(SepaCollectionRow.charge_reference == charge)
        with self._transactions.reading() as session:
            return [_collection(row) for row in session.scalars(query)]

    def unqueued_prenotifications(self, *, limit: int = 1000) -> Sequence[Prenotification]:
        query = (
            select(SepaPrenotificationRow)
            .where(SepaPrenotificationRow.queued_at.is_(None))
            .order_by(SepaPrenotificationRow.id)
            .limit(limit)
        )
        with self._transactions.reading() as session:
            return [_prenotification(row) for row in session.scalars(query)]

    def mark_queued(self, prenotification_id: int, *, at: datetime) -> None:
        with self._transactions.writing() as session:
            notice = session.get(SepaPrenotificationRow, prenotification_id)
            if notice is None:
                raise NotFound("no such pre-notification", prenotification_id=prenotification_id)
            if notice.queued_at is None:
                notice.queued_at = at
            newest = session.scalar(
                select(SepaPrenotificationRow.id)
                .where(SepaPrenotificationRow.collection_id == notice.collection_id)
                .order_by(SepaPrenotificationRow.id.desc())
                .limit(1)
            )
            if newest == notice.id:
                session.execute(
                    update(SepaCollectionRow)
                    .where(SepaCollectionRow.id == notice.collection_id)
                    .values(notified_on=notice.queued_at.date(), notified_amount=notice.amount)
                )

    def prenotifications(self, *, collection_id: int) -> Sequence[Prenotification]:
        query = (
            select(SepaPrenotificationRow)
            .where(SepaPrenotificationRow.collection_id == collection_id)
            .order_by(SepaPrenotificationRow.id)
        )
        with self._transactions.reading() as session:
            return [_prenotification(row) for row in session.scalars(query)]

    # -- files ----------------------------------------------------------------------------------
    def add_debit_batch(self, batch: SepaBatch, presentations: Sequence[Presentation]) -> SepaBatch:
        with self._transactions.writing() as session:
            row = _batch_row(batch)
            session.add(row)
            session.flush()
            for presentation in presentations:
                collection = _collection_row(session, presentation.collection_id, lock=True)
                if collection.state != CollectionState.SCHEDULED.value:
                    raise Conflict(
                        f"collection {collection.id} is {collection.state}: it was not "
                        "collected in this file (run the batch again)",
                        collection_id=collection.id,
                    )
                collection.state = CollectionState.SUBMITTED.value
                collection.presentations += 1
                session.add(
                    SepaPresentationRow(
                        end_to_end_id=presentation.end_to_end_id,
                        collection_id=presentation.collection_id,
                        batch_id=row.id,
                        mandate_reference=presentation.mandate_reference,
                        sequence_type=presentation.sequence_type.value,
                        amount=presentation.amount.amount,
                        currency=presentation.amount.currency,
                        collection_date=presentation.collection_date,
                        returned_reason="",
                        returned_on=None,
                    )
                )
                mandate = _mandate_row(session, presentation.mandate_reference)
                if (
                    mandate.last_collection_on is None
                    or mandate.last_collection_on < presentation.collection_date
                ):
                    mandate.last_collection_on = presentation.collection_date
            return _batch(row)

    def add_transfer_batch(self, batch: SepaBatch, transfer_ids: Sequence[int]) -> SepaBatch:
        with self._transactions.writing() as session:
            row = _batch_row(batch)
            session.add(row)
            session.flush()
            for transfer_id in transfer_ids:
                transfer = session.get(SepaTransferRow, transfer_id, with_for_update=True)
                if transfer is None:
                    raise NotFound("no such credit transfer", transfer_id=transfer_id)
                if transfer.batch_id is not None:
                    raise Conflict(
                        f"credit transfer {transfer_id} is in another file already",
                        transfer_id=transfer_id,
                    )
                transfer.batch_id = row.id
            return _batch(row)

    def batches(
        self, *, kind: BatchKind | None = None, execution_date: date | None = None
    ) -> Sequence[SepaBatch]:
        query = select(SepaBatchRow).order_by(SepaBatchRow.id)
        if kind is not None:
            query = query.where(SepaBatchRow.kind == kind.value)
        if execution_date is not None:
            query = query.where(SepaBatchRow.execution_date == execution_date)
        with self._transactions.reading() as session:
            return [_batch(row) for row in session.scalars(query)]

    def presentations(self, *, batch_id: int) -> Sequence[Presentation]:
        query = (
            select(SepaPresentationRow)
            .where(SepaPresentationRow.batch_id == batch_id)
            .order_by(SepaPresentationRow.collection_id)
        )
        with self._transactions.reading() as session:
            return [_presentation(row) for row in session.scalars(query)]

    def presentation(self, end_to_end_id: str) -> Presentation | None:
        with self._transactions.reading() as session:
            row = session.get(SepaPresentationRow, end_to_end_id)
            return None if row is None else _presentation(row)

    # -- returns --------------------------------------------------------------------------------
    def record_return(self, sepa_return: SepaReturn, *, close_mandate: str) -> bool:
        with self._transactions.writing() as session:
            row = session.get(SepaPresentationRow, sepa_return.end_to_end_id, with_for_update=True)
            if row is None:
                raise NotFound(
                    "no collection was sent with this end-to-end id",
                    end_to_end_id=sepa_return.end_to_end_id,
                )
            if row.returned_reason:
                return False
            row.returned_reason = sepa_return.reason.code
            row.returned_on = sepa_return.booked_on
            collection = _collection_row(session, row.collection_id, lock=True)
            collection.state = CollectionState.RETURNED.value
            if close_mandate:
                mandate = _mandate_row(session, row.mandate_reference)
                if mandate.state == MandateState.ACTIVE.value:
                    mandate.state = MandateState.CLOSED.value
                    mandate.state_changed_on = sepa_return.booked_on
                    mandate.state_reason = close_mandate
            return True

    # -- credit transfers ---------------------------------------------------------------------
    def add_transfer(self, transfer: CreditTransfer) -> tuple[CreditTransfer, bool]:
        query = select(SepaTransferRow).where(
            SepaTransferRow.idempotency_key == transfer.idempotency_key
        )
        try:
            with self._transactions.writing() as session:
                found = session.scalars(query).one_or_none()
                if found is not None:
                    return _transfer(found), False
                row = SepaTransferRow(
                    idempotency_key=transfer.idempotency_key,
                    subscriber_id=transfer.subscriber_id,
                    collection_id=transfer.collection_id,
                    iban=transfer.account.iban,
                    bic=transfer.account.bic,
                    holder=transfer.account.holder,
                    amount=transfer.amount.amount,
                    currency=transfer.amount.currency,
                    remittance=transfer.remittance,
                    created_at=transfer.created_at,
                    batch_id=None,
                )
                session.add(row)
                session.flush()
                return _transfer(row), True
        except Conflict:
            with self._transactions.reading() as session:
                return _transfer(session.scalars(query).one()), False

    def transfers(self, *, pending_only: bool = False) -> Sequence[CreditTransfer]:
        query = select(SepaTransferRow).order_by(SepaTransferRow.id)
        if pending_only:
            query = query.where(SepaTransferRow.batch_id.is_(None))
        with self._transactions.reading() as session:
            return [_transfer(row) for row in session.scalars(query)]


# -- mapping -----------------------------------------------------------------------------------
def _mandate_values(mandate: Mandate) -> dict[str, object]:
    return {
        "reference": mandate.reference,
        "subscriber_id": mandate.subscriber_id,
        "iban": mandate.account.iban,
        "bic": mandate.account.bic,
        "holder": mandate.account.holder,
        "signed_on": mandate.signed_on,
        "prenotification_days": mandate.prenotification_days,
        "state": mandate.state.value,
        "state_changed_on": mandate.state_changed_on,
        "state_reason": mandate.state_reason,
        "last_collection_on": mandate.last_collection_on,
    }


def _mandate_row(session: Session, reference: str) -> SepaMandateRow:
    row = session.scalars(
        select(SepaMandateRow).where(SepaMandateRow.reference == reference)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no mandate {reference}", mandate=reference)
    return row


def _mandate(row: SepaMandateRow) -> Mandate:
    return Mandate(
        reference=row.reference,
        subscriber_id=row.subscriber_id,
        account=BankAccount(iban=row.iban, bic=row.bic, holder=row.holder),
        signed_on=row.signed_on,
        prenotification_days=row.prenotification_days,
        state=MandateState(row.state),
        state_changed_on=row.state_changed_on,
        state_reason=row.state_reason,
        last_collection_on=row.last_collection_on,
        id=row.id,
    )


def _collection_row(
    session: Session, collection_id: int, *, lock: bool = False
) -> SepaCollectionRow:
    row = session.get(SepaCollectionRow, collection_id, with_for_update=lock)
    if row is None:
        raise NotFound("no such collection", collection_id=collection_id)
    return row


def _collection(row: SepaCollectionRow) -> Collection:
    return Collection(
        subscriber_id=row.subscriber_id,
        mandate_reference=row.mandate_reference,
        amount=Money(row.amount, row.currency),
        reference=row.reference,
        due_on=row.due_on,
        created_at=row.created_at,
        state=CollectionState(row.state),
        presentations=row.presentations,
        notified_on=row.notified_on,
        notified_amount=(
            None if row.notified_amount is None else Money(row.notified_amount, row.currency)
        ),
        charge=row.charge_reference,
        id=row.id,
    )


def _prenotification(row: SepaPrenotificationRow) -> Prenotification:
    return Prenotification(
        collection_id=row.collection_id,
        amount=Money(row.amount, row.currency),
        due_on=row.due_on,
        queued_at=row.queued_at,
        id=row.id,
    )


def _batch_row(batch: SepaBatch) -> SepaBatchRow:
    return SepaBatchRow(
        kind=batch.kind.value,
        message_id=batch.message_id,
        execution_date=batch.execution_date,
        created_at=batch.created_at,
        transactions=batch.transactions,
        control_sum=batch.control_sum.amount,
        currency=batch.control_sum.currency,
        xml=batch.xml,
    )


def _batch(row: SepaBatchRow) -> SepaBatch:
    return SepaBatch(
        kind=BatchKind(row.kind),
        message_id=row.message_id,
        execution_date=row.execution_date,
        created_at=row.created_at,
        transactions=row.transactions,
        control_sum=Money(row.control_sum, row.currency),
        xml=row.xml,
        id=row.id,
    )


def _presentation(row: SepaPresentationRow) -> Presentation:
    return Presentation(
        end_to_end_id=row.end_to_end_id,
        collection_id=row.collection_id,
        batch_id=row.batch_id,
        mandate_reference=row.mandate_reference,
        sequence_type=SequenceType(row.sequence_type),
        amount=Money(row.amount, row.currency),
        collection_date=row.collection_date,
        returned_reason=row.returned_reason,
        returned_on=row.returned_on,
    )


def _transfer(row: SepaTransferRow) -> CreditTransfer:
    return CreditTransfer(
        idempotency_key=row.idempotency_key,
        subscriber_id=row.subscriber_id,
        collection_id=row.collection_id,
        account=BankAccount(iban=row.iban, bic=row.bic, holder=row.holder),
        amount=Money(row.amount, row.currency),
        remittance=row.remittance,
        created_at=row.created_at,
        batch_id=row.batch_id,
        id=row.id,
    )


def _implements_the_port(store: SqlSepaStore) -> SepaStore:
    return store
