"""The ports the services need from the outside world, as Protocols.

`adapters/store` implements `Store` with SQLAlchemy on SQLite or PostgreSQL; unit tests use an
in-memory fake. Every method either returns domain values or raises from `domain.errors`
(`NotFound`, `Conflict`, `Unavailable`); no SQLAlchemy type crosses this line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from tawasol.domain.calls import CallEvent, CallRecord
from tawasol.domain.carrier_health import CarrierEvent
from tawasol.domain.carriers import Carrier
from tawasol.domain.catalog import Plan
from tawasol.domain.decision import Usage
from tawasol.domain.outages import OutagePeriod
from tawasol.domain.subscribers import Subscriber, Subscription, SubscriptionStatus


@dataclass(frozen=True)
class CatalogSnapshot:
    """Everything the per-call decision reads, as of one catalog revision.

    `subscribers` is keyed by SIP username; `subscriptions` by subscriber id.
    """

    revision: int
    plans: Mapping[str, Plan] = field(default_factory=dict)
    subscribers: Mapping[str, Subscriber] = field(default_factory=dict)
    subscriptions: Mapping[int, Sequence[Subscription]] = field(default_factory=dict)
    carriers: Sequence[Carrier] = ()


@dataclass(frozen=True)
class NewSubscriber:
    """A subscriber before the store has given it an id."""

    name: str
    email: str
    phone: str
    locale: str
    time_zone: str
    sip_username: str
    ha1: str
    caller_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewSubscription:
    """A subscription before the store has given it an id."""

    plan_code: str
    status: SubscriptionStatus
    period_start: datetime
    period_end: datetime


# Folds the events of one call into its record: (record or None if new, events) -> record.
CallFold = Callable[[CallRecord | None, Sequence[CallEvent]], CallRecord]


class Store(Protocol):
    """The system of record: the operator's catalog and the call detail records."""

    # -- catalog: every write bumps the revision, so deciders know to reload ------------------
    def catalog_revision(self) -> int: ...

    def load_catalog(self) -> CatalogSnapshot: ...

    def save_plan(self, plan: Plan) -> None:
        """Create or replace the plan with this code (seeding, tests)."""

    def add_plan(self, plan: Plan) -> None:
        """Create a plan; raises Conflict when the code is taken."""

    def update_plan(self, plan: Plan) -> None:
        """Replace a plan; raises NotFound, or Conflict when its period would change under
        running subscriptions."""

    def get_plan(self, code: str) -> Plan:
        """Raises NotFound."""
        ...

    def list_plans(self) -> list[Plan]: ...

    def add_subscriber(
        self, subscriber: NewSubscriber, *, subscription: NewSubscription | None = None
    ) -> Subscriber:
        """Create a subscriber and optionally their first subscription, all or nothing.
        Raises Conflict when the SIP username (any case), phone or email is taken."""
        ...

    def update_subscriber(self, subscriber: Subscriber) -> None:
        """Raises NotFound, or Conflict when the new SIP username is taken."""

    def get_subscriber(self, subscriber_id: int) -> Subscriber:
        """Raises NotFound."""
        ...

    def find_subscriber(self, sip_username: str) -> Subscriber | None: ...

    def list_subscribers(self, *, offset: int = 0, limit: int = 100) -> list[Subscriber]: ...

    def add_subscription(
        self,
        *,
        subscriber_id: int,
        plan_code: str,
        status: SubscriptionStatus,
        period_start: datetime,
        period_end: datetime,
    ) -> Subscription:
        """Raises NotFound when the subscriber or plan does not exist."""
        ...

    def change_plan(
        self, *, subscriber_id: int, ended: Subscription | None, new: NewSubscription
    ) -> Subscription:
        """In one transaction, write `ended` (the running subscription with its final status)
        and add `new`."""
        ...

    def update_subscription(self, subscription: Subscription) -> None:
        """Raises NotFound."""

    def get_subscription(self, subscription_id: int) -> Subscription:
        """Raises NotFound."""
        ...

    def list_subscriptions(self, *, subscriber_id: int | None = None) -> list[Subscription]: ...

    def save_carrier(self, carrier: Carrier) -> None:
        """Create or replace the carrier with this code, its gateways, destinations and rates
        (seeding, tests)."""

    def add_carrier(self, carrier: Carrier) -> None:
        """Create a carrier; raises Conflict when the code is taken."""

    def update_carrier(self, carrier: Carrier) -> None:
        """Replace a carrier and its children; raises NotFound."""

    def holds_operator_data(self) -> bool:
        """True when any plan, carrier or subscriber exists."""
        ...

    def get_carrier(self, code: str) -> Carrier:
        """Raises NotFound."""
        ...

    def list_carriers(self) -> list[Carrier]: ...

    # -- calls ------------------------------------------------------------------------------
    def apply_call_events(self, events: Sequence[CallEvent], fold: CallFold) -> list[CallRecord]:
        """In one transaction, per call id: lock the record (if any), fold the events, upsert.

        Returns the resulting records. Concurrent calls for the same call id are serialised.
        """
        ...

    def record_refusals(self, records: Sequence[CallRecord]) -> int:
        """Insert refused calls' records (a call id already stored is kept); how many new."""
        ...

    def count_calls(self, *, since: datetime, until: datetime) -> dict[str, int]:
        """Calls started in [since, until): `total`, `answered`, `not_answered`, `refused`, and
        `refused:<reason code>` per reason."""
        ...

    def get_call(self, call_id: str) -> CallRecord | None: ...

    def list_calls(
        self,
        *,
        subscriber_id: int | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[CallRecord]:
        """Newest first; with `since`, those started at or after it."""
        ...

    def open_calls(self, *, started_after: datetime) -> list[CallRecord]:
        """Calls not finished (no end, no failure) that started after the given time."""
        ...

    def usage(
        self, subscriptions: Sequence[Subscription], *, now: datetime, open_call_horizon: timedelta
    ) -> dict[int, Usage]:
        """Per subscription id, its use in its current period [period_start, period_end):
        answered seconds of finished calls, distinct destinations called (answered or not), and
        calls not finished that started after `now - open_call_horizon`."""
        ...

    def calls_since(self, *, since: datetime, limit: int = 100_000) -> list[CallRecord]:
        """Calls started at or after `since`, with their attempts, oldest first (to warm the
        quality windows after a restart)."""
        ...

    # -- carriers at run time -----------------------------------------------------------------
    def record_carrier_event(self, event: CarrierEvent) -> None:
        """Append a carrier state change (down, up, capacity learned/raised/restored/set)."""

    def list_carrier_events(
        self, *, carrier: str | None = None, limit: int = 100
    ) -> list[CarrierEvent]:
        """Newest first."""
        ...

    def set_carrier_capacity(self, code: str, effective_channels: int | None) -> None:
        """An operator's cap on a carrier's simultaneous calls (None: as contracted).
        Raises NotFound. Bumps the catalog revision so every brain applies it."""

    def carrier_capacities(self) -> dict[str, int]:
        """Operator-set caps by carrier code (carriers without one are absent)."""
        ...

    def close(self) -> None: ...


class OutageHistory(Protocol):
    """Customer-facing outage periods, recorded by the incidents service, read by billing.

    Times are timezone-aware UTC datetimes. Raises `Unavailable` when the store cannot answer.
    """

    def outage_periods(self, *, start: datetime, end: datetime) -> Sequence[OutagePeriod]:
        """Every outage period overlapping [start, end), open ones included, oldest first."""
        ...

    def closed_incidents_since(self, since: datetime) -> Sequence[int]:
        """Ids of customer-facing incidents resolved at or after `since` (for credit runs)."""
        ...
