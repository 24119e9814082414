"""The catalog: plans, the destinations they cover, their hours and their fair-use limits."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from tawasol.domain.catalog import DestinationRule, FairUse, Period, Plan, TimeWindow
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind, classify

MONDAY_ONLY_EVENINGS = TimeWindow(frozenset({0}), time(20, 0), time(8, 0))


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    """A naive local time in the week of Monday 12 January 2026 (day 12 = Monday)."""
    return datetime(2026, 1, day, hour, minute)


@pytest.mark.parametrize(
    ("moment", "inside"),
    [
        (_local(12, 19, 59), False),  # Monday, a minute before the window opens
        (_local(12, 20, 0), True),  # Monday 20:00: opens
        (_local(12, 23, 59), True),
        (_local(13, 0, 0), True),  # Tuesday midnight: still Monday's evening
        (_local(13, 1, 0), True),  # Tuesday 01:00
        (_local(13, 7, 59), True),
        (_local(13, 8, 0), False),  # Tuesday 08:00: closed (end excluded)
        (_local(13, 21, 0), False),  # Tuesday evening: Tuesday is not in the window's days
        (_local(14, 1, 0), False),  # Wednesday 01:00 belongs to Tuesday's evening: no
        (_local(12, 1, 0), False),  # Monday 01:00 belongs to Sunday's evening: no
    ],
)
def test_given_a_monday_evening_window_when_checked_then_it_runs_past_midnight_into_tuesday(
    moment: datetime, inside: bool
) -> None:
    assert MONDAY_ONLY_EVENINGS.contains(moment) is inside


def test_given_a_daytime_window_when_checked_then_start_included_and_end_excluded() -> None:
    office_hours = TimeWindow(frozenset({0, 1, 2, 3, 4}), time(9, 0), time(17, 0))

    assert office_hours.contains(_local(14, 9, 0))  # Wednesday 09:00
    assert office_hours.contains(_local(14, 16, 59))
    assert not office_hours.contains(_local(14, 17, 0))
    assert not office_hours.contains(_local(14, 8, 59))
    assert not office_hours.contains(_local(17, 10, 0))  # Saturday


def test_given_start_equal_to_end_when_checked_then_the_whole_of_those_days() -> None:
    weekend = TimeWindow(frozenset({5, 6}), time(0, 0), time(0, 0))

    assert weekend.contains(_local(17, 0, 0))  # Saturday midnight
    assert weekend.contains(_local(18, 23, 59))  # Sunday just before midnight
    assert not weekend.contains(_local(16, 23, 59))  # Friday
    assert not weekend.contains(_local(19, 0, 0))  # Monday midnight
    assert weekend.describe() == "Sat,Sun all day"


def test_given_a_window_when_described_then_days_and_hours_readable() -> None:
    assert MONDAY_ONLY_EVENINGS.describe() == "Mon 20:00-08:00"


@pytest.mark.parametrize("weekdays", [frozenset(), frozenset({7}), frozenset({-1, 0})])
def test_given_weekdays_outside_monday_to_sunday_when_window_built_then_refused(
    weekdays: frozenset[int],
) -> None:
    with pytest.raises(InvalidConfiguration):
        TimeWindow(weekdays, time(20, 0), time(8, 0))


def test_given_the_evening_plan_when_dst_starts_in_paris_then_hours_follow_local_time(
    operator,
) -> None:
    plan = operator.soirees_maghreb
    # Monday 30 March 2026, the day after clocks go forward: Paris is UTC+2.
    assert plan.in_window(datetime(2026, 3, 30, 5, 30, tzinfo=UTC), "Europe/Paris")  # 07:30
    assert not plan.in_window(datetime(2026, 3, 30, 6, 30, tzinfo=UTC), "Europe/Paris")  # 08:30
    # A week earlier Paris was UTC+1: 06:30 UTC was 07:30, still inside.
    assert plan.in_window(datetime(2026, 3, 23, 6, 30, tzinfo=UTC), "Europe/Paris")


def test_given_a_plan_without_windows_when_checked_then_usable_at_any_time(operator) -> None:
    plan = operator.maroc_illimite
    assert plan.in_window(datetime(2026, 1, 14, 13, 0, tzinfo=UTC), "Europe/Paris")
    assert plan.in_window(datetime(2026, 1, 14, 3, 0, tzinfo=UTC), "Pacific/Auckland")


def test_given_the_moroccan_plan_when_destinations_checked_then_only_moroccan_phones(
    operator,
) -> None:
    plan = operator.maroc_illimite

    assert plan.covers(classify("+212661234567"))  # mobile
    assert plan.covers(classify("+212522123456"))  # fixed
    assert not plan.covers(classify("+21620123456"))  # Tunisian mobile
    assert not plan.covers(classify("+212892123456"))  # Moroccan premium rate


def test_given_a_fixed_or_mobile_number_when_rules_checked_then_fixed_or_mobile_rule_covers() -> (
    None
):
    tunisian_31x = classify("+21631123456")
    assert tunisian_31x.kind is NumberKind.FIXED_OR_MOBILE

    assert DestinationRule("TN", NumberKind.FIXED).covers(tunisian_31x)
    assert DestinationRule("TN", NumberKind.MOBILE).covers(tunisian_31x)
    assert not DestinationRule("TN", NumberKind.PREMIUM_RATE).covers(tunisian_31x)
    assert not DestinationRule("MA", NumberKind.FIXED).covers(tunisian_31x)
    # A mobile rule does not cover a fixed line.
    assert not DestinationRule("TN", NumberKind.MOBILE).covers(classify("+21671123456"))
    assert str(DestinationRule("TN", NumberKind.MOBILE)) == "TN mobile"


def _plan(**overrides: object) -> Plan:
    fields: dict[str, object] = {
        "code": "maroc-illimite",
        "names": {"fr": "Maroc Illimité"},
        "period": Period.MONTH,
        "price": Money(Decimal("9.99"), "EUR"),
        "destinations": frozenset({DestinationRule("MA", NumberKind.MOBILE)}),
    }
    fields.update(overrides)
    return Plan(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "overrides",
    [
        {"code": ""},
        {"code": "maroc illimité; drop"},
        {"destinations": frozenset()},
        {"price": Money(Decimal("-1.00"), "EUR")},
        {"names": {}},
        {"names": {"de": "Marokko"}},
    ],
)
def test_given_contradictory_plan_data_when_plan_built_then_refused(
    overrides: dict[str, object],
) -> None:
    with pytest.raises(InvalidConfiguration):
        _plan(**overrides)


def test_given_a_plan_named_in_french_only_when_named_in_arabic_then_falls_back() -> None:
    plan = _plan(names={"fr": "Maroc Illimité"})

    assert plan.name("ar") == "Maroc Illimité"
    assert _plan(names={"fr": "Maroc Illimité", "en": "Morocco Unlimited"}).name("ar") == (
        "Morocco Unlimited"
    )


@pytest.mark.parametrize(
    "limits",
    [
        {"minutes_per_period": 0},
        {"distinct_numbers_per_period": 0},
        {"concurrent_calls": 0},
        {"max_call_duration": timedelta(0)},
        {"max_call_duration": timedelta(seconds=-1)},
    ],
)
def test_given_a_zero_or_negative_fair_use_limit_when_built_then_refused(
    limits: dict[str, object],
) -> None:
    with pytest.raises(InvalidConfiguration):
        FairUse(**limits)  # type: ignore[arg-type]


def test_given_no_fair_use_limits_when_built_then_none_means_unlimited() -> None:
    unlimited = FairUse(max_call_duration=None, concurrent_calls=None)

    assert unlimited.minutes_per_period is None
    assert unlimited.distinct_numbers_per_period is None
    assert Period("month") is Period.MONTH
