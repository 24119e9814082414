"""The ports the services need from the outside world, one Protocol per aggregate.

| port | aggregate | module |
|---|---|---|
| `CatalogStore` | plans, subscribers, subscriptions, carriers | `ports/catalog.py` |
| `CallStore` | call detail records, refusals, usage | `ports/calls.py` |
| `CarrierRuntimeStore` | carrier state changes, operators' caps | `ports/carrier_runtime.py` |
| `OutageHistory` | outage periods (incidents -> billing) | `ports/outages.py` |

A service asks for the narrowest port it uses. `Store` is all three stores in one (what
`adapters.store.SqlStore` implements, and what a composition root opens and closes). Every
port has a typed in-memory implementation in `adapters/memory/` that passes the same contract
tests as the SQL one (`tests/contract/`). Coming aggregates (incidents, billing) add their own
module here.
"""

from __future__ import annotations

from typing import Protocol

from tawasol.services.ports.calls import CallFold, CallStore
from tawasol.services.ports.carrier_runtime import CarrierRuntimeStore
from tawasol.services.ports.catalog import (
    CatalogSnapshot,
    CatalogStore,
    NewSubscriber,
    NewSubscription,
)
from tawasol.services.ports.outages import OutageHistory


class Store(CatalogStore, CallStore, CarrierRuntimeStore, Protocol):
    """The system of record: every aggregate above in one database."""

    def close(self) -> None: ...


__all__ = [
    "CallFold",
    "CallStore",
    "CarrierRuntimeStore",
    "CatalogSnapshot",
    "CatalogStore",
    "NewSubscriber",
    "NewSubscription",
    "OutageHistory",
    "Store",
]
