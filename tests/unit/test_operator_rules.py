"""Issue 11's domain rules: subscription status transitions, SIP password strength, ISO codes,
and one currency per plan, cost ceiling and rate deck."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tawasol.domain.calls import (
    CallEvent,
    CallEventType,
    CallRecord,
    CallStatus,
    apply_event,
)
from tawasol.domain.carriers import (
    BillingIncrement,
    Carrier,
    CarrierDestination,
    Gateway,
    Rate,
    RateDeck,
)
from tawasol.domain.catalog import CostCeiling, DestinationRule, Period, Plan, currency_conflicts
from tawasol.domain.codes import check_country, check_currency
from tawasol.domain.decision import CallRequest, Decision, Reason
from tawasol.domain.errors import Conflict, InvalidConfiguration, InvalidInput, Unavailable
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import (
    TRANSITIONS,
    Subscription,
    SubscriptionStatus,
    check_password_strength,
)
from tawasol.services.record_refusals import RefusalRecorder

S = SubscriptionStatus
START = datetime(2026, 11, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
DURING = datetime(2026, 11, 15, tzinfo=UTC)
AFTER = datetime(2026, 12, 2, tzinfo=UTC)


def a_subscription(status: SubscriptionStatus) -> Subscription:
    return Subscription(5, 1, "maroc-illimite", status, START, END)


# -- the subscription state machine -------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after"),
    [
        (S.PENDING_PAYMENT, S.ACTIVE),
        (S.ACTIVE, S.PAST_DUE),
        (S.PAST_DUE, S.SUSPENDED),
        (S.SUSPENDED, S.ACTIVE),
        (S.ACTIVE, S.CANCELLED),
        (S.SUSPENDED, S.CANCELLED),
    ],
)
def test_given_an_allowed_transition_during_the_period_then_the_status_changes(
    before: SubscriptionStatus, after: SubscriptionStatus
) -> None:
    assert a_subscription(before).changed_to(after, now=DURING).status is after


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (S.CANCELLED, S.ACTIVE),
        (S.EXPIRED, S.ACTIVE),
        (S.EXPIRED, S.SUSPENDED),
        (S.CANCELLED, S.EXPIRED),
        (S.PENDING_PAYMENT, S.PAST_DUE),
        (S.SUSPENDED, S.PAST_DUE),
    ],
)
def test_given_a_transition_the_state_machine_forbids_then_conflict(
    before: SubscriptionStatus, after: SubscriptionStatus
) -> None:
    with pytest.raises(Conflict, match=f"cannot become {after.value}"):
        a_subscription(before).changed_to(after, now=DURING)


def test_given_a_period_not_over_when_expired_then_refused_cancel_instead() -> None:
    with pytest.raises(Conflict, match="cannot expire before its period ends"):
        a_subscription(S.ACTIVE).changed_to(S.EXPIRED, now=DURING)
    assert a_subscription(S.ACTIVE).changed_to(S.EXPIRED, now=AFTER).status is S.EXPIRED


def test_given_a_lapsed_period_when_set_active_again_then_refused() -> None:
    with pytest.raises(Conflict, match="cannot be active again"):
        a_subscription(S.SUSPENDED).changed_to(S.ACTIVE, now=AFTER)


def test_ended_statuses_are_final_and_every_status_has_its_transitions() -> None:
    assert set(TRANSITIONS) == set(SubscriptionStatus)
    assert TRANSITIONS[S.CANCELLED] == TRANSITIONS[S.EXPIRED] == frozenset()
    assert not S.CANCELLED.current and not S.EXPIRED.current
    assert all(status.current for status in (S.PENDING_PAYMENT, S.ACTIVE, S.PAST_DUE, S.SUSPENDED))


# -- SIP passwords ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "password", ["12345678", " " * 8, " " * 12, "amina12345", "password123", "aaaaaaaaaaaa"]
)
def test_given_a_guessable_sip_password_then_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match="SIP password"):
        check_password_strength(password, known=("amina", "Amina El Idrissi"))


def test_given_a_strong_sip_password_then_accepted() -> None:
    assert check_password_strength("tide-lantern-92-orbit", known=("amina",))


# -- ISO codes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["EUR", "USD", "MAD", "TND", "DZD", "XOF", "XAF", "CAD"])
def test_given_a_currency_in_use_then_accepted(code: str) -> None:
    assert check_currency(code) == code
    assert Money(Decimal("1"), code).currency == code


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "ABC", "EURO", "eur"])
def test_given_a_code_that_is_not_money_then_refused_everywhere_money_is_built(code: str) -> None:
    with pytest.raises(InvalidInput, match="ISO 4217"):
        check_currency(code)
    with pytest.raises(InvalidInput):
        Money(Decimal("1"), code)


@pytest.mark.parametrize("code", ["ZZ", "XX", "AA", "ma", "MAR"])
def test_given_a_code_that_is_not_a_country_then_refused_in_rules_and_ceilings(code: str) -> None:
    with pytest.raises(InvalidInput, match="ISO 3166"):
        check_country(code)
    with pytest.raises(InvalidInput):
        DestinationRule(code, NumberKind.MOBILE)
    with pytest.raises(InvalidInput):
        CostCeiling(code, Money(Decimal("0.1"), "EUR"))


# -- one currency per relation ------------------------------------------------------------------
def a_plan(currency: str = "EUR", ceiling_currency: str = "EUR") -> Plan:
    return Plan(
        code="maroc",
        names={"en": "Morocco"},
        period=Period.MONTH,
        price=Money(Decimal("9.99"), currency),
        destinations=frozenset({DestinationRule("MA", NumberKind.MOBILE)}),
        cost_ceilings=(CostCeiling("MA", Money(Decimal("0.10"), ceiling_currency)),),
    )


def a_carrier(*currencies: str, country: str = "MA") -> Carrier:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    return Carrier(
        code="atlas",
        name="Atlas",
        gateways=(Gateway("gw1", "127.0.0.1", 5080),),
        destinations=(CarrierDestination(DestinationRule(country, NumberKind.MOBILE), 10),),
        rate_deck=RateDeck(
            Rate(f"21{index}", Money(Decimal("0.05"), currency), since, BillingIncrement(1, 1))
            for index, currency in enumerate(currencies)
        ),
    )


def test_given_a_usd_plan_with_a_jpy_ceiling_then_refused() -> None:
    with pytest.raises(InvalidConfiguration, match="must be in USD too, not JPY"):
        a_plan("USD", "JPY")


def test_given_a_usd_deck_on_a_carrier_under_a_eur_ceiling_then_a_conflict_is_named() -> None:
    problems = currency_conflicts([a_plan()], [a_carrier("USD")])
    assert problems == [
        "plan maroc caps MA calls at 0.10 EUR per minute but carrier atlas charges MA calls "
        "in USD: use one currency"
    ]
    assert currency_conflicts([a_plan()], [a_carrier("EUR")]) == []
    # A carrier serving another country is not compared with the Moroccan ceiling.
    assert currency_conflicts([a_plan()], [a_carrier("USD", country="TN")]) == []


def test_given_a_deck_mixing_currencies_then_named() -> None:
    (problem,) = currency_conflicts([], [a_carrier("EUR", "USD")])
    assert "mixes currencies (EUR, USD)" in problem


def test_subscription_windows_are_time_zone_aware() -> None:
    with pytest.raises(InvalidInput):
        Subscription(1, 1, "p", S.ACTIVE, START.replace(tzinfo=None), END)
    assert a_subscription(S.ACTIVE).usable_at(END - timedelta(seconds=1))


# -- refused calls in the call records ----------------------------------------------------------
def test_a_refused_call_record_that_then_reaches_a_carrier_becomes_an_ordinary_call() -> None:
    refused = CallRecord(
        call_id="c1",
        started_at=DURING,
        ended_at=DURING,
        final_sip_code=503,
        refusal_reason="no_route",
    )
    assert refused.status is CallStatus.REFUSED and refused.finished
    attempt = CallEvent(
        "c1", CallEventType.ATTEMPT, DURING, attempt=1, carrier="atlas", gateway="gw1"
    )
    continued = apply_event(refused, attempt)
    assert continued.refusal_reason is None
    assert continued.status is CallStatus.IN_PROGRESS


class FlakyRefusalStore:
    """A store that is away for its first `failures` writes, then records everything."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.records: list[CallRecord] = []

    def record_refusals(self, records: Sequence[CallRecord]) -> int:
        if self.failures:
            self.failures -= 1
            raise Unavailable("database away")
        self.records.extend(records)
        return len(records)


