"""`SepaStore` in memory: the unit tests' fake, held to the SQL store's contract
(tests/contract/test_sepa_store.py runs the same tests on both). Each method holds one lock,
so a write that changes several things is whole, as a transaction is in SQL."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime

from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.payments.sepa import Mandate, MandateState
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


class MemorySepaStore:
    """`SepaStore` in memory, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mandates: dict[str, Mandate] = {}
        self._collections: dict[int, Collection] = {}
        self._notices: dict[int, Prenotification] = {}
        self._batches: dict[int, SepaBatch] = {}
        self._presentations: dict[str, Presentation] = {}
        self._transfers: dict[int, CreditTransfer] = {}

    # -- mandates -------------------------------------------------------------------------------
    def add_mandate(self, mandate: Mandate) -> Mandate:
        with self._lock:
            if mandate.reference in self._mandates:
                raise Conflict(
                    f"mandate reference {mandate.reference} is used already",
                    mandate=mandate.reference,
                )
            stored = replace(mandate, id=len(self._mandates) + 1)
            self._mandates[mandate.reference] = stored
            return stored

    def save_mandate(self, mandate: Mandate) -> Mandate:
        with self._lock:
            known = self._mandate(mandate.reference)
            self._mandates[mandate.reference] = replace(mandate, id=known.id)
            return self._mandates[mandate.reference]

    def _mandate(self, reference: str) -> Mandate:
        found = self._mandates.get(reference)
        if found is None:
            raise NotFound(f"no mandate {reference}", mandate=reference)
        return found

    def mandate(self, reference: str) -> Mandate:
        with self._lock:
            return self._mandate(reference)

    def mandates(self, *, subscriber_id: int | None = None) -> Sequence[Mandate]:
        with self._lock:
            return sorted(
                (
                    m
                    for m in self._mandates.values()
                    if subscriber_id is None or m.subscriber_id == subscriber_id
                ),
                key=lambda m: m.id,
            )

    # -- collections ----------------------------------------------------------------------------
    def add_collection(self, collection: Collection) -> tuple[Collection, Prenotification | None]:
        with self._lock:
            for known in self._collections.values():
                if known.reference == collection.reference:
                    return known, None
            self._mandate(collection.mandate_reference)
            stored = replace(
                collection,
                id=len(self._collections) + 1,
                notified_on=None,
                notified_amount=None,
            )
            self._collections[stored.id] = stored
            return stored, self._add_notice(stored)

    def _add_notice(self, collection: Collection) -> Prenotification:
        notice = Prenotification(
            collection_id=collection.id,
            amount=collection.amount,
            due_on=collection.due_on,
            id=len(self._notices) + 1,
        )
        self._notices[notice.id] = notice
        return notice

    def _collection(self, collection_id: int) -> Collection:
        found = self._collections.get(collection_id)
        if found is None:
            raise NotFound("no such collection", collection_id=collection_id)
        return found

    def renotify(self, collection: Collection) -> Prenotification:
        with self._lock:
            known = self._collection(collection.id)
            if known.state is not CollectionState.SCHEDULED:
                raise Conflict(
                    f"collection {known.id} is {known.state.value}: it is not told again",
                    collection_id=known.id,
                )
            changed = replace(known, amount=collection.amount, due_on=collection.due_on)
            self._collections[known.id] = changed
            return self._add_notice(changed)

    def cancel_collection(self, collection_id: int) -> Collection:
        with self._lock:
            known = self._collection(collection_id)
            if known.state is CollectionState.SCHEDULED:
                known = replace(known, state=CollectionState.CANCELLED)
                self._collections[collection_id] = known
            return known

    def collection(self, collection_id: int) -> Collection:
        with self._lock:
            return self._collection(collection_id)

    def collections(
        self,
        *,
        state: CollectionState | None = None,
        due_by: date | None = None,
        subscriber_id: int | None = None,
        charge: str | None = None,
    ) -> Sequence[Collection]:
        with self._lock:
            return sorted(
                (
                    c
                    for c in self._collections.values()
                    if (state is None or c.state is state)
                    and (due_by is None or c.due_on <= due_by)
                    and (subscriber_id is None or c.subscriber_id == subscriber_id)
                    and (charge is None or c.charge == charge)
                ),
                key=lambda c: (c.due_on, c.id),
            )

    def unqueued_prenotifications(self, *, limit: int = 1000) -> Sequence[Prenotification]:
        with self._lock:
            return [n for n in self._notices.values() if n.queued_at is None][:limit]

    def mark_queued(self, prenotification_id: int, *, at: datetime) -> None:
        with self._lock:
            notice = self._notices.get(prenotification_id)
            if notice is None:
                raise NotFound("no such pre-notification", prenotification_id=prenotification_id)
            if notice.queued_at is None:
                notice = replace(notice, queued_at=at)
                self._notices[notice.id] = notice
            newest = max(
                n.id for n in self._notices.values() if n.collection_id == notice.collection_id
            )
            if newest == notice.id and notice.queued_at is not None:
                collection = self._collection(notice.collection_id)
                self._collections[collection.id] = replace(
                    collection, notified_on=notice.queued_at.date(), notified_amount=notice.amount
                )

    def prenotifications(self, *, collection_id: int) -> Sequence[Prenotification]:
        with self._lock:
            return [n for n in self._notices.values() if n.collection_id == collection_id]

    # -- files ----------------------------------------------------------------------------------
    def _add_batch(self, batch: SepaBatch) -> SepaBatch:
        if any(b.message_id == batch.message_id for b in self._batches.values()):
            raise Conflict("this file's message id is used already", message_id=batch.message_id)
        stored = replace(batch, id=len(self._batches) + 1)
        self._batches[stored.id] = stored
        return stored

    def add_debit_batch(self, batch: SepaBatch, presentations: Sequence[Presentation]) -> SepaBatch:
        with self._lock:
            for presentation in presentations:  # checked first: all or nothing
                collection = self._collection(presentation.collection_id)
                if collection.state is not CollectionState.SCHEDULED:
                    raise Conflict(
                        f"collection {collection.id} is {collection.state.value}: it was not "
                        "collected in this file (run the batch again)",
                        collection_id=collection.id,
                    )
                self._mandate(presentation.mandate_reference)
            stored = self._add_batch(batch)
            for presentation in presentations:
                collection = self._collection(presentation.collection_id)
                self._collections[collection.id] = replace(
                    collection,
                    state=CollectionState.SUBMITTED,
                    presentations=collection.presentations + 1,
                )
                self._presentations[presentation.end_to_end_id] = replace(
                    presentation, batch_id=stored.id
                )
                mandate = self._mandate(presentation.mandate_reference)
                last = mandate.last_collection_on
                if last is None or last < presentation.collection_date:
                    self._mandates[mandate.reference] = replace(
                        mandate, last_collection_on=presentation.collection_date
                    )
            return stored

    def add_transfer_batch(self, batch: SepaBatch, transfer_ids: Sequence[int]) -> SepaBatch:
        with self._lock:
            for transfer_id in transfer_ids:
                transfer = self._transfers.get(transfer_id)
                if transfer is None:
                    raise NotFound("no such credit transfer", transfer_id=transfer_id)
                if transfer.batch_id is not None:
                    raise Conflict(
                        f"credit transfer {transfer_id} is in another file already",
                        transfer_id=transfer_id,
                    )
            stored = self._add_batch(batch)
            for transfer_id in transfer_ids:
                self._transfers[transfer_id] = replace(
                    self._transfers[transfer_id], batch_id=stored.id
                )
            return stored

    def batches(
        self, *, kind: BatchKind | None = None, execution_date: date | None = None
    ) -> Sequence[SepaBatch]:
        with self._lock:
            return [
                b
                for b in self._batches.values()
                if (kind is None or b.kind is kind)
                and (execution_date is None or b.execution_date == execution_date)
            ]

    def presentations(self, *, batch_id: int) -> Sequence[Presentation]:
        with self._lock:
            return sorted(
                (p for p in self._presentations.values() if p.batch_id == batch_id),
                key=lambda p: p.collection_id,
            )

    def presentation(self, end_to_end_id: str) -> Presentation | None:
        with self._lock:
            return self._presentations.get(end_to_end_id)

    # -- returns --------------------------------------------------------------------------------
    def record_return(self, sepa_return: SepaReturn, *, close_mandate: str) -> bool:
        with self._lock:
            presentation = self._presentations.get(sepa_return.end_to_end_id)
            if presentation is None:
                raise NotFound(
                    "no collection was sent with this end-to-end id",
                    end_to_end_id=sepa_return.end_to_end_id,
                )
            if presentation.returned_reason:
                return False
            self._presentations[presentation.end_to_end_id] = replace(
                presentation,
                returned_reason=sepa_return.reason.code,
                returned_on=sepa_return.booked_on,
            )
            collection = self._collection(presentation.collection_id)
            self._collections[collection.id] = replace(collection, state=CollectionState.RETURNED)
            mandate = self._mandate(presentation.mandate_reference)
            if close_mandate and mandate.state is MandateState.ACTIVE:
                self._mandates[mandate.reference] = replace(
                    mandate,
                    state=MandateState.CLOSED,
                    state_changed_on=sepa_return.booked_on,
                    state_reason=close_mandate,
                )
            return True

    # -- credit transfers ---------------------------------------------------------------------
    def add_transfer(self, transfer: CreditTransfer) -> tuple[CreditTransfer, bool]:
        with self._lock:
            for known in self._transfers.values():
                if known.idempotency_key == transfer.idempotency_key:
                    return known, False
            self._collection(transfer.collection_id)
            stored = replace(transfer, id=len(self._transfers) + 1, batch_id=None)
            self._transfers[stored.id] = stored
            return stored, True

    def transfers(self, *, pending_only: bool = False) -> Sequence[CreditTransfer]:
        with self._lock:
            return [t for t in self._transfers.values() if not pending_only or t.batch_id is None]


def _implements_the_port(store: MemorySepaStore) -> SepaStore:
    return store
