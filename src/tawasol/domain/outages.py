"""Outages as the rest of the business sees them: which destinations were down, when, how badly.

An *outage period* is the customer-facing part of an incident (see the incidents issue): the time
during which calls towards a scope of destinations failed for network reasons or were refused for
lack of route or capacity. Billing credits subscribers for it, dunning and renewals are held off
during it, and the sales guard refuses to sell it. Internal incidents (a carrier cut that failover
absorbed) are not outage periods: nobody was affected.

This module is the contract between the incidents service, which records outage periods, and
its readers (billing credits, payments, the portal); both sides depend on it, neither on the
other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from tawasol.domain.numbering import NumberKind


class OutageImpact(enum.StrEnum):
    """How badly a scope was unavailable, in the words of public status pages.

    `PARTIAL`: some calls towards the scope failed (e.g. a carrier restored at half capacity);
    `MAJOR`: (nearly) every call failed.
    """

    PARTIAL = "partial"
    MAJOR = "major"


@dataclass(frozen=True)
class OutageScope:
    """A set of destinations: a country, optionally one kind of line, optionally one range holder.

    `country` is ISO 3166-1 alpha-2 ("MA"); `number_kind` None means every kind sold there;
    `range_holder` is the original holder of the number range as libphonenumber knows it
    ("Maroc Telecom"), approximate where number portability applies.
    """

    country: str
    number_kind: NumberKind | None = None
    range_holder: str | None = None

    def covers(self, *, country: str, number_kind: NumberKind, range_holder: str | None) -> bool:
        """Whether a destination (country, kind, range holder) lies inside this scope."""
        if country != self.country:
            return False
        if self.number_kind is not None and number_kind != self.number_kind:
            return False
        return self.range_holder is None or range_holder == self.range_holder


@dataclass(frozen=True)
class OutagePeriod:
    """One customer-facing stretch of one incident: a scope, a time range (UTC), an impact.

    `end` is None while the incident is still customer-facing. An incident whose impact changed
    (major, then partial) gives one period per stretch, with the same `incident_id`.
    """

    incident_id: int
    scope: OutageScope
    start: datetime
    end: datetime | None
    impact: OutageImpact

    def overlap(self, start: datetime, end: datetime) -> timedelta:
        """How much of [start, end) this period covers (an open period runs to `end`)."""
        period_end = end if self.end is None else min(self.end, end)
        period_start = max(self.start, start)
        return max(period_end - period_start, timedelta(0))
