"""The sample operator of the tests and the benchmarks: one set of plans, carriers and
subscribers, in two forms.

- In memory, as frozen domain values, for the unit tests (`build_sample_operator`, the `operator`
  and `state` fixtures of tests/unit/conftest.py): two plans, four carriers and five
  subscribers, and the `DecisionState` built on them.

  - "maroc-illimite" (9.99 EUR a month): Moroccan fixed and mobile at any time, with fair use
    (2 h per call, 3,000 minutes and 20 distinct numbers a month, one call at a time);
  - "soirees-maghreb" (4.99 EUR a month): Morocco, Tunisia and Algeria, fixed and mobile, every
    evening 20:00-08:00 plus Saturdays and Sundays all day, in the subscriber's own time zone;
  - "ma-flat": a Moroccan carrier with 30 flat-rate channels on a 60-channel trunk (calls
    beyond the 30 paid channels overflow at a per-minute rate), two gateways;
  - "ma-minute": a Moroccan carrier paid per minute (fixed cheaper than mobile);
  - "tn-minute" and "dz-minute": per-minute carriers for Tunisia and Algeria;
  - subscribers amina (Paris, Maroc Illimité), leila (Paris, Soirées Maghreb), karim
    (Montreal, Soirées Maghreb), yassine (Paris, subscription expired in December) and omar
    (Paris, never subscribed). Every subscription period is January 2026 (UTC).

- Live, in a brain under test (the e2e tests, bench/): the same Moroccan plan with the fair use
  a test needs (`morocco_plan`) and the two kinds of carrier, a flat-rate one tried first and
  a per-minute one, with their gateway at a SIPp port on 127.0.0.1 (`flat_rate_carrier`,
  `per_minute_carrier`). They are posted to the admin API as `admin_document(value)`: the API
  schema's own translation of the domain value, so the JSON cannot drift from the domain.

- For the store tests (tests/contract, tests/integration/test_store.py...): `a_plan`,
  `a_new_subscriber` and `a_carrier`, one of each with every kind of field filled in, for a
  store to write and read back; `a_notice`, one subscriber's notice of incident 1 (the outbox
  tests and the notice crash test).

(The demo operator that `tawasol seed --sample --demo` writes, and the integration tests run
on, is the product's: `tawasol.services.sample_operator`.)
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any

from tawasol.adapters.api.schemas import CarrierSchema, PlanSchema
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
from tawasol.domain.catalog import (
    CostCeiling,
    DestinationRule,
    FairUse,
    Period,
    Plan,
    TimeWindow,
)
from tawasol.domain.decision import DecisionState
from tawasol.domain.money import Money
from tawasol.domain.notices import Channel, Notice, NoticeOccasion
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import (
    Subscriber,
    Subscription,
    SubscriptionStatus,
    digest_ha1,
)
from tawasol.services.ports import NewSubscriber

LOOPBACK = "127.0.0.1"

REALM = "sip.tawasol.test"
PERIOD_START = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD_END = datetime(2026, 2, 1, tzinfo=UTC)
RATES_FROM = datetime(2025, 1, 1, tzinfo=UTC)
EVERY_DAY = frozenset(range(7))
WEEKEND = frozenset({5, 6})


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def _rules(countries: tuple[str, ...]) -> frozenset[DestinationRule]:
    return frozenset(
        DestinationRule(country, kind)
        for country in countries
        for kind in (NumberKind.FIXED, NumberKind.MOBILE)
    )


def _carrier_destinations(country: str, priority: int) -> tuple[CarrierDestination, ...]:
    return tuple(
        CarrierDestination(DestinationRule(country, kind), priority)
        for kind in (NumberKind.FIXED, NumberKind.MOBILE)
    )


def _deck(*rates: tuple[str, str]) -> RateDeck:
    return RateDeck(
        Rate(prefix, eur(price), RATES_FROM, BillingIncrement(60, 60)) for prefix, price in rates
    )


@dataclass(frozen=True)
class SampleOperator:
    """The sample operator's catalog, carriers, subscribers and the decision state built on them."""

    maroc_illimite: Plan
    soirees_maghreb: Plan
    ma_flat: Carrier
    ma_minute: Carrier
    tn_minute: Carrier
    dz_minute: Carrier
    amina: Subscriber
    leila: Subscriber
    karim: Subscriber
    yassine: Subscriber
    omar: Subscriber
    state: DecisionState

    @property
    def carriers(self) -> tuple[Carrier, ...]:
        return (self.ma_flat, self.ma_minute, self.tn_minute, self.dz_minute)


