"""Committed capacity first: use the channels already paid for, then the cheapest per minute.

1. Carriers with a flat-rate contract and a free channel, by priority for the destination.
2. Then every carrier with a per-minute rate for the number (including flat-rate carriers whose
   channels are full but whose trunk accepts overflow), cheapest first, then by priority.

A carrier is skipped when it is disabled, marked down, or has no channel left at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from tawasol.domain.carriers import Carrier, CarrierLiveState, Rate
from tawasol.domain.numbering import Destination
from tawasol.domain.routing import Billing, Route


def committed_capacity_first(
    *,
    destination: Destination,
    carriers: Sequence[Carrier],
    live: Mapping[str, CarrierLiveState],
    now: datetime,
    route_timeout_ms: int,
) -> tuple[list[Route], list[str]]:
    flat: list[tuple[int, str, Carrier]] = []
    per_minute: list[tuple[Decimal, int, str, Carrier, Rate]] = []
    notes: list[str] = []
    for carrier in carriers:
        priority = carrier.priority_for(destination)
        if priority is None:
            continue
        state = live.get(carrier.code, CarrierLiveState())
        if not carrier.enabled:
            notes.append(f"carrier {carrier.code} skipped: disabled")
            continue
        if not state.up:
            notes.append(f"carrier {carrier.code} skipped: down")
            continue
        if carrier.max_channels is not None and state.channels_in_use >= carrier.max_channels:
            notes.append(
                f"carrier {carrier.code} skipped: full "
                f"({state.channels_in_use}/{carrier.max_channels} channels)"
            )
            continue
        flat_free = (
            carrier.flat_rate is not None and state.channels_in_use < carrier.flat_rate.channels
        )
        if flat_free:
            flat.append((priority, carrier.code, carrier))
            continue
        rate = carrier.rate_deck.lookup(destination.e164, now)
        if rate is not None:
            per_minute.append((rate.per_minute.amount, priority, carrier.code, carrier, rate))
        elif carrier.flat_rate is not None:
            notes.append(
                f"carrier {carrier.code} skipped: flat-rate channels full "
                f"({state.channels_in_use}/{carrier.flat_rate.channels}) and no per-minute rate"
            )
        else:
            notes.append(f"carrier {carrier.code} skipped: no rate for {destination.e164}")

    routes: list[Route] = []
    for priority, _, carrier in sorted(flat, key=lambda entry: (entry[0], entry[1])):
        notes.append(f"carrier {carrier.code}: flat-rate channel free (priority {priority})")
        user = carrier.number_format.render(destination.e164)
        routes.extend(
            Route(
                carrier=carrier.code,
                gateway=gateway.name,
                uri=gateway.uri(user),
                timeout_ms=route_timeout_ms,
                billing=Billing.FLAT_RATE,
            )
            for gateway in carrier.gateways
        )
    for _, priority, _, carrier, rate in sorted(per_minute, key=lambda e: (e[0], e[1], e[2])):
        notes.append(
            f"carrier {carrier.code}: per minute {rate.per_minute}/min "
            f"(prefix {rate.prefix}, {rate.increment}, priority {priority})"
        )
        user = carrier.number_format.render(destination.e164)
        routes.extend(
            Route(
                carrier=carrier.code,
                gateway=gateway.name,
                uri=gateway.uri(user),
                timeout_ms=route_timeout_ms,
                billing=Billing.PER_MINUTE,
                cost_per_minute=rate.per_minute,
            )
            for gateway in carrier.gateways
        )
    return routes, notes
