"""The JSON shapes of the HTTP API, and their translation to and from domain values.

Money travels as strings ("9.99") so that no JSON parser turns it into a float; times as
ISO 8601 with an offset (admin API) or integer milliseconds since the epoch (SIP API).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, Literal, Self

from annotated_types import Ge, Le
from babel.numbers import get_currency_precision
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from tawasol.domain.calls import CallEvent, CallEventType, CallRecord
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
    CostCeiling,
    DestinationRule,
    FairUse,
    Period,
    Plan,
    TimeWindow,
)
from tawasol.domain.codes import check_country, check_currency
from tawasol.domain.decision import Decision
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.routing import Route
from tawasol.domain.subscribers import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from tawasol.domain.text import control_character

# -- bounds of every field at the API and CLI boundary, declared once ---------------------------
# The CLI reads the same types (`bounds`), so `--offset` and `?offset=` refuse the same values.
# Row ids are 32-bit integers in both databases (INTEGER on SQLite and PostgreSQL).
MAX_ID = 2_147_483_647
MAX_PAGE = 1000
# Channels of one carrier: the largest trunk an operator of this size buys is a few thousand.
MAX_CHANNELS = 100_000
# Fair-use counts: a year has at most 527,040 minutes; numbers and calls at once far below.
MAX_MINUTES_PER_PERIOD = 527_040
MAX_DISTINCT_NUMBERS = 1_000_000
MAX_CONCURRENT_CALLS = 1000
# Instants an operator gives (subscription starts, rate dates, explain's `at`, `since`): a
# typo or a clock gone wrong must not file anything in 1970 or in the year 9999.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone offset, e.g. 2026-11-22T10:00:00+01:00")
    return value


def _instant(value: datetime) -> datetime:
    _aware(value)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y} to {LATEST.year - 1}")
    return value


Id = Annotated[int, Ge(1), Le(MAX_ID)]
Offset = Annotated[int, Ge(0), Le(MAX_ID)]
Limit = Annotated[int, Ge(1), Le(MAX_PAGE)]
Channels = Annotated[int, Ge(0), Le(MAX_CHANNELS)]
Instant = Annotated[
    datetime,
    AfterValidator(_instant),
    Field(examples=["2026-11-22T10:00:00+01:00"]),
]
Amount = Annotated[str, Field(pattern=r"^\d{1,12}(\.\d{1,6})?$", examples=["9.99"])]
Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", examples=["EUR"], description="ISO 4217 currency in use"),
    AfterValidator(lambda code: _domain_check(check_currency, code)),
]
Country = Annotated[
    str,
    Field(pattern=r"^[A-Z]{2}$", examples=["MA"], description="ISO 3166-1 alpha-2"),
    AfterValidator(lambda code: _domain_check(check_country, code)),
]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["20:00"])]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


# Validation context of data read back from the store: the checks added after it was written
# (free text, gateways, consistency) must not turn a GET of old data into a 500.
STORED = {"stored": True}


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _free_text(value: str, info: ValidationInfo) -> str:
    if _stored(info):
        return value
    found = control_character(value)
    if found is not None:
        raise ValueError(f"must not contain control characters ({found})")
    return value


def _not_blank(value: str, info: ValidationInfo) -> str:
    if not _stored(info) and not value.strip():
        raise ValueError("must not be blank")
    return value


# Free text an operator types (domain/text.py): no control characters; a name is not blank.
Text = Annotated[str, AfterValidator(_free_text)]
Name = Annotated[str, Field(min_length=1), AfterValidator(_free_text), AfterValidator(_not_blank)]


def _domain_check(check: Callable[[str], str], value: str) -> str:
    """A domain check as a pydantic validator: its InvalidInput becomes the field's error."""
    try:
        return check(value)
    except InvalidInput as error:
        raise ValueError(error.message) from error