def _subscriber(
    subscriber_id: int, username: str, name: str, phone: str, time_zone: str
) -> Subscriber:
    return Subscriber(
        id=subscriber_id,
        name=name,
        email=f"{username}@example.org",
        phone=phone,
        locale="fr",
        time_zone=time_zone,
        sip_username=username,
        ha1=digest_ha1(username, REALM, f"secret-{username}"),
    )


MAROC_ILLIMITE = Plan(
    code="maroc-illimite",
    names={"fr": "Maroc Illimité", "ar": "المغرب بلا حدود", "en": "Morocco Unlimited"},
    period=Period.MONTH,
    price=eur("9.99"),
    destinations=_rules(("MA",)),
    fair_use=FairUse(
        max_call_duration=timedelta(hours=2),
        minutes_per_period=3000,
        distinct_numbers_per_period=20,
        concurrent_calls=1,
    ),
)


def build_sample_operator() -> SampleOperator:
    maroc_illimite = MAROC_ILLIMITE
    soirees_maghreb = Plan(
        code="soirees-maghreb",
        names={"fr": "Soirées Maghreb", "en": "Maghreb Evenings"},
        period=Period.MONTH,
        price=eur("4.99"),
        destinations=_rules(("MA", "TN", "DZ")),
        time_windows=(
            TimeWindow(EVERY_DAY, time(20, 0), time(8, 0)),
            TimeWindow(WEEKEND, time(0, 0), time(0, 0)),
        ),
    )

    ma_flat = Carrier(
        code="ma-flat",
        name="Atlas Voice (flat rate)",
        gateways=(Gateway("gw1", "192.0.2.10"), Gateway("gw2", "192.0.2.11")),
        destinations=_carrier_destinations("MA", 10),
        flat_rate=FlatRateContract(channels=30, monthly_fee=eur("1500.00")),
        # Beyond the 30 paid channels the trunk takes overflow, up to 60 calls, per minute.
        rate_deck=_deck(("212", "0.0300"), ("2126", "0.1000"), ("2127", "0.1000")),
        max_channels=60,
    )
    ma_minute = Carrier(
        code="ma-minute",
        name="Casablanca Transit",
        gateways=(Gateway("gw1", "198.51.100.20", 5080),),
        destinations=_carrier_destinations("MA", 20),
        rate_deck=_deck(("212", "0.0200"), ("2126", "0.0800"), ("2127", "0.0800")),
        number_format=NumberFormat.INTERNATIONAL_00,
    )
    tn_minute = Carrier(
        code="tn-minute",
        name="Carthage Telecom",
        gateways=(Gateway("gw1", "tn-gw.example.net", 5060),),
        destinations=_carrier_destinations("TN", 10),
        rate_deck=_deck(("216", "0.0500")),
    )
    dz_minute = Carrier(
        code="dz-minute",
        name="Djurdjura Networks",
        gateways=(Gateway("gw1", "2001:db8::20", 5060),),
        destinations=_carrier_destinations("DZ", 10),
        rate_deck=_deck(("213", "0.0900")),
        number_format=NumberFormat.DIGITS,
    )

    amina = _subscriber(1, "amina", "Amina Benali", "+33612345678", "Europe/Paris")
    leila = _subscriber(2, "leila", "Leïla Trabelsi", "+33698765432", "Europe/Paris")
    karim = _subscriber(3, "karim", "Karim Haddad", "+15148720311", "America/Montreal")
    yassine = _subscriber(4, "yassine", "Yassine Alaoui", "+33611223344", "Europe/Paris")
    omar = _subscriber(5, "omar", "Omar Diallo", "+33655667788", "Europe/Paris")

    def active(subscription_id: int, subscriber: Subscriber, plan: Plan) -> Subscription:
        return Subscription(
            id=subscription_id,
            subscriber_id=subscriber.id,
            plan_code=plan.code,
            status=SubscriptionStatus.ACTIVE,
            period_start=PERIOD_START,
            period_end=PERIOD_END,
        )

    expired = Subscription(
        id=40,
        subscriber_id=yassine.id,
        plan_code=maroc_illimite.code,
        status=SubscriptionStatus.EXPIRED,
        period_start=datetime(2025, 12, 1, tzinfo=UTC),
        period_end=PERIOD_START,
    )
    state = DecisionState(
        subscribers={
            subscriber.sip_username: subscriber
            for subscriber in (amina, leila, karim, yassine, omar)
        },
        subscriptions={
            amina.id: (active(10, amina, maroc_illimite),),
            leila.id: (active(20, leila, soirees_maghreb),),
            karim.id: (active(30, karim, soirees_maghreb),),
            yassine.id: (expired,),
        },
        plans={plan.code: plan for plan in (maroc_illimite, soirees_maghreb)},
        carriers=(ma_flat, ma_minute, tn_minute, dz_minute),
        route_timeout_ms=3000,
        platform_max_call_duration=timedelta(hours=4),
        default_region="FR",
    )
    return SampleOperator(
        maroc_illimite=maroc_illimite,
        soirees_maghreb=soirees_maghreb,
        ma_flat=ma_flat,
        ma_minute=ma_minute,
        tn_minute=tn_minute,
        dz_minute=dz_minute,
        amina=amina,
        leila=leila,
        karim=karim,
        yassine=yassine,
        omar=omar,
        state=state,
    )


