"""The ISO codes the operator's data is written in: currencies and countries.

- Currencies are ISO 4217 alphabetic codes of money a carrier or a subscriber can pay in.
  ISO 4217 also assigns `X..` codes to things that are not money (`XXX` "no currency", `XTS`
  for testing, gold `XAU`, the IMF's `XDR`...): those are refused, while the real currencies
  among them are kept (`XOF`/`XAF`, the CFA francs of West and Central Africa, `XCD`, `XPF`).
- Countries are ISO 3166-1 alpha-2 codes (`MA`, `TN`, `DZ`); user-assigned codes such as
  `ZZ` or `XX` are refused.

The tables come from `pycountry` (maintained from the ISO and Debian iso-codes data); they are
read once, then every check is a set lookup.
"""

from __future__ import annotations

from functools import cache

import pycountry

from tawasol.domain.errors import InvalidInput

# ISO 4217 "X" codes that are real money (the others are metals, funds and test codes).
_X_CURRENCIES_IN_USE = frozenset({"XAF", "XCD", "XCG", "XOF", "XPF"})


@cache
def currencies() -> frozenset[str]:
    """Every ISO 4217 code of money in use."""
    return frozenset(
        currency.alpha_3
        for currency in pycountry.currencies
        if not currency.alpha_3.startswith("X") or currency.alpha_3 in _X_CURRENCIES_IN_USE
    )


@cache
def countries() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 country code."""
    return frozenset(country.alpha_2 for country in pycountry.countries)


def check_currency(code: str) -> str:
    """`code` if it is an ISO 4217 currency in use; raises InvalidInput otherwise."""
    if code not in currencies():
        raise InvalidInput(
            f"{code!r} is not an ISO 4217 currency in use (e.g. EUR, USD, MAD, XOF)",
            currency=code,
        )
    return code


def check_country(code: str) -> str:
    """`code` if it is an ISO 3166-1 alpha-2 country code; raises InvalidInput otherwise."""
    if code not in countries():
        raise InvalidInput(
            f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. MA, TN, DZ)", country=code
        )
    return code
