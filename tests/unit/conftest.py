"""A small sample operator, in memory, for the domain's unit tests.

Two plans, four carriers and five subscribers, all as frozen domain values:

- "maroc-illimite" (9.99 EUR a month): Moroccan fixed and mobile at any time, with fair use
  (2 h per call, 3,000 minutes and 20 distinct numbers a month, one call at a time);
- "soirees-maghreb" (4.99 EUR a month): Morocco, Tunisia and Algeria, fixed and mobile, every
  evening 20:00-08:00 plus Saturdays and Sundays all day, in the subscriber's own time zone;
- "ma-flat": a Moroccan carrier with 30 flat-rate channels on a 60-channel trunk (calls beyond
  the 30 paid channels overflow at a per-minute rate), two gateways;
- "ma-minute": a Moroccan carrier paid per minute (fixed cheaper than mobile);
- "tn-minute" and "dz-minute": per-minute carriers for Tunisia and Algeria.

Subscribers: amina (Paris, Maroc Illimité), leila (Paris, Soirées Maghreb), karim (Montreal,
Soirées Maghreb), yassine (Paris, subscription expired in December) and omar (Paris, never
subscribed). Every subscription period is January 2026 (UTC).

The fixtures are session-scoped so that Hypothesis tests can use them: every value is frozen
and tests derive variants with `dataclasses.replace`, never by mutating the mappings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import strategies as st

from tawasol.domain.carriers import (
    BillingIncrement,
    Carrier,
    CarrierDestination,
    CarrierState,
    FlatRateContract,
    Gateway,
    NumberFormat,
    Rate,
    RateDeck,
)
from tawasol.domain.catalog import DestinationRule, FairUse, Period, Plan, TimeWindow
from tawasol.domain.decision import DecisionState
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination, NumberKind
from tawasol.domain.routing import CarrierTariff, Route
from tawasol.domain.subscribers import (
    Subscriber,
    Subscription,
    SubscriptionStatus,
    digest_ha1,
)

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


def build_sample_operator() -> SampleOperator:
    maroc_illimite = Plan(
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


class RoutingRules:
    """What any route list must satisfy, written from the routing rules, not from the code.

    A carrier is *full* when it cannot take one more call at all: its trunk's `max_channels` are
    in use, or, for a flat-rate-only carrier (no per-minute rates to overflow on), all its paid
    channels are.
    """

    @staticmethod
    def capacity(carrier: Carrier) -> int | None:
        if carrier.max_channels is not None:
            return carrier.max_channels
        if carrier.flat_rate is not None and not carrier.rate_deck:
            return carrier.flat_rate.channels
        return None

    def is_full(self, carrier: Carrier, state: CarrierState) -> bool:
        limit = self.capacity(carrier)
        return limit is not None and state.channels_in_use >= limit

    @staticmethod
    def worlds(
        carriers: tuple[Carrier, ...],
    ) -> st.SearchStrategy[tuple[list[Carrier], dict[str, CarrierState]]]:
        """Random worlds: each carrier enabled or not, up or down, with 0-70 calls in progress
        (the sample trunks hold 30 and 60); a carrier may have no live state (up and idle)."""
        # Mostly usable (3 in 4), so that allowed calls are common enough to check.
        mostly = st.sampled_from([True, True, True, False])
        live_state = st.builds(
            CarrierState,
            up=mostly,
            # Around the sample limits (30 paid channels, 60-channel trunk) as often as not.
            channels_in_use=st.sampled_from(["limit", "limit", "any"]).flatmap(
                lambda kind: (
                    st.sampled_from([29, 30, 31, 59, 60, 61])
                    if kind == "limit"
                    else st.integers(min_value=0, max_value=70)
                )
            ),
        )
        enabled = st.tuples(*(mostly for _ in carriers)).map(
            lambda flags: [
                carrier if flag else replace(carrier, enabled=False)
                for carrier, flag in zip(carriers, flags, strict=True)
            ]
        )
        live = st.tuples(*(st.tuples(mostly, live_state) for _ in carriers)).map(
            lambda states: {
                carrier.code: live_state
                for carrier, (known, live_state) in zip(carriers, states, strict=True)
                if known
            }
        )
        return st.tuples(enabled, live)

    def assert_sound(
        self,
        routes: list[Route] | tuple[Route, ...],
        carriers: list[Carrier] | tuple[Carrier, ...],
        live: dict[str, CarrierState],
        destination: Destination,
    ) -> None:
        by_code = {carrier.code: carrier for carrier in carriers}
        for hop in routes:
            carrier = by_code[hop.carrier]
            state = live.get(carrier.code, CarrierState())
            assert carrier.enabled, f"disabled carrier {carrier.code} routed"
            assert state.up, f"carrier {carrier.code} marked down was routed"
            assert not self.is_full(carrier, state), f"full carrier {carrier.code} routed"
            assert carrier.priority_for(destination) is not None
            if hop.billing is CarrierTariff.FLAT_RATE:
                assert carrier.flat_rate is not None
                assert state.channels_in_use < carrier.flat_rate.channels
                assert hop.cost_per_minute is None
            else:
                assert hop.cost_per_minute is not None
        billings = [hop.billing for hop in routes]
        # Flat-rate routes first, then per-minute routes by non-decreasing cost.
        assert billings == sorted(billings, key=lambda billing: billing is CarrierTariff.PER_MINUTE)
        costs = [hop.cost_per_minute.amount for hop in routes if hop.cost_per_minute is not None]
        assert costs == sorted(costs)


@pytest.fixture(scope="session")
def routing_rules() -> RoutingRules:
    return RoutingRules()


@pytest.fixture(scope="session")
def operator() -> SampleOperator:
    return build_sample_operator()


@pytest.fixture(scope="session")
def state(operator: SampleOperator) -> DecisionState:
    return operator.state
