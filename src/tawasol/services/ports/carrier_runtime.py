"""The carriers' run-time port: state changes (down, up, capacity) and operators' caps.

Implemented by `adapters.store.SqlStore` and `adapters.memory.MemoryCarrierRuntimeStore`;
both pass `tests/contract/test_carrier_runtime_store.py`.
"""

from __future__ import annotations

from typing import Protocol

from tawasol.domain.carrier_health import CarrierEvent


class CarrierRuntimeStore(Protocol):
    """What happened to each carrier at run time, kept across restarts."""

    def record_carrier_event(self, event: CarrierEvent) -> None:
        """Append a carrier state change (down, up, capacity learned/raised/restored/set)."""

    def list_carrier_events(
        self, *, carrier: str | None = None, limit: int = 100
    ) -> list[CarrierEvent]:
        """Newest first."""
        ...

    def set_carrier_capacity(self, code: str, effective_channels: int | None) -> None:
        """An operator's cap on a carrier's simultaneous calls (None: as contracted).
        Raises NotFound. Bumps the catalog revision so every brain applies it."""

    def carrier_capacities(self) -> dict[str, int]:
        """Operator-set caps by carrier code (carriers without one are absent)."""
        ...
