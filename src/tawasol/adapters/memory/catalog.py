"""`CatalogStore` in memory: plans, subscribers, subscriptions and carriers, one lock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from tawasol.adapters.clock import system_clock
from tawasol.adapters.memory._aware import utc
from tawasol.domain.carriers import Carrier
from tawasol.domain.catalog import Plan
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.subscribers import Subscriber, Subscription, SubscriptionStatus
from tawasol.services.ports import CatalogSnapshot, NewSubscriber, NewSubscription
from tawasol.services.ports.clock import Clock


class MemoryCatalogStore:
    """The operator's catalog in process memory; every write bumps the revision."""

    def __init__(self, *, clock: Clock = system_clock) -> None:
        self._catalog_lock = threading.RLock()
        self._catalog_clock = clock
        self._revision = 0
        self._plans: dict[str, Plan] = {}
        self._subscribers: dict[int, Subscriber] = {}
        self._subscriptions: dict[int, Subscription] = {}
        self._carriers: dict[str, Carrier] = {}
        self._next_subscriber_id = 1
        self._next_subscription_id = 1

    # -- shared with the carrier runtime store (an operator's cap is a catalog write) ----------
    def bump_revision(self) -> None:
        with self._catalog_lock:
            self._revision += 1

    def has_carrier(self, code: str) -> bool:
        with self._catalog_lock:
            return code in self._carriers

    # -- the port -------------------------------------------------------------------------
    def catalog_revision(self) -> int:
        with self._catalog_lock:
            return self._revision

    def load_catalog(self) -> CatalogSnapshot:
        with self._catalog_lock:
            subscriptions: dict[int, list[Subscription]] = {}
            for subscription in sorted(self._subscriptions.values(), key=lambda item: item.id):
                subscriptions.setdefault(subscription.subscriber_id, []).append(subscription)
            return CatalogSnapshot(
                revision=self._revision,
                plans=dict(sorted(self._plans.items())),
                subscribers={item.sip_username: item for item in self._subscribers.values()},
                subscriptions={key: tuple(items) for key, items in subscriptions.items()},
                carriers=tuple(self.list_carriers()),
            )

    def save_plan(self, plan: Plan) -> None:
        with self._catalog_lock:
            self._revision += 1
            self._plans[plan.code] = plan

    def add_plan(self, plan: Plan) -> None:
        with self._catalog_lock:
            if plan.code in self._plans:
                raise Conflict(f"plan {plan.code} already exists", code=plan.code)
            _check_code_free(self._plans, plan.code, what="plan")
            self.save_plan(plan)

    def update_plan(self, plan: Plan) -> None:
        with self._catalog_lock:
            old = self.get_plan(plan.code)
            if old.period != plan.period:
                running = sum(
                    1
                    for item in self._subscriptions.values()
                    if item.plan_code == plan.code and item.status.current
                )
                if running:
                    raise Conflict(
                        f"plan {plan.code} has {running} running subscription(s) paid by the "
                        f"{old.period.value}: its period cannot become {plan.period.value}; "
                        "create a new plan and stop selling this one (on_sale false)",
                        code=plan.code,
                    )
            self.save_plan(plan)

    def get_plan(self, code: str) -> Plan:
        with self._catalog_lock:
            if code not in self._plans:
                raise NotFound(f"no plan {code}", code=code)
            return self._plans[code]

    def list_plans(self) -> list[Plan]:
        with self._catalog_lock:
            return [self._plans[code] for code in sorted(self._plans)]

    def add_subscriber(
        self, subscriber: NewSubscriber, *, subscription: NewSubscription | None = None
    ) -> Subscriber:
        # Built first so the domain's rules refuse bad input before anything is written.
        created = subscriber.to_subscriber(0)
        if subscription is not None:
            subscription.to_subscription(0, subscriber_id=0)
        with self._catalog_lock:
            self._check_unique(created, owner=None)
            if subscription is not None:
                self._check_references(subscriber_id=None, plan_code=subscription.plan_code)
            created = replace(created, id=self._next_subscriber_id)
            self._next_subscriber_id += 1
            self._revision += 1
            self._subscribers[created.id] = created
            if subscription is not None:
                self._insert_subscription(created.id, subscription)
            return created

    def update_subscriber(self, subscriber: Subscriber) -> None:
        with self._catalog_lock:
            self.get_subscriber(subscriber.id)
            self._check_unique(subscriber, owner=subscriber.id)
            self._revision += 1
            self._subscribers[subscriber.id] = subscriber

    def get_subscriber(self, subscriber_id: int) -> Subscriber:
        with self._catalog_lock:
            if subscriber_id not in self._subscribers:
                raise NotFound(f"no subscriber {subscriber_id}", subscriber_id=subscriber_id)
            return self._subscribers[subscriber_id]

    def find_subscriber(self, sip_username: str) -> Subscriber | None:
        with self._catalog_lock:
            # Unique ignoring case (`_check_unique`): `AMINA` finds amina.
            wanted = sip_username.lower()
            return next(
                (s for s in self._subscribers.values() if s.sip_username.lower() == wanted), None
            )

    def list_subscribers(self, *, offset: int = 0, limit: int = 100) -> list[Subscriber]:
        with self._catalog_lock:
            ordered = [self._subscribers[key] for key in sorted(self._subscribers)]
        return ordered[max(0, offset) :][: max(0, limit)]

    def add_subscription(
        self,
        *,
        subscriber_id: int,
        plan_code: str,
        status: SubscriptionStatus,
        period_start: datetime,
        period_end: datetime,
    ) -> Subscription:
        new = NewSubscription(plan_code, status, period_start, period_end)
        new.to_subscription(0, subscriber_id=subscriber_id)
        with self._catalog_lock:
            self._check_references(subscriber_id=subscriber_id, plan_code=plan_code)
            return self._insert_subscription(subscriber_id, new)

    def change_plan(
        self, *, subscriber_id: int, ended: Subscription | None, new: NewSubscription
    ) -> Subscription:
        new.to_subscription(0, subscriber_id=subscriber_id)
        with self._catalog_lock:
            self._check_references(subscriber_id=subscriber_id, plan_code=new.plan_code)
            previous = None
            if ended is not None:
                previous = self._subscriptions.get(ended.id)
                if previous is None or previous.subscriber_id != subscriber_id:
                    raise NotFound(f"no subscription {ended.id}", subscription_id=ended.id)
                self._subscriptions[ended.id] = replace(
                    previous, status=ended.status, period_end=utc(ended.period_end)
                )
            try:
                return self._insert_subscription(subscriber_id, new)
            except Conflict:
                if previous is not None:  # all or nothing, as the SQL transaction
                    self._subscriptions[previous.id] = previous
                raise

    def update_subscription(self, subscription: Subscription) -> None:
        with self._catalog_lock:
            old = self.get_subscription(subscription.id)
            self._check_references(
                subscriber_id=subscription.subscriber_id, plan_code=subscription.plan_code
            )
            self._revision += 1
            self._subscriptions[subscription.id] = replace(
                subscription,
                period_start=utc(subscription.period_start),
                period_end=utc(subscription.period_end),
                created_at=old.created_at,
            )

    def get_subscription(self, subscription_id: int) -> Subscription:
        with self._catalog_lock:
            if subscription_id not in self._subscriptions:
                raise NotFound(
                    f"no subscription {subscription_id}", subscription_id=subscription_id
                )
            return self._subscriptions[subscription_id]

    def list_subscriptions(self, *, subscriber_id: int | None = None) -> list[Subscription]:
        with self._catalog_lock:
            return [
                self._subscriptions[key]
                for key in sorted(self._subscriptions)
                if subscriber_id is None or self._subscriptions[key].subscriber_id == subscriber_id
            ]

    def save_carrier(self, carrier: Carrier) -> None:
        self._write_carrier(carrier, exists=None)

    def add_carrier(self, carrier: Carrier) -> None:
        self._write_carrier(carrier, exists=False)

    def update_carrier(self, carrier: Carrier) -> None:
        self._write_carrier(carrier, exists=True)

    def holds_operator_data(self) -> bool:
        with self._catalog_lock:
            return bool(self._plans or self._carriers or self._subscribers)

    def get_carrier(self, code: str) -> Carrier:
        with self._catalog_lock:
            if code not in self._carriers:
                raise NotFound(f"no carrier {code}", code=code)
            return self._carriers[code]

    def list_carriers(self) -> list[Carrier]:
        with self._catalog_lock:
            return [self._carriers[code] for code in sorted(self._carriers)]

    # -- rules shared with the SQL store ---------------------------------------------------
    def _write_carrier(self, carrier: Carrier, *, exists: bool | None) -> None:
        with self._catalog_lock:
            known = carrier.code in self._carriers
            if exists is True and not known:
                raise NotFound(f"no carrier {carrier.code}", code=carrier.code)
            if exists is False and known:
                raise Conflict(f"carrier {carrier.code} already exists", code=carrier.code)
            if not known:
                _check_code_free(self._carriers, carrier.code, what="carrier")
            self._revision += 1
            self._carriers[carrier.code] = carrier

    def _check_unique(self, subscriber: Subscriber, *, owner: int | None) -> None:
        """SIP usernames (ignoring case), phones and emails (ignoring case) are unique."""
        unique: tuple[tuple[str, Callable[[Subscriber], str], str], ...] = (
            ("SIP username", lambda s: s.sip_username.lower(), subscriber.sip_username.lower()),
            ("phone", lambda s: s.phone, subscriber.phone),
            ("email", lambda s: s.email.lower(), subscriber.email.lower()),
        )
        for what, key, value in unique:
            if not value:
                continue
            holder = min(
                (s.id for s in self._subscribers.values() if key(s) == value), default=None
            )
            if holder is not None and holder != owner:
                field = what.replace(" ", "_").lower()
                raise Conflict(
                    f"{what} {value} is already taken by subscriber {holder}",
                    **{field: value, "subscriber_id": holder},
                )

    def _check_references(self, *, subscriber_id: int | None, plan_code: str) -> None:
        if subscriber_id is not None and subscriber_id not in self._subscribers:
            raise NotFound(f"no subscriber {subscriber_id}", subscriber_id=subscriber_id)
        if plan_code not in self._plans:
            raise NotFound(f"no plan {plan_code}", code=plan_code)

    def _insert_subscription(self, subscriber_id: int, new: NewSubscription) -> Subscription:
        if new.status.current:
            running = next(
                (
                    item.id
                    for item in self._subscriptions.values()
                    if item.subscriber_id == subscriber_id and item.status.current
                ),
                None,
            )
            if running is not None:
                raise Conflict(
                    f"subscriber {subscriber_id} already has running subscription {running}: "
                    "change their plan (which ends it) rather than add a second one",
                    subscriber_id=subscriber_id,
                    subscription_id=running,
                )
        subscription = replace(
            new.to_subscription(
                self._next_subscription_id,
                subscriber_id=subscriber_id,
                created_at=self._catalog_clock(),
            ),
            period_start=utc(new.period_start),
            period_end=utc(new.period_end),
        )
        self._next_subscription_id += 1
        self._revision += 1
        self._subscriptions[subscription.id] = subscription
        return subscription


def _by_id(subscriber: Subscriber) -> int:
    return subscriber.id


def _check_code_free(taken: Mapping[str, object], code: str, *, what: str) -> None:
    """Plan and carrier codes are identifiers, unique ignoring case (as in the SQL store)."""
    clash = next((existing for existing in taken if existing.lower() == code.lower()), None)
    if clash is not None:
        raise Conflict(
            f"{what} {clash} already exists: codes are unique ignoring case", code=code, taken=clash
        )