# The longest period of each kind in minutes: a week, a 31-day month, a leap year.
_PERIOD_MINUTES = {Period.WEEK: 7 * 1440, Period.MONTH: 31 * 1440, Period.YEAR: 366 * 1440}


def _check_minor_units(amount: str, currency: str, *, field: str) -> None:
    """An amount charged in `currency` has at most its minor-unit decimals (ISO 4217: EUR 2,
    JPY 0, TND 3); per-minute rates are not charged as such and keep their finer decimals."""
    decimals = len(amount.partition(".")[2].rstrip("0"))
    allowed = get_currency_precision(currency)
    if decimals > allowed:
        raise ValueError(
            f"{field}: {amount} {currency} has {decimals} decimals; {currency} has {allowed}"
        )


def _refuse_repeats(field: str, keys: list[str]) -> None:
    """Raise naming `field`'s item that repeats an earlier one's key (they would contradict)."""
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        earlier = first.setdefault(key, index)
        if earlier != index:
            raise ValueError(f"{field}[{index}] repeats {field}[{earlier}] ({key})")


def bounds(annotated: object) -> dict[str, int]:
    """`min`/`max` of an integer type above, for `typer.Option(**bounds(Offset))`."""
    limits: dict[str, int] = {}
    for item in getattr(annotated, "__metadata__", ()):
        if isinstance(item, Ge):
            limits["min"] = int(item.ge)  # type: ignore[call-overload]
        if isinstance(item, Le):
            limits["max"] = int(item.le)  # type: ignore[call-overload]
    return limits


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _routable_host(host: str, info: ValidationInfo) -> str:
    """A gateway's host when an INVITE can be sent to it: not the unspecified address (0.0.0.0,
    ::), a multicast group (RFC 3261 §18.1.1 multicast is for discovery, not trunks) or the
    limited broadcast address. Names are checked for their form by the domain."""
    if _stored(info):
        return host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if address.is_unspecified:
        raise ValueError(f"{host} is the unspecified address, not a gateway")
    if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"{host} is a multicast or broadcast address, not a gateway")
    return host


# -- plans ------------------------------------------------------------------------------------
class DestinationRuleSchema(Strict):
    country: Country
    kind: Literal["fixed", "mobile"]


class TimeWindowSchema(Strict):
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1, max_length=7)
    start: ClockTime
    end: ClockTime

    @model_validator(mode="after")
    def _not_empty(self, info: ValidationInfo) -> Self:
        # The domain reads start == end as the whole day; only 00:00-00:00 says so plainly.
        if not _stored(info) and self.start == self.end != "00:00":
            raise ValueError(
                f"time window {self.start}-{self.end} is empty or ambiguous: "
                "write 00:00-00:00 for the whole day"
            )
        return self


class FairUseSchema(Strict):
    max_call_duration_s: int | None = Field(default=7200, ge=60, le=86400)
    minutes_per_period: int | None = Field(default=None, ge=1, le=MAX_MINUTES_PER_PERIOD)
    distinct_numbers_per_period: int | None = Field(default=None, ge=1, le=MAX_DISTINCT_NUMBERS)
    concurrent_calls: int | None = Field(default=1, ge=1, le=MAX_CONCURRENT_CALLS)


class CostCeilingSchema(Strict):
    country: Country
    kind: Literal["fixed", "mobile"] | None = None
    max_per_minute: Amount
    currency: Currency