def a_refusal(index: int) -> tuple[CallRequest, Decision]:
    decision = Decision(
        allowed=False,
        reason=Reason.NO_ROUTE,
        sip_code=503,
        sip_reason="No Route Available",
        max_duration=timedelta(0),
        routes=(),
        explanation=(),
        subscriber_id=1,
        subscription_id=2,
    )
    return CallRequest("amina", "00212661234567", call_id=f"call-{index}"), decision


def test_refusals_queued_while_the_database_is_away_are_written_when_it_is_back() -> None:
    store = FlakyRefusalStore(failures=2)
    recorder = RefusalRecorder(store=store, batch_size=3, writer_thread=False)
    for index in range(5):
        recorder.refused(*a_refusal(index), DURING)
    for _ in range(2):
        with pytest.raises(Unavailable):
            recorder.flush()
        assert recorder.pending() == 5  # nothing lost, nothing written twice
    assert recorder.flush() == 5
    assert [record.call_id for record in store.records] == [f"call-{i}" for i in range(5)]
    assert {record.refusal_reason for record in store.records} == {"no_route"}
    assert recorder.pending() == 0


def test_the_writer_thread_records_refusals_and_close_writes_the_rest() -> None:
    store = FlakyRefusalStore(failures=0)
    recorder = RefusalRecorder(store=store, interval_s=0.01)
    request, decision = a_refusal(1)
    recorder.refused(request, decision, DURING)
    unknown = replace(decision, reason=Reason.UNKNOWN_SUBSCRIBER)
    recorder.refused(CallRequest("ghost", "0021266", call_id="ghost-1"), unknown, DURING)
    recorder.close()
    assert [record.call_id for record in store.records] == ["call-1"]
    assert store.records[0].status is CallStatus.REFUSED
