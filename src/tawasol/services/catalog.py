"""Manage the operator's catalog: plans, subscribers, subscriptions and carriers.

These use cases back the admin API and the CLI. Every write goes through the store (which bumps
the catalog revision, so other brain replicas reload) and tells this brain's authorizer to
reload at once. Create is create (Conflict on an existing code), update is update (NotFound on
a missing one); a use case of several writes (a subscriber with their first plan, a plan
change) is one transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

import phonenumbers

from tawasol.domain.carriers import Carrier, RateDeck, currency_conflicts
from tawasol.domain.catalog import Plan
from tawasol.domain.codes import check_country
from tawasol.domain.errors import Conflict, InvalidConfiguration, InvalidInput
from tawasol.domain.numbering import region_of
from tawasol.domain.subscribers import (
    INITIAL_STATUSES,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    check_password_strength,
    digest_ha1,
    validate_sip_username,
    validate_time_zone,
)
from tawasol.domain.text import check_free_text
from tawasol.services.carrier_monitor import contracted_channels
from tawasol.services.ports import CatalogStore, NewSubscriber, NewSubscription

# How far from today a subscription may start: back-dating a few weeks (a payment taken by
# phone last month) or booking a few months ahead is normal; 1970 or 9999 is a typo.
SUBSCRIPTION_START_WINDOW = timedelta(days=366)


def country_of_phone(e164: str) -> str | None:
    """The ISO country of a phone number, None for a non-geographic or unknown one (+800,
    +882): the default country of residence of a subscriber the operator gave none."""
    region = region_of(e164)
    known = region is not None and region != "ZZ" and len(region) == 2 and region.isalpha()
    return region if known else None


def normalise_phone(phone: str, *, field: str = "phone") -> str:
    """A phone number in E.164 (it must be written with its country code). Errors name
    `field`, the input it came from (`phone`, `caller_ids`)."""
    try:
        number = phonenumbers.parse(phone.strip(), None)
    except phonenumbers.NumberParseException as error:
        raise InvalidInput(
            f"{field}: must be an international number such as +33612345678",
            **{field: phone},
        ) from error
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(f"{field}: not a possible number", **{field: phone})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def refuse_published_password(password: str) -> None:
    """Raises InvalidInput when `password` is one the project publishes (the sample accounts'
    passwords in README.md): an account with it is open to anyone who read the README."""
    # Imported here: the sample operator itself is built on this module.
    from tawasol.services.sample_operator import published_passwords

    if password.casefold() in published_passwords():
        raise InvalidInput(
            "this SIP password is published in tawasol's README (a sample account's): choose "
            "another, or leave it out and the platform generates one",
            field="password",
        )


def generate_password() -> str:
    """A random SIP password: 20 URL-safe characters, 120 bits (RFC 4086 §8 key sizes)."""
    return secrets.token_urlsafe(15)


class DecisionCache(Protocol):
    """What the catalog needs of the decider (`CallAuthorizer`): its realm (for HA1s) and a way
    to have it reload the catalog after a write here."""

    @property
    def realm(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class NewAccount:
    """A subscriber just created; `password` is set only when the platform generated it (it
    is shown once: only its digest hash is stored)."""

    subscriber: Subscriber
    subscription: Subscription | None
    password: str | None


class CatalogService:
    """Admin use cases; every write makes the authorizer reload."""

    def __init__(
        self, *, store: CatalogStore, authorizer: DecisionCache, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._authorizer = authorizer
        self._clock = clock

    def holds_operator_data(self) -> bool:
        """True when any plan, carrier or subscriber exists."""
        return self._store.holds_operator_data()

    # -- plans ------------------------------------------------------------------------------
    def add_plan(self, plan: Plan) -> Plan:
        """Create a plan; Conflict when its code exists."""
        self._check_currencies(plans=[plan])
        self._store.add_plan(plan)
        self._authorizer.invalidate()
        return plan

    def update_plan(self, plan: Plan) -> Plan:
        """Replace a plan; NotFound when there is none with its code."""
        self._check_currencies(plans=[plan])
        self._store.update_plan(plan)
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
        password: str | None = None,
        caller_ids: tuple[str, ...] = (),
        plan_code: str | None = None,
        start: datetime | None = None,
        demo_seed: bool = False,
        country: str | None = None,
        business: bool = False,
    ) -> NewAccount:
        """Create a subscriber, subscribed to `plan_code` when given, in one transaction.

        Without a password the platform generates one (returned once in `NewAccount`); an
        operator-chosen one must pass `check_password_strength` and not be a published one
        (`demo_seed`: the demo seeding alone writes those). `country` is where the subscriber
        lives (ISO 3166-1, it decides the VAT of their invoices); when none is given it is the
        country of their phone number, which the operator can correct (`set_country`).
        `business` marks a business customer (told of short outages, Factur-X invoices).
        """
        if not name.strip():
            raise InvalidInput("a subscriber needs a name")
        check_free_text(name, field="name")
        check_free_text(email, field="email", blank=True)
        validate_sip_username(sip_username)
        validate_time_zone(time_zone)
        normalised = normalise_phone(phone)
        residence = (
            check_country(country.strip().upper()) if country else country_of_phone(normalised)
        )
        generated = generate_password() if password is None else None
        chosen = generated or password or ""
        if generated is None:
            check_password_strength(chosen, known=(sip_username, name, email, normalised))
            if not demo_seed:
                refuse_published_password(chosen)
        subscription = (
            self._new_subscription(plan_code, start, SubscriptionStatus.ACTIVE)
            if plan_code
            else None
        )
        subscriber = self._store.add_subscriber(
            NewSubscriber(
                name=name.strip(),
                email=email.strip(),
                phone=normalised,
                locale=locale,
                time_zone=time_zone,
                sip_username=sip_username,
                ha1=digest_ha1(sip_username, self._authorizer.realm, chosen),
                caller_ids=tuple(
                    normalise_phone(number, field="caller_ids") for number in caller_ids
                ),
                country=residence,
                business=business,
            ),
            subscription=subscription,
        )
        self._authorizer.invalidate()
        current = self._store.list_subscriptions(subscriber_id=subscriber.id) if plan_code else []
        return NewAccount(subscriber, current[0] if current else None, generated)

    def set_country(self, subscriber_id: int, country: str) -> Subscriber:
        """Record the country where the subscriber lives (ISO 3166-1 alpha-2): the VAT of
        their next invoices follows it (Directive 2006/112/EC art. 58). Raises InvalidInput
        for a code that is not a country, NotFound for an unknown subscriber."""
        code = check_country(country.strip().upper())
        subscriber = replace(self._store.get_subscriber(subscriber_id), country=code)
        self._store.update_subscriber(subscriber)
        return subscriber

    def set_business(self, subscriber_id: int, business: bool) -> Subscriber:
        """Mark the subscriber a business customer (`business` True) or a consumer: a business
        is told personally of every customer-facing outage that touches it, short ones
        included, and its next invoices are Factur-X. Raises NotFound for an unknown
        subscriber."""
        subscriber = replace(self._store.get_subscriber(subscriber_id), business=business)
        self._store.update_subscriber(subscriber)
        return subscriber

    def set_password(self, subscriber_id: int, password: str | None = None) -> NewAccount:
        """A new SIP password: generated when none is given (returned once), else checked."""
        subscriber = self._store.get_subscriber(subscriber_id)
        generated = generate_password() if password is None else None
        chosen = generated or password or ""
        if generated is None:
            check_password_strength(
                chosen,
                known=(
                    subscriber.sip_username,
                    subscriber.name,
                    subscriber.email,
                    subscriber.phone,
                ),
            )
            refuse_published_password(chosen)
        updated = replace(
            subscriber, ha1=digest_ha1(subscriber.sip_username, self._authorizer.realm, chosen)
        )
        self._store.update_subscriber(updated)
        self._authorizer.invalidate()
        return NewAccount(updated, None, generated)

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
        """Start a subscription to a plan on sale; its first period runs from `start`.

        Conflict when the subscriber already has a running subscription: `change_plan` ends
        it and starts the new one together.
        """
        self._store.get_subscriber(subscriber_id)
        new = self._new_subscription(plan_code, start, status)
        subscription = self._store.change_plan(subscriber_id=subscriber_id, ended=None, new=new)
        self._authorizer.invalidate()
        return subscription

    def change_plan(
        self, *, subscriber_id: int, plan_code: str, start: datetime | None = None
    ) -> Subscription:
        """End the subscriber's running subscription (cancelled, its period cut at `start`)
        and start one to `plan_code` from `start` (default now), in one transaction."""
        self._store.get_subscriber(subscriber_id)
        new = self._new_subscription(plan_code, start, SubscriptionStatus.ACTIVE)
        running = [
            subscription
            for subscription in self._store.list_subscriptions(subscriber_id=subscriber_id)
            if subscription.status.current
        ]
        ended = None
        if running:
            old = running[-1]
            cancelled = old.changed_to(SubscriptionStatus.CANCELLED, now=self._clock())
            if old.period_start < new.period_start < old.period_end:
                cancelled = replace(cancelled, period_end=new.period_start)
            ended = cancelled
        subscription = self._store.change_plan(subscriber_id=subscriber_id, ended=ended, new=new)
        self._authorizer.invalidate()
        return subscription

    def _new_subscription(
        self, plan_code: str, start: datetime | None, status: SubscriptionStatus
    ) -> NewSubscription:
        """Check a new subscription's plan, start and status; Conflict/InvalidInput/NotFound."""
        if status not in INITIAL_STATUSES:
            raise InvalidInput(
                f"a new subscription starts as {' or '.join(sorted(INITIAL_STATUSES))}, "
                f"not {status.value}",
                status=status.value,
            )
        plan = self._store.get_plan(plan_code)
        if not plan.on_sale:
            raise Conflict(f"plan {plan_code} is not on sale", plan=plan_code)
        now = self._clock()
        period_start = start or now
        if period_start.tzinfo is None:
            raise InvalidInput("start must carry a time zone offset")
        if abs(period_start - now) > SUBSCRIPTION_START_WINDOW:
            raise InvalidInput(
                f"a subscription starts within {SUBSCRIPTION_START_WINDOW.days} days of today "
                f"({now:%Y-%m-%d}), not {period_start.isoformat()}",
                start=period_start.isoformat(),
            )
        return NewSubscription(
            plan_code=plan_code,
            status=status,
            period_start=period_start,
            period_end=plan.period.end_of_period_starting(period_start),
        )

    def set_subscription_status(
        self, subscription_id: int, status: SubscriptionStatus
    ) -> Subscription:
        """Move a subscription along an allowed transition (`TRANSITIONS`); Conflict if not."""
        current = self._store.get_subscription(subscription_id)
        subscription = current.changed_to(status, now=self._clock())
        self._store.update_subscription(subscription)
        self._authorizer.invalidate()
        return subscription

    def list_subscriptions(self, *, subscriber_id: int | None = None) -> list[Subscription]:
        return self._store.list_subscriptions(subscriber_id=subscriber_id)

    def get_subscription(self, subscription_id: int) -> Subscription:
        """Raises NotFound."""
        return self._store.get_subscription(subscription_id)

    # -- carriers ---------------------------------------------------------------------------
    def add_carrier(self, carrier: Carrier) -> Carrier:
        """Create a carrier; Conflict when its code exists."""
        self._check_currencies(carriers=[carrier])
        self._store.add_carrier(carrier)
        self._authorizer.invalidate()
        return carrier

    def update_carrier(self, carrier: Carrier) -> Carrier:
        """Replace a carrier; NotFound when there is none with its code."""
        self._check_currencies(carriers=[carrier])
        self._store.update_carrier(carrier)
        self._authorizer.invalidate()
        return carrier

    def replace_rate_deck(self, code: str, rate_deck: RateDeck) -> int:
        """Give a carrier a new rate deck; returns how many rates the old one had."""
        carrier = self._store.get_carrier(code)
        old = len(carrier.rate_deck)
        self.update_carrier(replace(carrier, rate_deck=rate_deck))
        return old

    def list_carriers(self) -> list[Carrier]:
        return self._store.list_carriers()

    def get_carrier(self, code: str) -> Carrier:
        return self._store.get_carrier(code)

    def check_capacity(self, code: str, effective_channels: int | None) -> Carrier:
        """The carrier, if an operator may cap it at `effective_channels`: NotFound for an
        unknown carrier, InvalidInput above what its contract gives (a cap only ever lowers
        what the carrier was bought for; learning more capacity is the monitor's job)."""
        carrier = self._store.get_carrier(code)
        contracted = contracted_channels(carrier)
        if effective_channels is not None and effective_channels < 0:
            raise InvalidInput("a carrier's channels are 0 or more", code=code)
        if (
            effective_channels is not None
            and contracted is not None
            and effective_channels > contracted
        ):
            raise InvalidInput(
                f"carrier {code}'s contract gives {contracted} channels: a cap of "
                f"{effective_channels} is above it (0 to {contracted}, or back to the "
                "contract)",
                code=code,
                effective_channels=effective_channels,
                contracted_channels=contracted,
            )
        return carrier

    def _check_currencies(
        self, *, plans: list[Plan] | None = None, carriers: list[Carrier] | None = None
    ) -> None:
        """Refuse a plan whose cost ceilings are in another currency than the rates of the
        carriers serving them, or a carrier whose rates disagree with the plans' ceilings."""
        if plans:
            problems = currency_conflicts(plans, self._store.list_carriers())
        else:
            problems = currency_conflicts(self._store.list_plans(), carriers or [])
        if problems:
            raise InvalidConfiguration(problems[0], problems=problems)
