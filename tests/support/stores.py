"""Builders and databases for the store tests (contract and SQL-only): subscriptions, call
events, a PostgreSQL schema of its own per test. The plan, subscriber and carrier they store
come from the sample operator (tests/support/operator.py: `a_plan`, `a_new_subscriber`,
`a_carrier`)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import make_url

from support.operator import DEC_1, NOV_1, a_new_subscriber, a_plan
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.adapters.store.migrate import alembic_config
from tawasol.domain.calls import CallEvent, CallEventType, CallRecord, apply_event, new_record
from tawasol.domain.errors import NotFound
from tawasol.domain.money import Money
from tawasol.domain.subscribers import Subscription, SubscriptionStatus
from tawasol.services.ports import NewSubscription, Store

if TYPE_CHECKING:
    from tawasol.adapters.redis import RedisLiveCounters

POSTGRES_URL = os.environ.get(
    "TAWASOL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


CASABLANCA = ZoneInfo("Africa/Casablanca")
T = TypeVar("T")


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


@contextmanager
def database_at(url: str, revision: str) -> Iterator[Connection]:
    """The database at `url` migrated to exactly `revision` (an older schema), open in one
    transaction: what a previous version left behind, to test the migrations after it."""
    config = alembic_config()
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            yield connection
    finally:
        engine.dispose()


def subscription_for(store: Store, username: str = "amina", **period: datetime) -> Subscription:
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


def a_new_subscription(
    plan_code: str = "maroc-illimite", status: SubscriptionStatus = SubscriptionStatus.ACTIVE
) -> NewSubscription:
    return NewSubscription(plan_code, status, NOV_1, DEC_1)


@contextmanager
def migrated_store(url: str) -> Iterator[SqlStore]:
    """A SqlStore on `url`, migrated to head first; closed afterwards."""
    migrate(url)
    sql_store = SqlStore.from_url(url)
    try:
        yield sql_store
    finally:
        sql_store.close()


# The backends every store contract runs on, as fixture params (`migrated_backend` gives the
# two SQL ones; "memory" is each port's in-memory implementation).
BACKENDS = ("memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


@contextmanager
def migrated_backend(backend: str, tmp_path: Path) -> Iterator[SqlStore]:
    """A SqlStore on a fresh SQLite file in `tmp_path` ("sqlite") or a PostgreSQL schema of its
    own ("postgres"), migrated to head; closed (and the schema dropped) afterwards."""
    with contextlib.ExitStack() as stack:
        url = (
            sqlite_url_for(tmp_path)
            if backend == "sqlite"
            else stack.enter_context(postgres_schema())
        )
        yield stack.enter_context(migrated_store(url))


def on_backend(
    backend: str,
    tmp_path: Path,
    *,
    memory: Callable[[], T],
    sql: Callable[[Engine], T],
) -> Iterator[T]:
    """For a fixture over BACKENDS: `memory()`, or `sql(engine)` on the engine of a migrated
    SqlStore of `backend` (closed afterwards). `yield from on_backend(request.param, ...)`."""
    if backend == "memory":
        yield memory()
        return
    with migrated_backend(backend, tmp_path) as store:
        yield sql(store.engine)


REDIS_URL = os.environ.get("TAWASOL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the test Redis (parallel runs never share keys),
    every key under it deleted afterwards. The braces keep the keys in one cluster slot."""
    import redis

    prefix = f"tawasol-test:{{{uuid.uuid4().hex[:12]}}}"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@contextmanager
def redis_live_counters(prefix: str | None = None) -> Iterator[RedisLiveCounters]:
    """`RedisLiveCounters` on the test Redis, under `prefix` (default: a fresh one)."""
    from tawasol.adapters.redis import connect_live_counters

    with contextlib.ExitStack() as stack:
        if prefix is None:
            prefix = stack.enter_context(redis_prefix())
        counters = connect_live_counters(REDIS_URL, prefix=prefix)
        stack.callback(counters.close)
        yield counters
