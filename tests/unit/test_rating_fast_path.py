"""The fast rating path (`RatingTable`: decks compiled once, integer millionths) against the
reference `rate_call`, Decimal for Decimal, over random decks (overlapping prefixes, several
effective dates, increments 60/60, 1/1, 30/6 and others, prices with up to 8 decimals) and
random calls (numbers, start times before, between and after the effective dates, durations
from 0 ms to 5 hours)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.calls import CallAttempt, CallRecord
from tawasol.domain.carriers import (
    BillingIncrement,
    Carrier,
    CarrierDestination,
    FlatRateContract,
    Gateway,
    Rate,
    RateDeck,
)
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.rating import CompiledRateDeck, RatingTable, micro_amount, rate_call

START = datetime(2026, 1, 1, tzinfo=UTC)
GATEWAYS = (Gateway("gw", "127.0.0.1", 5080),)
DESTINATIONS = (CarrierDestination(DestinationRule("MA", NumberKind.MOBILE)),)

moments = st.integers(0, 400 * 86400 * 1000).map(lambda ms: START + timedelta(milliseconds=ms))
increments = st.one_of(
    st.sampled_from((BillingIncrement(60, 60), BillingIncrement(1, 1), BillingIncrement(30, 6))),
    st.builds(BillingIncrement, st.integers(1, 120), st.integers(1, 120)),
)
# Prices as a deck writes them: 0 to ~10 per minute with up to 8 decimals (0.0123, 0.00012345).
prices = st.builds(
    lambda units, places: Decimal(units).scaleb(-places), st.integers(0, 10**8), st.integers(0, 8)
)
rates = st.builds(
    lambda prefix, price, since, increment, currency: Rate(
        prefix, Money(price, currency), since, increment
    ),
    st.text("1234", min_size=1, max_size=5),
    prices,
    moments,
    increments,
    st.sampled_from(("EUR", "EUR", "TND")),
)


def _deck(drawn: list[Rate]) -> RateDeck:
    return RateDeck({(rate.prefix, rate.effective_from): rate for rate in drawn}.values())


calls = st.tuples(
    st.text("12345", min_size=0, max_size=12).map(lambda digits: "+" + digits),
    moments,
    st.integers(0, 5 * 3600 * 1000),
    st.sampled_from(("per-minute", "flat", "both", "unknown")),
    st.sampled_from((None, "flat_rate", "per_minute")),
)


def _carriers(deck: RateDeck) -> dict[str, Carrier]:
    flat = FlatRateContract(10, Money(Decimal(300), "EUR"))
    return {
        "per-minute": Carrier("per-minute", "P", GATEWAYS, DESTINATIONS, rate_deck=deck),
        "flat": Carrier("flat", "F", GATEWAYS, DESTINATIONS, flat_rate=flat),
        "both": Carrier("both", "B", GATEWAYS, DESTINATIONS, flat_rate=flat, rate_deck=deck),
    }


def _record(number: int, call: tuple[str, datetime, int, str, str | None]) -> CallRecord:
    destination, started, duration_ms, carrier, billing = call
    return CallRecord(
        call_id=f"c{number}",
        started_at=started,
        destination=destination,
        answered_at=started,
        ended_at=started + timedelta(milliseconds=duration_ms),
        duration_ms=duration_ms,
        carrier=carrier,
        final_sip_code=200,
        attempts=(CallAttempt(1, carrier, "gw", 200, 10, started, billing=billing),),
    )


@settings(max_examples=300, deadline=None)
@given(drawn=st.lists(rates, min_size=1, max_size=40), drawn_calls=st.lists(calls, max_size=40))
def test_the_fast_path_rates_every_call_as_rate_call(drawn, drawn_calls):
    deck = _deck(drawn)
    carriers = _carriers(deck)
    table = RatingTable(carriers)
    for number, call in enumerate(drawn_calls):
        record = _record(number, call)
        expected = rate_call(record, carriers)
        got = table.rate(record)
        assert got == expected
        # Decimal for Decimal: the same digits and exponent, not only the same value.
        want_cost = None if expected.cost is None else expected.cost.amount.as_tuple()
        assert (None if got.cost is None else got.cost.amount.as_tuple()) == want_cost
        if expected.rate_per_minute is not None:
            assert got.rate_per_minute is not None
            assert (
                got.rate_per_minute.amount.as_tuple() == expected.rate_per_minute.amount.as_tuple()
            )


@settings(max_examples=200, deadline=None)
@given(drawn=st.lists(rates, min_size=1, max_size=40), drawn_calls=st.lists(calls, max_size=40))
def test_batch_costs_equal_the_reference_per_minute_cost_and_lookup(drawn, drawn_calls):
    deck = _deck(drawn)
    carriers = _carriers(deck)
    batch = [(carrier, e164, at, ms) for e164, at, ms, carrier, _ in drawn_calls]
    for (carrier, e164, at, ms), found in zip(
        batch, RatingTable(carriers).costs(batch), strict=True
    ):
        if carrier not in ("per-minute", "both"):
            assert found is None
            continue
        rate = deck.lookup(e164, at)
        if rate is None:
            assert found is None
            continue
        record = _record(0, (e164, at, ms, "per-minute", "per_minute"))
        expected = rate_call(record, carriers).cost
        assert found is not None and found[0] == rate
        got = micro_amount(found[1], rate.per_minute.currency)
        assert expected is not None and got.amount.as_tuple() == expected.amount.as_tuple()


def test_worked_examples_in_millionths():
    since = START
    deck = RateDeck(
        (
            Rate("212", Money(Decimal("0.0123"), "EUR"), since, BillingIncrement(60, 60)),
            Rate("2126", Money(Decimal("0.10"), "EUR"), since, BillingIncrement(30, 6)),
            Rate("2126", Money(Decimal("0.20"), "EUR"), since + timedelta(days=30)),
            Rate("21261", Money(Decimal("0.07"), "EUR"), since + timedelta(days=60)),
        )
    )
    compiled = CompiledRateDeck(deck)
    day = timedelta(days=1)
    # 61 s at 0.0123/min in whole minutes: 2 min = 0.0246 EUR.
    assert compiled.cost_micro("+2125000", since + day, 61_000) == (deck.rates()[0], 24_600)
    # 31.2 s -> 32 s talk, 30/6: 36 s at 0.10/min = 0.06 EUR.
    found = compiled.cost_micro("+2126100", since + day, 31_200)
    assert found is not None and found[1] == 60_000
    # The longer prefix 21261 is not in effect yet on day 1: 2126 answers; on day 61 it does.
    assert found[0].prefix == "2126"
    later = compiled.cost_micro("+2126100", since + 61 * day, 60_000)
    assert later is not None and (later[0].prefix, later[1]) == ("21261", 70_000)
    # A number no prefix matches, and a call before any rate of its prefix: no rate.
    assert compiled.cost_micro("+33", since, 1000) is None
    assert compiled.cost_micro("+2125", since - day, 1000) is None
    # Half up once, on the exact value: 1 s (first block 1/1) at 0.00003/min = 0.0000005.
    half = CompiledRateDeck(
        RateDeck((Rate("9", Money(Decimal("0.00003"), "EUR"), since, BillingIncrement(1, 1)),))
    )
    assert half.cost_micro("+91", since, 1000) == (half.tariff("+91", since)[0], 1)  # type: ignore[index]
