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
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tawasol.domain.errors import InvalidInput

_SIP_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
_HA1 = re.compile(r"^[0-9a-f]{32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SubscriptionStatus(enum.StrEnum):
    """Where a subscription stands. Only an active one in its current period places calls."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


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

    def __post_init__(self) -> None:
        validate_sip_username(self.sip_username)
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

    def usable_at(self, now: datetime) -> bool:
        """Active and inside its paid period."""
        return (
            self.status == SubscriptionStatus.ACTIVE and self.period_start <= now < self.period_end
        )