class PlanSchema(Strict):
    code: Code
    names: dict[Literal["fr", "ar", "en"], Annotated[Name, Field(max_length=120)]]
    period: Period
    price: Amount
    currency: Currency
    destinations: list[DestinationRuleSchema] = Field(min_length=1, max_length=200)
    fair_use: FairUseSchema = Field(default_factory=FairUseSchema)
    time_windows: list[TimeWindowSchema] = Field(default_factory=list, max_length=20)
    on_sale: bool = True
    cost_ceilings: list[CostCeilingSchema] = Field(default_factory=list, max_length=500)
    window_grace_minutes: int = Field(
        default=0,
        ge=0,
        le=1440,
        description="minutes a call may go on after the plan's hours end; 0: cut at the end",
    )

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        """Refuse what contradicts itself: a price finer than its currency's minor unit (ISO
        4217, read from Babel's CLDR data), more fair-use minutes than the period has, two cost
        ceilings for one country and kind."""
        if _stored(info):
            return self
        _check_minor_units(self.price, self.currency, field="price")
        limit = _PERIOD_MINUTES[self.period]
        minutes = self.fair_use.minutes_per_period
        if minutes is not None and minutes > limit:
            raise ValueError(
                f"fair_use.minutes_per_period: {minutes} is more than a {self.period} has "
                f"({limit:,} minutes)"
            )
        _refuse_repeats(
            "cost_ceilings",
            [f"{ceiling.country} {ceiling.kind or 'any kind'}" for ceiling in self.cost_ceilings],
        )
        return self

    def to_domain(self) -> Plan:
        fair = self.fair_use
        return Plan(
            code=self.code,
            names={str(locale): name for locale, name in self.names.items()},
            period=self.period,
            price=Money.parse(self.price, self.currency),
            destinations=frozenset(
                DestinationRule(rule.country, NumberKind(rule.kind)) for rule in self.destinations
            ),
            fair_use=FairUse(
                max_call_duration=(
                    timedelta(seconds=fair.max_call_duration_s)
                    if fair.max_call_duration_s
                    else None
                ),
                minutes_per_period=fair.minutes_per_period,
                distinct_numbers_per_period=fair.distinct_numbers_per_period,
                concurrent_calls=fair.concurrent_calls,
            ),
            time_windows=tuple(
                TimeWindow(
                    weekdays=frozenset(window.weekdays),
                    start=time.fromisoformat(window.start),
                    end=time.fromisoformat(window.end),
                )
                for window in self.time_windows
            ),
            on_sale=self.on_sale,
            window_grace=timedelta(minutes=self.window_grace_minutes),
            cost_ceilings=tuple(
                CostCeiling(
                    country=ceiling.country,
                    max_per_minute=Money.parse(ceiling.max_per_minute, ceiling.currency),
                    kind=NumberKind(ceiling.kind) if ceiling.kind else None,
                )
                for ceiling in self.cost_ceilings
            ),
        )

    @classmethod
    def from_domain(cls, plan: Plan) -> PlanSchema:
        fair = plan.fair_use
        return cls.model_validate(
            {
                "code": plan.code,
                "names": plan.names,
                "period": plan.period,
                "price": str(plan.price.amount),
                "currency": plan.price.currency,
                "destinations": [
                    {"country": rule.country, "kind": rule.kind.value}
                    for rule in sorted(plan.destinations)
                ],
                "fair_use": {
                    "max_call_duration_s": (
                        int(fair.max_call_duration.total_seconds())
                        if fair.max_call_duration
                        else None
                    ),
                    "minutes_per_period": fair.minutes_per_period,
                    "distinct_numbers_per_period": fair.distinct_numbers_per_period,
                    "concurrent_calls": fair.concurrent_calls,
                },
                "time_windows": [
                    {
                        "weekdays": sorted(window.weekdays),
                        "start": f"{window.start:%H:%M}",
                        "end": f"{window.end:%H:%M}",
                    }
                    for window in plan.time_windows
                ],
                "on_sale": plan.on_sale,
                "window_grace_minutes": plan.window_grace // timedelta(minutes=1),
                "cost_ceilings": [
                    {
                        "country": ceiling.country,
                        "kind": ceiling.kind.value if ceiling.kind else None,
                        "max_per_minute": str(ceiling.max_per_minute.amount),
                        "currency": ceiling.max_per_minute.currency,
                    }
                    for ceiling in plan.cost_ceilings
                ],
            },
            context=STORED,
        )


