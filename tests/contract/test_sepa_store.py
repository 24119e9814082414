"""The `SepaStore` port's contract on memory, SQLite and PostgreSQL alike: every write is keyed
(mandate reference, collection reference, message id, end-to-end id), a batch or a return is
whole or nothing, a return is applied once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from support.operator import a_new_subscriber
from support.stores import migrated_store, postgres_schema
from tawasol.adapters.memory.sepa import MemorySepaStore
from tawasol.adapters.store import sqlite_url_for
from tawasol.adapters.store.sepa_sql import SqlSepaStore
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.money import Money
from tawasol.domain.payments.sepa import BankAccount, Mandate, MandateState, SequenceType
from tawasol.domain.payments.sepa_collections import (
    BatchKind,
    Collection,
    CollectionState,
    Presentation,
    SepaBatch,
)
from tawasol.domain.payments.sepa_returns import SepaReturn
from tawasol.services.payments.sepa_ports import SepaStore


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sepa_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SepaStore, int]]:
    """The same contract on the in-memory store and the SQL one (SQLite, PostgreSQL)."""
    if request.param == "memory":
        yield MemorySepaStore(), 1
        return
    with (
        postgres_schema() if request.param == "postgres" else _sqlite(tmp_path) as url,
        migrated_store(url) as catalog,
    ):
        subscriber = catalog.add_subscriber(a_new_subscriber("amina"))
        yield SqlSepaStore(catalog.engine), subscriber.id


@contextmanager
def _sqlite(directory: Path) -> Iterator[str]:
    yield sqlite_url_for(directory)


def test_given_keyed_writes_then_each_is_stored_once_in_every_store(sepa_store):
    store, subscriber_id = sepa_store
    account = BankAccount.parse(iban="DE89370400440532013000", holder="Amina Benali")
    mandate = store.add_mandate(Mandate("TWS-1-M1", subscriber_id, account, date(2026, 11, 2)))
    with pytest.raises(Conflict, match="used already"):
        store.add_mandate(Mandate("TWS-1-M1", subscriber_id, account, date(2026, 11, 3)))
    collection = Collection(
        subscriber_id=subscriber_id,
        mandate_reference=mandate.reference,
        amount=Money(Decimal("9.99"), "EUR"),
        reference="charge:renew:1:1",
        charge="renew:1",
        due_on=date(2026, 12, 15),
        created_at=datetime(2026, 12, 1, 6, tzinfo=UTC),
    )
    stored, notice = store.add_collection(collection)
    again, none = store.add_collection(collection)
    assert notice is not None and none is None and again.id == stored.id
    assert store.unqueued_prenotifications() == [notice]
    store.mark_queued(notice.id, at=datetime(2026, 12, 1, 6, 0, 5, tzinfo=UTC))
    assert store.unqueued_prenotifications() == []
    told = store.collection(stored.id)
    assert told.notified_on == date(2026, 12, 1) and told.notified_amount == told.amount
    assert store.collections(charge="renew:1") == [told]

    presentation = Presentation(
        end_to_end_id=told.end_to_end_id(1),
        collection_id=told.id,
        batch_id=0,
        mandate_reference=mandate.reference,
        sequence_type=SequenceType.FIRST,
        amount=told.amount,
        collection_date=date(2026, 12, 15),
    )
    batch = SepaBatch(
        kind=BatchKind.DIRECT_DEBIT,
        message_id="TWS-DD-1",
        execution_date=date(2026, 12, 15),
        created_at=datetime(2026, 12, 14, tzinfo=UTC),
        transactions=1,
        control_sum=told.amount,
        xml="<Document/>",
    )
    stored_batch = store.add_debit_batch(batch, [presentation])
    with pytest.raises(Conflict):  # the collection is no longer scheduled: nothing written
        store.add_debit_batch(
            SepaBatch(**{**batch.__dict__, "message_id": "TWS-DD-2", "id": 0}), [presentation]
        )
    assert [b.message_id for b in store.batches(kind=BatchKind.DIRECT_DEBIT)] == ["TWS-DD-1"]
    assert store.mandate(mandate.reference).last_collection_on == date(2026, 12, 15)
    assert store.presentations(batch_id=stored_batch.id)[0].end_to_end_id == f"TWS-{told.id}-1"

    returned = SepaReturn(
        end_to_end_id=presentation.end_to_end_id,
        amount=told.amount,
        reason_code="MD01",
        booked_on=date(2026, 12, 18),
    )
    assert store.record_return(returned, close_mandate="MD01 no valid mandate")
    assert not store.record_return(returned, close_mandate="MD01 no valid mandate")
    closed = store.mandate(mandate.reference)
    assert closed.state is MandateState.CLOSED and closed.state_changed_on == date(2026, 12, 18)
    assert store.collection(told.id).state is CollectionState.RETURNED
    with pytest.raises(NotFound):
        store.record_return(
            SepaReturn("TWS-999-1", told.amount, "AM04", date(2026, 12, 18)), close_mandate=""
        )
