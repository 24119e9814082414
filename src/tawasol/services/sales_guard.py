"""The sales guard: what is not working is not sold.

A plan is *unavailable* while one of its destinations (a country and kind of line) overlaps
the scope of an open, customer-facing incident. Creating a subscription to it (admin API, CLI,
the portal's checkout) is refused with `DestinationUnavailable` (HTTP 409
`destination_unavailable`, the incident ids in the details) unless the request acknowledges
every such incident: the buyer was shown the notice and buys anyway. `availability()` answers
the public availability endpoint per plan on sale and destination.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from tawasol.domain.catalog import DestinationRule, Plan
from tawasol.domain.errors import DestinationUnavailable
from tawasol.domain.incidents import Incident
from tawasol.domain.outages import OutageImpact, OutageScope
from tawasol.services.incident_ports import IncidentStore


def overlaps(scope: OutageScope, rule: DestinationRule) -> bool:
    """Whether some destination of the plan's `rule` lies inside `scope`."""
    return scope.country == rule.country and scope.number_kind in (None, rule.kind)


@dataclass(frozen=True)
class DestinationAvailability:
    """One destination of one plan: `status` operational, partial_outage or major_outage;
    `incident_ids` the customer-facing incidents behind it."""

    plan_code: str
    country: str
    kind: str
    status: str
    incident_ids: tuple[int, ...]


class SalesGuard:
    def __init__(self, *, incidents: IncidentStore, plans: Callable[[], Sequence[Plan]]) -> None:
        self._incidents = incidents
        self._plans = plans

    def _facing(self) -> list[Incident]:
        return [
            incident
            for incident in self._incidents.list_incidents(open_only=True, limit=1000)
            if incident.customer_facing and incident.scope is not None
        ]

    def blocking(self, plan: Plan) -> list[Incident]:
        """The customer-facing incidents over some destination of `plan`."""
        return [
            incident
            for incident in self._facing()
            if incident.scope is not None
            and any(overlaps(incident.scope, rule) for rule in plan.destinations)
        ]

    def check(self, plan: Plan, *, acknowledged: Collection[int] = ()) -> None:
        """Raises DestinationUnavailable unless every blocking incident is acknowledged."""
        missing = sorted(i.id for i in self.blocking(plan) if i.id not in set(acknowledged))
        if missing:
            raise DestinationUnavailable(
                f"plan {plan.code} sells destinations in an outage: show the buyer the notice "
                "and acknowledge the incident(s) to sell it anyway",
                plan_code=plan.code,
                incident_ids=missing,
            )

    def availability(self) -> list[DestinationAvailability]:
        """Per plan on sale and destination, its status now (public: no carrier names)."""
        facing = self._facing()
        rows = []
        for plan in sorted(self._plans(), key=lambda p: p.code):
            if not plan.on_sale:
                continue
            for rule in sorted(plan.destinations, key=lambda r: (r.country, r.kind.value)):
                behind = [i for i in facing if i.scope is not None and overlaps(i.scope, rule)]
                impacts = {i.impact[-1].impact for i in behind if i.impact}
                status = (
                    "major_outage"
                    if OutageImpact.MAJOR in impacts
                    else "partial_outage"
                    if behind
                    else "operational"
                )
                rows.append(
                    DestinationAvailability(
                        plan_code=plan.code,
                        country=rule.country,
                        kind=rule.kind.value,
                        status=status,
                        incident_ids=tuple(sorted(i.id for i in behind)),
                    )
                )
        return rows