# -- subscribers ------------------------------------------------------------------------------
class SubscriberIn(Strict):
    name: Annotated[Name, Field(max_length=200)]
    email: Annotated[Text, Field(max_length=254)] = ""
    phone: Annotated[str, Field(min_length=3, max_length=32, examples=["+33612345678"])]
    locale: Literal["fr", "ar", "en"] = "fr"
    time_zone: Annotated[str, Field(max_length=64, examples=["Europe/Paris"])] = "Europe/Paris"
    sip_username: Annotated[str, Field(min_length=2, max_length=64)]
    password: Password | None = Field(
        default=None,
        description="leave out: the platform generates one and returns it once",
    )
    caller_ids: list[Annotated[Text, Field(max_length=32)]] = Field(
        default_factory=list, max_length=20
    )
    country: Country | None = Field(
        default=None,
        description="country of residence (VAT follows it); default: the phone number's",
    )
    plan_code: Code | None = Field(
        default=None, description="subscribe to this plan at once (all or nothing)"
    )
    acknowledged_incidents: list[Id] = Field(
        default=[],
        max_length=100,
        description="incidents the buyer was shown and accepts: a plan whose destinations are "
        "in a customer-facing incident is otherwise refused (409 destination_unavailable)",
    )


class SubscriberOut(BaseModel):
    id: int
    name: str
    email: str
    phone: str
    locale: str
    time_zone: str
    sip_username: str
    caller_ids: list[str]
    country: str | None = Field(description="country of residence; null: unknown")

    @classmethod
    def from_domain(cls, subscriber: Subscriber) -> SubscriberOut:
        return cls(
            id=subscriber.id,
            name=subscriber.name,
            email=subscriber.email,
            phone=subscriber.phone,
            locale=subscriber.locale,
            time_zone=subscriber.time_zone,
            sip_username=subscriber.sip_username,
            caller_ids=list(subscriber.caller_ids),
            country=subscriber.country,
        )


class CountryIn(Strict):
    country: Country


class AccountOut(SubscriberOut):
    """A subscriber just created or given a new password."""

    generated_password: str | None = Field(
        description="the SIP password the platform generated, shown in this answer only (only "
        "its digest hash is kept); null when the operator chose it"
    )

    @classmethod
    def from_account(cls, subscriber: Subscriber, generated_password: str | None) -> AccountOut:
        return cls(
            **SubscriberOut.from_domain(subscriber).model_dump(),
            generated_password=generated_password,
        )


class PasswordIn(Strict):
    password: Password | None = Field(
        default=None, description="leave out: the platform generates one and returns it once"
    )


class SubscriptionIn(Strict):
    plan_code: Code
    start: Instant | None = None
    status: Literal[SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING_PAYMENT] = (
        SubscriptionStatus.ACTIVE
    )
    acknowledged_incidents: list[Id] = Field(
        default=[],
        max_length=100,
        description="incidents the buyer was shown and accepts: a plan whose destinations are "
        "in a customer-facing incident is otherwise refused (409 destination_unavailable)",
    )


class PlanChangeIn(Strict):
    plan_code: Code
    start: Instant | None = None
    acknowledged_incidents: list[Id] = Field(
        default=[],
        max_length=100,
        description="incidents the buyer was shown and accepts: a plan whose destinations are "
        "in a customer-facing incident is otherwise refused (409 destination_unavailable)",
    )


class SubscriptionStatusIn(Strict):
    status: SubscriptionStatus


class SubscriptionOut(BaseModel):
    id: int
    subscriber_id: int
    plan_code: str
    status: SubscriptionStatus
    period_start: datetime
    period_end: datetime

    @classmethod
    def from_domain(cls, subscription: Subscription) -> SubscriptionOut:
        return cls(
            id=subscription.id,
            subscriber_id=subscription.subscriber_id,
            plan_code=subscription.plan_code,
            status=subscription.status,
            period_start=subscription.period_start,
            period_end=subscription.period_end,
        )


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


