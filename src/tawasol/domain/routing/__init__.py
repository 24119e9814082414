"""Routing: which carriers, in which order, may carry one call.

A routing *strategy* takes the destination, the carriers and their live state and returns an
ordered list of `Route`s; the SIP edge tries them one after the other (serial forking) until one
answers or the callee's own answer (busy, no answer) ends the hunt. One strategy per module:

- `committed_capacity_first` (default): channels already paid for, then cheapest per minute;
- `quality_weighted`: the same tiers, per-minute routes ordered by cost per *effective* call.

`candidates()` is the part every strategy shares: which carriers may take the call at all.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tawasol.domain.carriers import (
    Carrier,
    CarrierState,
    Rate,
    channel_limit,
    flat_rate_channels_free,
)
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination


class CarrierTariff(enum.StrEnum):
    """How the carrier is paid for a call on this route."""

    FLAT_RATE = "flat_rate"
    PER_MINUTE = "per_minute"


@dataclass(frozen=True)
class Route:
    """One place to send the call: a carrier's gateway, with its own timer and price.

    `timeout_ms` is how long to wait for a provisional reply before trying the next route
    (a silent carrier must not cost the caller 30 s: RFC 3261's Timer B default).
    `cost_per_minute` is None on a free flat-rate channel; `increment` is the billing increment
    of the per-minute rate ("60/60", "1/1").
    """

    carrier: str
    gateway: str
    uri: str
    timeout_ms: int
    billing: CarrierTariff
    cost_per_minute: Money | None = None
    increment: str | None = None


@dataclass(frozen=True)
class Candidate:
    """A carrier that may take the call, with how: on a free flat-rate channel or per minute."""

    carrier: Carrier
    priority: int
    state: CarrierState
    billing: CarrierTariff
    rate: Rate | None = None


class RoutingStrategy(Protocol):
    """Order the routes for a destination; skip carriers that are down, disabled or full."""

    def __call__(
        self,
        *,
        destination: Destination,
        carriers: Sequence[Carrier],
        live: Mapping[str, CarrierState],
        now: datetime,
        route_timeout_ms: int,
        max_cost_per_minute: Money | None = None,
        explain: bool = True,
    ) -> tuple[list[Route], list[str]]:
        """Return (routes, notes): notes explain each carrier skipped or chosen (the chosen
        ones only when `explain`: the SIP path does not read them)."""
        ...


def candidates(
    *,
    destination: Destination,
    carriers: Sequence[Carrier],
    live: Mapping[str, CarrierState],
    now: datetime,
    max_cost_per_minute: Money | None,
    notes: list[str],
) -> list[Candidate]:
    """Carriers that serve the destination and can take a call now, each once: on a free
    flat-rate channel if it has one, otherwise per minute if it has a rate under the ceiling."""
    found: list[Candidate] = []
    for carrier in carriers:
        priority = carrier.priority_for(destination)
        if priority is None:
            continue
        state = live.get(carrier.code, _NOMINAL)
        if not carrier.enabled:
            notes.append(f"carrier {carrier.code} skipped: disabled")
            continue
        if not state.up:
            notes.append(f"carrier {carrier.code} skipped: down")
            continue
        limit = channel_limit(carrier, state)
        if limit is not None and state.channels_in_use >= limit:
            notes.append(
                f"carrier {carrier.code} skipped: full ({state.channels_in_use}/{limit} channels)"
            )
            continue
        if flat_rate_channels_free(carrier, state) > 0:
            found.append(Candidate(carrier, priority, state, CarrierTariff.FLAT_RATE))
            continue
        rate = carrier.rate_deck.lookup(destination.e164, now)
        if rate is None:
            what = "flat-rate channels full and no" if carrier.flat_rate else "no"
            notes.append(f"carrier {carrier.code} skipped: {what} rate for {destination.e164}")
            continue
        if max_cost_per_minute is not None and _dearer(rate.per_minute, max_cost_per_minute):
            notes.append(
                f"carrier {carrier.code} skipped: {rate.per_minute}/min is above the plan's "
                f"ceiling of {max_cost_per_minute}/min"
            )
            continue
        found.append(Candidate(carrier, priority, state, CarrierTariff.PER_MINUTE, rate))
    return found


def _dearer(price: Money, ceiling: Money) -> bool:
    # A ceiling in another currency cannot be compared without an exchange rate: refuse the
    # route rather than risk a call above the ceiling.
    return price.currency != ceiling.currency or price.amount > ceiling.amount


def routes_for(candidate: Candidate, destination: Destination, timeout_ms: int) -> list[Route]:
    """One route per gateway of the candidate's carrier, in the gateways' order."""
    carrier = candidate.carrier
    user = carrier.number_format.render(destination.e164)
    rate = candidate.rate
    return [
        Route(
            carrier=carrier.code,
            gateway=gateway.name,
            uri=gateway.uri(user),
            timeout_ms=timeout_ms,
            billing=candidate.billing,
            cost_per_minute=rate.per_minute if rate else None,
            increment=str(rate.increment) if rate else None,
        )
        for gateway in carrier.gateways
    ]


def routes_in_order(
    ordered: Sequence[Candidate],
    *,
    destination: Destination,
    route_timeout_ms: int,
    notes: list[str] | None,
    note: Callable[[Candidate], str] | None = None,
) -> list[Route]:
    """The routes of the candidates in the strategy's order; each chosen carrier is described
    in `notes` (with `note`, `describe` by default) unless `notes` is None: the SIP path
    does not read them."""
    routes: list[Route] = []
    for candidate in ordered:
        if notes is not None:
            notes.append((note or describe)(candidate))
        routes.extend(routes_for(candidate, destination, route_timeout_ms))
    return routes


def describe(candidate: Candidate) -> str:
    carrier = candidate.carrier
    tail = " (de-preferred: low NER)" if candidate.state.de_preferred else ""
    if candidate.rate is None:
        return (
            f"carrier {carrier.code}: flat-rate channel free (priority {candidate.priority}){tail}"
        )
    rate = candidate.rate
    return (
        f"carrier {carrier.code}: per minute {rate.per_minute}/min "
        f"(prefix {rate.prefix}, {rate.increment}, priority {candidate.priority}){tail}"
    )


class OrderedStrategy(abc.ABC):
    """The skeleton every strategy shares; a strategy file gives only its per-minute order.

    1. The candidates (`candidates`: disabled, down, full and too dear carriers skipped).
    2. Free flat-rate channels first, de-preferred carriers last, then by priority: the
       channels already paid for are used before any per-minute route.
    3. Per-minute candidates in the strategy's `per_minute_order`.
    """

    @abc.abstractmethod
    def per_minute_order(self, candidate: Candidate, destination: Destination) -> tuple[Any, ...]:
        """The sort key of a per-minute candidate (its rate is set)."""

    def note(self, candidate: Candidate, destination: Destination) -> str:
        """How a chosen carrier is explained."""
        return describe(candidate)

    def __call__(
        self,
        *,
        destination: Destination,
        carriers: Sequence[Carrier],
        live: Mapping[str, CarrierState],
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
        flat = sorted(
            (c for c in found if c.billing is CarrierTariff.FLAT_RATE),
            key=lambda c: (c.state.de_preferred, c.priority, c.carrier.code),
        )
        per_minute = sorted(
            (c for c in found if c.billing is CarrierTariff.PER_MINUTE),
            key=lambda c: self.per_minute_order(c, destination),
        )
        routes = routes_in_order(
            (*flat, *per_minute),
            destination=destination,
            route_timeout_ms=route_timeout_ms,
            notes=notes if explain else None,
            note=lambda candidate: self.note(candidate, destination),
        )
        return routes, notes


_NOMINAL = CarrierState()
