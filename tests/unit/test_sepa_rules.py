"""SEPA Direct Debit's rules: creditor identifier, IBAN and SEPA zone, mandate references and
states, the TARGET2 calendar, pre-notification dates, R-transaction codes, the files' texts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.outcomes import FailureCode
from tawasol.domain.payments.sepa import (
    BankAccount,
    CreditorIdentifier,
    Mandate,
    MandateState,
    SequenceType,
    add_months,
    collection_date,
    is_target_day,
    next_target_day,
    sepa_identifier,
    sepa_text,
)
from tawasol.domain.payments.sepa_collections import (
    Collection,
    CollectionState,
    prenotification_text,
)
from tawasol.domain.payments.sepa_returns import return_reason

FR_IBAN = "FR14 2004 1010 0505 0001 3M02 606"


def a_mandate(**changes: object) -> Mandate:
    values: dict[str, object] = {
        "reference": "TWS-1-M1",
        "subscriber_id": 1,
        "account": BankAccount.parse(iban=FR_IBAN, holder="Amina Benali"),
        "signed_on": date(2026, 11, 2),
    }
    values.update(changes)
    return Mandate(**values)  # type: ignore[arg-type]


def test_given_the_german_test_creditor_identifier_then_its_check_digits_verify():
    assert CreditorIdentifier.parse("de98 zzz 09999999999").value == "DE98ZZZ09999999999"
    # The business code (ZZZ here) is left out of the check: any code gives the same digits.
    assert CreditorIdentifier.parse("DE98ABC09999999999").value == "DE98ABC09999999999"


def test_given_a_creditor_identifier_with_wrong_check_digits_then_it_is_refused():
    with pytest.raises(InvalidInput, match="check digits are wrong"):
        CreditorIdentifier.parse("DE97ZZZ09999999999")
    with pytest.raises(InvalidInput, match="country code, 2 check digits"):
        CreditorIdentifier.parse("ZZZ09999999999")


def test_given_an_iban_with_a_mistyped_digit_then_it_is_refused_naming_the_check_digits():
    with pytest.raises(InvalidInput, match="check digits are wrong") as refused:
        BankAccount.parse(iban="FR14 2004 1010 0505 0001 3M02 607", holder="Amina Benali")
    assert refused.value.details["iban"] == "FR1420041010050500013M02607"


@pytest.mark.parametrize(
    ("iban", "country"),
    [("MA64011519000001205000534921", "Morocco"), ("TN5910006035183598478831", "Tunisia")],
)
def test_given_a_maghreb_iban_then_it_is_refused_as_outside_the_sepa_zone(iban, country):
    with pytest.raises(InvalidInput, match="outside the SEPA zone") as refused:
        BankAccount.parse(iban=iban, holder="Amina Benali")
    assert country in refused.value.message
    assert "card or PayPal" in refused.value.message


def test_given_a_valid_iban_then_it_is_kept_compact_and_shown_masked():
    account = BankAccount.parse(iban=FR_IBAN, holder="  Amina   Benali ", bic="bnpafrpp")
    assert account.iban == "FR1420041010050500013M02606"
    assert account.bic == "BNPAFRPP"
    assert account.holder == "Amina Benali"
    assert account.masked_iban == "FR14 **** 2606"


def test_given_text_for_the_bank_then_accents_go_and_refused_characters_are_named():
    assert sepa_text("Hélène Fàbregas", field="name", max_length=70) == "Helene Fabregas"
    with pytest.raises(InvalidInput, match=r"\(& _\)"):
        sepa_text("Dupont & Fils_SA", field="name", max_length=70)
    with pytest.raises(InvalidInput, match="longer than 10"):
        sepa_text("a" * 11, field="name", max_length=10)


@pytest.mark.parametrize(
    "reference", ["TWS 1", "TWS&1", "/TWS-1", "TWS-1/", "TWS//1", "x" * 36, ""]
)
def test_given_a_mandate_reference_sepa_refuses_then_it_is_refused(reference):
    with pytest.raises(InvalidInput):
        sepa_identifier(reference, field="mandate reference")


def test_given_an_unused_mandate_then_it_expires_36_months_after_signature():
    mandate = a_mandate(signed_on=date(2023, 11, 30))
    assert mandate.state_on(date(2026, 11, 29)) is MandateState.ACTIVE
    assert mandate.state_on(date(2026, 11, 30)) is MandateState.EXPIRED
    used = a_mandate(signed_on=date(2023, 1, 5), last_collection_on=date(2025, 2, 3))
    assert used.state_on(date(2028, 2, 2)) is MandateState.ACTIVE
    assert used.state_on(date(2028, 2, 3)) is MandateState.EXPIRED
    with pytest.raises(Conflict, match="expired since 2028-02-03"):
        used.check_collectable(date(2028, 3, 1))


def test_add_months_clamps_to_the_month_end():
    assert add_months(date(2024, 3, 31), 11) == date(2025, 2, 28)
    assert add_months(date(2023, 3, 31), 11) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 30), 36) == date(2029, 11, 30)


def test_given_a_revoked_mandate_then_nothing_is_collected_and_the_message_says_why():
    revoked = a_mandate().ended(MandateState.REVOKED, on=date(2026, 12, 1), reason="by phone")
    with pytest.raises(Conflict, match=r"revoked since 2026-12-01 \(by phone\)"):
        revoked.check_collectable(date(2026, 12, 2))
    with pytest.raises(Conflict, match="revoked already"):
        revoked.ended(MandateState.CLOSED, on=date(2026, 12, 3), reason="MD01")


def test_first_collection_is_frst_then_rcur():
    assert a_mandate().sequence_type is SequenceType.FIRST
    assert a_mandate(last_collection_on=date(2026, 12, 15)).sequence_type is SequenceType.RECURRENT


@pytest.mark.parametrize(
    ("day", "target"),
    [
        (date(2027, 3, 26), False),  # Good Friday 2027
        (date(2027, 3, 29), False),  # Easter Monday 2027
        (date(2027, 5, 1), False),  # Labour Day (a Saturday anyway)
        (date(2026, 5, 1), False),  # Labour Day, a Friday
        (date(2026, 12, 25), False),
        (date(2026, 12, 26), False),
        (date(2027, 1, 1), False),
        (date(2026, 12, 5), False),  # a Saturday
        (date(2026, 12, 24), True),  # TARGET2 settles on Christmas Eve
        (date(2026, 12, 15), True),
    ],
)
def test_target2_business_days(day, target):
    assert is_target_day(day) is target


def test_a_collection_falls_at_least_the_period_after_its_notice_on_a_target_day():
    assert collection_date(notified_on=date(2026, 12, 1), prenotification_days=14) == date(
        2026, 12, 15
    )
    # 14 days after 11 December is Christmas: the next TARGET2 day is 28 December.
    assert collection_date(notified_on=date(2026, 12, 11), prenotification_days=14) == date(
        2026, 12, 28
    )
    assert next_target_day(date(2027, 3, 26)) == date(2027, 3, 30)


def test_a_collection_is_ready_only_once_told_this_amount_a_full_period_before():
    mandate = a_mandate()
    collection = Collection(
        subscriber_id=1,
        mandate_reference=mandate.reference,
        amount=Money(Decimal("9.99"), "EUR"),
        reference="charge:renew:1",
        due_on=date(2026, 12, 15),
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        notified_on=date(2026, 12, 1),
        notified_amount=Money(Decimal("9.99"), "EUR"),
        id=7,
    )
    assert collection.ready_on(date(2026, 12, 15), mandate)
    assert not collection.ready_on(date(2026, 12, 14), mandate)
    lower = collection.renotified(
        amount=Money(Decimal("5.00"), "EUR"), on=date(2026, 12, 11), mandate=mandate
    )
    assert lower.due_on == date(2026, 12, 28)  # 14 days later is Christmas: moved on
    assert not lower.ready_on(date(2026, 12, 28), mandate)  # not told the new amount yet
    assert collection.end_to_end_id(2) == "TWS-7-2"
    assert collection.state is CollectionState.SCHEDULED
    with pytest.raises(InvalidInput, match="euros only"):
        Collection(
            subscriber_id=1,
            mandate_reference="M",
            amount=Money(Decimal("99"), "MAD"),
            reference="r",
            due_on=date(2026, 12, 15),
            created_at=datetime(2026, 12, 1, tzinfo=UTC),
        )


@pytest.mark.parametrize(
    ("code", "failure", "closes"),
    [
        ("AM04", FailureCode.INSUFFICIENT_FUNDS, False),
        ("AC04", FailureCode.ACCOUNT_CLOSED, True),
        ("MD01", FailureCode.NO_MANDATE, True),
        ("MD06", FailureCode.REFUND_REQUESTED, False),
        ("XX99", FailureCode.REFUND_REQUESTED, False),
    ],
)
def test_return_reason_codes_map_to_dunning_and_the_mandate(code, failure, closes):
    reason = return_reason(code.lower())
    assert reason.failure is failure
    assert reason.close_mandate is closes
    assert failure.retryable is (code == "AM04")  # only insufficient funds is presented again


@pytest.mark.parametrize(
    ("locale", "amount_text", "date_text"),
    [
        ("fr_FR", "9,99\u00a0€", "15 décembre 2026"),
        ("en", "€9.99", "15 December 2026"),
        ("ar", "9,99", "2026"),
    ],
)
def test_a_prenotification_says_amount_date_mandate_and_creditor_in_the_language(
    locale, amount_text, date_text
):
    language, subject, text, html = prenotification_text(
        locale=locale,
        name="Amina",
        amount=Money(Decimal("9.99"), "EUR"),
        due_on=date(2026, 12, 15),
        what="F-FR1-00000042",
        mandate=a_mandate(),
        creditor="DE98ZZZ09999999999",
    )
    assert language == locale[:2]
    assert amount_text in subject and date_text in subject
    for fact in ("TWS-1-M1", "DE98ZZZ09999999999", "FR14 **** 2606", "F-FR1-00000042"):
        assert fact in text and fact in html
    assert ('dir="rtl"' in html) is (language == "ar")
