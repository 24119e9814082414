"""Quality weighted: flat-rate channels first, then per-minute routes by cost per effective call.

A cheap carrier that fails half its calls is not cheap: every failure costs the caller a retry
and the operator a worse service. Per-minute candidates are ordered by rate divided by the
carrier's network effectiveness ratio (NER, ITU-T E.425) for the destination, when known:
0.05/min at NER 0.5 ranks behind 0.08/min at NER 0.98. Carriers without figures count as
NER 1. Flat-rate channels still come first: they are paid for whatever their quality.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from tawasol.domain.carriers import Carrier, CarrierLiveState
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination
from tawasol.domain.routing import (
    Billing,
    Candidate,
    Route,
    candidates,
    describe,
    flat_rate_first,
    routes_in_order,
)

# NER is never taken below this when dividing: a carrier with no effective call at all is
# ranked as if it had 1%, behind every working one.
_FLOOR = Decimal("0.01")


class QualityWeighted:
    """A routing strategy that knows each carrier's NER per destination country."""

    def __init__(self, ner: Mapping[tuple[str, str], Decimal]) -> None:
        self._ner = ner

    def update(self, ner: Mapping[tuple[str, str], Decimal]) -> None:
        """Use fresh figures from now on (the mapping is replaced whole, never mutated)."""
        self._ner = ner

    def __call__(
        self,
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
            key=lambda c: (self._effective_cost(c, destination), c.priority, c.carrier.code),
        )
        routes = routes_in_order(
            (*flat, *per_minute),
            destination=destination,
            route_timeout_ms=route_timeout_ms,
            notes=notes if explain else None,
            note=lambda candidate: self._describe(candidate, destination),
        )
        return routes, notes

    def _describe(self, candidate: Candidate, destination: Destination) -> str:
        note = describe(candidate)
        ner = self._ner.get((candidate.carrier.code, destination.country))
        if candidate.rate is not None and ner is not None:
            note += f", NER {ner:.2f}"
        return note

    def _effective_cost(self, candidate: Candidate, destination: Destination) -> Decimal:
        assert candidate.rate is not None
        ner = self._ner.get((candidate.carrier.code, destination.country), Decimal(1))
        return candidate.rate.per_minute.amount / max(ner, _FLOOR)
