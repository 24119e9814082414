"""Committed capacity first: paid-for channels first, then the cheapest per-minute carrier."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.carriers import (
    Carrier,
    CarrierDestination,
    CarrierState,
    Gateway,
    Rate,
    RateDeck,
)
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination, NumberKind, classify
from tawasol.domain.routing import CarrierTariff, Route
from tawasol.domain.routing.committed_capacity_first import committed_capacity_first

NOW = datetime(2026, 1, 14, 20, 30, tzinfo=UTC)
MOROCCAN_MOBILE = classify("+212661234567")
MOROCCAN_FIXED = classify("+212522123456")


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def route(
    carriers: list[Carrier] | tuple[Carrier, ...],
    destination: Destination = MOROCCAN_MOBILE,
    live: dict[str, CarrierState] | None = None,
    now: datetime = NOW,
) -> tuple[list[Route], list[str]]:
    return committed_capacity_first(
        destination=destination,
        carriers=carriers,
        live=live or {},
        now=now,
        route_timeout_ms=2500,
    )


def hops(routes: list[Route]) -> list[tuple[str, str, CarrierTariff]]:
    return [(hop.carrier, hop.gateway, hop.billing) for hop in routes]


def test_given_all_carriers_idle_when_moroccan_mobile_called_then_flat_rate_gateways_first(
    operator,
) -> None:
    routes, _ = route(operator.carriers)

    assert hops(routes) == [
        ("ma-flat", "gw1", CarrierTariff.FLAT_RATE),
        ("ma-flat", "gw2", CarrierTariff.FLAT_RATE),
        ("ma-minute", "gw1", CarrierTariff.PER_MINUTE),
    ]
    assert routes[0].cost_per_minute is None
    assert routes[2].cost_per_minute == eur("0.0800")
    assert all(hop.timeout_ms == 2500 for hop in routes)


def test_given_a_route_when_built_then_uri_uses_the_carrier_number_format(operator) -> None:
    routes, _ = route(operator.carriers)
    dz_routes, _ = route(operator.carriers, classify("+213551234567"))

    assert routes[0].uri == "sip:+212661234567@192.0.2.10:5060;transport=udp"
    assert routes[2].uri == "sip:00212661234567@198.51.100.20:5080;transport=udp"
    assert [hop.uri for hop in dz_routes] == ["sip:213551234567@[2001:db8::20]:5060;transport=udp"]


def test_given_flat_rate_carrier_full_when_call_placed_then_per_minute_carrier_first(
    operator,
) -> None:
    # All 30 paid channels busy; the 60-channel trunk still takes overflow at 0.10 EUR/min,
    # dearer than ma-minute's 0.08 EUR/min.
    live = {"ma-flat": CarrierState(channels_in_use=30)}

    routes, notes = route(operator.carriers, live=live)

    assert hops(routes) == [
        ("ma-minute", "gw1", CarrierTariff.PER_MINUTE),
        ("ma-flat", "gw1", CarrierTariff.PER_MINUTE),
        ("ma-flat", "gw2", CarrierTariff.PER_MINUTE),
    ]
    assert [hop.cost_per_minute for hop in routes] == [eur("0.0800"), eur("0.1000"), eur("0.1000")]
    assert any("ma-minute: per minute 0.0800 EUR/min" in note for note in notes)


def test_given_flat_rate_carrier_with_one_channel_left_when_call_placed_then_it_is_used(
    operator,
) -> None:
    routes, _ = route(operator.carriers, live={"ma-flat": CarrierState(channels_in_use=29)})

    assert routes[0].carrier == "ma-flat"
    assert routes[0].billing is CarrierTariff.FLAT_RATE


def test_given_flat_rate_trunk_completely_full_when_call_placed_then_flat_carrier_skipped(
    operator,
) -> None:
    routes, notes = route(operator.carriers, live={"ma-flat": CarrierState(channels_in_use=60)})

    assert hops(routes) == [("ma-minute", "gw1", CarrierTariff.PER_MINUTE)]
    assert "carrier ma-flat skipped: full (60/60 channels)" in notes


def test_given_flat_rate_carrier_down_when_call_placed_then_next_carrier_only(operator) -> None:
    routes, notes = route(operator.carriers, live={"ma-flat": CarrierState(up=False)})

    assert [hop.carrier for hop in routes] == ["ma-minute"]
    assert "carrier ma-flat skipped: down" in notes


def test_given_flat_rate_carrier_disabled_by_hand_when_call_placed_then_skipped(operator) -> None:
    carriers = [replace(operator.ma_flat, enabled=False), operator.ma_minute]

    routes, notes = route(carriers)

    assert [hop.carrier for hop in routes] == ["ma-minute"]
    assert "carrier ma-flat skipped: disabled" in notes


def test_given_every_moroccan_carrier_unavailable_when_call_placed_then_no_route(operator) -> None:
    live = {"ma-flat": CarrierState(up=False), "ma-minute": CarrierState(up=False)}

    routes, _ = route(operator.carriers, live=live)

    assert routes == []


def test_given_a_fixed_line_when_flat_full_then_per_minute_carriers_cheapest_first(
    operator,
) -> None:
    # Fixed lines: ma-minute 0.02, ma-flat overflow 0.03 (the 212 prefix, not 2126/2127).
    live = {"ma-flat": CarrierState(channels_in_use=45)}

    routes, _ = route(operator.carriers, MOROCCAN_FIXED, live)

    assert [(hop.carrier, hop.cost_per_minute) for hop in routes] == [
        ("ma-minute", eur("0.0200")),
        ("ma-flat", eur("0.0300")),
        ("ma-flat", eur("0.0300")),
    ]


def test_given_tunisia_and_algeria_when_called_then_only_their_own_carrier(operator) -> None:
    tunisia, _ = route(operator.carriers, classify("+21631123456"))  # fixed-or-mobile
    algeria, _ = route(operator.carriers, classify("+21321123456"))

    assert [hop.carrier for hop in tunisia] == ["tn-minute"]
    assert [hop.carrier for hop in algeria] == ["dz-minute"]


def test_given_a_destination_no_carrier_serves_when_call_placed_then_no_route(operator) -> None:
    routes, notes = route(operator.carriers, classify("+221771234567"))

    assert routes == []
    assert notes == []


def _per_minute_carrier(code: str, amount: str, priority: int, since: datetime) -> Carrier:
    return Carrier(
        code=code,
        name=code,
        gateways=(Gateway("gw1", f"{code}.example"),),
        destinations=(CarrierDestination(DestinationRule("MA", NumberKind.MOBILE), priority),),
        rate_deck=RateDeck([Rate("212", eur(amount), since)]),
    )


def test_given_equal_prices_when_routes_ordered_then_by_priority_then_code() -> None:
    since = NOW - timedelta(days=30)
    carriers = [
        _per_minute_carrier("zeta", "0.05", 10, since),
        _per_minute_carrier("beta", "0.05", 20, since),
        _per_minute_carrier("alpha", "0.05", 10, since),
        _per_minute_carrier("cheap", "0.04", 90, since),
    ]

    routes, _ = route(carriers)

    assert [hop.carrier for hop in routes] == ["cheap", "alpha", "zeta", "beta"]


def test_given_a_rate_not_yet_in_effect_when_call_placed_then_carrier_skipped() -> None:
    carrier = _per_minute_carrier("tomorrow", "0.01", 10, NOW + timedelta(days=1))

    routes, notes = route([carrier])

    assert routes == []
    assert notes == ["carrier tomorrow skipped: no rate for +212661234567"]


def test_given_flat_only_carrier_with_all_channels_busy_when_call_placed_then_skipped(
    operator,
) -> None:
    flat_only = replace(operator.ma_flat, rate_deck=RateDeck([]), max_channels=None)

    routes, notes = route([flat_only], live={"ma-flat": CarrierState(channels_in_use=30)})

    assert routes == []
    assert any("skipped: full (30/30 channels)" in note for note in notes)


# --- Properties over random live states -----------------------------------------------------

SAMPLE_NUMBERS = [
    "+212661234567",
    "+212522123456",
    "+21631123456",
    "+21620123456",
    "+213551234567",
    "+21321123456",
    "+221771234567",
]


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    # Morocco, where two carriers compete, three times in four.
    number=st.sampled_from(["+212661234567", "+212522123456", "+212700123456"])
    | st.sampled_from(SAMPLE_NUMBERS),
)
def test_routes_never_include_down_disabled_or_full_carriers_and_are_ordered(
    operator, routing_rules, data: st.DataObject, number: str
) -> None:
    carriers, live = data.draw(routing_rules.worlds(operator.carriers))
    destination = classify(number)

    routes, _ = route(carriers, destination, live)

    routing_rules.assert_sound(routes, carriers, live, destination)
    # And nothing usable is left out: every carrier that serves the number, is enabled, up,
    # not full, and has a free paid channel or a rate, gets a route on each of its gateways.
    expected = set()
    for carrier in carriers:
        state = live.get(carrier.code, CarrierState())
        if carrier.priority_for(destination) is None or not carrier.enabled or not state.up:
            continue
        if routing_rules.is_full(carrier, state):
            continue
        free_channel = (
            carrier.flat_rate is not None and state.channels_in_use < carrier.flat_rate.channels
        )
        if free_channel or carrier.rate_deck.lookup(destination.e164, NOW) is not None:
            expected |= {(carrier.code, gateway.name) for gateway in carrier.gateways}
    assert {(hop.carrier, hop.gateway) for hop in routes} == expected
    assert len(routes) == len(expected)
