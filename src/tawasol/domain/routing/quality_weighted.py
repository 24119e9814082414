"""Quality weighted: flat-rate channels first, then per-minute routes by cost per effective call.

A cheap carrier that fails half its calls is not cheap: every failure costs the caller a retry
and the operator a worse service. Per-minute candidates are ordered by rate divided by the
carrier's network effectiveness ratio (NER, ITU-T E.425) for the destination, when known:
0.05/min at NER 0.5 ranks behind 0.08/min at NER 0.98. Carriers without figures count as
NER 1. Flat-rate channels still come first: they are paid for whatever their quality.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from tawasol.domain.numbering import Destination
from tawasol.domain.routing import Candidate, OrderedStrategy, describe

# NER is never taken below this when dividing: a carrier with no effective call at all is
# ranked as if it had 1%, behind every working one.
_FLOOR = Decimal("0.01")


class QualityWeighted(OrderedStrategy):
    """A routing strategy that knows each carrier's NER per destination country."""

    def __init__(self, ner: Mapping[tuple[str, str], Decimal]) -> None:
        self._ner = ner

    def update(self, ner: Mapping[tuple[str, str], Decimal]) -> None:
        """Use fresh figures from now on (the mapping is replaced whole, never mutated)."""
        self._ner = ner

    def per_minute_order(
        self, candidate: Candidate, destination: Destination
    ) -> tuple[Decimal, int, str]:
        return (
            self._effective_cost(candidate, destination),
            candidate.priority,
            candidate.carrier.code,
        )

    def note(self, candidate: Candidate, destination: Destination) -> str:
        note = describe(candidate)
        ner = self._ner.get((candidate.carrier.code, destination.country))
        if candidate.rate is not None and ner is not None:
            note += f", NER {ner:.2f}"
        return note

    def _effective_cost(self, candidate: Candidate, destination: Destination) -> Decimal:
        assert candidate.rate is not None
        ner = self._ner.get((candidate.carrier.code, destination.country), Decimal(1))
        return candidate.rate.per_minute.amount / max(ner, _FLOOR)
