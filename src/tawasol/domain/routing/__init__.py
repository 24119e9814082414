"""Routing: which carriers, in which order, may carry one call.

A routing *strategy* takes the destination, the carriers and their live state and returns an
ordered list of `Route`s; the SIP edge tries them one after the other (serial forking) until one
answers or the callee's own answer (busy, no answer) ends the hunt. One strategy per module:
`committed_capacity_first` is the default.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tawasol.domain.carriers import Carrier, CarrierLiveState
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination


class Billing(enum.StrEnum):
    """How the carrier is paid for a call on this route."""

    FLAT_RATE = "flat_rate"
    PER_MINUTE = "per_minute"


@dataclass(frozen=True)
class Route:
    """One place to send the call: a carrier's gateway, with its own timer and price.

    `timeout_ms` is how long to wait for a provisional reply before trying the next route
    (a silent carrier must not cost the caller 30 s: RFC 3261's Timer B default).
    `cost_per_minute` is None on a free flat-rate channel.
    """

    carrier: str
    gateway: str
    uri: str
    timeout_ms: int
    billing: Billing
    cost_per_minute: Money | None = None


class RoutingStrategy(Protocol):
    """Order the routes for a destination; skip carriers that are down, disabled or full."""

    def __call__(
        self,
        *,
        destination: Destination,
        carriers: Sequence[Carrier],
        live: Mapping[str, CarrierLiveState],
        now: datetime,
        route_timeout_ms: int,
    ) -> tuple[list[Route], list[str]]:
        """Return (routes, notes): notes explain each carrier skipped or chosen."""
        ...
