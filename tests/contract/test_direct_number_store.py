"""`DirectNumberStore`'s contract, on memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from support.stores import BACKENDS, on_backend
from tawasol.adapters.memory.direct_numbers import MemoryDirectNumberStore
from tawasol.adapters.store.direct_numbers_sql import SqlDirectNumberStore
from tawasol.domain.carriers import BillingIncrement, Rate, RateDeck
from tawasol.domain.direct_numbers import CallerId, Contact, InboundTrunk, PoolNumber
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.money import Money
from tawasol.services.ports.direct_numbers import DirectNumberStore

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TRUNK = InboundTrunk(
    code="fr-did",
    name="French DID provider",
    country="FR",
    addresses=("192.0.2.0/28", "198.51.100.7"),
    number_ranges=("3318488",),
    trust_asserted_identity=True,
    rate_deck=RateDeck([Rate("336", Money(Decimal("0.0120"), "EUR"), NOW, BillingIncrement(1, 1))]),
)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DirectNumberStore]:
    yield from on_backend(
        request.param,
        tmp_path,
        memory=MemoryDirectNumberStore,
        sql=SqlDirectNumberStore,
    )


def test_a_trunk_is_stored_whole_and_replaced_by_code(store: DirectNumberStore) -> None:
    store.save_trunk(TRUNK)
    [read] = store.list_trunks()
    assert read == TRUNK
    assert read.rate_deck.rates() == TRUNK.rate_deck.rates()
    store.save_trunk(replace(TRUNK, enabled=False))
    assert [trunk.enabled for trunk in store.list_trunks()] == [False]


def test_the_pool_takes_all_numbers_or_none(store: DirectNumberStore) -> None:
    store.save_trunk(TRUNK)
    first = [PoolNumber("+33184880001", "fr-did"), PoolNumber("+33184880002", "fr-did")]
    assert store.add_pool_numbers(first) == 2
    with pytest.raises(Conflict):
        store.add_pool_numbers([PoolNumber("+33184880003", "fr-did"), first[0]])
    with pytest.raises(NotFound):
        store.add_pool_numbers([PoolNumber("+33184880004", "nobody")])
    assert store.list_pool() == first


def test_a_caller_id_belongs_to_one_subscriber(store: DirectNumberStore) -> None:
    pending = CallerId("+33612345678", 1, NOW, code_hash="h", code_expires_at=NOW)
    store.add_caller_id(pending)
    with pytest.raises(Conflict):
        store.add_caller_id(replace(pending, subscriber_id=2))
    verified = replace(pending, verified_at=NOW + timedelta(minutes=1), code_hash="")
    store.save_caller_id(verified)
    assert store.get_caller_id("+33612345678") == verified
    assert store.list_caller_ids(1) == [verified] and store.list_caller_ids(2) == []
    store.remove_caller_id("+33612345678")
    assert store.get_caller_id("+33612345678") is None
    with pytest.raises(NotFound):
        store.remove_caller_id("+33612345678")
    with pytest.raises(NotFound):
        store.save_caller_id(verified)


def test_contacts_one_active_per_direct_number_and_kept_when_removed(
    store: DirectNumberStore,
) -> None:
    maman = store.add_contact(Contact(0, 1, "Maman", "+212661234567", "+33184880001", NOW))
    assert maman.id > 0
    with pytest.raises(Conflict):
        store.add_contact(Contact(0, 1, "Papa", "+212661112233", "+33184880001", NOW))
    other = store.add_contact(Contact(0, 2, "Papa", "+212661112233", "+33184880001", NOW))
    removed = store.save_contact(replace(maman, removed_at=NOW + timedelta(days=1)))
    again = store.add_contact(Contact(0, 1, "Tante", "+212661998877", "+33184880001", NOW))
    assert store.list_contacts(1) == [removed, again]
    assert store.list_contacts() == [removed, other, again]
    with pytest.raises(NotFound):
        store.save_contact(replace(maman, id=999_999))
