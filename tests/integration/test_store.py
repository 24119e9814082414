"""The system of record against real databases: the same suite on SQLite and on PostgreSQL.

Every PostgreSQL test gets a schema of its own (created, migrated into and dropped around it),
so tests never see each other's rows. PostgreSQL must be reachable at TAWASOL_TEST_POSTGRES_URL:
when it is not, these tests fail rather than skip, because CI starts it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from tawasol.adapters.store import (
    SqlStore,
    current_revision,
    head_revision,
    mapping,
    migrate,
    sqlite_url_for,
)
from tawasol.adapters.store.engine import create_store_engine
from tawasol.adapters.store.migrate import alembic_config
from tawasol.adapters.store.models import (
    Base,
    CallAttemptRow,
    CallRow,
    CarrierCapacityRow,
    CarrierEventRow,
    CarrierRow,
    CatalogRevisionRow,
    PlanRow,
)
from tawasol.domain.calls import CallEvent, CallEventType, CallRecord, apply_event, new_record
from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
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
from tawasol.domain.decision import Usage
from tawasol.domain.errors import (
    Conflict,
    InvalidConfiguration,
    InvalidInput,
    NotFound,
    Unavailable,
)
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import Subscription, SubscriptionStatus, digest_ha1
from tawasol.services.ports import CatalogSnapshot, NewSubscriber, NewSubscription

POSTGRES_URL = os.environ.get(
    "TAWASOL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CASABLANCA = ZoneInfo("Africa/Casablanca")
NOV_1 = datetime(2026, 11, 1, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, tzinfo=UTC)


# -- fixtures -----------------------------------------------------------------------------------
@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh PostgreSQL schema, dropped afterwards: the URL's connections live only in it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        try:
            url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield sqlite_url_for(tmp_path)
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def store(database_url: str) -> Iterator[SqlStore]:
    migrate(database_url)
    sql_store = SqlStore.from_url(database_url)
    try:
        yield sql_store
    finally:
        sql_store.close()


# -- builders -----------------------------------------------------------------------------------
def a_plan(code: str = "maroc-illimite", **changes: object) -> Plan:
    plan = Plan(
        code=code,
        names={"fr": "Maroc Illimité", "ar": "المغرب بلا حدود", "en": "Morocco Unlimited"},
        period=Period.MONTH,
        price=Money(Decimal("9.99"), "EUR"),
        destinations=frozenset(
            {
                DestinationRule("MA", NumberKind.FIXED),
                DestinationRule("MA", NumberKind.MOBILE),
            }
        ),
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


def subscription_for(store: SqlStore, username: str = "amina", **period: datetime) -> Subscription:
    try:
        store.get_plan("maroc-illimite")
    except NotFound:
        store.save_plan(a_plan())
    subscriber = store.find_subscriber(username) or store.add_subscriber(a_new_subscriber(username))
    return store.add_subscription(
        subscriber_id=subscriber.id,
        plan_code="maroc-illimite",
        status=SubscriptionStatus.ACTIVE,
        period_start=period.get("start", NOV_1),
        period_end=period.get("end", DEC_1),
    )


def fold(existing: CallRecord | None, events: Sequence[CallEvent]) -> CallRecord:
    """The fold the services use: start from the stored record (or the first event), apply all."""
    record = existing if existing is not None else new_record(events[0])
    for event in events:
        record = apply_event(record, event)
    return record


def filing_under(subscription: Subscription, destination: str) -> Callable[..., CallRecord]:
    """A fold that also files the call under a subscription, as the decision would."""

    def filed(existing: CallRecord | None, events: Sequence[CallEvent]) -> CallRecord:
        return replace(
            fold(existing, events),
            subscriber_id=subscription.subscriber_id,
            subscription_id=subscription.id,
            destination=destination,
            country="MA",
            kind="mobile",
        )

    return filed


def answered_call(call_id: str, start: datetime, talk_ms: int) -> list[CallEvent]:
    answer = start + timedelta(seconds=4)
    return [
        CallEvent(
            call_id,
            CallEventType.ATTEMPT,
            start,
            "amina",
            "0661234567",
            attempt=1,
            carrier="orbit",
            gateway="gw-1",
            sip_code=503,
            pdd_ms=None,
        ),
        CallEvent(
            call_id,
            CallEventType.ATTEMPT,
            start + timedelta(seconds=1),
            attempt=2,
            carrier="atlas",
            gateway="casa-1",
            sip_code=200,
            pdd_ms=1800,
        ),
        CallEvent(call_id, CallEventType.ANSWER, answer, carrier="atlas"),
        CallEvent(
            call_id,
            CallEventType.END,
            answer + timedelta(milliseconds=talk_ms),
            duration_ms=talk_ms,
            hangup_cause="normal_clearing",
        ),
    ]


def count_rows(store: SqlStore, table: type[Base]) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


# -- migrations -----------------------------------------------------------------------------------
def test_given_empty_database_when_migrated_twice_then_schema_is_at_head(database_url: str) -> None:
    assert current_revision(database_url) is None

    migrate(database_url)
    migrate(database_url)

    assert current_revision(database_url) == head_revision() == "0005"
    store = SqlStore.from_url(database_url)
    try:
        assert store.catalog_revision() == 0
        tables = set(inspect(store.engine).get_table_names())
        assert {"plans", "subscribers", "subscriptions", "carriers", "carrier_rates"} <= tables
        assert {"calls", "call_attempts", "catalog_revision", "alembic_version"} <= tables
        assert {"carrier_events", "carrier_capacities"} <= tables
    finally:
        store.close()


def test_migrations_started_together_take_turns(database_url: str) -> None:
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def migrator() -> None:
        barrier.wait()
        try:
            migrate(database_url)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=migrator) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert current_revision(database_url) == head_revision()


def test_a_database_from_a_newer_version_is_refused_clearly(database_url: str) -> None:
    migrate(database_url)
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()

    with pytest.raises(InvalidConfiguration, match="9999"):
        migrate(database_url)


def test_migrations_build_exactly_the_tables_the_models_describe(store: SqlStore) -> None:
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


# Columns 0002 added: a database written by 0001-era code has none of them.
COLUMNS_ADDED_BY_0002 = {
    "plans": {"cost_ceilings", "window_grace_minutes"},  # the latter from 0003
    "calls": {
        "billing",
        "rate_per_minute_amount",
        "rate_currency",
        "increment",
        "cost_amount",
        "cost_currency",
        "refusal_reason",  # added by 0004
    },
    "call_attempts": {"q850_cause", "billing"},
}


def run_alembic(url: str, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) to exactly `revision`, as `migrate` does for the head."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def without_0002_columns(table: str, values: dict[str, object]) -> dict[str, object]:
    return {
        name: value for name, value in values.items() if name not in COLUMNS_ADDED_BY_0002[table]
    }


def write_as_0001(url: str, plan: Plan, record: CallRecord) -> None:
    """Write a plan and a call with their 0001 columns only, as the previous version did."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(CatalogRevisionRow).where(CatalogRevisionRow.id == 1).values(revision=7)
            )
            connection.execute(
                insert(PlanRow), [without_0002_columns("plans", mapping.plan_values(plan))]
            )
            connection.execute(
                insert(CallRow), [without_0002_columns("calls", mapping.call_values(record))]
            )
            connection.execute(
                insert(CallAttemptRow),
                [
                    without_0002_columns("call_attempts", row)
                    for row in mapping.attempt_values(record)
                ],
            )
    finally:
        engine.dispose()


