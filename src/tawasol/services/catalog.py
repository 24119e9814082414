"""Manage the operator's catalog: plans, subscribers, subscriptions and carriers.

These use cases back the admin API and the CLI. Every write goes through the store (which bumps
the catalog revision, so other brain replicas reload) and tells this brain's authorizer to
reload at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import phonenumbers

from tawasol.domain.carriers import Carrier, RateDeck
from tawasol.domain.catalog import Plan
from tawasol.domain.errors import InvalidInput
from tawasol.domain.subscribers import (
    Subscriber,
    Subscription,
    SubscriptionStatus,
    digest_ha1,
    validate_sip_username,
    validate_time_zone,
)
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.ports import NewSubscriber, Store

MIN_PASSWORD_LENGTH = 8


def normalise_phone(phone: str) -> str:
    """A subscriber's own phone, in E.164 (it must be written with its country code)."""
    try:
        number = phonenumbers.parse(phone.strip(), None)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(
            "phone must be an international number such as +33612345678", phone=phone
        ) from error
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput("phone is not a possible number", phone=phone)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class CatalogService:
    """Admin use cases; every write makes the authorizer reload."""

    def __init__(
        self, *, store: Store, authorizer: CallAuthorizer, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._authorizer = authorizer
        self._clock = clock

    # -- plans ------------------------------------------------------------------------------
    def save_plan(self, plan: Plan) -> Plan:
        self._store.save_plan(plan)
        self._authorizer.invalidate()
        return plan

    def list_plans(self) -> list[Plan]:
        return self._store.list_plans()

    def get_plan(self, code: str) -> Plan:
        return self._store.get_plan(code)

    # -- subscribers ------------------------------------------------------------------------
    def add_subscriber(
        self,
        *,
        name: str,
        email: str,
        phone: str,
        locale: str,
        time_zone: str,
        sip_username: str,
        password: str,
        caller_ids: tuple[str, ...] = (),
    ) -> Subscriber:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"a SIP password needs at least {MIN_PASSWORD_LENGTH} characters")
        if not name.strip():
            raise InvalidInput("a subscriber needs a name")
        validate_sip_username(sip_username)
        validate_time_zone(time_zone)
        subscriber = self._store.add_subscriber(
            NewSubscriber(
                name=name.strip(),
                email=email.strip(),
                phone=normalise_phone(phone),
                locale=locale,
                time_zone=time_zone,
                sip_username=sip_username,
                ha1=digest_ha1(sip_username, self._authorizer.realm, password),
                caller_ids=tuple(normalise_phone(number) for number in caller_ids),
            )
        )
        self._authorizer.invalidate()
        return subscriber

    def set_password(self, subscriber_id: int, password: str) -> Subscriber:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"a SIP password needs at least {MIN_PASSWORD_LENGTH} characters")
        subscriber = self._store.get_subscriber(subscriber_id)
        updated = replace(
            subscriber,
            ha1=digest_ha1(subscriber.sip_username, self._authorizer.realm, password),
        )
        self._store.update_subscriber(updated)
        self._authorizer.invalidate()
        return updated

    def get_subscriber(self, subscriber_id: int) -> Subscriber:
        return self._store.get_subscriber(subscriber_id)

    def find_subscriber(self, sip_username: str) -> Subscriber | None:
        return self._store.find_subscriber(sip_username)

    def list_subscribers(self, *, offset: int = 0, limit: int = 100) -> list[Subscriber]:
        return self._store.list_subscribers(offset=offset, limit=limit)

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(
        self,
        *,
        subscriber_id: int,
        plan_code: str,
        start: datetime | None = None,
        status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    ) -> Subscription:
        """Start a subscription to a plan on sale; its first period runs from `start`."""
        plan = self._store.get_plan(plan_code)
        self._store.get_subscriber(subscriber_id)
        if not plan.on_sale and status is SubscriptionStatus.ACTIVE:
            raise InvalidInput("plan is not on sale", plan=plan_code)
        period_start = start or self._clock()
        if period_start.tzinfo is None:
            raise InvalidInput("start must carry a time zone")
        subscription = self._store.add_subscription(
            subscriber_id=subscriber_id,
            plan_code=plan_code,
            status=status,
            period_start=period_start,
            period_end=plan.period.end_of_period_starting(period_start),
        )
        self._authorizer.invalidate()
        return subscription

    def set_subscription_status(
        self, subscription_id: int, status: SubscriptionStatus
    ) -> Subscription:
        subscription = replace(self._store.get_subscription(subscription_id), status=status)
        self._store.update_subscription(subscription)
        self._authorizer.invalidate()
        return subscription

    def list_subscriptions(self, *, subscriber_id: int | None = None) -> list[Subscription]:
        return self._store.list_subscriptions(subscriber_id=subscriber_id)

    # -- carriers ---------------------------------------------------------------------------
    def save_carrier(self, carrier: Carrier) -> Carrier:
        self._store.save_carrier(carrier)
        self._authorizer.invalidate()
        return carrier

    def replace_rate_deck(self, code: str, rate_deck: RateDeck) -> int:
        """Give a carrier a new rate deck; returns how many rates the old one had."""
        carrier = self._store.get_carrier(code)
        old = len(carrier.rate_deck)
        self.save_carrier(replace(carrier, rate_deck=rate_deck))
        return old

    def list_carriers(self) -> list[Carrier]:
        return self._store.list_carriers()

    def get_carrier(self, code: str) -> Carrier:
        return self._store.get_carrier(code)
