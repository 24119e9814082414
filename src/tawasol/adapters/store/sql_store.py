"""`SqlStore`: the system of record on SQLite or PostgreSQL, behind the `Store` port.

Each public method is one transaction. Writers on SQLite begin with BEGIN IMMEDIATE so they
queue on the busy timeout instead of failing half-way; PostgreSQL locks the rows it changes.
Every catalog write (plans, subscribers, subscriptions, carriers and their capacity caps) bumps
the one-row catalog revision in the same transaction, so a decider that sees a new revision sees
the whole change; `load_catalog` reads everything in one snapshot (REPEATABLE READ on PostgreSQL).
Database errors leave this module only as `NotFound`, `Conflict`, `InvalidInput` or
`Unavailable` (see `engine.translate`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, delete, exc, func, insert, select, update
from sqlalchemy.orm import Session

from tawasol.adapters.clock import system_clock
from tawasol.adapters.store import call_queries, mapping
from tawasol.adapters.store.engine import (
    SQLITE_BEGIN,
    create_store_engine,
    describe_url,
    is_retryable,
    translate,
    translated,
)
from tawasol.adapters.store.models import (
    CarrierCapacityRow,
    CarrierDestinationRow,
    CarrierEventRow,
    CarrierGatewayRow,
    CarrierRateRow,
    CarrierRow,
    CatalogRevisionRow,
    PlanRow,
    SubscriberRow,
    SubscriptionRow,
)
from tawasol.domain.calls import CallEvent, CallRecord
from tawasol.domain.carrier_health import CarrierEvent, check_operator_cap
from tawasol.domain.carriers import Carrier, Rate
from tawasol.domain.catalog import Plan
from tawasol.domain.decision import Usage
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.subscribers import Subscriber, Subscription, SubscriptionStatus
from tawasol.services.ports import (
    CallFold,
    CatalogSnapshot,
    NewSubscriber,
    NewSubscription,
    Store,
)
from tawasol.services.ports.clock import Clock

T = TypeVar("T")

# A transaction that lost a race on PostgreSQL (two inserts of one new call id, a deadlock) is
# run again from the start; a few tries always suffice since the loser then finds the row.
MAX_TRIES = 8


class SqlStore:
    """The `Store` port on SQLAlchemy. Thread-safe: each call checks out its own connection."""

    def __init__(self, engine: Engine, *, clock: Clock = system_clock) -> None:
        """`clock` stamps rows' creation and update times (the brain's one clock)."""
        self._engine = engine
        self._clock = clock
        self._database = describe_url(engine.url)
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer: Engine
        self._snapshot: Engine
        if self._sqlite:
            self._writer = engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            self._snapshot = engine
        else:
            self._writer = engine
            # One consistent view for a multi-query read such as load_catalog.
            self._snapshot = engine.execution_options(isolation_level="REPEATABLE READ")

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = system_clock) -> SqlStore:
        """A store on `sqlite:///path/tawasol.db` or `postgresql+psycopg://user@host/db`."""
        with translated(describe_url(url)):
            return cls(create_store_engine(url), clock=clock)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # -- transactions -----------------------------------------------------------------------
    @contextmanager
    def _session(self, bind: Engine) -> Iterator[Session]:
        with (
            translated(self._database),
            Session(bind, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def _catalog_write(self) -> Iterator[Session]:
        """A write transaction that first bumps the catalog revision.

        Bumping first takes the revision row's lock on PostgreSQL, so catalog writers queue
        one behind the other (they are rare) and a "create or replace" never races another
        into a duplicate key; SQLite's BEGIN IMMEDIATE gives the same order. A write that
        fails rolls its bump back with it.
        """
        with self._session(self._writer) as session:
            bump_catalog_revision(session)
            yield session

    # -- catalog ----------------------------------------------------------------------------
    def catalog_revision(self) -> int:
        with self._session(self._engine) as session:
            return _revision(session)

    def load_catalog(self) -> CatalogSnapshot:
        with self._session(self._snapshot) as session:
            revision = _revision(session)
            plans = {plan.code: plan for plan in _plans(session)}
            subscribers = {
                row.sip_username: mapping.subscriber_from_row(row)
                for row in session.scalars(select(SubscriberRow))
            }
            subscriptions: dict[int, list[Subscription]] = {}
            for row in session.scalars(select(SubscriptionRow).order_by(SubscriptionRow.id)):
                item = mapping.subscription_from_row(row)
                subscriptions.setdefault(item.subscriber_id, []).append(item)
            carriers = _carriers(session)
        return CatalogSnapshot(
            revision=revision,
            plans=plans,
            subscribers=subscribers,
            subscriptions={key: tuple(items) for key, items in subscriptions.items()},
            carriers=tuple(carriers),
        )

    def save_plan(self, plan: Plan) -> None:
        values = mapping.plan_values(plan)
        with self._catalog_write() as session:
            row = session.get(PlanRow, plan.code, with_for_update=True)
            if row is None:
                session.add(PlanRow(**values))
            else:
                for name, value in values.items():
                    setattr(row, name, value)

    def add_plan(self, plan: Plan) -> None:
        """Create a plan; unlike `save_plan`, raises Conflict when the code is taken."""
        values = mapping.plan_values(plan)
        with self._catalog_write() as session:
            if session.get(PlanRow, plan.code) is not None:
                raise Conflict(f"plan {plan.code} already exists", code=plan.code)
            _check_code_free(session, PlanRow.code, plan.code, what="plan")
            session.add(PlanRow(**values))

    def update_plan(self, plan: Plan) -> None:
        """Replace an existing plan; raises NotFound, or Conflict when its period would change
        under subscriptions still running on it (their periods were cut to the old one)."""
        values = mapping.plan_values(plan)
        with self._catalog_write() as session:
            row = session.get(PlanRow, plan.code, with_for_update=True)
            if row is None:
                raise NotFound(f"no plan {plan.code}", code=plan.code)
            if row.period != values["period"]:
                running = session.scalar(
                    select(func.count())
                    .select_from(SubscriptionRow)
                    .where(
                        SubscriptionRow.plan_code == plan.code,
                        SubscriptionRow.status.in_(_CURRENT_STATUSES),
                    )
                )
                if running:
                    raise Conflict(
                        f"plan {plan.code} has {running} running subscription(s) paid by the "
                        f"{row.period}: its period cannot become {values['period']}; "
                        "create a new plan and stop selling this one (on_sale false)",
                        code=plan.code,
                    )
            for name, value in values.items():
                setattr(row, name, value)

    def get_plan(self, code: str) -> Plan:
        with self._session(self._engine) as session:
            row = session.get(PlanRow, code)
            if row is None:
                raise NotFound(f"no plan {code}", code=code)
            return mapping.plan_from_row(row)

    def list_plans(self) -> list[Plan]:
        with self._session(self._engine) as session:
            return _plans(session)

    def add_subscriber(
        self, subscriber: NewSubscriber, *, subscription: NewSubscription | None = None
    ) -> Subscriber:
        """Create a subscriber and, in the same transaction, their first subscription: either
        both are written or neither (a bad plan leaves no subscriber behind)."""
        # Built first so the domain's rules (username, time zone, HA1) refuse bad input early.
        subscriber.to_subscriber(0)
        if subscription is not None:
            subscription.to_subscription(0, subscriber_id=0)
        with self._catalog_write() as session:
            _check_unique(session, subscriber, owner=None)
            fields = _subscriber_fields(subscriber)
            row = SubscriberRow(**{**fields, "caller_ids": list(subscriber.caller_ids)})
            session.add(row)
            session.flush()
            if subscription is not None:
                _insert_subscription(session, row.id, subscription, created_at=self._clock())
            return mapping.subscriber_from_row(row)

    def update_subscriber(self, subscriber: Subscriber) -> None:
        with self._catalog_write() as session:
            row = session.get(SubscriberRow, subscriber.id, with_for_update=True)
            if row is None:
                raise NotFound(f"no subscriber {subscriber.id}", subscriber_id=subscriber.id)
            _check_unique(session, subscriber, owner=subscriber.id)
            row.name = subscriber.name
            row.email = subscriber.email
            row.phone = subscriber.phone
            row.locale = subscriber.locale
            row.time_zone = subscriber.time_zone
            row.sip_username = subscriber.sip_username
            row.ha1 = subscriber.ha1
            row.caller_ids = list(subscriber.caller_ids)
            row.country = subscriber.country
            row.business = subscriber.business

    def get_subscriber(self, subscriber_id: int) -> Subscriber:
        with self._session(self._engine) as session:
            row = session.get(SubscriberRow, subscriber_id)
            if row is None:
                raise NotFound(f"no subscriber {subscriber_id}", subscriber_id=subscriber_id)
            return mapping.subscriber_from_row(row)

    def find_subscriber(self, sip_username: str) -> Subscriber | None:
        with self._session(self._engine) as session:
            # Unique ignoring case (`_check_unique`): `AMINA` finds amina.
            row = session.scalar(
                select(SubscriberRow).where(
                    func.lower(SubscriberRow.sip_username) == sip_username.lower()
                )
            )
            return None if row is None else mapping.subscriber_from_row(row)

    def list_subscribers(self, *, offset: int = 0, limit: int = 100) -> list[Subscriber]:
        statement = (
            select(SubscriberRow)
            .order_by(SubscriberRow.id)
            .offset(max(0, offset))
            .limit(max(0, limit))
        )
        with self._session(self._engine) as session:
            return [mapping.subscriber_from_row(row) for row in session.scalars(statement)]

    def add_subscription(
        self,
        *,
        subscriber_id: int,
        plan_code: str,
        status: SubscriptionStatus,
        period_start: datetime,
        period_end: datetime,
    ) -> Subscription:
        """Raises NotFound, or Conflict when the subscriber already has a running
        subscription and this one would be a second (see `change_plan`)."""
        new = NewSubscription(plan_code, status, period_start, period_end)
        # Built first so the domain refuses a naive or inverted period before any write.
        new.to_subscription(0, subscriber_id=subscriber_id)
        with self._catalog_write() as session:
            _check_references(session, subscriber_id=subscriber_id, plan_code=plan_code)
            return _insert_subscription(session, subscriber_id, new, created_at=self._clock())

    def change_plan(
        self, *, subscriber_id: int, ended: Subscription | None, new: NewSubscription
    ) -> Subscription:
        """In one transaction: write `ended` (the running subscription, with its final
        status) and add `new`. Raises Conflict when `ended` is no longer the running one."""
        new.to_subscription(0, subscriber_id=subscriber_id)
        with self._catalog_write() as session:
            _check_references(session, subscriber_id=subscriber_id, plan_code=new.plan_code)
            if ended is not None:
                row = session.get(SubscriptionRow, ended.id, with_for_update=True)
                if row is None or row.subscriber_id != subscriber_id:
                    raise NotFound(f"no subscription {ended.id}", subscription_id=ended.id)
                row.status = ended.status.value
                row.period_end = ended.period_end
                session.flush()
            return _insert_subscription(session, subscriber_id, new, created_at=self._clock())

    def update_subscription(self, subscription: Subscription) -> None:
        with self._catalog_write() as session:
            row = session.get(SubscriptionRow, subscription.id, with_for_update=True)
            if row is None:
                raise NotFound(
                    f"no subscription {subscription.id}", subscription_id=subscription.id
                )
            _check_references(
                session, subscriber_id=subscription.subscriber_id, plan_code=subscription.plan_code
            )
            row.subscriber_id = subscription.subscriber_id
            row.plan_code = subscription.plan_code
            row.status = subscription.status.value
            row.period_start = subscription.period_start
            row.period_end = subscription.period_end

    def get_subscription(self, subscription_id: int) -> Subscription:
        with self._session(self._engine) as session:
            row = session.get(SubscriptionRow, subscription_id)
            if row is None:
                raise NotFound(
                    f"no subscription {subscription_id}", subscription_id=subscription_id
                )
            return mapping.subscription_from_row(row)

    def list_subscriptions(self, *, subscriber_id: int | None = None) -> list[Subscription]:
        statement = select(SubscriptionRow).order_by(SubscriptionRow.id)
        if subscriber_id is not None:
            statement = statement.where(SubscriptionRow.subscriber_id == subscriber_id)
        with self._session(self._engine) as session:
            return [mapping.subscription_from_row(row) for row in session.scalars(statement)]

    def save_carrier(self, carrier: Carrier) -> None:
        """Create or replace a carrier (seeding and tests; the admin paths say which)."""
        with self._catalog_write() as session:
            _write_carrier(session, carrier, exists=None)

    def add_carrier(self, carrier: Carrier) -> None:
        """Create a carrier; raises Conflict when the code is taken."""
        with self._catalog_write() as session:
            _write_carrier(session, carrier, exists=False)

    def update_carrier(self, carrier: Carrier) -> None:
        """Replace an existing carrier with its children; raises NotFound."""
        with self._catalog_write() as session:
            _write_carrier(session, carrier, exists=True)

    def holds_operator_data(self) -> bool:
        """True when any plan, carrier or subscriber exists (the sample operator is only ever
        loaded into a database without any)."""
        with self._session(self._engine) as session:
            return any(
                session.scalar(select(table).limit(1)) is not None
                for table in (PlanRow.code, CarrierRow.code, SubscriberRow.id)
            )

    def get_carrier(self, code: str) -> Carrier:
        with self._session(self._engine) as session:
            carriers = _carriers(session, code=code)
        if not carriers:
            raise NotFound(f"no carrier {code}", code=code)
        return carriers[0]

    def list_carriers(self) -> list[Carrier]:
        with self._session(self._engine) as session:
            return _carriers(session)

    # -- carriers at run time ---------------------------------------------------------------
    def record_carrier_event(self, event: CarrierEvent) -> None:
        """Append to the carrier event log; not a catalog write (no revision bump)."""
        values = mapping.carrier_event_values(event)
        with self._session(self._writer) as session:
            session.add(CarrierEventRow(**values))

    def list_carrier_events(
        self, *, carrier: str | None = None, limit: int = 100
    ) -> list[CarrierEvent]:
        """Newest first; events recorded at the same instant, the last recorded first."""
        statement = select(CarrierEventRow).order_by(
            CarrierEventRow.at.desc(), CarrierEventRow.id.desc()
        )
        if carrier is not None:
            statement = statement.where(CarrierEventRow.carrier_code == carrier)
        with self._session(self._engine) as session:
            rows = session.scalars(statement.limit(max(0, limit)))
            return [mapping.carrier_event_from_row(row) for row in rows]

    def set_carrier_capacity(self, code: str, effective_channels: int | None) -> None:
        """Cap a carrier's simultaneous calls, or with None go back to its contract.

        0 is allowed: the carrier stays configured but takes no call, by capacity. A catalog
        write, so every brain's next reload applies it.
        """
        check_operator_cap(code, effective_channels)
        with self._catalog_write() as session:
            if session.get(CarrierRow, code) is None:
                raise NotFound(f"no carrier {code}", code=code)
            row = session.get(CarrierCapacityRow, code, with_for_update=True)
            if effective_channels is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(
                    CarrierCapacityRow(
                        carrier_code=code,
                        effective_channels=effective_channels,
                        updated_at=self._clock(),
                    )
                )
            else:
                row.effective_channels = effective_channels
                row.updated_at = self._clock()

    def carrier_capacities(self) -> dict[str, int]:
        statement = select(CarrierCapacityRow.carrier_code, CarrierCapacityRow.effective_channels)
        with self._session(self._engine) as session:
            return {code: channels for code, channels in session.execute(statement)}

    # -- calls ------------------------------------------------------------------------------
    def apply_call_events(self, events: Sequence[CallEvent], fold: CallFold) -> list[CallRecord]:
        """Fold events per call id under a lock and upsert the records, in one transaction.

        On PostgreSQL two transactions may both find a new call id absent and both insert it;
        the second fails on the unique key and the whole transaction is run again, when it
        finds and locks the first one's row. `fold` must therefore be pure.
        """
        if not events:
            return []

        def attempt() -> list[CallRecord]:
            with Session(self._writer, expire_on_commit=False) as session, session.begin():
                return call_queries.fold_and_upsert(session, events, fold, lock=not self._sqlite)

        return self._retrying(attempt)

    def record_refusals(self, records: Sequence[CallRecord]) -> int:
        """Write refused calls as call records in one transaction; a call id already stored
        is left as it is. Returns how many were new."""
        if not records:
            return 0

        def attempt() -> int:
            with Session(self._writer, expire_on_commit=False) as session, session.begin():
                return call_queries.insert_new_calls(session, records)

        return self._retrying(attempt)

    def count_calls(self, *, since: datetime, until: datetime) -> dict[str, int]:
        """Calls started in [since, until) by outcome and refusal reason."""
        with self._session(self._engine) as session:
            return call_queries.count_calls(session, since=since, until=until)

    def get_call(self, call_id: str) -> CallRecord | None:
        with self._session(self._engine) as session:
            _, records = call_queries.load_records(session, [call_id], lock=False)
            return records.get(call_id)

    def list_calls(
        self,
        *,
        subscriber_id: int | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[CallRecord]:
        with self._session(self._engine) as session:
            return call_queries.list_calls(
                session, subscriber_id=subscriber_id, since=since, limit=limit
            )

    def open_calls(self, *, started_after: datetime) -> list[CallRecord]:
        """Calls not finished (no end, no failure) that started after `started_after`, oldest
        first."""
        with self._session(self._engine) as session:
            return call_queries.open_calls(session, started_after=started_after)

    def calls_since(self, *, since: datetime, limit: int = 100_000) -> list[CallRecord]:
        """Calls started at or after `since`, with their attempts, oldest first."""
        with self._session(self._engine) as session:
            return call_queries.calls_since(session, since=since, limit=limit)

    def usage(
        self, subscriptions: Sequence[Subscription], *, now: datetime, open_call_horizon: timedelta
    ) -> dict[int, Usage]:
        if not subscriptions:
            return {}
        with self._session(self._engine) as session:
            return call_queries.usage(
                session, subscriptions, now=now, open_call_horizon=open_call_horizon
            )

    def _retrying(self, work: Callable[[], T]) -> T:
        for tries in range(1, MAX_TRIES + 1):
            try:
                return work()
            except exc.DBAPIError as error:
                if tries == MAX_TRIES or self._sqlite or not is_retryable(error):
                    raise translate(error, database=self._database) from error
            except exc.SQLAlchemyError as error:
                raise translate(error, database=self._database) from error
            # Jitter so that the racers do not collide again in lockstep.
            time.sleep(random.uniform(0, 0.005 * tries))
        raise AssertionError("unreachable")  # pragma: no cover


# -- helpers inside a transaction -------------------------------------------------------------
def _revision(session: Session) -> int:
    value = session.scalar(select(CatalogRevisionRow.revision).where(CatalogRevisionRow.id == 1))
    return int(value or 0)


def bump_catalog_revision(session: Session) -> None:
    result = session.execute(
        update(CatalogRevisionRow)
        .where(CatalogRevisionRow.id == 1)
        .values(revision=CatalogRevisionRow.revision + 1)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(CatalogRevisionRow(id=1, revision=1))


def _plans(session: Session) -> list[Plan]:
    rows = session.scalars(select(PlanRow).order_by(PlanRow.code))
    return [mapping.plan_from_row(row) for row in rows]


def _carriers(session: Session, *, code: str | None = None) -> list[Carrier]:
    """Carriers with their children in four queries, whatever the number of carriers."""
    rows = select(CarrierRow).order_by(CarrierRow.code)
    gateways = select(CarrierGatewayRow)
    destinations = select(CarrierDestinationRow)
    rate_table = CarrierRateRow.__table__.c
    rates = select(
        rate_table.carrier_code,
        rate_table.prefix,
        rate_table.per_minute_amount,
        rate_table.currency,
        rate_table.effective_from,
        rate_table.increment_first_seconds,
        rate_table.increment_next_seconds,
    )
    if code is not None:
        rows = rows.where(CarrierRow.code == code)
        gateways = gateways.where(CarrierGatewayRow.carrier_code == code)
        destinations = destinations.where(CarrierDestinationRow.carrier_code == code)
        rates = rates.where(rate_table.carrier_code == code)
    gateways_of: dict[str, list[CarrierGatewayRow]] = {}
    for gateway in session.scalars(gateways):
        gateways_of.setdefault(gateway.carrier_code, []).append(gateway)
    destinations_of: dict[str, list[CarrierDestinationRow]] = {}
    for destination in session.scalars(destinations):
        destinations_of.setdefault(destination.carrier_code, []).append(destination)
    rates_of: dict[str, list[Rate]] = {}
    for carrier_code, *values in session.execute(rates):
        rates_of.setdefault(carrier_code, []).append(mapping.rate_from_tuple(values))
    return [
        mapping.carrier_from_rows(
            row,
            gateways_of.get(row.code, []),
            destinations_of.get(row.code, []),
            rates_of.get(row.code, []),
        )
        for row in session.scalars(rows)
    ]


def _check_code_free(session: Session, column: Any, code: str, *, what: str) -> None:
    """Plan and carrier codes are identifiers, unique ignoring case: `MA-MINUTE` next to
    `ma-minute` would be a second carrier routed by mistake. Raises Conflict naming the code
    that exists; checked inside the catalog write, like `_check_unique`."""
    taken = session.scalar(select(column).where(func.lower(column) == code.lower()).limit(1))
    if taken is not None:
        raise Conflict(
            f"{what} {taken} already exists: codes are unique ignoring case", code=code, taken=taken
        )


def _check_unique(
    session: Session, subscriber: NewSubscriber | Subscriber, *, owner: int | None
) -> None:
    """SIP usernames are unique ignoring case (`AMINA` and `amina` are one person to a support
    desk and to most phones' settings screens), and so are phones and emails: two subscribers
    on one phone or email cannot be told apart by the portal, receipts or support. Checked
    inside the catalog write, which every catalog writer queues on, so two adds cannot race."""
    unique = (
        ("SIP username", func.lower(SubscriberRow.sip_username), subscriber.sip_username.lower()),
        ("phone", SubscriberRow.phone, subscriber.phone),
        ("email", func.lower(SubscriberRow.email), subscriber.email.lower()),
    )
    for what, column, value in unique:
        if not value:
            continue  # no email given: nothing to collide with
        holder = session.scalar(select(SubscriberRow.id).where(column == value).limit(1))
        if holder is not None and holder != owner:
            field = what.replace(" ", "_").lower()
            raise Conflict(
                f"{what} {value} is already taken by subscriber {holder}",
                **{field: value, "subscriber_id": holder},
            )


# Statuses of a subscription that has not ended (`SubscriptionStatus.current`).
_CURRENT_STATUSES = tuple(status.value for status in SubscriptionStatus if status.current)


def _insert_subscription(
    session: Session, subscriber_id: int, new: NewSubscription, *, created_at: datetime
) -> Subscription:
    """Add a subscription; a running one is refused when the subscriber has one already."""
    if new.status.current:
        running = session.scalar(
            select(SubscriptionRow.id)
            .where(
                SubscriptionRow.subscriber_id == subscriber_id,
                SubscriptionRow.status.in_(_CURRENT_STATUSES),
            )
            .limit(1)
        )
        if running is not None:
            raise Conflict(
                f"subscriber {subscriber_id} already has running subscription {running}: "
                "change their plan (which ends it) rather than add a second one",
                subscriber_id=subscriber_id,
                subscription_id=running,
            )
    row = SubscriptionRow(
        subscriber_id=subscriber_id,
        plan_code=new.plan_code,
        status=new.status.value,
        period_start=new.period_start,
        period_end=new.period_end,
        created_at=created_at,
    )
    session.add(row)
    session.flush()
    return mapping.subscription_from_row(row)


def _write_carrier(session: Session, carrier: Carrier, *, exists: bool | None) -> None:
    """Write a carrier and replace its children. `exists`: True (must exist, update), False
    (must not, create) or None (either)."""
    values = mapping.carrier_values(carrier)
    row = session.get(CarrierRow, carrier.code, with_for_update=True)
    if exists is True and row is None:
        raise NotFound(f"no carrier {carrier.code}", code=carrier.code)
    if exists is False and row is not None:
        raise Conflict(f"carrier {carrier.code} already exists", code=carrier.code)
    if row is None:
        _check_code_free(session, CarrierRow.code, carrier.code, what="carrier")
        session.add(CarrierRow(**values))
        session.flush()
    else:
        for name, value in values.items():
            setattr(row, name, value)
    for child in (CarrierGatewayRow, CarrierDestinationRow, CarrierRateRow):
        session.execute(delete(child).where(child.carrier_code == carrier.code))
    # ORM bulk INSERT: batched multi-row statements, no ORM object per rate.
    for child, rows in (
        (CarrierGatewayRow, mapping.gateway_values(carrier)),
        (CarrierDestinationRow, mapping.destination_values(carrier)),
        (CarrierRateRow, mapping.rate_values(carrier)),
    ):
        if rows:
            session.execute(insert(child), rows)


def _check_references(session: Session, *, subscriber_id: int, plan_code: str) -> None:
    if session.get(SubscriberRow, subscriber_id) is None:
        raise NotFound(f"no subscriber {subscriber_id}", subscriber_id=subscriber_id)
    if session.get(PlanRow, plan_code) is None:
        raise NotFound(f"no plan {plan_code}", code=plan_code)


def _subscriber_fields(subscriber: NewSubscriber) -> dict[str, Any]:
    return {
        "name": subscriber.name,
        "email": subscriber.email,
        "phone": subscriber.phone,
        "locale": subscriber.locale,
        "time_zone": subscriber.time_zone,
        "sip_username": subscriber.sip_username,
        "ha1": subscriber.ha1,
        "caller_ids": tuple(subscriber.caller_ids),
        "country": subscriber.country,
        "business": subscriber.business,
    }


if TYPE_CHECKING:

    def _implements_the_port(store: SqlStore) -> Store:
        """mypy fails here, next to the code, when the port gains a method we lack."""
        return store