def test_given_a_0001_database_with_a_plan_and_a_call_when_upgraded_then_they_survive(
    database_url: str,
) -> None:
    run_alembic(database_url, "0001")
    record = fold(None, answered_call("before-0002", NOV_1, 61_500))
    write_as_0001(database_url, a_plan(), record)
    assert current_revision(database_url) == "0001"

    migrate(database_url)

    assert current_revision(database_url) == head_revision()
    store = SqlStore.from_url(database_url)
    try:
        assert store.catalog_revision() == 7
        assert store.get_plan("maroc-illimite") == a_plan()
        assert store.get_plan("maroc-illimite").cost_ceilings == ()
        stored = store.get_call("before-0002")
        assert stored == record
        assert stored is not None and len(stored.attempts) == 2
        assert (stored.billing, stored.rate_per_minute, stored.increment, stored.cost) == (
            None,
            None,
            None,
            None,
        )
        assert [(item.q850_cause, item.billing) for item in stored.attempts] == [(None, None)] * 2
        with store.engine.connect() as connection:
            # The server default filled the old row: an empty list, not NULL.
            assert connection.scalar(select(PlanRow.cost_ceilings)) == []
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
        assert store.list_carrier_events() == []
        assert store.carrier_capacities() == {}
        # The new columns take writes on the upgraded database.
        ceilings = (CostCeiling("MA", Money(Decimal("0.02"), "EUR")),)
        store.save_plan(a_plan(cost_ceilings=ceilings))
        assert store.get_plan("maroc-illimite").cost_ceilings == ceilings
    finally:
        store.close()


def test_downgrading_to_0001_and_upgrading_again_keeps_calls_and_their_attempts(
    database_url: str,
) -> None:
    """Guards against a batch copy of `calls` on SQLite: its DROP would cascade to attempts."""
    migrate(database_url)
    store = SqlStore.from_url(database_url)
    try:
        store.save_plan(a_plan(cost_ceilings=(CostCeiling("MA", Money(Decimal("1"), "EUR")),)))
        (record,) = store.apply_call_events(answered_call("kept", NOV_1, 1_000), fold)
    finally:
        store.close()

    run_alembic(database_url, "0001", down=True)
    assert current_revision(database_url) == "0001"
    migrate(database_url)

    store = SqlStore.from_url(database_url)
    try:
        assert store.get_call("kept") == record
        assert count_rows(store, CallAttemptRow) == 2
        assert store.get_plan("maroc-illimite").cost_ceilings == ()
    finally:
        store.close()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    url = sqlite_url_for(tmp_path)
    migrate(url)
    store = SqlStore.from_url(url)
    try:
        with store.engine.connect() as connection:
            pragma = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        store.close()
    assert pragma == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 5000,
        "foreign_keys": 1,
    }


# -- catalog round trips --------------------------------------------------------------------------
def test_plan_round_trip_keeps_arabic_names_windows_and_fair_use(store: SqlStore) -> None:
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


def test_plan_round_trip_keeps_the_window_grace(store: SqlStore) -> None:
    # issue 10: minutes a call may go on after the plan's hours end
    plan = a_plan(window_grace=timedelta(minutes=15))
    store.save_plan(plan)
    assert store.get_plan(plan.code).window_grace == timedelta(minutes=15)
    store.save_plan(a_plan())
    assert store.get_plan(plan.code).window_grace == timedelta(0)


