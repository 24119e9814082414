"""`CarrierRuntimeStore` in memory: the carrier event log and operators' caps."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Protocol

from tawasol.adapters.clock import system_clock
from tawasol.adapters.memory._aware import utc
from tawasol.domain.carrier_health import CarrierEvent, check_operator_cap
from tawasol.domain.errors import NotFound
from tawasol.services.ports.clock import Clock


class CatalogOfCarriers(Protocol):
    """What a cap needs from the catalog: the carrier must exist, and a cap is a catalog write."""

    def has_carrier(self, code: str) -> bool: ...

    def bump_revision(self) -> None: ...


class MemoryCarrierRuntimeStore:
    """Carrier events newest first; caps by carrier code."""

    def __init__(self, *, catalog: CatalogOfCarriers, clock: Clock = system_clock) -> None:
        self._runtime_lock = threading.Lock()
        self._runtime_catalog = catalog
        self._runtime_clock = clock
        self._events: list[CarrierEvent] = []
        self._capacities: dict[str, int] = {}

    def record_carrier_event(self, event: CarrierEvent) -> None:
        stored = replace(event, at=utc(event.at))
        with self._runtime_lock:
            self._events.append(stored)

    def list_carrier_events(
        self, *, carrier: str | None = None, limit: int = 100
    ) -> list[CarrierEvent]:
        with self._runtime_lock:
            numbered = list(enumerate(self._events))
        # Newest first; events at the same instant, the last recorded first.
        numbered.sort(key=lambda item: (item[1].at, item[0]), reverse=True)
        found = [event for _, event in numbered if carrier is None or event.carrier == carrier]
        return found[: max(0, limit)]

    def set_carrier_capacity(self, code: str, effective_channels: int | None) -> None:
        check_operator_cap(code, effective_channels)
        if not self._runtime_catalog.has_carrier(code):
            raise NotFound(f"no carrier {code}", code=code)
        with self._runtime_lock:
            if effective_channels is None:
                self._capacities.pop(code, None)
            else:
                self._capacities[code] = effective_channels
        self._runtime_catalog.bump_revision()

    def carrier_capacities(self) -> dict[str, int]:
        with self._runtime_lock:
            return dict(self._capacities)