# -- the SIP decision API ---------------------------------------------------------------------
class AuthorizeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    call_id: Annotated[str, Field(min_length=1, max_length=256)]
    user: Annotated[str, Field(min_length=1, max_length=128)]
    dialled: Annotated[str, Field(min_length=1, max_length=128)]
    source_ip: Annotated[str, Field(max_length=64)] = ""
    user_agent: Annotated[str, Field(max_length=256)] = ""
    node: Annotated[str, Field(max_length=64)] = ""
    # The phone's digest answer (the Proxy-Authorization or Authorization value) and the
    # request's method: the brain checks them before it counts anything (docs/security.md).
    credentials: Annotated[str, Field(max_length=4096)] = ""
    method: Literal["INVITE", "REGISTER"] = "INVITE"


class RouteOut(BaseModel):
    carrier: str
    gateway: str
    uri: str
    timeout_ms: int
    billing: str
    cost_per_minute: str | None = None
    currency: str | None = None

    @classmethod
    def from_domain(cls, route: Route) -> RouteOut:
        return cls(**route_document(route))


def route_document(route: Route) -> dict[str, Any]:
    """A Route as JSON (`RouteOut`'s fields): the one translation, used by the decision API's
    fast path (no model validation) and by `RouteOut`."""
    cost = route.cost_per_minute
    return {
        "carrier": route.carrier,
        "gateway": route.gateway,
        "uri": route.uri,
        "timeout_ms": route.timeout_ms,
        "billing": route.billing.value,
        "cost_per_minute": str(cost.amount) if cost else None,
        "currency": cost.currency if cost else None,
    }


class AuthorizeOut(BaseModel):
    call_id: str
    ha1: str
    allow: bool
    reason: str
    sip_code: int
    sip_reason: str
    max_duration_s: int
    destination: str | None
    routes: list[RouteOut]
    failover_codes: list[int]
    grant: str | None = Field(
        default=None, description="allowed calls: the grant every call event must carry"
    )


# The earliest and latest event times accepted: a clock gone wrong must not file a call in 1970.
_EARLIEST_MS = 1_577_836_800_000  # 2020-01-01
_LATEST_MS = 4_102_444_800_000  # 2100-01-01


class CallEventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    call_id: Annotated[str, Field(min_length=1, max_length=256)]
    type: CallEventType
    at_ms: int = Field(ge=_EARLIEST_MS, le=_LATEST_MS)
    user: Annotated[str, Field(max_length=128)] = ""
    dialled: Annotated[str, Field(max_length=128)] = ""
    attempt: int | None = Field(default=None, ge=1, le=100)
    carrier: Annotated[str, Field(max_length=64)] | None = None
    gateway: Annotated[str, Field(max_length=64)] | None = None
    sip_code: int | None = Field(default=None, ge=100, le=699)
    pdd_ms: int | None = Field(default=None, ge=0, le=600_000)
    duration_ms: int | None = Field(default=None, ge=0, le=7 * 86_400_000)
    hangup_cause: Annotated[str, Field(max_length=64)] | None = None
    q850_cause: int | None = Field(default=None, ge=0, le=127)
    billing: Literal["flat_rate", "per_minute"] | None = None
    retry_after_s: int | None = Field(default=None, ge=0, le=86_400)

    grant: Annotated[str, Field(max_length=128)] | None = None

    def to_domain(self) -> CallEvent:
        return CallEvent(
            call_id=self.call_id,
            type=self.type,
            at=datetime.fromtimestamp(self.at_ms / 1000, tz=UTC),
            sip_username=self.user,
            dialled=self.dialled,
            attempt=self.attempt,
            carrier=self.carrier,
            gateway=self.gateway,
            sip_code=self.sip_code,
            pdd_ms=self.pdd_ms,
            duration_ms=self.duration_ms,
            hangup_cause=self.hangup_cause,
            q850_cause=self.q850_cause,
            billing=self.billing,
            retry_after_s=self.retry_after_s,
        )


