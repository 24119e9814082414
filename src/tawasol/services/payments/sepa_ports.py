"""The SEPA Direct Debit ports: where mandates, collections, their pre-notifications, the
files handed to the bank and the credit transfers are kept (`SepaStore`, SQL in
`adapters/store/sepa_sql.py`), and how the bank's files are written (`SepaFiles`, with
`sepaxml` in `adapters/payments/sepa_xml.py`).

Each write that changes several things is one transaction of the store: a batch, its
presentations, its collections' new state and its mandates' last collection date; a return,
its collection and its mandate. So a process killed at any point leaves all or nothing, and
every write is keyed (mandate reference, collection reference, end-to-end id, refund key) so
that running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from tawasol.domain.payments.sepa import Mandate
from tawasol.domain.payments.sepa_collections import (
    BatchKind,
    Collection,
    CollectionState,
    Creditor,
    CreditTransfer,
    Prenotification,
    Presentation,
    SepaBatch,
)
from tawasol.domain.payments.sepa_returns import SepaReturn


class SepaStore(Protocol):
    """Mandates, collections, pre-notifications, batches, returns and credit transfers."""

    # -- mandates -------------------------------------------------------------------------------
    def add_mandate(self, mandate: Mandate) -> Mandate:
        """Store a new mandate (its id given). Conflict when its reference is used."""
        ...

    def save_mandate(self, mandate: Mandate) -> Mandate:
        """Store a mandate's new state; NotFound."""
        ...

    def mandate(self, reference: str) -> Mandate:
        """NotFound."""
        ...

    def mandates(self, *, subscriber_id: int | None = None) -> Sequence[Mandate]:
        """Oldest first."""
        ...

    # -- collections and pre-notifications -----------------------------------------------------
    def add_collection(self, collection: Collection) -> tuple[Collection, Prenotification | None]:
        """Store a new collection with its first pre-notification (amount and date as the
        collection says, not queued yet): (the collection, its pre-notification). A collection
        whose reference is stored already is returned as it is, with None."""
        ...

    def renotify(self, collection: Collection) -> Prenotification:
        """Store a scheduled collection's new amount and date (`Collection.renotified`) with a
        new pre-notification to queue. NotFound; Conflict unless it is scheduled."""
        ...

    def cancel_collection(self, collection_id: int) -> Collection:
        """A scheduled collection is not collected (nothing owed, mandate ended)."""
        ...

    def collection(self, collection_id: int) -> Collection:
        """NotFound."""
        ...

    def collections(
        self,
        *,
        state: CollectionState | None = None,
        due_by: date | None = None,
        subscriber_id: int | None = None,
        charge: str | None = None,
    ) -> Sequence[Collection]:
        """By due date then id; `charge`: those paying that billing charge."""
        ...

    def unqueued_prenotifications(self, *, limit: int = 1000) -> Sequence[Prenotification]:
        """Pre-notifications stored but not handed to the notices outbox yet, oldest first."""
        ...

    def mark_queued(self, prenotification_id: int, *, at: datetime) -> None:
        """The outbox holds it: its collection counts as notified of that amount and date on
        `at`'s date (unless a newer pre-notification superseded it)."""
        ...

    def prenotifications(self, *, collection_id: int) -> Sequence[Prenotification]: ...

    # -- files for the bank --------------------------------------------------------------------
    def add_debit_batch(self, batch: SepaBatch, presentations: Sequence[Presentation]) -> SepaBatch:
        """In one transaction: the batch, its presentations, their collections submitted (one
        more presentation each), their mandates' last collection date. Conflict (nothing
        written) when a collection is no longer scheduled."""
        ...

    def add_transfer_batch(self, batch: SepaBatch, transfer_ids: Sequence[int]) -> SepaBatch:
        """In one transaction: the batch and its transfers marked as carried by it."""
        ...

    def batches(
        self, *, kind: BatchKind | None = None, execution_date: date | None = None
    ) -> Sequence[SepaBatch]:
        """Oldest first."""
        ...

    def presentations(self, *, batch_id: int) -> Sequence[Presentation]: ...

    def presentation(self, end_to_end_id: str) -> Presentation | None: ...

    # -- the bank's returns --------------------------------------------------------------------
    def record_return(self, sepa_return: SepaReturn, *, close_mandate: str) -> bool:
        """In one transaction: the presentation returned with the reason, its collection
        returned, and its mandate closed with `close_mandate` as the reason when that is not
        "". False (nothing written) when this presentation was returned already. NotFound for
        an end-to-end id the platform never sent."""
        ...

    # -- credit transfers (refunds) ------------------------------------------------------------
    def add_transfer(self, transfer: CreditTransfer) -> tuple[CreditTransfer, bool]:
        """Store a transfer: (it, True), or the one stored under its key and False."""
        ...

    def transfers(self, *, pending_only: bool = False) -> Sequence[CreditTransfer]:
        """Oldest first; `pending_only`: not in a file yet."""
        ...


class SepaFiles(Protocol):
    """Writes the files the bank takes (ISO 20022 XML). Raises InvalidInput when a value
    cannot go into the file (the writer's own checks)."""

    def direct_debits(
        self,
        *,
        creditor: Creditor,
        message_id: str,
        created_at: datetime,
        debits: Sequence[tuple[Presentation, Mandate]],
    ) -> str:
        """A pain.008 file collecting `debits` (each presentation under its mandate)."""
        ...

    def credit_transfers(
        self,
        *,
        creditor: Creditor,
        message_id: str,
        created_at: datetime,
        execution_date: date,
        transfers: Sequence[CreditTransfer],
    ) -> str:
        """A pain.001 file paying `transfers` from the creditor's account."""
        ...
