"""Carriers: gateways, number formats, billing increments, rate decks and contracts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.carriers import (
    BillingIncrement,
    Carrier,
    CarrierDestination,
    FlatRateContract,
    Gateway,
    NumberFormat,
    Rate,
    RateDeck,
    Transport,
)
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind, classify

JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


# --- Billing increments ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration_seconds", "billable_seconds"),
    [(0, 0), (1, 60), (59, 60), (60, 60), (61, 120), (120, 120), (121, 180), (3599, 3600)],
)
def test_given_60_60_billing_when_call_lasts_then_whole_minutes_are_billed(
    duration_seconds: int, billable_seconds: int
) -> None:
    assert BillingIncrement(60, 60).billable_seconds(duration_seconds) == billable_seconds


@pytest.mark.parametrize(
    ("duration_seconds", "billable_seconds"), [(0, 0), (1, 1), (59, 59), (61, 61), (3601, 3601)]
)
def test_given_1_1_billing_when_call_lasts_then_every_second_is_billed(
    duration_seconds: int, billable_seconds: int
) -> None:
    assert BillingIncrement(1, 1).billable_seconds(duration_seconds) == billable_seconds


@pytest.mark.parametrize(
    ("duration_seconds", "billable_seconds"),
    # 30 s first, then blocks of 6 s: 95 s = 30 + 65, and 65 s needs 11 blocks (66 s): 96 s.
    [(1, 30), (29, 30), (30, 30), (31, 36), (36, 36), (37, 42), (95, 96), (96, 96)],
)
def test_given_30_6_billing_when_call_lasts_then_30_seconds_then_6_second_blocks(
    duration_seconds: int, billable_seconds: int
) -> None:
    assert BillingIncrement(30, 6).billable_seconds(duration_seconds) == billable_seconds


def test_given_a_negative_duration_when_billed_then_nothing() -> None:
    assert BillingIncrement(60, 60).billable_seconds(-5) == 0


@pytest.mark.parametrize(("first", "following"), [(0, 60), (60, 0), (-1, 1)])
def test_given_an_increment_below_one_second_when_built_then_refused(
    first: int, following: int
) -> None:
    with pytest.raises(InvalidConfiguration):
        BillingIncrement(first, following)


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(min_value=1, max_value=120),
    following=st.integers(min_value=1, max_value=120),
    duration_seconds=st.integers(min_value=1, max_value=20_000),
)
def test_billable_seconds_cover_the_call_and_overshoot_by_less_than_one_block(
    first: int, following: int, duration_seconds: int
) -> None:
    billable = BillingIncrement(first, following).billable_seconds(duration_seconds)

    assert billable >= duration_seconds
    assert billable >= first
    if duration_seconds <= first:
        assert billable == first
    else:
        assert billable - duration_seconds < following
        assert (billable - first) % following == 0


# --- Gateways and number formats ------------------------------------------------------------


def test_given_a_gateway_when_uri_built_then_user_host_port_and_transport() -> None:
    gateway = Gateway("gw1", "192.0.2.10", 5080, Transport.TCP)

    assert gateway.uri("+212661234567") == "sip:+212661234567@192.0.2.10:5080;transport=tcp"


def test_given_an_ipv6_gateway_when_uri_built_then_host_in_brackets() -> None:
    # RFC 3261 §19.1.1 / RFC 2732: an IPv6 reference in a SIP URI is written in brackets.
    gateway = Gateway("gw1", "2001:db8::20")

    assert gateway.uri("212661234567") == "sip:212661234567@[2001:db8::20]:5060;transport=udp"


@pytest.mark.parametrize("host", ["192.0.2.10", "gw.carrier.example", "gw-1_b.example", "::1"])
def test_given_an_ordinary_host_when_gateway_built_then_accepted(host: str) -> None:
    assert Gateway("gw1", host).host == host


@pytest.mark.parametrize(
    "host",
    [
        "",
        "gw.example ;lr",
        "gw.example;transport=tcp",
        "evil@gw.example",
        "gw.example>",
        "<sip:gw.example",
        'gw"example',
        "gw'example",
        # A CR LF would let operator data add a header to every INVITE sent to this gateway.
        "gw.example\r\nX-Injected:1",
        "gw.example\nVia:SIP/2.0/UDP:evil",
        "gw\texample",
        "gw\x00example",
        "gw.example,evil.example",
        "gw.example?Route=evil",
        "gw.example/path",
    ],
)
def test_given_a_hostile_host_when_gateway_built_then_refused(host: str) -> None:
    with pytest.raises(InvalidConfiguration):
        Gateway("gw1", host)


@pytest.mark.parametrize("port", [0, -1, 65536, 100_000])
def test_given_a_port_outside_1_to_65535_when_gateway_built_then_refused(port: int) -> None:
    with pytest.raises(InvalidConfiguration):
        Gateway("gw1", "192.0.2.10", port)


@pytest.mark.parametrize(
    ("number_format", "rendered"),
    [
        (NumberFormat.E164, "+212661234567"),
        (NumberFormat.INTERNATIONAL_00, "00212661234567"),
        (NumberFormat.DIGITS, "212661234567"),
    ],
)
def test_given_a_carrier_number_format_when_rendered_then_as_the_carrier_wants_it(
    number_format: NumberFormat, rendered: str
) -> None:
    assert number_format.render("+212661234567") == rendered


# --- Rate decks -----------------------------------------------------------------------------


def _rate(prefix: str, amount: str, effective_from: datetime = JANUARY) -> Rate:
    return Rate(prefix, eur(amount), effective_from)


def test_given_overlapping_prefixes_when_looked_up_then_the_longest_match_wins() -> None:
    deck = RateDeck([_rate("212", "0.02"), _rate("2126", "0.08"), _rate("21266", "0.07")])
    after = JANUARY + timedelta(days=1)

    assert deck.lookup("+212661234567", after).per_minute == eur("0.07")  # 21266
    assert deck.lookup("+212612345678", after).per_minute == eur("0.08")  # 2126
    assert deck.lookup("+212522123456", after).per_minute == eur("0.02")  # 212
    assert deck.lookup("+21620123456", after) is None
    assert len(deck) == 3


def test_given_a_new_price_from_february_when_looked_up_then_old_price_until_then() -> None:
    deck = RateDeck([_rate("2126", "0.09", FEBRUARY), _rate("2126", "0.08", JANUARY)])

    assert deck.lookup("+212661234567", JANUARY - timedelta(seconds=1)) is None
    assert deck.lookup("+212661234567", JANUARY).per_minute == eur("0.08")
    assert deck.lookup("+212661234567", FEBRUARY - timedelta(seconds=1)).per_minute == eur("0.08")
    assert deck.lookup("+212661234567", FEBRUARY).per_minute == eur("0.09")


def test_given_a_longer_prefix_not_yet_in_effect_when_looked_up_then_shorter_prefix_applies() -> (
    None
):
    deck = RateDeck([_rate("212", "0.02", JANUARY), _rate("2126", "0.08", FEBRUARY)])

    assert deck.lookup("+212661234567", JANUARY + timedelta(days=3)).prefix == "212"
    assert deck.lookup("+212661234567", FEBRUARY).prefix == "2126"


def test_given_an_empty_deck_when_looked_up_then_nothing() -> None:
    deck = RateDeck([])

    assert not deck
    assert deck.lookup("+212661234567", JANUARY) is None


@pytest.mark.parametrize(
    ("prefix", "amount", "effective_from"),
    [
        ("+212", "0.02", JANUARY),
        ("21 2", "0.02", JANUARY),
        ("212", "-0.01", JANUARY),
        ("212", "0.02", datetime(2026, 1, 1)),
    ],
)
def test_given_a_malformed_rate_when_built_then_refused(
    prefix: str, amount: str, effective_from: datetime
) -> None:
    with pytest.raises(InvalidConfiguration):
        Rate(prefix, eur(amount), effective_from)


_DATES = [JANUARY + timedelta(days=days) for days in (-30, 0, 10, 31, 60)]


def _brute_force_lookup(rates: list[Rate], e164: str, at: datetime) -> Rate | None:
    """The definition: among rates in effect at `at` whose prefix starts the number, the one
    with the longest prefix, and for that prefix the one that took effect last."""
    digits = e164.lstrip("+")
    candidates = [
        rate for rate in rates if digits.startswith(rate.prefix) and rate.effective_from <= at
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda rate: (len(rate.prefix), rate.effective_from))


@settings(max_examples=300, deadline=None)
@given(
    entries=st.dictionaries(
        keys=st.tuples(st.text(alphabet="2136", min_size=1, max_size=6), st.sampled_from(_DATES)),
        values=st.integers(min_value=0, max_value=500),
        max_size=25,
    ),
    number=st.text(alphabet="2136", min_size=1, max_size=12),
    at=st.sampled_from(_DATES)
    | st.datetimes(
        min_value=datetime(2025, 11, 1), max_value=datetime(2026, 4, 1), timezones=st.just(UTC)
    ),
)
def test_rate_deck_lookup_equals_brute_force_longest_prefix_in_effect(
    entries: dict[tuple[str, datetime], int], number: str, at: datetime
) -> None:
    # One rate per (prefix, date): two prices for the same prefix from the same instant would be
    # a data error that no lookup can settle.
    rates = [
        _rate(prefix, f"0.{cents:03d}", effective_from)
        for (prefix, effective_from), cents in entries.items()
    ]

    found = RateDeck(rates).lookup("+" + number, at)

    assert found == _brute_force_lookup(rates, "+" + number, at)


# --- Carriers -------------------------------------------------------------------------------


def test_given_a_carrier_serving_morocco_when_destination_priced_then_its_priority(
    operator,
) -> None:
    assert operator.ma_flat.priority_for(classify("+212661234567")) == 10
    assert operator.ma_minute.priority_for(classify("+212522123456")) == 20
    assert operator.ma_flat.priority_for(classify("+21620123456")) is None
    # A carrier does not terminate premium-rate numbers even in its own country.
    assert operator.ma_flat.priority_for(classify("+212892123456")) is None


def test_given_two_entries_for_one_destination_when_priced_then_the_preferred_priority() -> None:
    carrier = Carrier(
        code="ma-two",
        name="Two entries",
        gateways=(Gateway("gw1", "192.0.2.30"),),
        destinations=(
            CarrierDestination(DestinationRule("MA", NumberKind.MOBILE), 50),
            CarrierDestination(DestinationRule("MA", NumberKind.MOBILE), 5),
        ),
        flat_rate=FlatRateContract(4, eur("100")),
    )

    assert carrier.priority_for(classify("+212661234567")) == 5


@pytest.mark.parametrize(
    "overrides",
    [
        {"code": ""},
        {"code": "ma flat"},
        {"gateways": ()},
        {"flat_rate": None},  # and no rate deck: nothing to pay the carrier with
        {"max_channels": 0},
    ],
)
def test_given_contradictory_carrier_data_when_built_then_refused(
    overrides: dict[str, object],
) -> None:
    fields: dict[str, object] = {
        "code": "ma-flat",
        "name": "Atlas Voice",
        "gateways": (Gateway("gw1", "192.0.2.10"),),
        "destinations": (CarrierDestination(DestinationRule("MA", NumberKind.MOBILE)),),
        "flat_rate": FlatRateContract(30, eur("1500")),
    }
    fields.update(overrides)
    with pytest.raises(InvalidConfiguration):
        Carrier(**fields)  # type: ignore[arg-type]


def test_given_no_channel_when_flat_rate_contract_built_then_refused() -> None:
    with pytest.raises(InvalidConfiguration):
        FlatRateContract(0, eur("100"))