def test_saving_a_plan_again_replaces_it(store: SqlStore) -> None:
    store.save_plan(a_plan())
    cheaper = a_plan(price=Money(Decimal("7.49"), "EUR"), time_windows=())

    store.save_plan(cheaper)

    assert store.get_plan("maroc-illimite") == cheaper
    assert len(store.list_plans()) == 1


def test_adding_a_plan_whose_code_exists_is_a_conflict(store: SqlStore) -> None:
    store.add_plan(a_plan())
    with pytest.raises(Conflict, match="already exists"):
        store.add_plan(a_plan(price=Money(Decimal("1"), "EUR")))
    assert store.get_plan("maroc-illimite").price == Money(Decimal("9.99"), "EUR")


def test_codes_and_sip_usernames_are_one_identifier_whatever_their_case(store: SqlStore) -> None:
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


def test_missing_plan_subscriber_subscription_and_carrier_are_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_plan("nope")
    with pytest.raises(NotFound):
        store.get_subscriber(404)
    with pytest.raises(NotFound):
        store.get_subscription(404)
    with pytest.raises(NotFound):
        store.get_carrier("nope")
    assert store.find_subscriber("nobody") is None


def test_subscriber_round_trip_and_update(store: SqlStore) -> None:
    added = store.add_subscriber(a_new_subscriber())

    assert store.get_subscriber(added.id) == added
    assert store.find_subscriber("amina") == added
    assert added.caller_ids == ("+33612345678", "+33123456789")

    moved = replace(added, time_zone="Africa/Casablanca", sip_username="amina.b", caller_ids=())
    store.update_subscriber(moved)
    assert store.get_subscriber(added.id) == moved
    assert store.find_subscriber("amina") is None


def test_subscribers_are_listed_by_id_page_by_page(store: SqlStore) -> None:
    added = [store.add_subscriber(a_new_subscriber(f"user{index}")) for index in range(5)]

    assert store.list_subscribers(offset=1, limit=2) == added[1:3]
    assert store.list_subscribers() == added


def test_a_taken_sip_username_is_a_conflict_on_add_and_on_update(store: SqlStore) -> None:
    first = store.add_subscriber(a_new_subscriber("amina"))
    second = store.add_subscriber(a_new_subscriber("karim"))

    with pytest.raises(Conflict, match="already taken"):
        store.add_subscriber(a_new_subscriber("amina", name="Someone Else"))
    with pytest.raises(Conflict):
        store.update_subscriber(replace(second, sip_username="amina"))
    with pytest.raises(NotFound):
        store.update_subscriber(replace(first, id=999))
    assert [item.sip_username for item in store.list_subscribers()] == ["amina", "karim"]


def test_subscription_round_trip_keeps_aware_instants(store: SqlStore) -> None:
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


def test_a_subscription_to_a_missing_plan_or_subscriber_is_not_found(store: SqlStore) -> None:
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


def test_carrier_round_trip_keeps_gateways_destinations_and_exact_rates(store: SqlStore) -> None:
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


def test_saving_a_carrier_again_replaces_all_its_children(store: SqlStore) -> None:
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


def test_a_rate_deck_of_ten_thousand_rates_is_written_in_bulk(store: SqlStore) -> None:
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


def test_amounts_that_cannot_be_stored_exactly_are_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="6 decimal places"):
        store.save_plan(a_plan(price=Money(Decimal("9.9999999"), "EUR")))
    with pytest.raises(InvalidInput, match="12 integer digits"):
        store.save_carrier(a_carrier(rates=[Rate("1", Money(Decimal("1E+12"), "EUR"), NOV_1)]))
    with pytest.raises(NotFound):
        store.get_plan("maroc-illimite")
    store.save_plan(a_plan(price=Money(Decimal("1E+2"), "EUR")))
    assert str(store.get_plan("maroc-illimite").price.amount) == "100"


# -- catalog revision -----------------------------------------------------------------------------
def test_every_catalog_write_bumps_the_revision_and_nothing_else_does(store: SqlStore) -> None:
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


def test_load_catalog_returns_everything_at_its_revision(store: SqlStore) -> None:
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


def test_concurrent_saves_of_one_new_plan_queue_instead_of_conflicting(store: SqlStore) -> None:
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


# -- call records ---------------------------------------------------------------------------------
def test_the_same_events_applied_three_times_make_one_record(store: SqlStore) -> None:
    events = answered_call("call-1@edge", datetime(2026, 11, 3, 9, 0, tzinfo=UTC), 61_500)

    results = [store.apply_call_events(events, fold) for _ in range(3)]

    assert results[0] == results[1] == results[2]
    (record,) = results[0]
    assert record.duration_ms == 61_500
    assert count_rows(store, CallRow) == 1
    assert count_rows(store, CallAttemptRow) == 2
    stored = store.get_call("call-1@edge")
    assert stored == record
    assert [
        (item.attempt, item.carrier, item.sip_code, item.pdd_ms) for item in stored.attempts
    ] == [
        (1, "orbit", 503, None),
        (2, "atlas", 200, 1800),
    ]
    assert stored.answered_at == datetime(2026, 11, 3, 9, 0, 4, tzinfo=UTC)
    assert stored.answered_at.tzinfo is not None
    assert store.get_call("unknown") is None


