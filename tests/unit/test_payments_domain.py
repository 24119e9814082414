"""Payments' pure rules: the dunning schedule (retries, grace, outage holds), refunds bounded by
what was paid, a paid payment staying paid whatever comes late, card expiry, minor units."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tawasol.domain.billing.amounts import from_minor_units, to_minor_units
from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.dunning import (
    DunningAction,
    DunningCase,
    DunningSchedule,
    DunningStatus,
)
from tawasol.domain.payments.methods import (
    PaymentMethod,
    PaymentMethodKind,
    PaymentMethodStatus,
    card_expiry,
)
from tawasol.domain.payments.outcomes import (
    Failed,
    FailureCode,
    Paid,
    PaymentStatus,
    RefundStatus,
    RequiresAction,
)
from tawasol.domain.payments.payments import Payment, Refund, check_refund, refundable

T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
EUR = "EUR"
SCHEDULE = DunningSchedule((1, 3, 5, 7), grace_days=7)


def eur(text: str) -> Money:
    return Money(Decimal(text), EUR)


def a_case(**changes: object) -> DunningCase:
    case = DunningCase("renew:1:2026-10-01", 1, 1, eur("9.99"), T0)
    return replace(case, **changes)  # type: ignore[arg-type]


def days(n: float) -> timedelta:
    return timedelta(days=n)


def test_given_a_failed_renewal_then_it_is_retried_on_days_1_3_5_7_and_suspended_on_day_7():
    case = a_case().failed(FailureCode.INSUFFICIENT_FUNDS, at=T0)
    assert case.action(SCHEDULE, at=T0 + days(0.9), held=False) is DunningAction.NONE
    assert case.action(SCHEDULE, at=T0 + days(1), held=False) is DunningAction.CHARGE
    retried = [case.next_charge_at(SCHEDULE)]
    for _ in range(3):
        case = case.failed(FailureCode.INSUFFICIENT_FUNDS, at=case.next_charge_at(SCHEDULE))
        retried.append(case.next_charge_at(SCHEDULE))
    assert retried == [T0 + days(1), T0 + days(3), T0 + days(5), T0 + days(7)]
    assert case.action(SCHEDULE, at=T0 + days(7), held=False) is DunningAction.SUSPEND
    suspended = case.suspended(at=T0 + days(7))
    # the last retry is still made once suspended; after it nothing is left to try
    assert suspended.action(SCHEDULE, at=T0 + days(7), held=False) is DunningAction.CHARGE
    last = suspended.failed(FailureCode.INSUFFICIENT_FUNDS, at=T0 + days(7))
    assert last.next_charge_at(SCHEDULE) is None
    assert last.status is DunningStatus.SUSPENDED
    assert last.action(SCHEDULE, at=T0 + days(30), held=False) is DunningAction.NONE


def test_given_an_expired_card_then_no_retry_but_still_suspension_after_grace():
    case = a_case().failed(FailureCode.EXPIRED_CARD, at=T0)
    assert case.next_charge_at(SCHEDULE) is None
    assert case.action(SCHEDULE, at=T0 + days(3), held=False) is DunningAction.NONE
    assert case.action(SCHEDULE, at=T0 + days(7), held=False) is DunningAction.SUSPEND


def test_given_an_outage_then_nothing_happens_and_the_schedule_moves_by_the_time_held():
    case = a_case().failed(FailureCode.INSUFFICIENT_FUNDS, at=T0)
    assert case.action(SCHEDULE, at=T0 + days(1), held=True) is DunningAction.HOLD
    held = case.held(T0 + days(0.5))
    assert held.held(T0 + days(2)).held_since == T0 + days(0.5)  # held once
    released = held.released(T0 + days(2.5))  # two days held
    assert released.held_for == days(2)
    assert released.next_charge_at(SCHEDULE) == T0 + days(3)
    assert released.suspend_at(SCHEDULE) == T0 + days(9)
    # the round of day 3 finds the outage over: 2.5 days held, the day-1 retry is due on 3.5
    assert held.action(SCHEDULE, at=T0 + days(3), held=False) is DunningAction.NONE
    on_day_3 = held.released(T0 + days(3))
    assert on_day_3.action(SCHEDULE, at=T0 + days(3.4), held=False) is DunningAction.NONE
    assert on_day_3.action(SCHEDULE, at=T0 + days(3.5), held=False) is DunningAction.CHARGE


def test_given_a_collection_held_before_any_attempt_then_it_is_charged_as_soon_as_released():
    case = a_case().held(T0)
    assert case.action(SCHEDULE, at=T0 + days(4), held=True) is DunningAction.HOLD
    assert case.action(SCHEDULE, at=T0 + days(4), held=False) is DunningAction.CHARGE
    assert case.released(T0 + days(4)).suspend_at(SCHEDULE) == T0 + days(11)


def test_a_recovered_case_does_nothing_more():
    case = a_case().failed(FailureCode.CARD_DECLINED, at=T0).recovered(at=T0 + days(1))
    assert case.status.closed
    assert case.next_charge_at(SCHEDULE) is None
    assert case.action(SCHEDULE, at=T0 + days(30), held=False) is DunningAction.NONE


@pytest.mark.parametrize("text", ["3,1", "0,2", "1,1", "a,b", "-1"])
def test_a_schedule_that_is_not_increasing_whole_days_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        DunningSchedule.parse(text, 7)


def test_the_schedule_setting_is_read_from_text():
    assert DunningSchedule.parse(" 1, 3,5 ,7", 7) == SCHEDULE
    assert DunningSchedule.parse("4", 0) == DunningSchedule((4,), 0)


def a_payment(status: PaymentStatus = PaymentStatus.PAID, amount: str = "9.99") -> Payment:
    return Payment(
        idempotency_key="charge:renew:1:1",
        subscriber_id=1,
        method_id=1,
        provider="stripe",
        amount=eur(amount),
        reference="renew:1",
        status=status,
        created_at=T0,
        provider_reference="pi_1",
        id=7,
    )


def a_refund(amount: str, status: RefundStatus = RefundStatus.SUCCEEDED) -> Refund:
    return Refund(f"refund:7:{amount}", 7, eur(amount), status, T0)


def test_refunds_full_or_partial_never_beyond_what_was_paid():
    payment = a_payment()
    check_refund(payment, [], eur("9.99"))
    check_refund(payment, [a_refund("4.00")], eur("5.99"))
    assert refundable(payment, [a_refund("4.00"), a_refund("1.00", RefundStatus.FAILED)]) == eur(
        "5.99"
    )
    with pytest.raises(InvalidInput, match="more than payment 7 has left to refund"):
        check_refund(payment, [a_refund("4.00")], eur("6.00"))
    with pytest.raises(InvalidInput, match="was made in EUR"):
        check_refund(payment, [], Money(Decimal("1"), "MAD"))
    with pytest.raises(InvalidInput, match="only a paid payment"):
        check_refund(a_payment(PaymentStatus.FAILED), [], eur("1.00"))


def test_a_paid_payment_stays_paid_when_a_failure_or_an_action_request_comes_late():
    paid = a_payment(PaymentStatus.PENDING).after(Paid("pi_1"))
    assert paid.status is PaymentStatus.PAID
    assert paid.after(Failed(FailureCode.INSUFFICIENT_FUNDS, "late", "pi_1")) == paid
    assert paid.after(RequiresAction("pi_1", "https://bank.example/3ds")) == paid


def test_a_failed_payment_can_still_be_paid_and_keeps_its_reason_until_then():
    failed = a_payment(PaymentStatus.PENDING).after(Failed(FailureCode.INSUFFICIENT_FUNDS, "nsf"))
    assert (failed.status, failed.failure_code) == (
        PaymentStatus.FAILED,
        FailureCode.INSUFFICIENT_FUNDS,
    )
    paid = failed.after(Paid("pi_2"))
    assert (paid.status, paid.failure_code, paid.provider_reference) == (
        PaymentStatus.PAID,
        None,
        "pi_2",
    )
    assert paid.ledger_key == "payment:stripe:pi_2"


def test_a_card_is_valid_through_the_end_of_its_expiry_month():
    assert card_expiry(2026, 2) == date(2026, 2, 28)
    assert card_expiry(2028, 2) == date(2028, 2, 29)
    assert card_expiry(2026, 12) == date(2026, 12, 31)
    with pytest.raises(InvalidInput):
        card_expiry(2026, 13)
    method = PaymentMethod(
        1,
        PaymentMethodKind.CARD,
        "stripe",
        "cus_1",
        "pm_1",
        PaymentMethodStatus.ACTIVE,
        expires=card_expiry(2026, 11),
    )
    assert method.usable_on(date(2026, 11, 30))
    assert not method.usable_on(date(2026, 12, 1))


def test_a_replaced_or_revoked_method_cannot_come_back():
    method = PaymentMethod(
        1, PaymentMethodKind.CARD, "stripe", "cus_1", "pm_1", PaymentMethodStatus.ACTIVE
    )
    replaced = method.changed_to(PaymentMethodStatus.REPLACED)
    with pytest.raises(Conflict):
        replaced.changed_to(PaymentMethodStatus.ACTIVE)


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [("9.99", "EUR", 999), ("1.500", "TND", 1500), ("500", "XOF", 500), ("99.00", "MAD", 9900)],
)
def test_minor_units_follow_the_currency(amount: str, currency: str, units: int) -> None:
    money = Money(Decimal(amount), currency)
    assert to_minor_units(money) == units
    assert from_minor_units(units, currency).amount == money.amount


def test_an_amount_finer_than_the_minor_unit_cannot_be_charged():
    with pytest.raises(InvalidInput, match="finer than"):
        to_minor_units(eur("9.995"))
