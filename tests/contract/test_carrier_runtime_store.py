"""The `CarrierRuntimeStore` contract: the same tests on the in-memory store, SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from support.operator import a_carrier
from support.stores import CASABLANCA
from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
from tawasol.domain.errors import (
    InvalidInput,
    NotFound,
)
from tawasol.services.ports import Store


def test_carrier_events_are_listed_newest_first_and_by_carrier(store: Store) -> None:
    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    down = CarrierEvent("atlas", at, CarrierEventKind.DOWN, "3 probes in a row unanswered")
    learned = CarrierEvent(
        "atlas",
        at + timedelta(minutes=5),
        CarrierEventKind.CAPACITY_LEARNED,
        "congestion with 12 call(s) up of 30 contracted: effective capacity lowered to 12",
        12,
    )
    same_instant = CarrierEvent("orbit", learned.at, CarrierEventKind.UP, "answered 2 probes")
    restored = CarrierEvent(
        "atlas", at + timedelta(minutes=9), CarrierEventKind.CAPACITY_RESTORED, "back to 30", None
    )
    casablanca = CarrierEvent(
        "atlas", datetime(2026, 11, 20, 13, 1, tzinfo=CASABLANCA), CarrierEventKind.UP, "up"
    )
    for event in (learned, down, same_instant, restored, casablanca):
        store.record_carrier_event(event)

    every = store.list_carrier_events()
    atlas = store.list_carrier_events(carrier="atlas")

    # Casablanca is UTC+1 in November: 13:01 there is 12:01 UTC.
    assert every == [restored, same_instant, learned, casablanca, down]
    assert every[3].at == datetime(2026, 11, 20, 12, 1, tzinfo=UTC)
    assert every[3].at.utcoffset() == timedelta(0)
    assert atlas == [restored, learned, casablanca, down]
    assert atlas[1].effective_channels == 12 and atlas[0].effective_channels is None
    assert store.list_carrier_events(carrier="atlas", limit=2) == [restored, learned]
    assert store.list_carrier_events(carrier="nobody") == []
    assert store.catalog_revision() == 0  # a log, not a catalog write


def test_a_carrier_event_at_a_naive_time_is_refused(store: Store) -> None:
    naive = CarrierEvent("atlas", datetime(2026, 11, 1, 10, 0), CarrierEventKind.DOWN, "naive")
    with pytest.raises(InvalidInput, match="naive"):
        store.record_carrier_event(naive)
    assert store.list_carrier_events() == []


def test_capacity_of_an_unknown_carrier_or_below_zero_is_refused_without_a_bump(
    store: Store,
) -> None:
    store.save_carrier(a_carrier())
    revision = store.catalog_revision()

    with pytest.raises(NotFound, match="no carrier ghost"):
        store.set_carrier_capacity("ghost", 5)
    with pytest.raises(NotFound):
        store.set_carrier_capacity("ghost", None)
    with pytest.raises(InvalidInput, match="0 or more"):
        store.set_carrier_capacity("atlas", -1)

    assert store.catalog_revision() == revision
    assert store.carrier_capacities() == {}
