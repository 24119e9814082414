"""Committed capacity first: use the channels already paid for, then the cheapest per minute.

1. Carriers with a flat-rate contract and a free channel, by priority for the destination.
2. Then every carrier with a per-minute rate for the number (including flat-rate carriers whose
   channels are full but whose trunk accepts overflow), cheapest first, then by priority.

Within each tier, carriers de-preferred for low network effectiveness come last. A carrier is
skipped when it is disabled, marked down, full, or dearer than the plan's cost ceiling
(`OrderedStrategy`, the skeleton every strategy shares).
"""

from __future__ import annotations

from decimal import Decimal

from tawasol.domain.numbering import Destination
from tawasol.domain.routing import Candidate, OrderedStrategy


class CommittedCapacityFirst(OrderedStrategy):
    """Per-minute routes de-preferred last, then cheapest first, then by priority."""

    def per_minute_order(
        self, candidate: Candidate, destination: Destination
    ) -> tuple[bool, Decimal, int, str]:
        rate = candidate.rate.per_minute.amount if candidate.rate else Decimal(0)
        return (candidate.state.de_preferred, rate, candidate.priority, candidate.carrier.code)


committed_capacity_first = CommittedCapacityFirst()
