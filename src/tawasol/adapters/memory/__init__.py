"""In-memory implementations of the store ports: typed, thread-safe, no database.

They pass the same contract tests as `adapters.store.SqlStore` (`tests/contract/`), so unit
tests of the services, benchmarks of the decision path and a future embedded mode can use them
and expect the same answers and the same errors (`NotFound`, `Conflict`, `InvalidInput`). They
keep nothing across restarts.

| class | port |
|---|---|
| `MemoryCatalogStore` | `CatalogStore` |
| `MemoryCallStore` | `CallStore` |
| `MemoryCarrierRuntimeStore` | `CarrierRuntimeStore` (a cap is a catalog write) |
| `MemoryStore` | `Store`: the three on one catalog revision |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tawasol.adapters.clock import system_clock
from tawasol.adapters.memory.calls import MemoryCallStore
from tawasol.adapters.memory.carrier_runtime import MemoryCarrierRuntimeStore
from tawasol.adapters.memory.catalog import MemoryCatalogStore
from tawasol.services.ports import Store
from tawasol.services.ports.clock import Clock


class MemoryStore(MemoryCatalogStore, MemoryCallStore, MemoryCarrierRuntimeStore):
    """Every store port in memory, as one system of record (what `SqlStore` is on a database)."""

    def __init__(self, *, clock: Clock = system_clock) -> None:
        MemoryCatalogStore.__init__(self, clock=clock)
        MemoryCallStore.__init__(self)
        MemoryCarrierRuntimeStore.__init__(self, catalog=self, clock=clock)

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["MemoryCallStore", "MemoryCarrierRuntimeStore", "MemoryCatalogStore", "MemoryStore"]


if TYPE_CHECKING:

    def _implements_the_ports(store: MemoryStore) -> Store:
        """mypy fails here, next to the code, when a port gains a method we lack."""
        return store
