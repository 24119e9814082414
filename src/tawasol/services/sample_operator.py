"""A sample operator to try tawasol with: the plans, carriers and subscribers of a small
operator serving the Maghreb diaspora in Europe and North America.

Carrier names are invented; their gateways point at loopback ports where test carriers (SIPp)
listen. Sample subscribers' SIP passwords are printed by `tawasol seed --sample --demo` and
listed in the README so a softphone can register with them: the sample is for demonstrations
only, loaded into an empty database in demo mode, and a brain outside demo mode refuses to run
while a sample account with its published password exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from tawasol.domain.carriers import (
    BillingIncrement,
    Carrier,
    CarrierDestination,
    FlatRateContract,
    Gateway,
    NumberFormat,
    Rate,
    RateDeck,
)
from tawasol.domain.catalog import (
    CostCeiling,
    DestinationRule,
    FairUse,
    Period,
    Plan,
    TimeWindow,
)
from tawasol.domain.errors import Conflict
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import SubscriptionStatus, digest_ha1
from tawasol.services.catalog import CatalogService

EVERY_DAY = frozenset(range(7))
WEEKEND = frozenset({5, 6})
FIXED, MOBILE = NumberKind.FIXED, NumberKind.MOBILE


def _both(country: str) -> frozenset[DestinationRule]:
    return frozenset({DestinationRule(country, FIXED), DestinationRule(country, MOBILE)})


# Above these prices per minute to a carrier, a plan of a few euros a month loses money within
# hours: no call is routed over a dearer per-minute route.
_CEILING_BY_COUNTRY = {"MA": "0.1000", "TN": "0.1000", "DZ": "0.1500"}


def _ceilings(*countries: str) -> tuple[CostCeiling, ...]:
    return tuple(
        CostCeiling(country, Money(Decimal(_CEILING_BY_COUNTRY[country]), "EUR"))
        for country in countries
    )


def sample_plans() -> list[Plan]:
    morocco = _both("MA")
    return [
        Plan(
            code="maroc-illimite-semaine",
            names={
                "fr": "Maroc Illimité Semaine",
                "ar": "المغرب بلا حدود - أسبوع",
                "en": "Morocco Unlimited Weekly",
            },
            period=Period.WEEK,
            price=Money(Decimal("3.99"), "EUR"),
            destinations=morocco,
            fair_use=FairUse(timedelta(hours=2), 1500, 30, 1),
            cost_ceilings=_ceilings("MA"),
        ),
        Plan(
            code="maroc-illimite-mois",
            names={"fr": "Maroc Illimité", "ar": "المغرب بلا حدود", "en": "Morocco Unlimited"},
            period=Period.MONTH,
            price=Money(Decimal("9.99"), "EUR"),
            destinations=morocco,
            fair_use=FairUse(timedelta(hours=2), 5000, 100, 1),
            cost_ceilings=_ceilings("MA"),
        ),
        Plan(
            code="maroc-illimite-an",
            names={
                "fr": "Maroc Illimité Annuel",
                "ar": "المغرب بلا حدود - سنة",
                "en": "Morocco Unlimited Yearly",
            },
            period=Period.YEAR,
            price=Money(Decimal("99.00"), "EUR"),
            destinations=morocco,
            fair_use=FairUse(timedelta(hours=2), 60000, 300, 1),
            cost_ceilings=_ceilings("MA"),
        ),
        Plan(
            code="soirees-maghreb",
            names={"fr": "Soirées Maghreb", "ar": "أمسيات المغرب العربي", "en": "Maghreb Evenings"},
            period=Period.MONTH,
            price=Money(Decimal("6.99"), "EUR"),
            destinations=_both("MA") | _both("TN") | _both("DZ"),
            fair_use=FairUse(timedelta(hours=1), 3000, 60, 1),
            time_windows=(
                TimeWindow(EVERY_DAY, time(20, 0), time(8, 0)),
                TimeWindow(WEEKEND, time(0, 0), time(0, 0)),
            ),
            cost_ceilings=_ceilings("MA", "TN", "DZ"),
        ),
    ]


def sample_carriers(*, host: str = "127.0.0.1", first_port: int = 5080) -> list[Carrier]:
    since = datetime.fromisoformat("2026-01-01T00:00:00+00:00")

    def rates(*entries: tuple[str, str]) -> RateDeck:
        return RateDeck(
            Rate(prefix, Money(Decimal(amount), "EUR"), since, BillingIncrement(1, 1))
            for prefix, amount in entries
        )

    def gateway(offset: int) -> tuple[Gateway, ...]:
        return (Gateway("gw1", host, first_port + offset),)

    return [
        Carrier(
            code="ma-flat",
            name="Atlas Telecom (flat-rate channels)",
            gateways=gateway(0),
            destinations=(
                CarrierDestination(DestinationRule("MA", FIXED), 10),
                CarrierDestination(DestinationRule("MA", MOBILE), 10),
            ),
            flat_rate=FlatRateContract(30, Money(Decimal("1200.00"), "EUR")),
        ),
        Carrier(
            code="ma-minute",
            name="Maghreb Voice (per minute)",
            gateways=gateway(2),
            destinations=(
                CarrierDestination(DestinationRule("MA", FIXED), 20),
                CarrierDestination(DestinationRule("MA", MOBILE), 20),
            ),
            rate_deck=rates(
                ("212", "0.0900"), ("2125", "0.0250"), ("2126", "0.0780"), ("2127", "0.0820")
            ),
            number_format=NumberFormat.INTERNATIONAL_00,
        ),
        Carrier(
            code="tn-carrier",
            name="Carthage Telecom",
            gateways=gateway(4),
            destinations=(
                CarrierDestination(DestinationRule("TN", FIXED), 10),
                CarrierDestination(DestinationRule("TN", MOBILE), 10),
            ),
            rate_deck=rates(("216", "0.0450"), ("2167", "0.0300"), ("2162", "0.0650")),
        ),
        Carrier(
            code="dz-carrier",
            name="Casbah Telecom",
            gateways=gateway(6),
            destinations=(
                CarrierDestination(DestinationRule("DZ", FIXED), 10),
                CarrierDestination(DestinationRule("DZ", MOBILE), 10),
            ),
            rate_deck=rates(
                ("213", "0.0400"), ("2135", "0.1100"), ("2136", "0.1150"), ("2137", "0.1200")
            ),
        ),
    ]


@dataclass(frozen=True)
class SampleSubscriber:
    name: str
    email: str
    phone: str
    locale: str
    time_zone: str
    sip_username: str
    password: str
    plan_code: str
    status: SubscriptionStatus
    started_days_ago: int


SAMPLE_SUBSCRIBERS = (
    SampleSubscriber(
        "Amina El Idrissi",
        "amina@example.org",
        "+33612345678",
        "fr",
        "Europe/Paris",
        "amina",
        "amina-demo-2026",
        "maroc-illimite-mois",
        SubscriptionStatus.ACTIVE,
        3,
    ),
    SampleSubscriber(
        "Youssef Benali",
        "youssef@example.org",
        "+15145550123",
        "fr",
        "America/Montreal",
        "youssef",
        "youssef-demo-2026",
        "maroc-illimite-an",
        SubscriptionStatus.ACTIVE,
        40,
    ),
    SampleSubscriber(
        "Karim Haddad",
        "karim@example.org",
        "+32470123456",
        "ar",
        "Europe/Brussels",
        "karim",
        "karim-demo-2026",
        "soirees-maghreb",
        SubscriptionStatus.ACTIVE,
        10,
    ),
    SampleSubscriber(
        "Sami Trabelsi",
        "sami@example.org",
        "+33698765432",
        "fr",
        "Europe/Paris",
        "sami",
        "sami-demo-2026",
        "maroc-illimite-semaine",
        SubscriptionStatus.ACTIVE,
        1,
    ),
    SampleSubscriber(
        "Leila Amrani",
        "leila@example.org",
        "+34612345678",
        "en",
        "Europe/Madrid",
        "leila",
        "leila-demo-2026",
        "maroc-illimite-mois",
        SubscriptionStatus.EXPIRED,
        45,
    ),
)


def seed_sample_operator(
    catalog: CatalogService,
    *,
    now: datetime,
    carrier_host: str = "127.0.0.1",
    carrier_first_port: int = 5080,
) -> list[SampleSubscriber]:
    """Write the sample plans, carriers and subscribers into an EMPTY database.

    Raises Conflict when any plan, carrier or subscriber exists: the sample never overwrites
    an operator's data (a price, a disabled carrier, an imported rate deck), and its accounts,
    whose passwords are published in the README, only exist where someone asked for a demo.
    """
    if catalog.holds_operator_data():
        raise Conflict(
            "the database already holds plans, carriers or subscribers: the sample operator "
            "is only loaded into an empty database (nothing was changed)"
        )
    for plan in sample_plans():
        catalog.add_plan(plan)
    for carrier in sample_carriers(host=carrier_host, first_port=carrier_first_port):
        catalog.add_carrier(carrier)
    for sample in SAMPLE_SUBSCRIBERS:
        account = catalog.add_subscriber(
            name=sample.name,
            email=sample.email,
            phone=sample.phone,
            locale=sample.locale,
            time_zone=sample.time_zone,
            sip_username=sample.sip_username,
            password=sample.password,
            plan_code=sample.plan_code,
            demo_seed=True,
            start=now - timedelta(days=sample.started_days_ago),
        )
        if sample.status is SubscriptionStatus.EXPIRED and account.subscription is not None:
            # Paid for one month that ended a fortnight ago and was not renewed.
            catalog.set_subscription_status(account.subscription.id, SubscriptionStatus.EXPIRED)
    return list(SAMPLE_SUBSCRIBERS)


def published_sample_accounts(realm: str) -> dict[str, str]:
    """The sample accounts' digest hashes for `realm`, by SIP username: their passwords are in
    the README, so a production brain refuses to run while any of them can still log in."""
    return {
        sample.sip_username: digest_ha1(sample.sip_username, realm, sample.password)
        for sample in SAMPLE_SUBSCRIBERS
    }


def published_passwords() -> frozenset[str]:
    """Every SIP password the project publishes (README.md, docs/sip-edge.md), case-folded:
    anyone can read them, so no account may be given one except by the demo seeding."""
    return frozenset(sample.password.casefold() for sample in SAMPLE_SUBSCRIBERS)
