"""The per-call decision: who may call what, now, for how long, through which carriers."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tawasol.domain.carriers import (
    Carrier,
    CarrierDestination,
    CarrierState,
    FlatRateContract,
    Gateway,
)
from tawasol.domain.catalog import DestinationRule, FairUse, Period, Plan, TimeWindow
from tawasol.domain.decision import (
    SIP_REPLY,
    CallRequest,
    Decision,
    DecisionState,
    Reason,
    Usage,
    authorize_call,
)
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.routing import CarrierTariff
from tawasol.domain.sip_semantics import FAILOVER_CODES
from tawasol.domain.subscribers import Subscription, SubscriptionStatus

PARIS = ZoneInfo("Europe/Paris")
MONTREAL = ZoneInfo("America/Montreal")
# Wednesday 14 January 2026, 14:00 in Paris (UTC+1 in winter): an ordinary weekday afternoon.
WEDNESDAY_AFTERNOON = datetime(2026, 1, 14, 14, 0, tzinfo=PARIS)
MOROCCAN_MOBILE = "00212661234567"


def call(
    state: DecisionState, username: str, dialled: str, now: datetime = WEDNESDAY_AFTERNOON
) -> Decision:
    return authorize_call(CallRequest(username, dialled, call_id="test@edge"), state, now)


def story(decision: Decision) -> str:
    return "\n".join(decision.explanation)


def assert_denied(decision: Decision, reason: Reason, sip_code: int) -> None:
    assert not decision.allowed
    assert decision.reason is reason
    assert decision.sip_code == sip_code
    assert decision.routes == ()
    assert decision.max_duration == timedelta(0)
    assert decision.explanation[-1].startswith(f"DENIED {reason.value}: SIP {sip_code}")


# --- Allowed calls --------------------------------------------------------------------------


def test_given_a_paris_subscriber_on_maroc_illimite_when_moroccan_mobile_dialled_then_allowed(
    state,
) -> None:
    decision = call(state, "amina", MOROCCAN_MOBILE)

    assert decision.allowed
    assert decision.reason is Reason.ALLOWED
    assert (decision.sip_code, decision.sip_reason) == (200, "OK")
    assert decision.destination is not None
    assert decision.destination.e164 == "+212661234567"
    assert (decision.subscriber_id, decision.subscription_id) == (1, 10)
    assert decision.plan_code == "maroc-illimite"
    assert [(hop.carrier, hop.billing) for hop in decision.routes] == [
        ("ma-flat", CarrierTariff.FLAT_RATE),
        ("ma-flat", CarrierTariff.FLAT_RATE),
        ("ma-minute", CarrierTariff.PER_MINUTE),
    ]
    # The plan cuts a call at 2 h, the platform at 4 h: the plan's limit applies.
    assert decision.max_duration == timedelta(hours=2)
    assert decision.max_duration_seconds == 7200
    # The codes after which the hunt goes on, from the one table (every 5xx among them).
    assert decision.failover_codes == FAILOVER_CODES
    assert {408, 500, 501, 502, 503, 504, 505, 513, 580} <= set(decision.failover_codes)
    assert not {404, 480, 486, 487, 600, 603} & set(decision.failover_codes)
    text = story(decision)
    assert "subscriber amina (id 1, Amina Benali)" in text
    assert "+212661234567: MA mobile, range of Maroc Telecom" in text
    assert "plan maroc-illimite covers MA mobile" in text
    assert decision.explanation[-1] == "ALLOWED: 3 route(s), call cut after 2:00:00"


def test_given_a_montreal_subscriber_when_011_prefix_dialled_then_read_as_international(
    state,
) -> None:
    # Karim's phone is Canadian, so 011 is the international prefix; Saturday: plan hours.
    saturday = datetime(2026, 1, 17, 11, 0, tzinfo=MONTREAL)

    decision = call(state, "karim", "011 212 661 234 567", saturday)

    assert decision.allowed
    assert decision.destination is not None
    assert decision.destination.e164 == "+212661234567"


@pytest.mark.parametrize("dialled", ["00212661234567", "+212661234567", "011212661234567"])
def test_given_a_montreal_subscriber_when_00_plus_or_011_dialled_then_all_allowed(
    state, dialled: str
) -> None:
    # Issue 11: softphone users dial 00 whatever their country; Montreal's own prefix is 011.
    saturday = datetime(2026, 1, 17, 11, 0, tzinfo=MONTREAL)

    decision = call(state, "karim", dialled, saturday)

    assert decision.allowed, story(decision)
    assert decision.destination is not None
    assert decision.destination.e164 == "+212661234567"


def test_given_a_paris_subscriber_when_011_prefix_dialled_then_invalid_number(state) -> None:
    # From France, "011 212 661 234 567" is a 14-digit national number: not a French number.
    decision = call(state, "amina", "011 212 661 234 567")

    assert_denied(decision, Reason.INVALID_NUMBER, 484)


def test_given_a_tunisian_31x_number_when_evening_plan_used_then_allowed_via_tunisian_carrier(
    state,
) -> None:
    evening = datetime(2026, 1, 14, 22, 0, tzinfo=PARIS)

    decision = call(state, "leila", "+216 31 123 456", evening)

    assert decision.allowed
    assert [hop.carrier for hop in decision.routes] == ["tn-minute"]
    assert decision.routes[0].cost_per_minute == Money(Decimal("0.0500"), "EUR")


# --- Each reason code -----------------------------------------------------------------------


def test_given_an_unknown_sip_username_when_call_placed_then_unknown_subscriber(state) -> None:
    decision = call(state, "mallory", MOROCCAN_MOBILE)

    assert_denied(decision, Reason.UNKNOWN_SUBSCRIBER, 403)
    assert decision.subscriber_id is None
    assert "no subscriber has SIP username 'mallory'" in story(decision)


def test_given_an_expired_subscription_when_call_placed_then_no_active_subscription(
    state,
) -> None:
    decision = call(state, "yassine", MOROCCAN_MOBILE)

    assert_denied(decision, Reason.NO_ACTIVE_SUBSCRIPTION, 403)
    assert decision.subscriber_id == 4
    assert decision.subscription_id is None
    assert (
        "subscription 40 to maroc-illimite is expired, period 2025-12-01T00:00:00+00:00 to "
        "2026-01-01T00:00:00+00:00"
    ) in story(decision)


def test_given_no_subscription_at_all_when_call_placed_then_no_active_subscription(state) -> None:
    decision = call(state, "omar", MOROCCAN_MOBILE)

    assert_denied(decision, Reason.NO_ACTIVE_SUBSCRIPTION, 403)
    assert "no subscription at all" in story(decision)


def test_given_an_active_subscription_whose_period_ended_when_call_placed_then_refused(
    state,
) -> None:
    # Amina's January period ended at midnight UTC on 1 February; renewal has not run yet.
    february = datetime(2026, 2, 1, 0, 0, 1, tzinfo=UTC)

    decision = call(state, "amina", MOROCCAN_MOBILE, february)

    assert_denied(decision, Reason.NO_ACTIVE_SUBSCRIPTION, 403)
    # Fault 10 of issue 11: "is active" followed by a denial misled the support desk.
    assert "is active" not in story(decision)
    assert (
        "subscription 10 to maroc-illimite is not usable: its paid period ended "
        "2026-02-01T00:00:00+00:00 and was not renewed" in story(decision)
    )


def test_given_a_renewed_subscription_when_call_placed_then_the_current_period_is_used(
    state,
) -> None:
    renewed = Subscription(
        id=11,
        subscriber_id=1,
        plan_code="maroc-illimite",
        status=SubscriptionStatus.ACTIVE,
        period_start=datetime(2026, 2, 1, tzinfo=UTC),
        period_end=datetime(2026, 3, 1, tzinfo=UTC),
    )
    subscriptions = {**state.subscriptions, 1: (*state.subscriptions[1], renewed)}

    decision = call(
        replace(state, subscriptions=subscriptions),
        "amina",
        MOROCCAN_MOBILE,
        datetime(2026, 2, 3, 12, 0, tzinfo=UTC),
    )

    assert decision.allowed
    assert decision.subscription_id == 11


def test_given_a_subscription_suspended_for_an_unpaid_renewal_when_call_placed_then_suspended(
    state,
) -> None:
    # Dunning suspends the subscription once the grace period is over (docs/payments.md).
    subscriptions = {
        **state.subscriptions,
        1: tuple(replace(s, status=SubscriptionStatus.SUSPENDED) for s in state.subscriptions[1]),
    }

    decision = call(replace(state, subscriptions=subscriptions), "amina", MOROCCAN_MOBILE)

    assert_denied(decision, Reason.SUBSCRIPTION_SUSPENDED, 403)
    assert decision.sip_reason == "Subscription Suspended"
    assert "subscription 10 to maroc-illimite is suspended" in story(decision)


def test_given_a_subscription_to_a_withdrawn_plan_when_call_placed_then_refused(state) -> None:
    plans = {code: plan for code, plan in state.plans.items() if code != "maroc-illimite"}

    decision = call(replace(state, plans=plans), "amina", MOROCCAN_MOBILE)

    assert_denied(decision, Reason.NO_ACTIVE_SUBSCRIPTION, 403)
    assert "names unknown plan maroc-illimite" in story(decision)


@pytest.mark.parametrize("dialled", ["", "hello", "+212 6612", "2" * 200, "sip:<script>@x"])
def test_given_something_that_is_not_a_number_when_dialled_then_invalid_number(
    state, dialled: str
) -> None:
    decision = call(state, "amina", dialled)

    assert_denied(decision, Reason.INVALID_NUMBER, 484)
    assert decision.sip_reason == "Address Incomplete"
    assert decision.subscription_id == 10
    assert f"dialled {dialled[:40]!r}" in story(decision)


def test_given_a_moroccan_premium_rate_number_when_dialled_then_destination_not_sold(
    state,
) -> None:
    decision = call(state, "amina", "+212 892 12 34 56")

    assert_denied(decision, Reason.DESTINATION_NOT_SOLD, 403)
    assert decision.destination is not None
    assert decision.destination.kind is NumberKind.PREMIUM_RATE
    assert "premium_rate numbers are never sold" in story(decision)


def test_given_a_tunisian_number_on_the_moroccan_plan_when_dialled_then_not_in_plan(
    state,
) -> None:
    decision = call(state, "amina", "0021620123456")

    assert_denied(decision, Reason.DESTINATION_NOT_IN_PLAN, 403)
    assert "plan maroc-illimite covers MA fixed, MA mobile" in story(decision)


@pytest.mark.parametrize(
    ("local_time", "allowed", "why"),
    [
        (datetime(2026, 1, 14, 14, 0, tzinfo=PARIS), False, "Wednesday afternoon"),
        (datetime(2026, 1, 14, 19, 59, tzinfo=PARIS), False, "a minute before the evening"),
        (datetime(2026, 1, 14, 20, 0, tzinfo=PARIS), True, "the evening opens"),
        (datetime(2026, 1, 14, 21, 0, tzinfo=PARIS), True, "Wednesday evening"),
        (datetime(2026, 1, 13, 1, 0, tzinfo=PARIS), True, "Tuesday 01:00, from Monday evening"),
        (datetime(2026, 1, 13, 7, 59, tzinfo=PARIS), True, "Tuesday, just before 08:00"),
        (datetime(2026, 1, 13, 8, 0, tzinfo=PARIS), False, "Tuesday 08:00: the evening is over"),
        (datetime(2026, 1, 17, 14, 0, tzinfo=PARIS), True, "Saturday afternoon"),
        (datetime(2026, 1, 18, 12, 0, tzinfo=PARIS), True, "Sunday noon"),
        (datetime(2026, 1, 19, 7, 30, tzinfo=PARIS), True, "Monday 07:30, from Sunday evening"),
        (datetime(2026, 1, 19, 9, 0, tzinfo=PARIS), False, "Monday 09:00"),
    ],
)
def test_given_the_evening_plan_in_paris_when_called_at_local_times_then_only_in_plan_hours(
    state, local_time: datetime, allowed: bool, why: str
) -> None:
    decision = call(state, "leila", MOROCCAN_MOBILE, local_time)

    assert decision.allowed is allowed, why
    if not allowed:
        assert_denied(decision, Reason.OUTSIDE_TIME_WINDOW, 403)


def test_given_the_evening_plan_at_2pm_on_a_weekday_when_called_then_explanation_gives_hours(
    state,
) -> None:
    decision = call(state, "leila", MOROCCAN_MOBILE, datetime(2026, 1, 14, 14, 0, tzinfo=PARIS))

    assert decision.sip_reason == "Outside Plan Hours"
    assert (
        "it is Wed 14:00 in Europe/Paris; plan hours are "
        "Mon,Tue,Wed,Thu,Fri,Sat,Sun 20:00-08:00; Sat,Sun all day"
    ) in story(decision)


def _with_grace(state: DecisionState, minutes: int) -> DecisionState:
    plan = replace(state.plans["soirees-maghreb"], window_grace=timedelta(minutes=minutes))
    return replace(state, plans={**state.plans, plan.code: plan})


def test_given_a_call_at_0759_in_a_plan_ending_at_0800_then_cut_at_0800_and_explained(
    state,
) -> None:
    # issue 10, fault 8 (cgrates #397): it used to be allowed the plan's full 2 hours
    decision = call(state, "leila", MOROCCAN_MOBILE, datetime(2026, 1, 13, 7, 59, tzinfo=PARIS))

    assert decision.allowed
    assert decision.max_duration == timedelta(minutes=1)
    assert (
        "plan hours end at Tue 08:00 in Europe/Paris: calls are cut then (no grace in the plan)"
    ) in story(decision)


def test_given_a_plan_with_10_minutes_grace_when_called_at_0759_then_cut_at_0810(state) -> None:
    decision = call(
        _with_grace(state, 10), "leila", MOROCCAN_MOBILE, datetime(2026, 1, 13, 7, 59, tzinfo=PARIS)
    )

    assert decision.max_duration == timedelta(minutes=11)
    assert "calls are cut 10 min after it (plan's grace)" in story(decision)
    # the grace lengthens calls in progress; it never opens the plan after its hours
    late = call(
        _with_grace(state, 10), "leila", MOROCCAN_MOBILE, datetime(2026, 1, 13, 8, 5, tzinfo=PARIS)
    )
    assert_denied(late, Reason.OUTSIDE_TIME_WINDOW, 403)


@pytest.mark.parametrize(
    ("local_time", "end"),
    [
        # Friday evening runs into the weekend, then Sunday evening: the hours end Monday 08:00
        (datetime(2026, 1, 16, 21, 0, tzinfo=PARIS), datetime(2026, 1, 19, 8, 0, tzinfo=PARIS)),
        (datetime(2026, 1, 14, 23, 30, tzinfo=PARIS), datetime(2026, 1, 15, 8, 0, tzinfo=PARIS)),
        (datetime(2026, 1, 15, 0, 30, tzinfo=PARIS), datetime(2026, 1, 15, 8, 0, tzinfo=PARIS)),
        # outside the hours: the end is now
        (datetime(2026, 1, 14, 14, 0, tzinfo=PARIS), datetime(2026, 1, 14, 14, 0, tzinfo=PARIS)),
        # the night Paris moves to summer time (29 March 2026, 02:00 -> 03:00)
        (datetime(2026, 3, 29, 1, 30, tzinfo=PARIS), datetime(2026, 3, 30, 8, 0, tzinfo=PARIS)),
    ],
)
def test_the_end_of_a_plans_hours_chains_windows_that_follow_each_other(
    state, local_time: datetime, end: datetime
) -> None:
    plan = state.plans["soirees-maghreb"]
    assert plan.window_end(local_time, "Europe/Paris") == end
    assert state.plans["maroc-illimite"].window_end(local_time, "Europe/Paris") is None


def test_given_a_grace_outside_0_to_24_hours_then_the_plan_is_refused(state) -> None:
    plan = state.plans["soirees-maghreb"]
    for grace in (timedelta(minutes=-1), timedelta(hours=25)):
        with pytest.raises(InvalidConfiguration):
            replace(plan, window_grace=grace)


def test_given_an_evening_in_paris_when_montreal_is_in_the_afternoon_then_only_paris_may_call(
    state,
) -> None:
    # Wednesday 19:30 UTC: 20:30 in Paris (UTC+1), 14:30 in Montreal (UTC-5).
    instant = datetime(2026, 1, 14, 19, 30, tzinfo=UTC)

    paris = call(state, "leila", MOROCCAN_MOBILE, instant)
    montreal = call(state, "karim", "011212661234567", instant)

    assert paris.allowed
    assert_denied(montreal, Reason.OUTSIDE_TIME_WINDOW, 403)
    assert "it is Wed 14:30 in America/Montreal" in story(montreal)


def test_given_a_night_in_montreal_when_paris_is_at_work_then_only_montreal_may_call(
    state,
) -> None:
    # Thursday 08:30 UTC: 09:30 in Paris (evening over), 03:30 in Montreal (Wednesday's evening).
    instant = datetime(2026, 1, 15, 8, 30, tzinfo=UTC)

    paris = call(state, "leila", MOROCCAN_MOBILE, instant)
    montreal = call(state, "karim", "011212661234567", instant)

    assert_denied(paris, Reason.OUTSIDE_TIME_WINDOW, 403)
    assert "it is Thu 09:30 in Europe/Paris" in story(paris)
    assert montreal.allowed


def test_given_all_fair_use_minutes_used_when_call_placed_then_fair_use_exceeded(state) -> None:
    used_up = replace(state, usage={10: Usage(answered_seconds=3000 * 60)})

    decision = call(used_up, "amina", MOROCCAN_MOBILE)

    assert_denied(decision, Reason.FAIR_USE_EXCEEDED, 403)
    assert decision.sip_reason == "Fair Use Limit Reached"
    assert "used 3000 of 3000 minutes this period" in story(decision)


def test_given_ten_minutes_of_fair_use_left_when_call_placed_then_cut_after_ten_minutes(
    state,
) -> None:
    nearly = replace(state, usage={10: Usage(answered_seconds=2990 * 60)})

    decision = call(nearly, "amina", MOROCCAN_MOBILE)

    assert decision.allowed
    assert decision.max_duration == timedelta(minutes=10)
    assert "used 2990 of 3000 minutes this period" in story(decision)


def test_given_thirty_seconds_of_fair_use_left_when_call_placed_then_cut_after_thirty_seconds(
    state,
) -> None:
    # 2999 min 30 s used of 3000 min.
    nearly = replace(state, usage={10: Usage(answered_seconds=2999 * 60 + 30)})

    decision = call(nearly, "amina", MOROCCAN_MOBILE)

    assert decision.allowed
    assert decision.max_duration_seconds == 30


def test_given_a_platform_cap_below_the_plan_limit_when_call_placed_then_platform_cap_applies(
    state,
) -> None:
    capped = replace(state, platform_max_call_duration=timedelta(minutes=45))

    decision = call(capped, "amina", MOROCCAN_MOBILE)

    assert decision.max_duration == timedelta(minutes=45)


def test_given_a_plan_without_call_duration_limit_when_call_placed_then_platform_cap_applies(
    state, operator
) -> None:
    no_cap = replace(
        operator.maroc_illimite,
        fair_use=FairUse(max_call_duration=None, concurrent_calls=None),
    )
    plans = {**state.plans, "maroc-illimite": no_cap}

    decision = call(replace(state, plans=plans), "amina", MOROCCAN_MOBILE)

    assert decision.max_duration == timedelta(hours=4)


TWENTY_NUMBERS = frozenset(f"+2126612345{index:02d}" for index in range(20))


def test_given_the_distinct_number_limit_reached_when_a_known_number_called_then_allowed(
    state,
) -> None:
    usage = replace(state, usage={10: Usage(distinct_numbers=TWENTY_NUMBERS)})

    decision = call(usage, "amina", "+212 661 23 45 07")

    assert decision.allowed


def test_given_the_distinct_number_limit_reached_when_a_new_number_called_then_refused(
    state,
) -> None:
    usage = replace(state, usage={10: Usage(distinct_numbers=TWENTY_NUMBERS)})

    decision = call(usage, "amina", "+212 661 23 45 99")

    assert_denied(decision, Reason.FAIR_USE_EXCEEDED, 403)
    assert "called 20 of 20 distinct numbers this period" in story(decision)


def test_given_one_distinct_number_left_when_a_new_number_called_then_allowed(state) -> None:
    nineteen = frozenset(sorted(TWENTY_NUMBERS)[:19])
    usage = replace(state, usage={10: Usage(distinct_numbers=nineteen)})

    decision = call(usage, "amina", "+212 661 23 45 99")

    assert decision.allowed
    assert "called 19 of 20 distinct numbers this period" in story(decision)


def test_given_a_call_already_in_progress_when_a_second_is_placed_then_concurrent_limit(
    state,
) -> None:
    busy = replace(state, usage={10: Usage(active_calls=1)})

    decision = call(busy, "amina", MOROCCAN_MOBILE)

    assert_denied(decision, Reason.CONCURRENT_LIMIT, 403)
    assert "1 of 1 simultaneous calls in use" in story(decision)


def test_given_no_call_in_progress_when_call_placed_then_concurrency_noted(state) -> None:
    decision = call(state, "amina", MOROCCAN_MOBILE)

    assert decision.allowed
    assert "0 of 1 simultaneous calls in use" in story(decision)


def test_given_every_moroccan_carrier_down_when_call_placed_then_no_route_503(state) -> None:
    outage = replace(
        state,
        live={"ma-flat": CarrierState(up=False), "ma-minute": CarrierState(up=False)},
    )

    decision = call(outage, "amina", MOROCCAN_MOBILE)

    # RFC 3261 §21.5.4: 503 is temporary, the phone may retry later.
    assert_denied(decision, Reason.NO_ROUTE, 503)
    text = story(decision)
    assert "carrier ma-flat skipped: down" in text
    assert "carrier ma-minute skipped: down" in text
    assert "no carrier can take a call to MA now" in text


def test_given_the_flat_rate_carrier_full_when_call_placed_then_per_minute_carrier_first(
    state,
) -> None:
    full = replace(state, live={"ma-flat": CarrierState(channels_in_use=30)})

    decision = call(full, "amina", MOROCCAN_MOBILE)

    assert decision.allowed
    assert [(hop.carrier, hop.billing) for hop in decision.routes] == [
        ("ma-minute", CarrierTariff.PER_MINUTE),
        ("ma-flat", CarrierTariff.PER_MINUTE),
        ("ma-flat", CarrierTariff.PER_MINUTE),
    ]


def _ivorian_state(state: DecisionState, **changes: object) -> DecisionState:
    ivory_coast = Plan(
        code="cote-divoire",
        names={"fr": "Côte d'Ivoire Illimité"},
        period=Period.MONTH,
        price=Money(Decimal("14.99"), "EUR"),
        destinations=frozenset({DestinationRule("CI", NumberKind.FIXED)}),
    )
    ci_carrier = Carrier(
        code="ci-flat",
        name="Lagune Telecom",
        gateways=(Gateway("gw1", "203.0.113.5"),),
        destinations=(CarrierDestination(DestinationRule("CI", NumberKind.FIXED)),),
        flat_rate=FlatRateContract(10, Money(Decimal("500"), "EUR")),
    )
    subscriptions = {
        **state.subscriptions,
        5: (replace(state.subscriptions[1][0], id=50, subscriber_id=5, plan_code="cote-divoire"),),
    }
    return replace(
        state,
        plans={**state.plans, "cote-divoire": ivory_coast},
        carriers=(*state.carriers, ci_carrier),
        subscriptions=subscriptions,
        **changes,
    )


def test_given_a_possible_but_unlisted_ivorian_number_when_ci_metadata_marked_incomplete_then_allowed_and_flagged(  # noqa: E501
    state,
) -> None:
    # Some real Ivorian fixed ranges are missing from libphonenumber's metadata: an operator
    # who knows it lists CI, and such calls go through on a fixed/mobile length, flagged.
    ci_state = _ivorian_state(state, unlisted_number_countries=frozenset({"CI"}))

    decision = call(ci_state, "omar", "00225 27 21 45 67 89")

    assert decision.allowed
    assert decision.unlisted_number
    assert decision.destination is not None
    assert not decision.destination.validated
    assert decision.destination.kind is NumberKind.FIXED_OR_MOBILE
    assert [hop.carrier for hop in decision.routes] == ["ci-flat"]
    assert "metadata is marked incomplete" in story(decision)


def test_given_a_possible_but_unlisted_ivorian_number_by_default_then_not_sold(state) -> None:
    decision = call(_ivorian_state(state), "omar", "00225 27 21 45 67 89")

    assert_denied(decision, Reason.DESTINATION_NOT_SOLD, 403)
    assert decision.unlisted_number  # the refusal carries the flag too
    assert "no range libphonenumber lists for CI" in story(decision)


def test_given_an_8_digit_cameroon_number_when_plan_sells_cameroon_then_not_sold(state) -> None:
    # 8 digits is a Cameroonian toll-free length only: possible for the country, for no line.
    cameroon = replace(
        state.plans["maroc-illimite"],
        destinations=frozenset(
            DestinationRule(country, kind)
            for country in ("MA", "CM")
            for kind in (NumberKind.FIXED, NumberKind.MOBILE)
        ),
    )
    cm_state = replace(
        state,
        plans={**state.plans, "maroc-illimite": cameroon},
        unlisted_number_countries=frozenset({"CM"}),
    )

    decision = call(cm_state, "amina", "+237 1234 5678")

    assert_denied(decision, Reason.DESTINATION_NOT_SOLD, 403)


def test_given_120_random_unrecognised_moroccan_numbers_then_every_one_refused(state) -> None:
    rng = random.Random(9_12)
    refused = 0
    while refused < 120:
        national = f"{rng.choice('5678')}{rng.randrange(10**8):08d}"
        parsed = phonenumbers.parse(f"+212{national}", None)
        if phonenumbers.is_valid_number(parsed):
            continue  # only the numbers libphonenumber does not recognise
        decision = call(state, "amina", f"00212{national}")
        assert not decision.allowed, story(decision)
        assert decision.reason in (Reason.DESTINATION_NOT_SOLD, Reason.INVALID_NUMBER)
        refused += 1


# --- The order of the checks ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "dialled", "local_time", "usage", "live", "reason"),
    [
        # Unknown user who also dials garbage: who they are is checked first.
        ("mallory", "garbage", None, None, None, Reason.UNKNOWN_SUBSCRIBER),
        # Expired subscriber dialling garbage.
        ("yassine", "garbage", None, None, None, Reason.NO_ACTIVE_SUBSCRIPTION),
        # Evening subscriber, premium number, at 14:00: never sold, whatever the time.
        ("leila", "+212892123456", None, None, None, Reason.DESTINATION_NOT_SOLD),
        # Moroccan plan, Senegalese number, minutes used up.
        ("amina", "+221771234567", None, "minutes", None, Reason.DESTINATION_NOT_IN_PLAN),
        # Evening plan at 14:00 with a call in progress.
        ("leila", MOROCCAN_MOBILE, None, "busy", None, Reason.OUTSIDE_TIME_WINDOW),
        # Minutes used up and a call in progress and carriers down.
        ("amina", MOROCCAN_MOBILE, None, "minutes+busy", "down", Reason.FAIR_USE_EXCEEDED),
        # A call in progress and carriers down.
        ("amina", MOROCCAN_MOBILE, None, "busy", "down", Reason.CONCURRENT_LIMIT),
        ("amina", MOROCCAN_MOBILE, None, None, "down", Reason.NO_ROUTE),
    ],
)
def test_given_several_problems_when_call_placed_then_the_first_check_in_order_names_it(
    state, username, dialled, local_time, usage, live, reason
) -> None:
    usages = {
        None: {},
        "minutes": {10: Usage(answered_seconds=3000 * 60)},
        "busy": {10: Usage(active_calls=1), 20: Usage(active_calls=1)},
        "minutes+busy": {10: Usage(answered_seconds=3000 * 60, active_calls=1)},
    }
    lives = {
        None: {},
        "down": {code: CarrierState(up=False) for code in ("ma-flat", "ma-minute")},
    }
    world = replace(state, usage=usages[usage], live=lives[live])

    decision = call(world, username, dialled, local_time or WEDNESDAY_AFTERNOON)

    assert decision.reason is reason
    assert decision.sip_code == SIP_REPLY[reason][0]


def test_given_a_naive_time_when_call_decided_then_programming_error(state) -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        authorize_call(CallRequest("amina", MOROCCAN_MOBILE), state, datetime(2026, 1, 14, 14))


def test_given_a_decision_when_modified_then_refused_because_it_is_a_value(state) -> None:
    decision = call(state, "amina", MOROCCAN_MOBILE)

    with pytest.raises(AttributeError):
        decision.allowed = False  # type: ignore[misc]


def test_every_denial_reason_has_a_sip_reply_of_at_least_400() -> None:
    denials = [reason for reason in Reason if reason is not Reason.ALLOWED]

    assert set(SIP_REPLY) == set(denials)
    assert all(400 <= code < 700 for code, _ in SIP_REPLY.values())


# --- Properties -----------------------------------------------------------------------------

KNOWN_USERNAMES = ["amina", "leila", "karim", "yassine", "omar"]
PHONE_LIKE = st.from_regex(
    r"\A(tel:|sip:)?(\+|00|011)?(212|216|213|221|225|33|1)?[0-9 \-.()]{0,14}(@[a-z.]{1,12})?\Z"
)
EXAMPLE_NUMBERS = st.sampled_from(
    [
        MOROCCAN_MOBILE,
        "0522123456",
        "+212892123456",
        "+21631123456",
        "+21620123456",
        "+213551234567",
        "+21321123456",
        "+2252721456789",
        "011 212 661 234 567",
        *sorted(TWENTY_NUMBERS)[:3],
    ]
)
ZONES = st.sampled_from([UTC, PARIS, MONTREAL, ZoneInfo("Africa/Casablanca")])
# Mostly inside January 2026 (the sample subscriptions' period), sometimes around it.
MOMENTS = st.one_of(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 31), timezones=ZONES),
    st.datetimes(
        min_value=datetime(2025, 12, 20), max_value=datetime(2026, 2, 10), timezones=ZONES
    ),
)
USAGES = st.builds(
    Usage,
    answered_seconds=st.one_of(
        st.integers(min_value=0, max_value=600),
        st.integers(min_value=2900 * 60, max_value=3000 * 60),  # the last fair-use minutes
        st.integers(min_value=0, max_value=3100 * 60),
    ),
    distinct_numbers=st.integers(min_value=0, max_value=20).map(
        lambda count: frozenset(sorted(TWENTY_NUMBERS)[:count])
    ),
    active_calls=st.sampled_from([0, 0, 0, 1, 2]),
)
USERNAMES = st.one_of(
    st.sampled_from(["amina", "leila", "karim"]),
    st.sampled_from(KNOWN_USERNAMES),
    st.text(max_size=70),
)
# Three in five dialled strings are real numbers, so that the later checks are reached often.
DIALLED = st.sampled_from(["example", "example", "example", "phone_like", "text"]).flatmap(
    lambda kind: {
        "example": EXAMPLE_NUMBERS,
        "phone_like": PHONE_LIKE,
        "text": st.text(max_size=250),
    }[kind]
)


def decide_in_random_world(
    state: DecisionState,
    carriers: list[Carrier],
    live: dict[str, CarrierState],
    usage: Usage,
    request: CallRequest,
    now: datetime,
    routing_rules,
) -> Decision:
    """Decide one call in a random world and check what every decision must satisfy."""
    world = replace(
        state,
        carriers=carriers,
        live=live,
        usage={subscription_id: usage for subscription_id in (10, 20, 30)},
    )

    decision = authorize_call(request, world, now)

    event(decision.reason.value)
    assert isinstance(decision, Decision)
    assert decision.explanation
    if not decision.allowed:
        assert decision.reason is not Reason.ALLOWED
        assert decision.routes == ()
        assert decision.sip_code >= 400
        assert decision.max_duration == timedelta(0)
        return decision
    assert decision.reason is Reason.ALLOWED
    assert decision.sip_code == 200
    assert len(decision.routes) >= 1
    assert decision.max_duration > timedelta(0)
    assert decision.destination is not None
    routing_rules.assert_sound(decision.routes, carriers, live, decision.destination)
    plan = world.plans[decision.plan_code]
    assert decision.max_duration <= world.platform_max_call_duration
    if plan.fair_use.max_call_duration is not None:
        assert decision.max_duration <= plan.fair_use.max_call_duration
    if plan.fair_use.minutes_per_period is not None:
        remaining = plan.fair_use.minutes_per_period * 60 - usage.answered_seconds
        assert decision.max_duration <= timedelta(seconds=remaining)
    if plan.fair_use.concurrent_calls is not None:
        assert usage.active_calls < plan.fair_use.concurrent_calls
    subscriber = world.subscribers[request.sip_username]
    local = now.astimezone(ZoneInfo(subscriber.time_zone))
    if plan.time_windows:
        # Independent reading of the evening plan: 20:00-08:00 or a weekend day.
        assert local.weekday() >= 5 or not time(8, 0) <= local.time() < time(20, 0)
    return decision


@settings(max_examples=200, deadline=None)
@given(data=st.data(), username=USERNAMES, dialled=DIALLED, now=MOMENTS, usage=USAGES)
def test_authorize_call_never_raises_on_random_users_numbers_and_times(
    state,
    operator,
    routing_rules,
    data: st.DataObject,
    username: str,
    dialled: str,
    now: datetime,
    usage: Usage,
) -> None:
    carriers, live = data.draw(routing_rules.worlds(operator.carriers))

    decide_in_random_world(
        state, carriers, live, usage, CallRequest(username, dialled), now, routing_rules
    )


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    username=st.sampled_from(["amina", "leila", "karim"]),
    dialled=EXAMPLE_NUMBERS,
    now=st.datetimes(
        min_value=datetime(2026, 1, 1, 12), max_value=datetime(2026, 1, 31), timezones=ZONES
    ),
    usage=USAGES,
)
def test_every_decision_for_subscribed_callers_is_consistent_in_random_carrier_states(
    state,
    operator,
    routing_rules,
    data: st.DataObject,
    username: str,
    dialled: str,
    now: datetime,
    usage: Usage,
) -> None:
    # The same checks on calls that mostly reach the later rules (hours, fair use, routing).
    carriers, live = data.draw(routing_rules.worlds(operator.carriers))

    decide_in_random_world(
        state, carriers, live, usage, CallRequest(username, dialled), now, routing_rules
    )


@settings(max_examples=100, deadline=None)
@given(now=MOMENTS, usernames=st.lists(st.sampled_from(KNOWN_USERNAMES), min_size=1))
def test_authorize_call_is_deterministic_for_the_same_request_state_and_time(
    state, now: datetime, usernames: list[str]
) -> None:
    for username in usernames:
        first = call(state, username, MOROCCAN_MOBILE, now)
        again = call(state, username, MOROCCAN_MOBILE, now)
        assert first == again


def test_given_the_evening_plan_when_time_windows_changed_then_decision_follows_plan_data(
    state, operator
) -> None:
    # A plan that only sells Monday evenings: Tuesday 01:00 is Monday night, Wednesday 01:00 not.
    monday_nights = replace(
        operator.soirees_maghreb,
        time_windows=(TimeWindow(frozenset({0}), time(20, 0), time(8, 0)),),
    )
    world = replace(state, plans={**state.plans, "soirees-maghreb": monday_nights})

    tuesday_night = call(world, "leila", MOROCCAN_MOBILE, datetime(2026, 1, 13, 1, 0, tzinfo=PARIS))
    wednesday_night = call(
        world, "leila", MOROCCAN_MOBILE, datetime(2026, 1, 14, 1, 0, tzinfo=PARIS)
    )

    assert tuesday_night.allowed
    assert_denied(wednesday_night, Reason.OUTSIDE_TIME_WINDOW, 403)
    assert "plan hours are Mon 20:00-08:00" in story(wednesday_night)


@settings(max_examples=200, deadline=None)
@given(
    username=st.sampled_from([*KNOWN_USERNAMES, "nobody"]),
    dialled=EXAMPLE_NUMBERS,
    now=MOMENTS,
    usage=USAGES,
)
def test_a_decision_without_its_explanation_is_the_same_decision(
    state, username: str, dialled: str, now: datetime, usage: Usage
) -> None:
    # The SIP path decides without formatting the reasons; nothing else may differ.
    state = replace(state, usage={subscription: usage for subscription in range(1, 20)})
    request = CallRequest(username, dialled, call_id="c@edge")
    explained = authorize_call(request, state, now)
    quiet = authorize_call(request, state, now, explain=False)
    assert replace(quiet, explanation=explained.explanation) == explained
    if quiet.allowed:
        assert quiet.explanation == ()
    else:
        assert quiet.explanation == explained.explanation[-1:]
