"""Money: Decimal amounts in one currency, never floats, never mixed currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money


def test_given_amounts_that_floats_get_wrong_when_added_then_exact() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in binary floating point; in cents it is 30.
    total = Money(Decimal("0.10"), "EUR") + Money(Decimal("0.20"), "EUR")

    assert total == Money(Decimal("0.30"), "EUR")


def test_given_same_currency_when_subtracted_or_multiplied_then_exact() -> None:
    price = Money.parse("9.99", "EUR")

    assert price - Money.parse("0.99", "EUR") == Money(Decimal("9.00"), "EUR")
    assert price.times(3) == Money(Decimal("29.97"), "EUR")
    assert price.times(Decimal("0.5")) == Money(Decimal("4.995"), "EUR")


def test_given_text_with_spaces_and_lowercase_currency_when_parsed_then_normalised() -> None:
    assert Money.parse(" 4.99 ", " eur ") == Money(Decimal("4.99"), "EUR")
    assert Money.parse(12, "MAD") == Money(Decimal(12), "MAD")
    assert str(Money.parse("4.99", "EUR")) == "4.99 EUR"


@pytest.mark.parametrize("amount", [0.1, 9.99, 1.0])
def test_given_a_float_when_money_built_then_refused(amount: float) -> None:
    with pytest.raises(InvalidInput):
        Money(amount, "EUR")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        Money.parse(amount, "EUR")  # type: ignore[arg-type]


def test_given_a_float_factor_when_money_multiplied_then_refused() -> None:
    # Decimal(1.1) is 1.100000000000000088817841970012523...: a float must not slip in here.
    with pytest.raises(InvalidInput):
        Money.parse("1.00", "EUR").times(1.1)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "abc", "", "1,50"])
def test_given_text_that_is_not_a_finite_amount_when_parsed_then_refused(amount: str) -> None:
    with pytest.raises(InvalidInput):
        Money.parse(amount, "EUR")


@pytest.mark.parametrize("currency", ["EURO", "E", "€", "eu1", "", "EU "])
def test_given_a_currency_that_is_not_iso_4217_when_money_built_then_refused(
    currency: str,
) -> None:
    with pytest.raises(InvalidInput):
        Money(Decimal("1.00"), currency)


def test_given_two_currencies_when_added_or_subtracted_then_refused() -> None:
    euros = Money.parse("9.99", "EUR")
    dirhams = Money.parse("100", "MAD")

    with pytest.raises(InvalidInput) as raised:
        euros + dirhams
    assert raised.value.details == {"left": "EUR", "right": "MAD"}
    with pytest.raises(InvalidInput):
        dirhams - euros


def test_given_same_currency_when_compared_then_by_amount() -> None:
    assert Money.parse("0.02", "EUR") < Money.parse("0.10", "EUR")
    assert Money.parse("0.10", "EUR") >= Money.parse("0.10", "EUR")
    assert max(Money.parse("0.08", "EUR"), Money.parse("0.10", "EUR")) == Money.parse("0.10", "EUR")


def test_given_two_currencies_when_compared_then_refused() -> None:
    # 1 EUR is worth about 11 MAD: ordering the bare amounts would say the opposite.
    euro = Money.parse("1", "EUR")
    two_dirhams = Money.parse("2", "MAD")

    with pytest.raises(InvalidInput):
        _ = euro < two_dirhams
    with pytest.raises(InvalidInput):
        _ = euro >= two_dirhams
