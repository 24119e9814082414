"""The admin API's plans, subscribers and subscriptions, and their translation to and from
domain values (`to_domain` / `from_domain`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    Field,
    ValidationInfo,
    model_validator,
)

from tawasol.adapters.api.schemas.fields import (
    _PERIOD_MINUTES,
    MAX_CONCURRENT_CALLS,
    MAX_DISTINCT_NUMBERS,
    MAX_MINUTES_PER_PERIOD,
    STORED,
    Amount,
    ClockTime,
    Code,
    Country,
    Currency,
    Id,
    Instant,
    Name,
    Password,
    Strict,
    Text,
    _check_minor_units,
    _refuse_repeats,
    _stored,
)
from tawasol.domain.catalog import (
    CostCeiling,
    DestinationRule,
    FairUse,
    Period,
    Plan,
    TimeWindow,
)
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import (
    Subscriber,
    Subscription,
    SubscriptionStatus,
)


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
    business: bool = Field(
        default=False,
        description="a business customer: told personally of every customer-facing outage "
        "that touches it, short ones included; invoiced with Factur-X",
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
    business: bool = Field(description="a business customer (told of short outages, Factur-X)")

    @classmethod
    def from_domain(cls, subscriber: Subscriber) -> SubscriberOut:
        # the domain's Subscriber field for field (its HA1 is not a field here: never shown)
        return cls.model_validate(subscriber, from_attributes=True)


class CountryIn(Strict):
    country: Country


class BusinessIn(Strict):
    business: bool = Field(
        description="true: a business customer (told of every customer-facing outage that "
        "touches it, short ones included; Factur-X invoices); false: a consumer"
    )


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
