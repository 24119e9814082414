"""The admin API's carriers (gateways, destinations, flat-rate contract, rate deck), and their
translation to and from `domain.carriers.Carrier`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    Field,
    ValidationInfo,
    model_validator,
)

from tawasol.adapters.api.schemas.fields import (
    MAX_CHANNELS,
    STORED,
    Amount,
    Code,
    Country,
    Currency,
    Instant,
    Name,
    Strict,
    _check_minor_units,
    _refuse_repeats,
    _routable_host,
    _stored,
)
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
    rate_clash,
)
from tawasol.domain.catalog import (
    DestinationRule,
)
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind


# -- carriers ---------------------------------------------------------------------------------
class GatewaySchema(Strict):
    name: Code
    host: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_routable_host)]
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Transport = Transport.UDP


class CarrierDestinationSchema(Strict):
    country: Country
    kind: Literal["fixed", "mobile"]
    priority: int = Field(default=100, ge=0, le=10000)


class FlatRateSchema(Strict):
    channels: int = Field(ge=1, le=MAX_CHANNELS)
    monthly_fee: Amount
    currency: Currency


class RateSchema(Strict):
    prefix: Annotated[str, Field(pattern=r"^\d{1,15}$")]
    per_minute: Amount
    currency: Currency
    effective_from: Instant
    increment: Annotated[str, Field(pattern=r"^\d{1,4}/\d{1,4}$")] = "60/60"


class CarrierSchema(Strict):
    code: Code
    name: Annotated[Name, Field(max_length=200)]
    gateways: list[GatewaySchema] = Field(min_length=1, max_length=32)
    destinations: list[CarrierDestinationSchema] = Field(min_length=1, max_length=500)
    flat_rate: FlatRateSchema | None = None
    rates: list[RateSchema] = Field(default_factory=list, max_length=200000)
    number_format: NumberFormat = NumberFormat.E164
    max_channels: int | None = Field(default=None, ge=1, le=MAX_CHANNELS)
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        """Refuse what contradicts itself: two gateways of one name, one destination twice (at
        two priorities), a monthly fee finer than its currency, two rates for one prefix from
        one instant (the CSV import's rule, `rate_clash`)."""
        if _stored(info):
            return self
        _refuse_repeats("gateways", [gateway.name for gateway in self.gateways])
        _refuse_repeats(
            "destinations", [f"{item.country} {item.kind}" for item in self.destinations]
        )
        if self.flat_rate is not None:
            _check_minor_units(
                self.flat_rate.monthly_fee, self.flat_rate.currency, field="flat_rate.monthly_fee"
            )
        seen: dict[tuple[str, datetime], tuple[int, Rate]] = {}
        for index, rate in enumerate(self._domain_rates()):
            clash = rate_clash(seen, index, rate, where="rates")
            if clash is not None:
                raise ValueError(f"rates[{index}]: {clash}")
        return self

    def _domain_rates(self) -> list[Rate]:
        rates = []
        for rate in self.rates:
            first, following = (int(part) for part in rate.increment.split("/"))
            rates.append(
                Rate(
                    prefix=rate.prefix,
                    per_minute=Money.parse(rate.per_minute, rate.currency),
                    effective_from=rate.effective_from,
                    increment=BillingIncrement(first, following),
                )
            )
        return rates

    def to_domain(self) -> Carrier:
        # An identical repeat of a rate is read once, as in the CSV import.
        rates = list(dict.fromkeys(self._domain_rates()))
        return Carrier(
            code=self.code,
            name=self.name,
            gateways=tuple(
                Gateway(name=g.name, host=g.host, port=g.port, transport=g.transport)
                for g in self.gateways
            ),
            destinations=tuple(
                CarrierDestination(DestinationRule(d.country, NumberKind(d.kind)), d.priority)
                for d in self.destinations
            ),
            flat_rate=(
                FlatRateContract(
                    channels=self.flat_rate.channels,
                    monthly_fee=Money.parse(self.flat_rate.monthly_fee, self.flat_rate.currency),
                )
                if self.flat_rate
                else None
            ),
            rate_deck=RateDeck(rates),
            number_format=self.number_format,
            max_channels=self.max_channels,
            enabled=self.enabled,
        )

    @classmethod
    def from_domain(cls, carrier: Carrier) -> CarrierSchema:
        flat = carrier.flat_rate
        return cls.model_validate(
            {
                "code": carrier.code,
                "name": carrier.name,
                "gateways": [
                    {"name": g.name, "host": g.host, "port": g.port, "transport": g.transport}
                    for g in carrier.gateways
                ],
                "destinations": [
                    {"country": d.rule.country, "kind": d.rule.kind.value, "priority": d.priority}
                    for d in carrier.destinations
                ],
                "flat_rate": (
                    {
                        "channels": flat.channels,
                        "monthly_fee": str(flat.monthly_fee.amount),
                        "currency": flat.monthly_fee.currency,
                    }
                    if flat
                    else None
                ),
                "rates": [
                    {
                        "prefix": rate.prefix,
                        "per_minute": str(rate.per_minute.amount),
                        "currency": rate.per_minute.currency,
                        "effective_from": rate.effective_from,
                        "increment": str(rate.increment),
                    }
                    for rate in sorted(
                        carrier.rate_deck.rates(), key=lambda r: (r.prefix, r.effective_from)
                    )
                ],
                "number_format": carrier.number_format,
                "max_channels": carrier.max_channels,
                "enabled": carrier.enabled,
            },
            context=STORED,
        )