def test_events_arriving_in_several_batches_fold_into_the_stored_record(store: SqlStore) -> None:
    events = answered_call("call-2", datetime(2026, 11, 3, 9, 0, tzinfo=UTC), 30_000)
    other = answered_call("call-3", datetime(2026, 11, 3, 9, 5, tzinfo=UTC), 5_000)

    first = store.apply_call_events(events[:2] + other[:1], fold)
    second = store.apply_call_events([*events[2:], *other[1:], events[0]], fold)

    assert [record.call_id for record in first] == ["call-2", "call-3"]
    assert first[0].status.value == "in_progress"
    assert [record.call_id for record in second] == ["call-2", "call-3"]
    assert [record.duration_ms for record in second] == [30_000, 5_000]
    assert [len(record.attempts) for record in second] == [2, 2]
    assert store.get_call("call-2") == second[0]


def test_calls_are_listed_newest_first_per_subscriber(store: SqlStore) -> None:
    subscription = subscription_for(store)
    for minute in range(3):
        call_id = f"mine-{minute}"
        start = datetime(2026, 11, 5, 10, minute, tzinfo=UTC)
        store.apply_call_events(
            answered_call(call_id, start, 1000), filing_under(subscription, "+212661000000")
        )
    store.apply_call_events(
        answered_call("someone-else", datetime(2026, 11, 6, tzinfo=UTC), 1), fold
    )

    mine = store.list_calls(subscriber_id=subscription.subscriber_id)
    every = store.list_calls(limit=2)

    assert [record.call_id for record in mine] == ["mine-2", "mine-1", "mine-0"]
    assert all(len(record.attempts) == 2 for record in mine)
    assert [record.call_id for record in every] == ["someone-else", "mine-2"]


def test_concurrent_writers_of_one_new_call_id_make_one_record(store: SqlStore) -> None:
    events = answered_call("race@edge", datetime(2026, 11, 7, 20, 0, tzinfo=UTC), 42_000)
    barrier = threading.Barrier(4)
    results: list[list[CallRecord]] = []
    errors: list[BaseException] = []

    def writer() -> None:
        barrier.wait()
        try:
            results.append(store.apply_call_events(events, fold))
        except BaseException as error:  # reported below, a thread cannot fail the test
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(results) == 4
    assert {result[0].duration_ms for result in results} == {42_000}
    assert count_rows(store, CallRow) == 1
    assert count_rows(store, CallAttemptRow) == 2


def test_concurrent_batches_crossing_the_same_new_calls_in_opposite_orders(
    store: SqlStore,
) -> None:
    start = datetime(2026, 11, 7, 21, 0, tzinfo=UTC)
    forward = answered_call("cross-a", start, 1_000) + answered_call("cross-b", start, 2_000)
    backward = answered_call("cross-b", start, 2_000) + answered_call("cross-a", start, 1_000)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(events: list[CallEvent]) -> None:
        barrier.wait()
        try:
            store.apply_call_events(events, fold)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=writer, args=(forward if index % 2 else backward,))
        for index in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert count_rows(store, CallRow) == 2
    assert [store.get_call(name).duration_ms for name in ("cross-a", "cross-b")] == [1_000, 2_000]  # type: ignore[union-attr]


