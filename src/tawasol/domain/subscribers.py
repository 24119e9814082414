"""Subscribers and their subscriptions.

A *subscriber* is a person (or small business) with a SIP account: they call from a softphone or
an IP phone, or later from their mobile through an access number. A *subscription* ties a
subscriber to a plan for a current period (a week, a month or a year); its fair-use counters
start again with every period.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from zxcvbn import zxcvbn

from tawasol.domain.codes import check_country
from tawasol.domain.errors import Conflict, InvalidInput

_SIP_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
_HA1 = re.compile(r"^[0-9a-f]{32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SubscriptionStatus(enum.StrEnum):
    """Where a subscription stands. Only an active one in its current period places calls.

    pending_payment -> active -> past_due -> suspended -> cancelled or expired, along the
    transitions in `TRANSITIONS` only (billing moves a subscription through them; an operator
    may too). `paused` is an active subscription the subscriber put on hold: it places no
    calls and does not renew; on resume its period is extended by the time it was paused.
    `cancelled` and `expired` are final: a returning customer gets a new subscription, so the
    history of the old one stays as it was.
    """

    PENDING_PAYMENT = "pending_payment"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    SUSPENDED = "suspended"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def current(self) -> bool:
        """Not ended: the subscriber's one subscription that can (again) place calls."""
        return self not in (SubscriptionStatus.CANCELLED, SubscriptionStatus.EXPIRED)


_S = SubscriptionStatus
# The allowed status changes; anything else is refused (Conflict).
TRANSITIONS: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    _S.PENDING_PAYMENT: frozenset({_S.ACTIVE, _S.CANCELLED, _S.EXPIRED}),
    _S.ACTIVE: frozenset({_S.PAST_DUE, _S.SUSPENDED, _S.PAUSED, _S.CANCELLED, _S.EXPIRED}),
    _S.PAST_DUE: frozenset({_S.ACTIVE, _S.SUSPENDED, _S.CANCELLED, _S.EXPIRED}),
    _S.SUSPENDED: frozenset({_S.ACTIVE, _S.CANCELLED, _S.EXPIRED}),
    _S.PAUSED: frozenset({_S.ACTIVE, _S.CANCELLED}),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
}
# What a new subscription may start as: paid already, or waiting for its first payment.
INITIAL_STATUSES = frozenset({_S.ACTIVE, _S.PENDING_PAYMENT})


def digest_ha1(username: str, realm: str, password: str) -> str:
    """RFC 2617 §3.2.2.2: HA1 = MD5(username ":" realm ":" password).

    SIP digest authentication still uses MD5 (RFC 8760 adds SHA-256, few phones support it); the
    plain password is never stored, only this hash for the realm.
    """
    return hashlib.md5(f"{username}:{realm}:{password}".encode()).hexdigest()


def validate_sip_username(username: str) -> str:
    if not _SIP_USERNAME.fullmatch(username):
        raise InvalidInput(
            "a SIP username is 2-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            sip_username=username,
        )
    return username


# zxcvbn's scale: 3 is "safely unguessable: moderate protection from offline slow-hash
# attacks". A SIP HA1 is an unsalted MD5, the fastest hash there is, so nothing weaker.
MIN_PASSWORD_SCORE = 3
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128


def check_password_strength(password: str, *, known: tuple[str, ...] = ()) -> str:
    """`password` if it is strong enough for a SIP account; raises InvalidInput otherwise.

    Strength is zxcvbn's estimate (Dropbox's model of real guessing attacks: dictionaries,
    keyboard walks, repeats, dates), with `known` (the username, name, email, phone) treated as
    guessable words. Phones and softphones store SIP passwords, so they can be long: the
    platform generates one when the operator gives none.
    """
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a SIP password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters; "
            "leave it out and the platform generates one"
        )
    if not password.strip():
        raise InvalidInput("a SIP password cannot be only spaces")
    estimate = zxcvbn(password, user_inputs=[word for word in known if word])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        hint = " ".join(estimate["feedback"].get("suggestions") or ())
        warning = estimate["feedback"].get("warning") or "too easy to guess"
        raise InvalidInput(
            f"this SIP password is too weak: {warning}. {hint}".strip()
            + " Leave it out and the platform generates one.",
            score=estimate["score"],
        )
    return password