class CallEventsIn(BaseModel):
    events: list[CallEventIn] = Field(min_length=1, max_length=1000)


class CallAttemptOut(BaseModel):
    attempt: int
    carrier: str
    gateway: str
    sip_code: int | None
    pdd_ms: int | None
    at: datetime
    q850_cause: int | None = None
    billing: str | None = None


class CallOut(BaseModel):
    call_id: str
    status: str
    sip_username: str
    dialled: str
    subscriber_id: int | None
    subscription_id: int | None
    destination: str
    country: str
    kind: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    carrier: str | None
    final_sip_code: int | None
    hangup_cause: str | None
    pdd_ms: int | None
    attempts: list[CallAttemptOut]
    billing: str | None = None
    rate_per_minute: str | None = None
    increment: str | None = None
    cost: str | None = None
    currency: str | None = None
    refusal_reason: str | None = Field(
        default=None, description="the decision's reason code when the brain refused the call"
    )

    @classmethod
    def from_domain(cls, record: CallRecord) -> CallOut:
        return cls(
            call_id=record.call_id,
            status=record.status.value,
            sip_username=record.sip_username,
            dialled=record.dialled,
            subscriber_id=record.subscriber_id,
            subscription_id=record.subscription_id,
            destination=record.destination,
            country=record.country,
            kind=record.kind,
            started_at=record.started_at,
            answered_at=record.answered_at,
            ended_at=record.ended_at,
            duration_ms=record.duration_ms,
            carrier=record.carrier,
            final_sip_code=record.final_sip_code,
            hangup_cause=record.hangup_cause,
            pdd_ms=record.pdd_ms,
            attempts=[
                CallAttemptOut(
                    attempt=a.attempt,
                    carrier=a.carrier,
                    gateway=a.gateway,
                    sip_code=a.sip_code,
                    pdd_ms=a.pdd_ms,
                    at=a.at,
                    q850_cause=a.q850_cause,
                    billing=a.billing,
                )
                for a in record.attempts
            ],
            billing=record.billing,
            rate_per_minute=str(record.rate_per_minute.amount) if record.rate_per_minute else None,
            increment=record.increment,
            cost=str(record.cost.amount) if record.cost else None,
            currency=record.cost.currency if record.cost else None,
            refusal_reason=record.refusal_reason,
        )


class CallReportOut(BaseModel):
    """Calls started in [since, until) by outcome; refused ones per reason code."""

    since: datetime
    until: datetime
    total: int
    answered: int
    not_answered: int
    refused: int
    refused_by_reason: dict[str, int]

    @classmethod
    def from_counts(cls, counts: dict[str, int], *, since: datetime, until: datetime) -> Self:
        return cls(
            since=since,
            until=until,
            total=counts["total"],
            answered=counts["answered"],
            not_answered=counts["not_answered"],
            refused=counts["refused"],
            refused_by_reason={
                key.removeprefix("refused:"): value
                for key, value in sorted(counts.items())
                if key.startswith("refused:")
            },
        )


class ExplainIn(Strict):
    sip_username: Annotated[str, Field(min_length=1, max_length=128)]
    dialled: Annotated[str, Field(min_length=1, max_length=128)]
    at: Instant | None = None


class ExplainOut(BaseModel):
    allow: bool
    reason: str
    sip_code: int
    sip_reason: str
    max_duration_s: int
    destination: str | None
    routes: list[RouteOut]
    explanation: list[str]

    @classmethod
    def from_domain(cls, decision: Decision) -> ExplainOut:
        return cls(
            allow=decision.allowed,
            reason=decision.reason.value,
            sip_code=decision.sip_code,
            sip_reason=decision.sip_reason,
            max_duration_s=decision.max_duration_seconds,
            destination=decision.destination.e164 if decision.destination else None,
            routes=[RouteOut.from_domain(route) for route in decision.routes],
            explanation=list(decision.explanation),
        )
