"""The outage history port: the contract between incidents and billing (domain/outages.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from tawasol.domain.outages import OutagePeriod


class OutageHistory(Protocol):
    """Customer-facing outage periods, recorded by the incidents service, read by billing.

    Times are timezone-aware UTC datetimes. Raises `Unavailable` when the store cannot answer.
    """

    def outage_periods(self, *, start: datetime, end: datetime) -> Sequence[OutagePeriod]:
        """Every outage period overlapping [start, end), open ones included, oldest first."""
        ...

    def closed_incidents_since(self, since: datetime) -> Sequence[int]:
        """Ids of customer-facing incidents resolved at or after `since` (for credit runs)."""
        ...