# -- live: what a brain under test runs with (e2e, bench) ---------------------------------------
def morocco_plan(
    code: str,
    *,
    minutes_per_period: int | None = None,
    distinct_numbers_per_period: int | None = None,
    concurrent_calls: int | None = None,
    cost_ceiling: str | None = None,
) -> Plan:
    """The sample's Moroccan plan (9.99 EUR a month, fixed and mobile at any time, 2 h per
    call) under another code, with the fair use a test needs (None: no such limit) and, if
    given, a ceiling in EUR a minute on what a per-minute route may cost."""
    return Plan(
        code=code,
        names={"fr": code, "en": code},
        period=Period.MONTH,
        price=eur("9.99"),
        destinations=_rules(("MA",)),
        fair_use=FairUse(
            max_call_duration=timedelta(hours=2),
            minutes_per_period=minutes_per_period,
            distinct_numbers_per_period=distinct_numbers_per_period,
            concurrent_calls=concurrent_calls,
        ),
        cost_ceilings=(CostCeiling("MA", eur(cost_ceiling)),) if cost_ceiling else (),
    )


def _loopback_gateway(port: int) -> tuple[Gateway, ...]:
    return (Gateway("gw1", LOOPBACK, port),)


def flat_rate_carrier(
    code: str,
    *,
    port: int,
    channels: int,
    priority: int = 10,
    name: str = "Atlas Voice (flat rate)",
) -> Carrier:
    """A Moroccan carrier paid by the month (300 EUR) for `channels` channels and no per-minute
    rate, tried first (priority 10), numbers in E.164, its one gateway at `port` on
    127.0.0.1 (UDP)."""
    return Carrier(
        code=code,
        name=name,
        gateways=_loopback_gateway(port),
        destinations=_carrier_destinations("MA", priority),
        flat_rate=FlatRateContract(channels=channels, monthly_fee=eur("300.00")),
        number_format=NumberFormat.E164,
    )


def per_minute_carrier(
    code: str,
    *,
    port: int,
    per_minute: str = "0.0800",
    increment: str = "1/1",
    priority: int = 20,
    name: str = "Casablanca Transit",
) -> Carrier:
    """A Moroccan carrier paid `per_minute` EUR a minute (prefix 212) billed in `increment`
    ("first/next" seconds; 1/1 is by the second), tried after the flat-rate one (priority
    20), numbers sent with 00, its one gateway at `port` on 127.0.0.1 (UDP)."""
    first, following = (int(part) for part in increment.split("/"))
    return Carrier(
        code=code,
        name=name,
        gateways=_loopback_gateway(port),
        destinations=_carrier_destinations("MA", priority),
        rate_deck=RateDeck(
            [Rate("212", eur(per_minute), RATES_FROM, BillingIncrement(first, following))]
        ),
        number_format=NumberFormat.INTERNATIONAL_00,
    )