@contextmanager
def writes_to(store: SqlStore) -> Iterator[list[str]]:
    """The INSERT, UPDATE and DELETE statements the store sends meanwhile, as "VERB table"."""
    seen: list[str] = []

    def record(
        _connection: object,
        _cursor: object,
        statement: str,
        _parameters: object,
        _context: object,
        _executemany: bool,
    ) -> None:
        words = statement.split()
        verb = words[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            table = words[2] if verb in ("INSERT", "DELETE") else words[1]
            seen.append(f"{verb} {table}")

    sqlalchemy_event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sqlalchemy_event.remove(store.engine, "before_cursor_execute", record)


def test_a_replayed_batch_writes_nothing(store: SqlStore) -> None:
    start = datetime(2026, 11, 8, 9, 0, tzinfo=UTC)
    events = answered_call("replay-a", start, 3_000) + answered_call("replay-b", start, 4_000)
    first = store.apply_call_events(events, rated("per_minute", Money(Decimal("0.0780"), "EUR")))

    with writes_to(store) as writes:
        again = store.apply_call_events(
            events, rated("per_minute", Money(Decimal("0.0780"), "EUR"))
        )

    assert writes == []
    assert again == first
    assert [store.get_call(name) for name in ("replay-a", "replay-b")] == first


def test_an_end_event_updates_the_call_and_leaves_its_attempts_alone(store: SqlStore) -> None:
    events = answered_call("ending", datetime(2026, 11, 8, 10, 0, tzinfo=UTC), 12_000)
    untouched = answered_call("untouched", datetime(2026, 11, 8, 10, 1, tzinfo=UTC), 1_000)
    store.apply_call_events(events[:3] + untouched[:3], fold)

    with writes_to(store) as writes:
        (ended,) = store.apply_call_events(events[3:], fold)

    assert writes == ["UPDATE calls"]
    assert ended.duration_ms == 12_000 and ended.status.value == "completed"
    assert len(ended.attempts) == 2
    assert store.get_call("ending") == ended
    assert store.get_call("untouched") == fold(None, untouched[:3])
    assert count_rows(store, CallAttemptRow) == 4


def test_an_attempt_answered_in_a_later_batch_replaces_the_stored_attempts(
    store: SqlStore,
) -> None:
    events = answered_call("hunting", datetime(2026, 11, 8, 11, 0, tzinfo=UTC), 8_000)
    routed = replace(events[0], sip_code=None)  # the first try, before its answer came back
    other = answered_call("steady", datetime(2026, 11, 8, 11, 0, tzinfo=UTC), 2_000)
    store.apply_call_events([routed, *other[:2]], fold)
    assert [item.sip_code for item in store.get_call("hunting").attempts] == [None]  # type: ignore[union-attr]

    with writes_to(store) as writes:
        records = store.apply_call_events([*events, other[2]], fold)

    assert sorted(writes) == [
        "DELETE call_attempts",
        "INSERT call_attempts",
        "UPDATE calls",
    ]
    hunting = store.get_call("hunting")
    assert hunting is not None and hunting == records[0]
    assert [(item.attempt, item.sip_code, item.pdd_ms) for item in hunting.attempts] == [
        (1, 503, None),
        (2, 200, 1800),
    ]
    assert store.get_call("steady") == records[1] == fold(None, other[:3])
    assert count_rows(store, CallAttemptRow) == 4


def test_a_batch_that_loses_the_race_for_a_new_call_folds_onto_the_winners_row(
    store: SqlStore,
) -> None:
    """The winner's INSERT is in flight when the batch starts; on PostgreSQL the batch fails on
    the unique key and is run again from the start, on SQLite it waits for the write lock."""
    events = answered_call("raced", datetime(2026, 11, 8, 12, 0, tzinfo=UTC), 5_000)
    winner = fold(None, events[:1])
    folds: list[str] = []
    results: list[list[CallRecord]] = []
    errors: list[BaseException] = []

    def counting(existing: CallRecord | None, call_events: Sequence[CallEvent]) -> CallRecord:
        folds.append("found" if existing is not None else "absent")
        return fold(existing, call_events)

    def writer() -> None:
        try:
            results.append(store.apply_call_events(events, counting))
        except BaseException as error:  # reported below, a thread cannot fail the test
            errors.append(error)

    postgres = store.engine.dialect.name == "postgresql"
    with store.engine.connect() as other:
        other.execute(insert(CallRow), [mapping.call_values(winner)])
        other.execute(insert(CallAttemptRow), mapping.attempt_values(winner))
        thread = threading.Thread(target=writer)
        thread.start()
        deadline = time.monotonic() + 10
        while postgres and time.monotonic() < deadline:
            with store.engine.connect() as watcher:
                waiting = watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO calls%'"
                    )
                )
            if waiting:
                break
            time.sleep(0.01)
        else:
            time.sleep(0.2)
        other.commit()
    thread.join(timeout=30)

    assert errors == []
    assert folds == (["absent", "found"] if postgres else ["found"])
    (record,) = results[0]
    assert record == fold(winner, events)
    assert store.get_call("raced") == record
    assert count_rows(store, CallRow) == 1
    assert count_rows(store, CallAttemptRow) == 2


def test_a_naive_time_is_refused_not_stored(store: SqlStore) -> None:
    naive = CallEvent("naive", CallEventType.ATTEMPT, datetime(2026, 11, 1, 10, 0), attempt=1)
    with pytest.raises(InvalidInput, match="naive"):
        store.apply_call_events([naive], fold)
    assert store.get_call("naive") is None


# -- usage ----------------------------------------------------------------------------------------
def test_usage_counts_the_period_with_hand_worked_numbers(store: SqlStore) -> None:
    subscription = subscription_for(store)  # period [Nov 1, Dec 1)
    late = subscription_for(
        store,
        "karim",
        start=datetime(2026, 11, 15, tzinfo=UTC),
        end=datetime(2026, 12, 15, tzinfo=UTC),
    )
    idle = subscription_for(store, "idle")
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def file(number: str, events: list[CallEvent], owner: Subscription = subscription) -> None:
        store.apply_call_events(events, filing_under(owner, number))

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=UTC)

    def ringing(call_id: str, start: datetime) -> list[CallEvent]:
        return [CallEvent(call_id, CallEventType.ATTEMPT, start, attempt=1, carrier="atlas")]

    busy = CallEvent("a3", CallEventType.FAILURE, at(4, 10, 1), sip_code=486)
    october_31 = datetime(2026, 10, 31, 23, 59, tzinfo=UTC)
    # Answered in the period: 61.5 s + 30.7 s = 92.2 s -> 92 s (floored once, on the total).
    file("+212600000001", answered_call("a1", at(2, 10), 61_500))
    file("+212600000002", answered_call("a2", at(3, 10), 30_700))
    # Failed (busy): no seconds, and not a distinct number (only answered numbers count).
    file("+212600000003", [*ringing("a3", at(4, 10)), busy])
    # Before the period, and at period_end exactly (outside [start, end)): count for nothing.
    file("+212600000009", answered_call("a4", october_31, 100_000))
    file("+212600000008", answered_call("a5", DEC_1, 50_000))
    # Talking now (answered, not ended), to a number already called: active, not distinct.
    file("+212600000001", answered_call("a6", at(20, 11), 0)[:3])
    # Ringing now: active, not yet distinct.
    file("+212600000005", ringing("a7", at(20, 11, 30)))
    # Never answered nor ended, started before the 4-hour horizon: neither distinct nor active.
    file("+212600000004", ringing("a8", at(20, 6)))
    # The later subscription's own period starts on Nov 15: b1 is before it.
    file("+212600000006", answered_call("b1", at(14, 9), 20_000), late)
    file("+212600000007", answered_call("b2", at(16, 9), 10_999), late)

    usage = store.usage(
        [subscription, late, idle, subscription], now=now, open_call_horizon=timedelta(hours=4)
    )

    assert usage == {
        subscription.id: Usage(
            answered_seconds=92,
            distinct_numbers=frozenset(
                {
                    "+212600000001",
                    "+212600000002",
                }
            ),
            active_calls=2,
        ),
        late.id: Usage(answered_seconds=10, distinct_numbers=frozenset({"+212600000007"})),
        idle.id: Usage(),
    }
    assert store.usage([], now=now, open_call_horizon=timedelta(hours=4)) == {}


