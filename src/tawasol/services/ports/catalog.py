"""The catalog's port: plans, subscribers, subscriptions and carriers (the operator's data).

Every write bumps the catalog revision, so each brain's decider knows to reload its snapshot.
Methods return domain values or raise from `domain.errors` (`NotFound`, `Conflict`,
`Unavailable`); no SQLAlchemy type crosses this line. Implemented by
`adapters.store.SqlStore` (SQLite, PostgreSQL) and `adapters.memory.MemoryCatalogStore`; both
pass `tests/contract/test_catalog_store.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tawasol.domain.carriers import Carrier
from tawasol.domain.catalog import Plan
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
    country: str | None = None  # of residence (VAT); None: unknown
    business: bool = False  # a business customer (told of short outages, Factur-X invoices)

    def to_subscriber(self, subscriber_id: int) -> Subscriber:
        """The subscriber under the id the store gave it; the domain's rules (username, time
        zone, HA1) refuse bad input here, before any write."""
        return Subscriber(
            id=subscriber_id,
            name=self.name,
            email=self.email,
            phone=self.phone,
            locale=self.locale,
            time_zone=self.time_zone,
            sip_username=self.sip_username,
            ha1=self.ha1,
            caller_ids=tuple(self.caller_ids),
            country=self.country,
            business=self.business,
        )


@dataclass(frozen=True)
class NewSubscription:
    """A subscription before the store has given it an id."""

    plan_code: str
    status: SubscriptionStatus
    period_start: datetime
    period_end: datetime

    def to_subscription(
        self, subscription_id: int, *, subscriber_id: int, created_at: datetime | None = None
    ) -> Subscription:
        """The subscription under its ids; a naive or inverted period is refused here."""
        return Subscription(
            id=subscription_id,
            subscriber_id=subscriber_id,
            plan_code=self.plan_code,
            status=self.status,
            period_start=self.period_start,
            period_end=self.period_end,
            created_at=created_at,
        )


class CatalogStore(Protocol):
    """The operator's catalog: what the per-call decision reads, and its edits."""

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