def validate_time_zone(time_zone: str) -> str:
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInput("unknown time zone", time_zone=time_zone) from error
    return time_zone


@dataclass(frozen=True)
class Subscriber:
    """A customer with a SIP account.

    `phone` is their own number (E.164), which also tells the region they call from.
    `caller_ids` are the numbers they may call from through an access number (used later).
    `ha1` is the digest hash of their SIP password for the operator's realm.
    `country` is the ISO 3166-1 country where they live: it decides the VAT on their invoices
    (Directive 2006/112/EC art. 58), not their phone number (a subscriber living in France may
    keep a Moroccan mobile). None when unknown: billing them is then refused.
    `business` marks a business customer: they are told personally of every customer-facing
    outage that touches them, short ones included (issue 13: a business expects a personal
    message, not a post to everyone; `domain.notices.NoticePolicy`), and their invoices are
    Factur-X (machine-readable for their accounting).
    """

    id: int
    name: str
    email: str
    phone: str
    locale: str
    time_zone: str
    sip_username: str
    ha1: str
    caller_ids: tuple[str, ...] = ()
    country: str | None = None
    business: bool = False

    def __post_init__(self) -> None:
        validate_sip_username(self.sip_username)
        if self.country is not None:
            check_country(self.country)
        validate_time_zone(self.time_zone)
        if self.locale not in ("fr", "ar", "en"):
            raise InvalidInput("locale must be fr, ar or en", locale=self.locale)
        if not _HA1.fullmatch(self.ha1):
            raise InvalidInput(
                "ha1 must be 32 lowercase hex digits", sip_username=self.sip_username
            )
        if self.email and not _EMAIL.fullmatch(self.email):
            raise InvalidInput("not an email address", email=self.email)


@dataclass(frozen=True)
class Subscription:
    """A subscriber's plan and its current period [period_start, period_end)."""

    id: int
    subscriber_id: int
    plan_code: str
    status: SubscriptionStatus
    period_start: datetime
    period_end: datetime
    created_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.period_start.tzinfo is None or self.period_end.tzinfo is None:
            raise InvalidInput("subscription periods must be time-zone aware")
        if self.period_end <= self.period_start:
            raise InvalidInput("a subscription period must end after it starts")

    def changed_to(self, status: SubscriptionStatus, *, now: datetime) -> Subscription:
        """This subscription with a new status, if `TRANSITIONS` allows it at `now`.

        Raises Conflict for a change the state machine does not allow, for `expired` before
        the period has ended, and for `active` on a period that is over (a lapsed subscription
        is renewed by a new period, not switched back on).
        """
        if status is self.status:
            return self
        if status not in TRANSITIONS[self.status]:
            allowed = ", ".join(sorted(TRANSITIONS[self.status])) or "none: it is final"
            raise Conflict(
                f"subscription {self.id} is {self.status.value}: it cannot become "
                f"{status.value} (allowed: {allowed})",
                subscription_id=self.id,
                status=self.status.value,
            )
        if status is SubscriptionStatus.EXPIRED and now < self.period_end:
            raise Conflict(
                f"subscription {self.id} cannot expire before its period ends "
                f"({self.period_end.isoformat()}); cancel it instead",
                subscription_id=self.id,
            )
        if status is SubscriptionStatus.ACTIVE and now >= self.period_end:
            raise Conflict(
                f"subscription {self.id}'s period ended {self.period_end.isoformat()}: it "
                "cannot be active again; start a new subscription",
                subscription_id=self.id,
            )
        return replace(self, status=status)

    def usable_at(self, now: datetime) -> bool:
        """Active and inside its paid period."""
        return (
            self.status == SubscriptionStatus.ACTIVE and self.period_start <= now < self.period_end
        )