# -- broken worlds --------------------------------------------------------------------------------
def test_given_postgres_unreachable_then_store_raises_unavailable() -> None:
    url = "postgresql+psycopg://postgres:secret@127.0.0.1:1/test"
    store = SqlStore.from_url(url)
    try:
        with pytest.raises(Unavailable, match="cannot reach the database") as raised:
            store.catalog_revision()
        with pytest.raises(Unavailable):
            store.apply_call_events(answered_call("x", NOV_1, 1), fold)
    finally:
        store.close()
    assert "127.0.0.1:1" in raised.value.message
    assert "secret" not in raised.value.message
    with pytest.raises(Unavailable):
        migrate(url)


def test_given_sqlite_file_cannot_be_opened_then_store_raises_unavailable(tmp_path: Path) -> None:
    url = sqlite_url_for(tmp_path / "missing-directory")
    with pytest.raises(Unavailable, match="cannot reach the database"):
        migrate(url)


def test_given_schema_never_migrated_then_store_says_to_run_init(database_url: str) -> None:
    store = SqlStore.from_url(database_url)
    try:
        with pytest.raises(Unavailable, match="tawasol init"):
            store.list_plans()
    finally:
        store.close()


@pytest.mark.postgres
def test_each_postgres_test_runs_in_a_schema_of_its_own() -> None:
    """Guards the isolation the other PostgreSQL tests rely on."""
    with postgres_schema() as first, postgres_schema() as second:
        migrate(first)
        migrate(second)
        one, two = SqlStore.from_url(first), SqlStore.from_url(second)
        try:
            one.save_plan(a_plan())
            with one.engine.connect() as connection:
                schema = connection.execute(text("select current_schema()")).scalar()
            assert str(schema).startswith("t_")
            assert two.list_plans() == []
        finally:
            one.close()
            two.close()


def test_a_url_sqlalchemy_cannot_use_is_a_configuration_error() -> None:
    with pytest.raises(InvalidConfiguration):
        SqlStore.from_url("nonsense://somewhere")
    with pytest.raises(InvalidConfiguration):
        migrate("not a url at all")


def test_open_calls_are_those_neither_ended_nor_failed_since_a_time(store: SqlStore) -> None:
    subscription = subscription_for(store)
    start = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    talking = answered_call("talking", start + timedelta(minutes=5), 0)[:3]
    ringing = [CallEvent("ringing", CallEventType.ATTEMPT, start + timedelta(minutes=1), attempt=1)]
    failed = [
        CallEvent("failed", CallEventType.ATTEMPT, start, attempt=1),
        CallEvent("failed", CallEventType.FAILURE, start, sip_code=503),
    ]
    stale = [CallEvent("stale", CallEventType.ATTEMPT, start - timedelta(hours=5), attempt=1)]
    for events in (talking, ringing, failed, stale, answered_call("ended", start, 1_000)):
        store.apply_call_events(events, filing_under(subscription, "+212661000000"))

    found = store.open_calls(started_after=start - timedelta(hours=4))

    assert [record.call_id for record in found] == ["ringing", "talking"]
    assert found[1].subscription_id == subscription.id
    assert [attempt.attempt for attempt in found[1].attempts] == [1, 2]


# -- rating and cost ceilings ---------------------------------------------------------------------
def test_plan_cost_ceilings_round_trip_exactly_and_in_order(store: SqlStore) -> None:
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


def test_a_cost_ceiling_that_cannot_be_stored_exactly_is_refused(store: SqlStore) -> None:
    too_fine = CostCeiling("MA", Money(Decimal("0.0000001"), "EUR"))
    with pytest.raises(InvalidInput, match="6 decimal places"):
        store.save_plan(a_plan(cost_ceilings=(too_fine,)))
    with pytest.raises(NotFound):
        store.get_plan("maroc-illimite")


def rated(
    billing: str | None,
    rate: Money | None = None,
    increment: str | None = None,
    cost: Money | None = None,
) -> Callable[..., CallRecord]:
    """A fold that rates the call as `domain.rating` would once it is over."""

    def folded(existing: CallRecord | None, events: Sequence[CallEvent]) -> CallRecord:
        return replace(
            fold(existing, events),
            billing=billing,
            rate_per_minute=rate,
            increment=increment,
            cost=cost,
        )

    return folded


