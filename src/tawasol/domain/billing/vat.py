"""VAT on telecommunication services, by the country where the subscriber lives.

Since 2015 an EU operator charges a consumer the VAT of the member state where the consumer
lives for telecommunication services (Council Directive 2006/112/EC art. 58, as amended by
Directive 2008/8/EC). The operator configures one rate per country it sells to; a country
without a configured rate is an error, never a silent 0 %: billing it would be guessing the law.

Plan prices are what the consumer pays, VAT included (EU Directive 98/6/EC and the French Code
de la consommation art. L112-1 require consumer prices to include taxes); the invoice splits
each line into its net amount and its VAT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from tawasol.domain.billing.amounts import rounded
from tawasol.domain.codes import check_country
from tawasol.domain.errors import InvalidConfiguration, InvalidInput
from tawasol.domain.money import Money


@dataclass(frozen=True)
class VatSplit:
    """A VAT-inclusive amount split into net and VAT at one rate (net + vat == gross)."""

    rate: Decimal
    net: Money
    vat: Money
    gross: Money


@dataclass(frozen=True)
class VatTable:
    """The VAT rate per ISO 3166-1 country code, as a fraction (Decimal("0.20") for 20 %)."""

    rates: Mapping[str, Decimal]

    def __post_init__(self) -> None:
        for country, rate in self.rates.items():
            check_country(country)
            if not isinstance(rate, Decimal) or not Decimal(0) <= rate < Decimal(1):
                raise InvalidConfiguration(
                    f"the VAT rate of {country} must be a Decimal fraction from 0 to below 1 "
                    "(0.20 for 20 %)",
                    country=country,
                    rate=str(rate),
                )

    @classmethod
    def parse(cls, text: str) -> VatTable:
        """From `FR=20,MA=20,TN=19` (percentages), the form of the setting."""
        rates: dict[str, Decimal] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            country, separator, percent = item.partition("=")
            if not separator:
                raise InvalidConfiguration("a VAT rate is written COUNTRY=PERCENT", item=item)
            try:
                rates[country.strip().upper()] = Decimal(percent.strip()) / 100
            except ArithmeticError as error:
                raise InvalidConfiguration("not a VAT percentage", item=item) from error
        return cls(rates)

    def rate_for(self, country: str) -> Decimal:
        """The rate for `country` (the subscriber's country of residence); raises InvalidInput
        when the country is unknown ("") and InvalidConfiguration when it has no rate."""
        if not country:
            raise InvalidInput(
                "the subscriber's country of residence is unknown, and VAT follows it: set it "
                "first (tawasol subscriber set-country)"
            )
        try:
            return self.rates[country]
        except KeyError:
            raise InvalidConfiguration(
                f"no VAT rate is configured for {country}: add it to the VAT table "
                "(TAWASOL_BILLING_VAT_RATES) before billing subscribers there",
                country=country,
            ) from None

    def split(self, gross: Money, country: str) -> VatSplit:
        """Split a VAT-inclusive amount: VAT = gross x rate / (1 + rate), rounded half to even
        to the minor unit; net = gross - VAT."""
        rate = self.rate_for(country)
        if gross.amount < 0:
            raise InvalidInput("VAT is split on a positive amount", amount=str(gross))
        vat = rounded(Money(gross.amount * rate / (1 + rate), gross.currency))
        return VatSplit(rate, gross - vat, vat, gross)