def admin_document(value: Plan | Carrier) -> dict[str, Any]:
    """The JSON body that creates `value` through the admin API (`POST /admin/v1/plans` or
    `/carriers`), written by the API schema itself."""
    if isinstance(value, Plan):
        return PlanSchema.from_domain(value).model_dump(mode="json")
    return CarrierSchema.from_domain(value).model_dump(mode="json")


# -- for the store tests: one plan, one subscriber, one carrier with every kind of field --------
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


def a_plan(code: str = "maroc-illimite", **changes: object) -> Plan:
    """The sample operator's Moroccan plan with every kind of field filled in: other fair use
    and evening/weekend hours."""
    plan = replace(
        MAROC_ILLIMITE,
        code=code,
        fair_use=FairUse(
            max_call_duration=timedelta(minutes=90),
            minutes_per_period=3000,
            distinct_numbers_per_period=30,
            concurrent_calls=2,
        ),
        time_windows=(
            TimeWindow(frozenset({0, 1, 2, 3, 4}), clock(20, 0), clock(8, 0)),
            TimeWindow(frozenset({5, 6}), clock(0, 0), clock(0, 0)),
        ),
    )
    return replace(plan, **changes)  # type: ignore[arg-type]


def a_new_subscriber(username: str = "amina", **changes: object) -> NewSubscriber:
    subscriber = NewSubscriber(
        name="Amina Benali",
        email=f"{username}@example.org",
        # Phones are unique: one per username (stable across runs).
        phone=f"+3361{zlib.crc32(username.encode()) % 10**7:07d}",
        locale="ar",
        time_zone="Europe/Paris",
        sip_username=username,
        ha1=digest_ha1(username, "tawasol", "secret"),
        caller_ids=("+33612345678", "+33123456789"),
        country="FR",
    )
    return replace(subscriber, **changes)  # type: ignore[arg-type]


def a_carrier(code: str = "atlas", rates: Sequence[Rate] | None = None) -> Carrier:
    if rates is None:
        rates = (
            Rate("2126", Money(Decimal("0.0123"), "EUR"), NOV_1),
            Rate("2126", Money(Decimal("0.0780"), "EUR"), DEC_1, BillingIncrement(1, 1)),
            Rate("2125", Money(Decimal("0.000001"), "EUR"), NOV_1, BillingIncrement(30, 6)),
        )
    return Carrier(
        code=code,
        name="Atlas Telecom",
        gateways=(
            Gateway("casa-1", "192.0.2.10"),
            Gateway("casa-2", "2001:db8::10", 5061, Transport.TLS),
        ),
        destinations=(
            CarrierDestination(DestinationRule("MA", NumberKind.MOBILE), priority=10),
            CarrierDestination(DestinationRule("MA", NumberKind.FIXED), priority=20),
        ),
        flat_rate=FlatRateContract(channels=30, monthly_fee=Money(Decimal("450.50"), "EUR")),
        rate_deck=RateDeck(rates),
        number_format=NumberFormat.INTERNATIONAL_00,
        max_channels=60,
    )


def a_notice(subscriber_id: int, channel: Channel = Channel.EMAIL) -> Notice:
    """Subscriber `subscriber_id`'s customer-facing notice of incident 1 on `channel`, addressed
    as that channel needs (s<id>@example.org, or the Moroccan mobile +2126<id, 8 digits>)."""
    return Notice(
        incident_id=1,
        occasion=NoticeOccasion.CUSTOMER_FACING,
        occasion_seq=1,
        subscriber_id=subscriber_id,
        channel=channel,
        address=(
            f"s{subscriber_id}@example.org"
            if channel is Channel.EMAIL
            else f"+2126{subscriber_id:08d}"
        ),
        locale="fr",
        subject="Appels perturbés",
        text="Vos appels vers le Maroc peuvent échouer. Nous y travaillons.",
        html="<p>Vos appels vers le Maroc peuvent échouer.</p>",
        message_id=f"<incident-1.customer_facing.1.{subscriber_id}.{channel}@example.org>",
    )