def test_rated_calls_keep_billing_rate_increment_and_exact_cost(store: SqlStore) -> None:
    start = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    events = answered_call("per-minute", start, 61_500)
    events[0] = replace(events[0], q850_cause=34, billing="per_minute")
    events[1] = replace(events[1], billing="flat_rate")
    rate = Money(Decimal("0.0780"), "EUR")

    (record,) = store.apply_call_events(
        events, rated("per_minute", rate, "60/60", Money(Decimal("0.156000"), "EUR"))
    )

    stored = store.get_call("per-minute")
    assert stored == record
    assert stored is not None
    assert stored.billing == "per_minute"
    assert stored.rate_per_minute == rate
    assert str(stored.rate_per_minute.amount) == "0.0780"
    assert stored.increment == "60/60"
    assert stored.cost == Money(Decimal("0.156000"), "EUR")
    assert str(stored.cost.amount) == "0.156000"
    assert [(item.q850_cause, item.billing) for item in stored.attempts] == [
        (34, "per_minute"),
        (None, "flat_rate"),
    ]
    assert store.list_calls() == [record]


def test_a_zero_cost_is_stored_as_zero_and_no_cost_as_none(store: SqlStore) -> None:
    start = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    zero = Money(Decimal(0), "EUR")
    store.apply_call_events(answered_call("flat", start, 1_000), rated("flat_rate", cost=zero))
    store.apply_call_events(answered_call("unrated", start, 1_000), rated("per_minute"))
    store.apply_call_events(answered_call("plain", start, 1_000), fold)

    flat, unrated, plain = (store.get_call(name) for name in ("flat", "unrated", "plain"))

    assert flat is not None and flat.cost == zero and flat.rate_per_minute is None
    assert unrated is not None and unrated.cost is None and unrated.billing == "per_minute"
    assert plain is not None and plain.cost is None and plain.billing is None
    with store.engine.connect() as connection:
        costs = dict(connection.execute(select(CallRow.call_id, CallRow.cost_amount)).all())
    assert costs == {"flat": Decimal(0), "unrated": None, "plain": None}


def test_a_call_cost_that_cannot_be_stored_exactly_is_refused(store: SqlStore) -> None:
    too_fine = Money(Decimal("0.0000001"), "EUR")
    with pytest.raises(InvalidInput, match="6 decimal places"):
        store.apply_call_events(
            answered_call("fine", NOV_1, 1_000), rated("per_minute", cost=too_fine)
        )
    assert store.get_call("fine") is None


def test_calls_since_are_those_started_at_or_after_oldest_first(store: SqlStore) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for call_id, start in (
        ("later", now + timedelta(hours=1)),
        ("before", now - timedelta(seconds=1)),
        ("at-since", now),
        ("long-before", now - timedelta(days=3)),
        ("between", now + timedelta(minutes=30)),
    ):
        store.apply_call_events(answered_call(call_id, start, 1_000), fold)

    found = store.calls_since(since=now)

    assert [record.call_id for record in found] == ["at-since", "between", "later"]
    assert all(len(record.attempts) == 2 for record in found)
    assert found[0] == store.get_call("at-since")
    assert [record.call_id for record in store.calls_since(since=now, limit=2)] == [
        "at-since",
        "between",
    ]
    assert store.calls_since(since=now, limit=0) == []
    assert store.calls_since(since=now + timedelta(days=1)) == []


# -- carriers at run time -------------------------------------------------------------------------
def test_carrier_events_are_listed_newest_first_and_by_carrier(store: SqlStore) -> None:
    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    down = CarrierEvent("atlas", at, CarrierEventKind.DOWN, "3 probes in a row unanswered")
    learned = CarrierEvent(
        "atlas",
        at + timedelta(minutes=5),
        CarrierEventKind.CAPACITY_LEARNED,
        "congestion with 12 call(s) up of 30 contracted: effective capacity lowered to 12",
        12,
    )
    same_instant = CarrierEvent("orbit", learned.at, CarrierEventKind.UP, "answered 2 probes")
    restored = CarrierEvent(
        "atlas", at + timedelta(minutes=9), CarrierEventKind.CAPACITY_RESTORED, "back to 30", None
    )
    casablanca = CarrierEvent(
        "atlas", datetime(2026, 11, 20, 13, 1, tzinfo=CASABLANCA), CarrierEventKind.UP, "up"
    )
    for event in (learned, down, same_instant, restored, casablanca):
        store.record_carrier_event(event)

    every = store.list_carrier_events()
    atlas = store.list_carrier_events(carrier="atlas")

    # Casablanca is UTC+1 in November: 13:01 there is 12:01 UTC.
    assert every == [restored, same_instant, learned, casablanca, down]
    assert every[3].at == datetime(2026, 11, 20, 12, 1, tzinfo=UTC)
    assert every[3].at.utcoffset() == timedelta(0)
    assert atlas == [restored, learned, casablanca, down]
    assert atlas[1].effective_channels == 12 and atlas[0].effective_channels is None
    assert store.list_carrier_events(carrier="atlas", limit=2) == [restored, learned]
    assert store.list_carrier_events(carrier="nobody") == []
    assert store.catalog_revision() == 0  # a log, not a catalog write


def test_carrier_events_need_no_carrier_row_and_outlive_it(store: SqlStore) -> None:
    store.save_carrier(a_carrier())
    event = CarrierEvent("atlas", NOV_1, CarrierEventKind.DOWN, "dead")
    store.record_carrier_event(event)
    store.record_carrier_event(CarrierEvent("ghost", NOV_1, CarrierEventKind.UP, "unknown"))

    with store.engine.begin() as connection:
        connection.execute(delete(CarrierRow).where(CarrierRow.code == "atlas"))

    assert store.list_carrier_events(carrier="atlas") == [event]
    assert count_rows(store, CarrierEventRow) == 2


