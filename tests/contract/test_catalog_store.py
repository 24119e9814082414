"""The `CatalogStore` contract: the same tests on the in-memory store, SQLite and PostgreSQL
(CGRateS runs one suite on its in-memory and SQL stores; so does tawasol)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from support.operator import DEC_1, NOV_1, a_carrier, a_new_subscriber, a_plan
from support.stores import CASABLANCA, a_new_subscription, answered_call, fold, subscription_for
from tawasol.domain.carriers import (
    BillingIncrement,
    CarrierDestination,
    FlatRateContract,
    Gateway,
    Rate,
)
from tawasol.domain.catalog import (
    CostCeiling,
    DestinationRule,
    FairUse,
    Period,
)
from tawasol.domain.errors import (
    Conflict,
    NotFound,
)
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.ports import CatalogSnapshot, Store


def test_plan_round_trip_keeps_arabic_names_windows_and_fair_use(store: Store) -> None:
    plan = a_plan()
    unlimited = a_plan(
        "soirees-maghreb",
        fair_use=FairUse(max_call_duration=None, concurrent_calls=None),
        time_windows=(),
        on_sale=False,
        price=Money(Decimal("4.5"), "MAD"),
        period=Period.WEEK,
    )

    store.save_plan(plan)
    store.save_plan(unlimited)

    assert store.get_plan(plan.code) == plan
    assert store.get_plan(plan.code).names["ar"] == "المغرب بلا حدود"
    assert store.get_plan(plan.code).price.amount.as_tuple() == Decimal("9.99").as_tuple()
    assert store.get_plan(unlimited.code) == unlimited
    assert [item.code for item in store.list_plans()] == ["maroc-illimite", "soirees-maghreb"]


def test_plan_round_trip_keeps_the_window_grace(store: Store) -> None:
    # issue 10: minutes a call may go on after the plan's hours end
    plan = a_plan(window_grace=timedelta(minutes=15))
    store.save_plan(plan)
    assert store.get_plan(plan.code).window_grace == timedelta(minutes=15)
    store.save_plan(a_plan())
    assert store.get_plan(plan.code).window_grace == timedelta(0)


def test_saving_a_plan_again_replaces_it(store: Store) -> None:
    store.save_plan(a_plan())
    cheaper = a_plan(price=Money(Decimal("7.49"), "EUR"), time_windows=())

    store.save_plan(cheaper)

    assert store.get_plan("maroc-illimite") == cheaper
    assert len(store.list_plans()) == 1


def test_adding_a_plan_whose_code_exists_is_a_conflict(store: Store) -> None:
    store.add_plan(a_plan())
    with pytest.raises(Conflict, match="already exists"):
        store.add_plan(a_plan(price=Money(Decimal("1"), "EUR")))
    assert store.get_plan("maroc-illimite").price == Money(Decimal("9.99"), "EUR")


def test_codes_and_sip_usernames_are_one_identifier_whatever_their_case(store: Store) -> None:
    store.add_plan(a_plan())
    with pytest.raises(Conflict, match="maroc-illimite already exists"):
        store.add_plan(a_plan("MAROC-ILLIMITE"))
    store.add_carrier(a_carrier())
    with pytest.raises(Conflict, match="atlas already exists"):
        store.add_carrier(a_carrier("Atlas"))
    assert [plan.code for plan in store.list_plans()] == ["maroc-illimite"]
    assert [carrier.code for carrier in store.list_carriers()] == ["atlas"]
    store.add_subscriber(a_new_subscriber("amina"))
    found = store.find_subscriber("AMINA")
    assert found is not None and found.sip_username == "amina"


def test_missing_plan_subscriber_subscription_and_carrier_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_plan("nope")
    with pytest.raises(NotFound):
        store.get_subscriber(404)
    with pytest.raises(NotFound):
        store.get_subscription(404)
    with pytest.raises(NotFound):
        store.get_carrier("nope")
    assert store.find_subscriber("nobody") is None


def test_subscriber_round_trip_and_update(store: Store) -> None:
    added = store.add_subscriber(a_new_subscriber())

    assert store.get_subscriber(added.id) == added
    assert store.find_subscriber("amina") == added
    assert added.caller_ids == ("+33612345678", "+33123456789")

    moved = replace(added, time_zone="Africa/Casablanca", sip_username="amina.b", caller_ids=())
    store.update_subscriber(moved)
    assert store.get_subscriber(added.id) == moved
    assert store.find_subscriber("amina") is None


def test_the_business_flag_round_trips_on_add_and_update(store: Store) -> None:
    consumer = store.add_subscriber(a_new_subscriber("amal"))
    business = store.add_subscriber(a_new_subscriber("atlas", business=True))
    assert (consumer.business, business.business) == (False, True)
    assert store.get_subscriber(business.id).business is True
    store.update_subscriber(replace(business, business=False))
    store.update_subscriber(replace(consumer, business=True))
    assert store.get_subscriber(business.id).business is False
    assert [s.business for s in store.list_subscribers()] == [True, False]


def test_subscribers_are_listed_by_id_page_by_page(store: Store) -> None:
    added = [store.add_subscriber(a_new_subscriber(f"user{index}")) for index in range(5)]

    assert store.list_subscribers(offset=1, limit=2) == added[1:3]
    assert store.list_subscribers() == added


def test_a_taken_sip_username_is_a_conflict_on_add_and_on_update(store: Store) -> None:
    first = store.add_subscriber(a_new_subscriber("amina"))
    second = store.add_subscriber(a_new_subscriber("karim"))

    with pytest.raises(Conflict, match="already taken"):
        store.add_subscriber(a_new_subscriber("amina", name="Someone Else"))
    with pytest.raises(Conflict):
        store.update_subscriber(replace(second, sip_username="amina"))
    with pytest.raises(NotFound):
        store.update_subscriber(replace(first, id=999))
    assert [item.sip_username for item in store.list_subscribers()] == ["amina", "karim"]


def test_subscription_round_trip_keeps_aware_instants(store: Store) -> None:
    store.save_plan(a_plan())
    subscriber = store.add_subscriber(a_new_subscriber())
    start = datetime(2026, 11, 1, 0, 0, 0, 123456, tzinfo=CASABLANCA)

    added = store.add_subscription(
        subscriber_id=subscriber.id,
        plan_code="maroc-illimite",
        status=SubscriptionStatus.ACTIVE,
        period_start=start,
        period_end=start + timedelta(days=30),
    )

    read = store.get_subscription(added.id)
    assert read == added
    assert read.period_start == start
    assert read.period_start.utcoffset() == timedelta(0)
    assert read.created_at is not None and read.created_at.tzinfo is not None
    assert store.list_subscriptions(subscriber_id=subscriber.id) == [added]
    assert store.list_subscriptions(subscriber_id=subscriber.id + 1) == []

    suspended = replace(read, status=SubscriptionStatus.SUSPENDED)
    store.update_subscription(suspended)
    assert store.get_subscription(added.id).status is SubscriptionStatus.SUSPENDED


def test_a_subscription_to_a_missing_plan_or_subscriber_is_not_found(store: Store) -> None:
    store.save_plan(a_plan())
    subscriber = store.add_subscriber(a_new_subscriber())
    period = {"status": SubscriptionStatus.ACTIVE, "period_start": NOV_1, "period_end": DEC_1}

    with pytest.raises(NotFound, match="no plan"):
        store.add_subscription(subscriber_id=subscriber.id, plan_code="ghost", **period)  # type: ignore[arg-type]
    with pytest.raises(NotFound, match="no subscriber"):
        store.add_subscription(subscriber_id=999, plan_code="maroc-illimite", **period)  # type: ignore[arg-type]
    subscription = store.add_subscription(
        subscriber_id=subscriber.id,
        plan_code="maroc-illimite",
        **period,  # type: ignore[arg-type]
    )
    with pytest.raises(NotFound):
        store.update_subscription(replace(subscription, plan_code="ghost"))
    with pytest.raises(NotFound):
        store.update_subscription(replace(subscription, id=999))
    assert store.list_subscriptions() == [subscription]


def test_carrier_round_trip_keeps_gateways_destinations_and_exact_rates(store: Store) -> None:
    carrier = a_carrier()

    store.save_carrier(carrier)

    read = store.get_carrier("atlas")
    assert read == carrier  # the rate deck is compared below
    assert sorted(read.rate_deck.rates(), key=repr) == sorted(carrier.rate_deck.rates(), key=repr)
    rate = read.rate_deck.lookup("+212661234567", datetime(2026, 11, 15, tzinfo=UTC))
    assert rate is not None
    assert str(rate.per_minute.amount) == "0.0123"
    assert rate.effective_from == NOV_1 and rate.effective_from.tzinfo is not None
    tiny = read.rate_deck.lookup("+212522000000", datetime(2026, 11, 15, tzinfo=UTC))
    assert tiny is not None and tiny.per_minute.amount == Decimal("0.000001")
    assert tiny.increment == BillingIncrement(30, 6)
    later = read.rate_deck.lookup("+212661234567", DEC_1)
    assert later is not None and str(later.per_minute.amount) == "0.0780"  # scale kept too
    assert read.flat_rate == FlatRateContract(30, Money(Decimal("450.50"), "EUR"))
    assert str(read.flat_rate.monthly_fee.amount) == "450.50"
    assert store.list_carriers() == [carrier]


def test_saving_a_carrier_again_replaces_all_its_children(store: Store) -> None:
    store.save_carrier(a_carrier())
    other = replace(a_carrier("orbit"), name="Orbit")
    store.save_carrier(other)
    smaller = replace(
        a_carrier(rates=[Rate("212", Money(Decimal("0.02"), "EUR"), NOV_1)]),
        gateways=(Gateway("rabat-1", "198.51.100.7"),),
        destinations=(CarrierDestination(DestinationRule("MA", NumberKind.FIXED), 5),),
        flat_rate=None,
        enabled=False,
    )

    store.save_carrier(smaller)

    read = store.get_carrier("atlas")
    assert read == smaller
    assert len(read.rate_deck) == 1
    assert len(store.get_carrier("orbit").rate_deck) == 3
    assert [item.code for item in store.list_carriers()] == ["atlas", "orbit"]


def test_a_rate_deck_of_ten_thousand_rates_is_written_in_bulk(store: Store) -> None:
    rates = [
        Rate(f"2126{index:05d}", Money(Decimal(f"0.{index:06d}"), "EUR"), NOV_1)
        for index in range(10_000)
    ]
    started = time.perf_counter()

    store.save_carrier(a_carrier(rates=rates))
    store.save_carrier(a_carrier(rates=rates))  # replaced, not doubled

    assert time.perf_counter() - started < 20
    deck = store.get_carrier("atlas").rate_deck
    assert len(deck) == 10_000
    found = deck.lookup("+212600042999", datetime(2026, 11, 2, tzinfo=UTC))
    assert found is not None and found.per_minute.amount == Decimal("0.000042")


def test_every_catalog_write_bumps_the_revision_and_nothing_else_does(store: Store) -> None:
    revisions = [store.catalog_revision()]
    store.save_plan(a_plan())
    revisions.append(store.catalog_revision())
    subscriber = store.add_subscriber(a_new_subscriber())
    revisions.append(store.catalog_revision())
    store.update_subscriber(replace(subscriber, name="Amina B."))
    revisions.append(store.catalog_revision())
    subscription = subscription_for(store)
    revisions.append(store.catalog_revision())
    store.update_subscription(replace(subscription, status=SubscriptionStatus.EXPIRED))
    revisions.append(store.catalog_revision())
    store.save_carrier(a_carrier())
    revisions.append(store.catalog_revision())

    assert revisions == [0, 1, 2, 3, 4, 5, 6]

    with pytest.raises(Conflict):
        store.add_subscriber(a_new_subscriber())
    store.load_catalog()
    store.apply_call_events(answered_call("c-1", NOV_1, 1000), fold)
    assert store.catalog_revision() == 6


def test_load_catalog_returns_everything_at_its_revision(store: Store) -> None:
    subscription = subscription_for(store)
    store.save_carrier(a_carrier())

    snapshot = store.load_catalog()

    assert isinstance(snapshot, CatalogSnapshot)
    assert snapshot.revision == store.catalog_revision() == 4
    assert snapshot.plans == {"maroc-illimite": a_plan()}
    assert snapshot.subscribers["amina"].id == subscription.subscriber_id
    assert list(snapshot.subscriptions[subscription.subscriber_id]) == [subscription]
    assert list(snapshot.carriers) == [a_carrier()]
    assert len(snapshot.carriers[0].rate_deck) == 3


def test_concurrent_saves_of_one_new_plan_queue_instead_of_conflicting(store: Store) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def saver(minutes: int) -> None:
        barrier.wait()
        try:
            store.save_plan(a_plan(fair_use=FairUse(minutes_per_period=minutes)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=saver, args=(100 * (n + 1),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert store.catalog_revision() == 4
    assert store.get_plan("maroc-illimite").fair_use.minutes_per_period in {100, 200, 300, 400}


def test_plan_cost_ceilings_round_trip_exactly_and_in_order(store: Store) -> None:
    ceilings = (
        CostCeiling("MA", Money(Decimal("0.0200"), "EUR"), NumberKind.MOBILE),
        CostCeiling("MA", Money(Decimal("0.015"), "EUR")),
        CostCeiling("TN", Money(Decimal("0.000001"), "EUR"), NumberKind.FIXED),
    )
    store.save_plan(a_plan(cost_ceilings=ceilings))

    read = store.get_plan("maroc-illimite")

    assert read == a_plan(cost_ceilings=ceilings)
    assert read.cost_ceilings == ceilings
    assert [str(item.max_per_minute.amount) for item in read.cost_ceilings] == [
        "0.0200",
        "0.015",
        "0.000001",
    ]
    assert store.load_catalog().plans["maroc-illimite"].cost_ceilings == ceilings
    store.save_plan(a_plan())
    assert store.get_plan("maroc-illimite").cost_ceilings == ()


def test_a_subscriber_with_an_unknown_plan_is_not_created(store: Store) -> None:
    with pytest.raises(NotFound):
        store.add_subscriber(a_new_subscriber(), subscription=a_new_subscription("ghost"))
    assert store.find_subscriber("amina") is None
    store.save_plan(a_plan())
    added = store.add_subscriber(a_new_subscriber(), subscription=a_new_subscription())
    assert [s.plan_code for s in store.list_subscriptions(subscriber_id=added.id)] == [
        "maroc-illimite"
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sip_username": "AMINA"}, "SIP username"),
        ({"sip_username": "other", "email": "", "phone": None}, "phone"),
        ({"sip_username": "other", "email": "AMINA@example.org", "phone": "+33699999999"}, "email"),
    ],
)
def test_sip_users_ignoring_case_phones_and_emails_are_unique(
    store: Store, changes: dict[str, object], field: str
) -> None:
    first = store.add_subscriber(a_new_subscriber())
    if changes.get("phone", "") is None:
        changes = {**changes, "phone": first.phone}
    with pytest.raises(Conflict, match=field):
        store.add_subscriber(a_new_subscriber(**changes))


def test_a_second_running_subscription_is_refused_and_a_plan_change_ends_the_first(
    store: Store,
) -> None:
    store.save_plan(a_plan())
    store.save_plan(a_plan("maroc-an", period=Period.YEAR))
    subscriber = store.add_subscriber(a_new_subscriber(), subscription=a_new_subscription())
    (first,) = store.list_subscriptions(subscriber_id=subscriber.id)
    with pytest.raises(Conflict, match="already has running subscription"):
        store.add_subscription(
            subscriber_id=subscriber.id,
            plan_code="maroc-an",
            status=SubscriptionStatus.ACTIVE,
            period_start=NOV_1,
            period_end=DEC_1,
        )
    ended = replace(first, status=SubscriptionStatus.CANCELLED)
    store.change_plan(subscriber_id=subscriber.id, ended=ended, new=a_new_subscription("maroc-an"))
    statuses = [(s.plan_code, s.status) for s in store.list_subscriptions(subscriber_id=1)]
    assert statuses == [
        ("maroc-illimite", SubscriptionStatus.CANCELLED),
        ("maroc-an", SubscriptionStatus.ACTIVE),
    ]


def test_create_is_create_and_update_is_update(store: Store) -> None:
    store.add_plan(a_plan())
    with pytest.raises(NotFound):
        store.update_plan(a_plan("ghost"))
    store.add_carrier(a_carrier())
    with pytest.raises(Conflict, match="already exists"):
        store.add_carrier(replace(a_carrier(), name="Other"))
    with pytest.raises(NotFound):
        store.update_carrier(a_carrier("ghost"))
    store.update_carrier(replace(a_carrier(), name="Atlas 2"))
    assert store.get_carrier("atlas").name == "Atlas 2"
    assert store.holds_operator_data()


def test_a_plan_period_cannot_change_under_running_subscriptions(store: Store) -> None:
    store.add_plan(a_plan())
    store.add_subscriber(a_new_subscriber(), subscription=a_new_subscription())
    with pytest.raises(Conflict, match="running subscription"):
        store.update_plan(a_plan(period=Period.WEEK))
    store.update_plan(a_plan(price=Money(Decimal("11.99"), "EUR")))
    assert store.get_plan("maroc-illimite").period is Period.MONTH
