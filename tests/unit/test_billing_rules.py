"""Billing's pure rules: the ledger, billing periods and pro-rata, VAT, numbering, outage credits.

The property tests check the rules against brute-force counts (hour by hour) rather than
against a second copy of the formula.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.billing.amounts import minor_unit
from tawasol.domain.billing.calendar import (
    BillingPeriod,
    boundary,
    period_containing,
    period_number,
    unused_share,
)
from tawasol.domain.billing.documents import check_gap_free
from tawasol.domain.billing.ledger import Account, EntryKind, LedgerEntry
from tawasol.domain.billing.lifecycle import (
    BillingTerms,
    CancelReason,
    RefundPolicy,
    cancellation_refund,
    next_period,
    paused,
    plan_change_now,
    resumed,
)
from tawasol.domain.billing.outage_credits import (
    CreditPolicy,
    Remedy,
    outage_credit,
    renewal_deferred_until,
)
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import DestinationRule, Period, Plan
from tawasol.domain.errors import Conflict, InvalidConfiguration, InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope
from tawasol.domain.subscribers import Subscription, SubscriptionStatus

T0 = datetime(2026, 9, 1, tzinfo=UTC)
MOROCCO = frozenset(
    {DestinationRule("MA", NumberKind.FIXED), DestinationRule("MA", NumberKind.MOBILE)}
)
TUNISIA = frozenset({DestinationRule("TN", NumberKind.MOBILE)})


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def entry(kind: EntryKind, amount: str, key: str, account_id: int = 1) -> LedgerEntry:
    return LedgerEntry(account_id, kind, eur(amount), key, T0)


# --- ledger -----------------------------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2)
kinds = st.sampled_from([EntryKind.CHARGE, EntryKind.PAYMENT, EntryKind.CREDIT])


@given(st.lists(st.tuples(kinds, amounts), max_size=30))
def test_balance_is_the_sum_of_the_signed_entries(operations: list[tuple[EntryKind, Decimal]]):
    account = Account(1, 7, "EUR")
    for number, (kind, amount) in enumerate(operations):
        account = account.appended(LedgerEntry(1, kind, eur(str(amount)), f"k{number}", T0))
        # Writing the same entry again changes nothing (idempotency).
        account = account.appended(LedgerEntry(1, kind, eur(str(amount)), f"k{number}", T0))
    owed = sum((a for k, a in operations if k is EntryKind.CHARGE), Decimal(0))
    given_back = sum((a for k, a in operations if k is not EntryKind.CHARGE), Decimal(0))
    assert len(account.entries) == len(operations)
    assert account.balance == eur(str(owed - given_back))


def test_a_different_entry_under_a_used_key_is_refused():
    account = Account(1, 7, "EUR").appended(entry(EntryKind.CHARGE, "9.99", "renewal:1:0"))
    with pytest.raises(Conflict):
        account.appended(entry(EntryKind.CHARGE, "19.99", "renewal:1:0"))


def test_a_refund_larger_than_what_was_paid_is_refused():
    account = Account(1, 7, "EUR").appended_all(
        [entry(EntryKind.CHARGE, "9.99", "c"), entry(EntryKind.PAYMENT, "9.99", "p")]
    )
    account = account.appended(entry(EntryKind.REFUND, "4.00", "r1"))
    with pytest.raises(InvalidInput, match="more than was paid"):
        account.appended(entry(EntryKind.REFUND, "6.00", "r2"))
    assert account.refundable == eur("5.99")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: entry(EntryKind.CHARGE, "-1", "k"), "positive amount"),
        (
            lambda: Account(1, 7, "EUR").appended(
                LedgerEntry(1, EntryKind.CHARGE, Money(Decimal(1), "MAD"), "k", T0)
            ),
            "kept in EUR",
        ),
        (lambda: Money(Decimal(1), "ABC"), "ISO 4217"),
        (lambda: entry(EntryKind.CHARGE, "1", ""), "idempotency key"),
    ],
)
def test_bad_ledger_input_is_refused_clearly(make, message):
    with pytest.raises(InvalidInput, match=message):
        make()


def test_tunisian_dinars_have_three_decimals():
    assert minor_unit("TND") == Decimal("0.001")
    assert minor_unit("EUR") == Decimal("0.01")
    assert minor_unit("XOF") == Decimal(1)


# --- billing periods --------------------------------------------------------------------------


def test_monthly_periods_from_the_31st_do_not_drift():
    anchor = datetime(2026, 1, 31, 10, tzinfo=ZoneInfo("Africa/Casablanca"))
    starts = [boundary(anchor, Period.MONTH, n, "Africa/Casablanca") for n in range(5)]
    local = [s.astimezone(ZoneInfo("Africa/Casablanca")) for s in starts]
    assert [(d.month, d.day, d.hour) for d in local] == [
        (1, 31, 10),
        (2, 28, 10),
        (3, 31, 10),
        (4, 30, 10),
        (5, 31, 10),
    ]


def test_yearly_period_from_29_february_ends_on_28_february():
    anchor = datetime(2028, 2, 29, tzinfo=ZoneInfo("Europe/Paris"))
    assert boundary(anchor, Period.YEAR, 1, "Europe/Paris").astimezone(
        ZoneInfo("Europe/Paris")
    ) == datetime(2029, 2, 28, tzinfo=ZoneInfo("Europe/Paris"))
    assert boundary(anchor, Period.YEAR, 4, "Europe/Paris").astimezone(
        ZoneInfo("Europe/Paris")
    ) == datetime(2032, 2, 29, tzinfo=ZoneInfo("Europe/Paris"))


def test_a_weekly_period_across_the_dst_change_keeps_the_wall_clock_hour():
    paris = ZoneInfo("Europe/Paris")
    anchor = datetime(2026, 10, 22, 9, tzinfo=paris)
    period = period_number(anchor, Period.WEEK, 0, "Europe/Paris")
    assert period.end.astimezone(paris) == datetime(2026, 10, 29, 9, tzinfo=paris)
    assert period.length == timedelta(days=7, hours=1)  # 25-hour Sunday 25 October


zones = st.sampled_from(["Europe/Paris", "Africa/Casablanca", "America/Montreal", "UTC"])
anchors = st.datetimes(
    min_value=datetime(2027, 12, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(minute=0, second=0, microsecond=0))
# Anchors on month ends and 29 February, where calendars go wrong.
month_ends = st.sampled_from(
    [
        datetime(2028, 1, 31, 22, tzinfo=UTC),
        datetime(2028, 2, 29, 12, tzinfo=UTC),
        datetime(2028, 3, 31, 1, tzinfo=UTC),
        datetime(2028, 10, 29, 0, tzinfo=UTC),
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    anchor=st.one_of(anchors, month_ends),
    period=st.sampled_from(list(Period)),
    zone=zones,
    index=st.integers(0, 14),
    hours_in=st.integers(0, 9000),
)
def test_pro_rata_equals_a_brute_force_count_of_hours(anchor, period, zone, index, hours_in):
    paid = period_number(anchor, period, index, zone)
    at = paid.start + timedelta(hours=hours_in)
    # Brute force: walk the period hour by hour and count the hours from `at` on.
    hours_total = hours_left = 0
    moment = paid.start
    while moment < paid.end:
        hours_total += 1
        hours_left += moment >= at
        moment += timedelta(hours=1)
    price = eur("9.99")
    expected = (price.amount * hours_left / hours_total).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )
    if (paid.end - paid.start) % timedelta(hours=1) == timedelta(0):
        assert unused_share(price, paid, at) == eur(str(expected))
    assert unused_share(price, paid, at) <= price
    # The period found for any moment inside is this one.
    inside = min(at, paid.end - timedelta(seconds=1))
    assert period_containing(anchor, period, inside, zone) == paid


def test_periods_follow_each_other_without_gap_or_overlap():
    anchor = datetime(2028, 1, 31, 23, 30, tzinfo=UTC)
    for period in Period:
        for zone in ("Europe/Paris", "America/Montreal"):
            previous = period_number(anchor, period, 0, zone)
            for index in range(1, 30):
                current = period_number(anchor, period, index, zone)
                assert current.start == previous.end
                previous = current


# --- VAT --------------------------------------------------------------------------------------


def test_vat_is_split_out_of_the_consumer_price():
    table = VatTable.parse("FR=20, MA=20, TN=19")
    split = table.split(eur("9.99"), "FR")
    # 9.99 x 0.20 / 1.20 = 1.665 -> 1.66 (half to even); net = 9.99 - 1.66
    assert (split.net, split.vat, split.rate) == (eur("8.33"), eur("1.66"), Decimal("0.2"))
    assert split.net + split.vat == split.gross


def test_a_country_without_a_vat_rate_is_an_error_not_zero():
    with pytest.raises(InvalidConfiguration, match="no VAT rate is configured for DZ"):
        VatTable.parse("FR=20").split(eur("9.99"), "DZ")


@pytest.mark.parametrize("text", ["FR=120", "ZZ=20", "FR", "FR=abc"])
def test_a_bad_vat_table_is_refused(text):
    with pytest.raises(InvalidInput):
        VatTable.parse(text)


# --- numbering --------------------------------------------------------------------------------


def test_gap_free_check_names_the_missing_numbers():
    check_gap_free([3, 1, 2])
    with pytest.raises(InvalidInput) as error:
        check_gap_free([1, 2, 4, 4])
    assert error.value.details["missing"] == [3]
    assert error.value.details["duplicates"] == [4]


# --- outage credits ---------------------------------------------------------------------------

MA = OutageScope("MA")
SEPTEMBER = BillingPeriod(0, T0, datetime(2026, 10, 1, tzinfo=UTC))
SEPTEMBER_OUTAGE = (
    OutagePeriod(
        1,
        MA,
        datetime(2026, 9, 7, 17, tzinfo=UTC),
        datetime(2026, 9, 18, tzinfo=UTC),
        OutageImpact.MAJOR,
    ),
    OutagePeriod(
        1,
        MA,
        datetime(2026, 9, 18, tzinfo=UTC),
        datetime(2026, 9, 25, tzinfo=UTC),
        OutageImpact.PARTIAL,
    ),
)


def september_credit(price: str, rules=MOROCCO, **policy):
    return outage_credit(
        incident_id=1,
        periods=SEPTEMBER_OUTAGE,
        paid=SEPTEMBER,
        price_paid=eur(price),
        plan_rules=rules,
        policy=CreditPolicy(**policy),
    )


def test_monthly_credit_worked_by_hand():
    # Major 7th 17:00 -> 18th 00:00 = 247 h; partial 18th -> 25th = 168 h x 0.5 = 84 h;
    # 331 h = 13.79 days -> 14 days; 9.99 x 14 / 30 = 4.662 -> 4.66 EUR.
    credit = september_credit("9.99")
    assert credit.weighted_seconds == 331 * 3600
    assert credit.counted == timedelta(days=14)
    assert credit.amount == eur("4.66")


def test_a_tunisia_only_plan_gets_nothing_for_a_morocco_outage():
    credit = september_credit("4.99", TUNISIA)
    assert not credit.due
    assert credit.amount == eur("0")


def test_below_the_threshold_nothing_is_credited_and_extension_is_a_remedy():
    blip = (OutagePeriod(2, MA, T0, T0 + timedelta(hours=3), OutageImpact.MAJOR),)
    assert not outage_credit(
        incident_id=2,
        periods=blip,
        paid=SEPTEMBER,
        price_paid=eur("9.99"),
        plan_rules=MOROCCO,
        policy=CreditPolicy(),
    ).due
    extended = september_credit("9.99", remedy=Remedy.EXTEND)
    assert (extended.extension, extended.amount) == (timedelta(days=14), eur("0"))


def test_overlapping_scopes_of_one_incident_count_once_at_the_worse_impact():
    mobile = OutageScope("MA", NumberKind.MOBILE)
    periods = (
        OutagePeriod(3, MA, T0, T0 + timedelta(days=2), OutageImpact.PARTIAL),
        OutagePeriod(3, mobile, T0 + timedelta(days=1), T0 + timedelta(days=3), OutageImpact.MAJOR),
    )
    credit = outage_credit(
        incident_id=3,
        periods=periods,
        paid=SEPTEMBER,
        price_paid=eur("30"),
        plan_rules=MOROCCO,
        policy=CreditPolicy(),
    )
    # day 0 partial (0.5) + days 1-2 major (2) = 2.5 days -> 3 days of 30 -> 3.00 EUR
    assert credit.amount == eur("3.00")


impacts = st.sampled_from(list(OutageImpact))


@settings(max_examples=80, deadline=None)
@given(
    stretches=st.lists(
        st.tuples(st.integers(-500, 800), st.integers(1, 900), impacts), min_size=1, max_size=5
    ),
    price=amounts,
    unit_hours=st.sampled_from([1, 6, 24]),
)
def test_a_credit_never_exceeds_what_was_paid_and_matches_an_hourly_count(
    stretches, price, unit_hours
):
    periods = tuple(
        OutagePeriod(9, MA, T0 + timedelta(hours=s), T0 + timedelta(hours=s + n), impact)
        for s, n, impact in stretches
    )
    policy = CreditPolicy(minimum_unit=timedelta(hours=unit_hours), threshold=timedelta(0))
    credit = outage_credit(
        incident_id=9,
        periods=periods,
        paid=SEPTEMBER,
        price_paid=eur(str(price)),
        plan_rules=MOROCCO,
        policy=policy,
    )
    assert credit.amount <= eur(str(price))
    # Brute force: each hour of September counts at the worst impact covering it.
    weighted = Decimal(0)
    for hour in range(720):
        moment = T0 + timedelta(hours=hour)
        weights = [
            Decimal(1) if p.impact is OutageImpact.MAJOR else policy.partial_factor
            for p in periods
            if p.start <= moment < p.end
        ]
        weighted += max(weights, default=Decimal(0))
    assert credit.weighted_seconds == weighted * 3600
    units = int((weighted / unit_hours).to_integral_value(rounding="ROUND_CEILING"))
    counted_hours = min(units * unit_hours, 720)
    assert credit.amount.amount == (price * counted_hours / 720).quantize(
        Decimal("0.01"), rounding="ROUND_DOWN"
    )


def test_renewal_is_deferred_during_a_long_full_outage_only():
    due_early = datetime(2026, 9, 8, 10, tzinfo=UTC)  # 17 h into the outage
    due_late = datetime(2026, 9, 14, tzinfo=UTC)
    due_partial = datetime(2026, 9, 20, tzinfo=UTC)
    policy = CreditPolicy()
    assert (
        renewal_deferred_until(
            due_at=due_early, periods=SEPTEMBER_OUTAGE, plan_rules=MOROCCO, policy=policy
        )
        is None
    )
    assert renewal_deferred_until(
        due_at=due_late, periods=SEPTEMBER_OUTAGE, plan_rules=MOROCCO, policy=policy
    ) == datetime(2026, 9, 18, tzinfo=UTC)
    assert (
        renewal_deferred_until(
            due_at=due_partial, periods=SEPTEMBER_OUTAGE, plan_rules=MOROCCO, policy=policy
        )
        is None
    )
    # A plan that also sells Tunisia still works: its renewal is charged.
    assert (
        renewal_deferred_until(
            due_at=due_late, periods=SEPTEMBER_OUTAGE, plan_rules=MOROCCO | TUNISIA, policy=policy
        )
        is None
    )


# --- lifecycle --------------------------------------------------------------------------------

SEP_30 = datetime(2026, 10, 1, tzinfo=UTC)


def a_subscription(status: SubscriptionStatus = SubscriptionStatus.ACTIVE) -> Subscription:
    return Subscription(5, 7, "maroc", status, T0, SEP_30)


TERMS = BillingTerms(5, T0, 0, eur("30.00"))


def a_plan(currency: str = "EUR", price: str = "15.00") -> Plan:
    return Plan("autre", {"fr": "Autre"}, Period.MONTH, Money(Decimal(price), currency), MOROCCO)


def test_plan_change_now_credits_the_unused_part_and_charges_the_new_plan():
    change = plan_change_now(
        a_subscription(),
        TERMS,
        new_plan=a_plan(),
        at=datetime(2026, 9, 21, tzinfo=UTC),
        time_zone="UTC",
    )
    assert change.credit == eur("10.00")  # 10 of 30 days unused
    assert change.charge == eur("15.00")
    assert change.new_period.start == datetime(2026, 9, 21, tzinfo=UTC)


def test_a_plan_change_to_another_currency_is_refused():
    with pytest.raises(InvalidInput, match="sold in MAD"):
        plan_change_now(
            a_subscription(), TERMS, new_plan=a_plan("MAD", "99"), at=T0, time_zone="UTC"
        )


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (CancelReason.CUSTOMER, "0.00"),
        (CancelReason.WITHDRAWAL, "20.00"),
        (CancelReason.PRICE_CHANGE, "20.00"),
        (CancelReason.OUTAGE, "20.00"),
    ],
)
def test_cancel_now_refunds_by_policy(reason, expected):
    refund = cancellation_refund(
        a_subscription(),
        TERMS,
        at=datetime(2026, 9, 11, tzinfo=UTC),
        reason=reason,
        policy=RefundPolicy(),
        first_start=T0,
    )
    assert refund.amount == Decimal(expected)


def test_withdrawal_after_14_days_is_refused():
    with pytest.raises(InvalidInput, match="withdrawal period is over"):
        cancellation_refund(
            a_subscription(),
            TERMS,
            at=datetime(2026, 9, 20, tzinfo=UTC),
            reason=CancelReason.WITHDRAWAL,
            policy=RefundPolicy(),
            first_start=T0,
        )


def test_pause_and_resume_move_the_period_end_and_renewal_re_anchors():
    subscription, terms = paused(a_subscription(), TERMS, at=datetime(2026, 9, 10, tzinfo=UTC))
    assert subscription.status is SubscriptionStatus.PAUSED
    assert not subscription.usable_at(datetime(2026, 9, 12, tzinfo=UTC))
    subscription, terms = resumed(subscription, terms, at=datetime(2026, 9, 15, tzinfo=UTC))
    assert subscription.status is SubscriptionStatus.ACTIVE
    assert subscription.period_end == datetime(2026, 10, 6, tzinfo=UTC)
    period, anchor = next_period(subscription, terms, Period.MONTH, "UTC")
    assert (period.start, period.end, anchor) == (
        datetime(2026, 10, 6, tzinfo=UTC),
        datetime(2026, 11, 6, tzinfo=UTC),
        datetime(2026, 10, 6, tzinfo=UTC),
    )
    with pytest.raises(Conflict):
        resumed(subscription, terms, at=datetime(2026, 9, 16, tzinfo=UTC))


def test_a_cancelled_subscription_cannot_be_paused():
    with pytest.raises(Conflict):
        paused(a_subscription(SubscriptionStatus.CANCELLED), TERMS, at=T0)


def test_a_negative_plan_price_is_refused():
    with pytest.raises(InvalidConfiguration, match="negative"):
        a_plan(price="-1")
