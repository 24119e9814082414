"""Subscribers, their SIP credentials and their subscriptions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from tawasol.domain.errors import InvalidInput
from tawasol.domain.subscribers import (
    Subscriber,
    Subscription,
    SubscriptionStatus,
    digest_ha1,
    validate_sip_username,
    validate_time_zone,
)

JANUARY = datetime(2026, 1, 1, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 1, tzinfo=UTC)


def test_given_the_rfc_2617_example_when_ha1_computed_then_the_published_value() -> None:
    # RFC 2617 §3.5: user Mufasa, realm testrealm@host.com, password "Circle Of Life".
    assert digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life") == (
        "939e7578ed9e3c518a452acee763bce9"
    )


def test_given_another_realm_when_ha1_computed_then_different_hash() -> None:
    assert digest_ha1("amina", "sip.a.test", "pw") != digest_ha1("amina", "sip.b.test", "pw")


@pytest.mark.parametrize("username", ["amina", "a1", "amina.benali", "amina_b-2", "0612345678"])
def test_given_an_ordinary_sip_username_when_validated_then_accepted(username: str) -> None:
    assert validate_sip_username(username) == username


@pytest.mark.parametrize(
    "username",
    [
        "",
        "a",  # one character
        "a" * 65,
        ".amina",
        "amina benali",
        "amina@example.org",
        "amina;tag=1",
        # A trailing newline must not slip through the end-of-string anchor: it would end up in
        # SIP headers and log lines.
        "amina\n",
        "amina\r\n",
    ],
)
def test_given_a_malformed_sip_username_when_validated_then_refused(username: str) -> None:
    with pytest.raises(InvalidInput):
        validate_sip_username(username)


def test_given_time_zones_when_validated_then_only_iana_names() -> None:
    assert validate_time_zone("America/Montreal") == "America/Montreal"
    for bad in ("Europe/Atlantis", "", "../../etc/passwd", "CET+1"):
        with pytest.raises(InvalidInput):
            validate_time_zone(bad)


def test_given_subscriber_data_when_inconsistent_then_refused(operator) -> None:
    amina: Subscriber = operator.amina

    for overrides in (
        {"locale": "de"},
        {"time_zone": "Mars/Olympus"},
        {"ha1": "not-a-hash"},
        {"ha1": amina.ha1.upper()},
        {"ha1": amina.ha1 + "\n"},
        {"email": "amina-at-example.org"},
        {"email": "amina@example.org\n"},
        {"sip_username": "amina\n"},
    ):
        with pytest.raises(InvalidInput):
            replace(amina, **overrides)


def test_given_a_subscriber_without_email_when_built_then_accepted(operator) -> None:
    assert replace(operator.amina, email="").email == ""


def _subscription(status: SubscriptionStatus = SubscriptionStatus.ACTIVE) -> Subscription:
    return Subscription(
        id=1,
        subscriber_id=1,
        plan_code="maroc-illimite",
        status=status,
        period_start=JANUARY,
        period_end=FEBRUARY,
    )


def test_given_an_active_subscription_when_checked_then_usable_only_inside_its_period() -> None:
    subscription = _subscription()

    assert subscription.usable_at(JANUARY)  # start included
    assert subscription.usable_at(FEBRUARY - timedelta(microseconds=1))
    assert not subscription.usable_at(FEBRUARY)  # end excluded
    assert not subscription.usable_at(JANUARY - timedelta(seconds=1))


@pytest.mark.parametrize(
    "status",
    [SubscriptionStatus.SUSPENDED, SubscriptionStatus.CANCELLED, SubscriptionStatus.EXPIRED],
)
def test_given_a_subscription_not_active_when_checked_then_never_usable(
    status: SubscriptionStatus,
) -> None:
    assert not _subscription(status).usable_at(JANUARY + timedelta(days=10))


def test_given_a_naive_or_backwards_period_when_subscription_built_then_refused() -> None:
    with pytest.raises(InvalidInput):
        replace(_subscription(), period_start=datetime(2026, 1, 1))
    with pytest.raises(InvalidInput):
        replace(_subscription(), period_end=JANUARY)
    with pytest.raises(InvalidInput):
        replace(_subscription(), period_end=JANUARY - timedelta(days=1))
