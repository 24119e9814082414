"""Committed capacity first: use the channels already paid for, then the cheapest per minute.

1. Carriers with a flat-rate contract and a free channel, by priority for the destination.
2. Then every carrier with a per-minute rate for the number (including flat-rate carriers whose
   channels are full but whose trunk accepts overflow), cheapest first, then by priority.

Within each tier, carriers de-preferred for low network effectiveness come last. A carrier is
skipped when it is disabled, marked down, full, or dearer than the plan's cost ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from tawasol.domain.carriers import Carrier, CarrierLiveState
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination
from tawasol.domain.routing import Billing, Route, candidates, flat_rate_first, routes_in_order


def committed_capacity_first(
    *,
    destination: Destination,
    carriers: Sequence[Carrier],
    live: Mapping[str, CarrierLiveState],
    now: datetime,
    route_timeout_ms: int,
    max_cost_per_minute: Money | None = None,
    explain: bool = True,
) -> tuple[list[Route], list[str]]:
    notes: list[str] = []
    found = candidates(
        destination=destination,
        carriers=carriers,
        live=live,
        now=now,
        max_cost_per_minute=max_cost_per_minute,
        notes=notes,
    )
    flat = flat_rate_first(found)
    per_minute = sorted(
        (c for c in found if c.billing is Billing.PER_MINUTE),
        key=lambda c: (
            c.state.de_preferred,
            c.rate.per_minute.amount if c.rate else 0,
            c.priority,
            c.carrier.code,
        ),
    )
    routes = routes_in_order(
        (*flat, *per_minute),
        destination=destination,
        route_timeout_ms=route_timeout_ms,
        notes=notes if explain else None,
    )
    return routes, notes
