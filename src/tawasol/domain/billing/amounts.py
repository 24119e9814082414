"""Rounding money to what a currency can actually be paid in.

ISO 4217 gives each currency its number of minor-unit digits: 2 for EUR and MAD, 3 for TND, KWD
and BHD, 0 for JPY and XOF. The table is Babel's copy of the Unicode CLDR data, so a Tunisian
invoice is not rounded to the centime it does not have.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from functools import cache

from babel.numbers import get_currency_precision

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money


@cache
def minor_unit(currency: str) -> Decimal:
    """The smallest amount of `currency` (ISO 4217 minor unit): Decimal("0.01") for EUR."""
    return Decimal(1).scaleb(-get_currency_precision(currency))


def rounded(money: Money) -> Money:
    """`money` to its currency's minor unit, half to even (banker's rounding, no drift)."""
    return Money(
        money.amount.quantize(minor_unit(money.currency), rounding=ROUND_HALF_EVEN),
        money.currency,
    )


def rounded_down(money: Money) -> Money:
    """`money` to its currency's minor unit, towards zero: what a credit or refund may be, so
    that rounding never gives back more than was paid."""
    return Money(
        money.amount.quantize(minor_unit(money.currency), rounding=ROUND_DOWN), money.currency
    )


def share_of(money: Money, numerator: int, denominator: int) -> Money:
    """`money` x numerator / denominator exactly, rounded down to the minor unit.

    Integer counts (seconds, minutes) keep the ratio exact: no binary fraction ever enters.
    """
    if denominator <= 0 or numerator < 0:
        raise ValueError("a share needs 0 <= numerator and 0 < denominator")
    exact = money.amount * Decimal(numerator) / Decimal(denominator)
    return rounded_down(Money(exact, money.currency))


def to_minor_units(money: Money) -> int:
    """`money` as an integer count of its currency's minor unit (what card processors take:
    9.99 EUR -> 999, 1.500 TND -> 1500, 500 XOF -> 500). Raises InvalidInput for an amount
    finer than the minor unit (it cannot be paid)."""
    units = money.amount / minor_unit(money.currency)
    if units != units.to_integral_value():
        raise InvalidInput(
            f"{money} is finer than the {money.currency} minor unit", amount=str(money)
        )
    return int(units)


def from_minor_units(units: int, currency: str) -> Money:
    """The inverse of `to_minor_units` (999, "EUR" -> 9.99 EUR)."""
    return Money(Decimal(units) * minor_unit(currency.upper()), currency.upper())