def test_a_carrier_event_at_a_naive_time_is_refused(store: SqlStore) -> None:
    naive = CarrierEvent("atlas", datetime(2026, 11, 1, 10, 0), CarrierEventKind.DOWN, "naive")
    with pytest.raises(InvalidInput, match="naive"):
        store.record_carrier_event(naive)
    assert store.list_carrier_events() == []


def test_carrier_capacity_is_set_changed_and_cleared_each_a_catalog_write(
    store: SqlStore,
) -> None:
    store.save_carrier(a_carrier())
    store.save_carrier(replace(a_carrier("orbit"), name="Orbit"))
    revision = store.catalog_revision()

    store.set_carrier_capacity("atlas", 12)
    assert store.carrier_capacities() == {"atlas": 12}
    assert store.catalog_revision() == revision + 1

    store.set_carrier_capacity("orbit", 0)  # out of rotation by capacity, still configured
    store.set_carrier_capacity("atlas", 20)
    assert store.carrier_capacities() == {"atlas": 20, "orbit": 0}
    assert store.catalog_revision() == revision + 3

    store.save_carrier(a_carrier())  # replacing the carrier keeps the operator's cap
    assert store.carrier_capacities() == {"atlas": 20, "orbit": 0}

    store.set_carrier_capacity("atlas", None)
    assert store.carrier_capacities() == {"orbit": 0}
    store.set_carrier_capacity("atlas", None)  # clearing twice is harmless
    assert store.carrier_capacities() == {"orbit": 0}
    assert store.catalog_revision() == revision + 6
    assert count_rows(store, CarrierCapacityRow) == 1


def test_capacity_of_an_unknown_carrier_or_below_zero_is_refused_without_a_bump(
    store: SqlStore,
) -> None:
    store.save_carrier(a_carrier())
    revision = store.catalog_revision()

    with pytest.raises(NotFound, match="no carrier ghost"):
        store.set_carrier_capacity("ghost", 5)
    with pytest.raises(NotFound):
        store.set_carrier_capacity("ghost", None)
    with pytest.raises(InvalidInput, match="0 or more"):
        store.set_carrier_capacity("atlas", -1)

    assert store.catalog_revision() == revision
    assert store.carrier_capacities() == {}


def test_the_database_itself_refuses_a_negative_capacity_and_drops_it_with_its_carrier(
    store: SqlStore,
) -> None:
    store.save_carrier(a_carrier())
    store.set_carrier_capacity("atlas", 3)

    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(update(CarrierCapacityRow).values(effective_channels=-1))
    with store.engine.begin() as connection:
        connection.execute(delete(CarrierRow).where(CarrierRow.code == "atlas"))

    assert store.carrier_capacities() == {}


# -- the operator's data (issue 11), on both databases ------------------------------------------
def a_new_subscription(
    plan_code: str = "maroc-illimite", status: SubscriptionStatus = SubscriptionStatus.ACTIVE
) -> NewSubscription:
    return NewSubscription(plan_code, status, NOV_1, DEC_1)


def test_a_subscriber_with_an_unknown_plan_is_not_created(store: SqlStore) -> None:
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
    store: SqlStore, changes: dict[str, object], field: str
) -> None:
    first = store.add_subscriber(a_new_subscriber())
    if changes.get("phone", "") is None:
        changes = {**changes, "phone": first.phone}
    with pytest.raises(Conflict, match=field):
        store.add_subscriber(a_new_subscriber(**changes))


def test_a_second_running_subscription_is_refused_and_a_plan_change_ends_the_first(
    store: SqlStore,
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


def test_create_is_create_and_update_is_update(store: SqlStore) -> None:
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


def test_a_plan_period_cannot_change_under_running_subscriptions(store: SqlStore) -> None:
    store.add_plan(a_plan())
    store.add_subscriber(a_new_subscriber(), subscription=a_new_subscription())
    with pytest.raises(Conflict, match="running subscription"):
        store.update_plan(a_plan(period=Period.WEEK))
    store.update_plan(a_plan(price=Money(Decimal("11.99"), "EUR")))
    assert store.get_plan("maroc-illimite").period is Period.MONTH


def test_refused_calls_are_recorded_once_and_counted_by_reason(store: SqlStore) -> None:
    def refused(call_id: str, reason: str) -> CallRecord:
        return CallRecord(
            call_id=call_id,
            started_at=NOV_1,
            sip_username="amina",
            dialled="00212661234567",
            ended_at=NOV_1,
            final_sip_code=503,
            refusal_reason=reason,
        )

    assert store.record_refusals([refused("r1", "no_route"), refused("r2", "no_route")]) == 2
    # Asked again (a retransmitted INVITE), and one more: only the new one is written.
    assert store.record_refusals([refused("r1", "no_route"), refused("r3", "fair_use")]) == 1
    store.apply_call_events(answered_call("ok", NOV_1, 30_000), fold)
    assert store.get_call("r1") == refused("r1", "no_route")
    counts = store.count_calls(since=NOV_1, until=DEC_1)
    assert counts == {
        "total": 4,
        "answered": 1,
        "not_answered": 0,
        "refused": 3,
        "refused:fair_use": 1,
        "refused:no_route": 2,
    }
    assert [c.call_id for c in store.list_calls(since=DEC_1)] == []
