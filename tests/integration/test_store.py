"""The system of record against real databases: the same suite on SQLite and on PostgreSQL.

Every PostgreSQL test gets a schema of its own (created, migrated into and dropped around it),
so tests never see each other's rows. PostgreSQL must be reachable at TAWASOL_TEST_POSTGRES_URL:
when it is not, these tests fail rather than skip, because CI starts it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

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
from sqlalchemy.exc import IntegrityError

from support.operator import NOV_1, a_carrier, a_plan
from support.stores import answered_call, fold, migrated_store, postgres_schema, rated
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
from tawasol.domain.calls import CallEvent, CallRecord
from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
from tawasol.domain.carriers import (
    Rate,
)
from tawasol.domain.catalog import (
    CostCeiling,
    Plan,
)
from tawasol.domain.errors import (
    InvalidConfiguration,
    InvalidInput,
    NotFound,
    Unavailable,
)
from tawasol.domain.money import Money


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
    with migrated_store(database_url) as sql_store:
        yield sql_store


def count_rows(store: SqlStore, table: type[Base]) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(table)) or 0)


# -- migrations -----------------------------------------------------------------------------------
def test_given_empty_database_when_migrated_twice_then_schema_is_at_head(database_url: str) -> None:
    assert current_revision(database_url) is None

    migrate(database_url)
    migrate(database_url)

    assert current_revision(database_url) == head_revision() == "0013"
    store = SqlStore.from_url(database_url)
    try:
        assert store.catalog_revision() == 0
        tables = set(inspect(store.engine).get_table_names())
        assert {"plans", "subscribers", "subscriptions", "carriers", "carrier_rates"} <= tables
        assert {"calls", "call_attempts", "catalog_revision", "alembic_version"} <= tables
        assert {"payment_methods", "payments", "payment_events", "dunning_cases"} <= tables
        assert {"sepa_mandates", "sepa_collections", "sepa_batches", "sepa_transfers"} <= tables
        assert {"carrier_events", "carrier_capacities"} <= tables
        assert {"incidents", "incident_updates", "incident_impact", "incident_audit"} <= tables
        assert {"notices", "notice_parts"} <= tables
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
        # added by 0009 (direct numbers)
        "access",
        "inbound_trunk",
        "caller_id",
        "inbound_cost_amount",
        "inbound_cost_currency",
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


def test_amounts_that_cannot_be_stored_exactly_are_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="6 decimal places"):
        store.save_plan(a_plan(price=Money(Decimal("9.9999999"), "EUR")))
    with pytest.raises(InvalidInput, match="12 integer digits"):
        store.save_carrier(a_carrier(rates=[Rate("1", Money(Decimal("1E+12"), "EUR"), NOV_1)]))
    with pytest.raises(NotFound):
        store.get_plan("maroc-illimite")
    store.save_plan(a_plan(price=Money(Decimal("1E+2"), "EUR")))
    assert str(store.get_plan("maroc-illimite").price.amount) == "100"


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


def test_a_cost_ceiling_that_cannot_be_stored_exactly_is_refused(store: SqlStore) -> None:
    too_fine = CostCeiling("MA", Money(Decimal("0.0000001"), "EUR"))
    with pytest.raises(InvalidInput, match="6 decimal places"):
        store.save_plan(a_plan(cost_ceilings=(too_fine,)))
    with pytest.raises(NotFound):
        store.get_plan("maroc-illimite")


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


def test_carrier_events_need_no_carrier_row_and_outlive_it(store: SqlStore) -> None:
    store.save_carrier(a_carrier())
    event = CarrierEvent("atlas", NOV_1, CarrierEventKind.DOWN, "dead")
    store.record_carrier_event(event)
    store.record_carrier_event(CarrierEvent("ghost", NOV_1, CarrierEventKind.UP, "unknown"))

    with store.engine.begin() as connection:
        connection.execute(delete(CarrierRow).where(CarrierRow.code == "atlas"))

    assert store.list_carrier_events(carrier="atlas") == [event]
    assert count_rows(store, CarrierEventRow) == 2


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
