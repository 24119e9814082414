"""Numbers nobody sells (issue 9, fault 12): a seeded random run over 2,000 numbers across many
countries and ranges (fixed, mobile, premium rate, toll-free, shared cost, VoIP, personal, UAN,
pager, voicemail, satellite, international premium rate, unrecognised) allows nothing outside the
plan's fixed and mobile ranges, as libphonenumber itself reads them."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import PhoneNumberType

from tawasol.domain.carriers import Carrier, CarrierDestination, FlatRateContract, Gateway
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.decision import CallRequest, DecisionState, Reason, authorize_call
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind

SOLD_COUNTRIES = (
    "MA", "DZ", "TN", "SN", "CI", "CM", "ML", "FR", "BE", "DE", "GB", "ES", "IT", "US", "CA",
    "TR", "EG", "NG", "IN", "CN", "BR", "RU", "AU", "JP",
)  # fmt: skip
OTHER_COUNTRIES = ("MX", "ZA", "KE", "PK", "PH", "VN", "AR", "SA", "AE", "NL", "PL", "LB")
LINE_TYPES = (
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.SHARED_COST,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
    PhoneNumberType.PAGER,
    PhoneNumberType.VOICEMAIL,
)
# ITU-T E.164 global services: freephone, shared cost, Inmarsat, satellite (Iridium, Globalstar,
# Thuraya), international networks, international premium rate.
GLOBAL_SERVICES = (800, 808, 870, 881, 882, 883, 888, 979)
SAMPLES = 2000
SOLD_TYPES = (
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


def _mutated(rng: random.Random, example: phonenumbers.PhoneNumber) -> str:
    """The example number with its tail replaced by random digits (same range, other lines),
    sometimes one digit longer or shorter."""
    national = str(example.national_number)
    keep = rng.randint(1, max(1, len(national) - 2))
    length = len(national) + rng.choice((0, 0, 0, -1, 1))
    tail = "".join(rng.choice("0123456789") for _ in range(max(0, length - keep)))
    return f"+{example.country_code}{national[:keep]}{tail}"


def _random_numbers(rng: random.Random) -> list[str]:
    numbers: list[str] = []
    regions = SOLD_COUNTRIES + OTHER_COUNTRIES
    while len(numbers) < SAMPLES:
        draw = rng.random()
        if draw < 0.6:
            example = phonenumbers.example_number_for_type(
                rng.choice(regions), rng.choice(LINE_TYPES)
            )
        elif draw < 0.75:
            example = phonenumbers.example_number_for_non_geo_entity(rng.choice(GLOBAL_SERVICES))
        else:
            # Unrecognised: a country code and random digits of a random length.
            code = phonenumbers.country_code_for_region(rng.choice(regions))
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 12)))
            numbers.append(f"+{code}{digits}")
            continue
        if example is not None:
            numbers.append(_mutated(rng, example))
    return numbers


def _world_plan_state(state: DecisionState) -> DecisionState:
    rules = frozenset(
        DestinationRule(country, kind)
        for country in SOLD_COUNTRIES
        for kind in (NumberKind.FIXED, NumberKind.MOBILE)
    )
    plan = replace(state.plans["maroc-illimite"], destinations=rules, fair_use=replace(
        state.plans["maroc-illimite"].fair_use,
        distinct_numbers_per_period=None,
        minutes_per_period=None,
    ))  # fmt: skip
    world = Carrier(
        code="world-flat",
        name="World Transit",
        gateways=(Gateway("gw1", "203.0.113.9"),),
        destinations=tuple(CarrierDestination(rule) for rule in sorted(rules, key=str)),
        flat_rate=FlatRateContract(1000, Money(Decimal("900"), "EUR")),
    )
    return replace(state, plans={**state.plans, plan.code: plan}, carriers=(world,))


def test_given_2000_random_numbers_when_decided_then_only_listed_fixed_and_mobile_of_sold_countries_allowed(  # noqa: E501
    state,
) -> None:
    world = _world_plan_state(state)
    now = datetime(2026, 1, 14, 14, 0, tzinfo=ZoneInfo("Europe/Paris"))
    outcomes: Counter[str] = Counter()

    for index, dialled in enumerate(_random_numbers(random.Random(20261130))):
        request = CallRequest("amina", dialled, call_id=f"random-{index}")
        decision = authorize_call(request, world, now, explain=False)
        parsed = phonenumbers.parse(dialled, None)
        if decision.allowed:
            # libphonenumber, read directly: a listed fixed or mobile number of a sold country.
            assert phonenumbers.is_valid_number(parsed), dialled
            assert phonenumbers.number_type(parsed) in SOLD_TYPES, dialled
            assert phonenumbers.region_code_for_number(parsed) in SOLD_COUNTRIES, dialled
            outcomes["allowed"] += 1
        else:
            assert decision.reason in (
                Reason.INVALID_NUMBER,
                Reason.DESTINATION_NOT_SOLD,
                Reason.DESTINATION_NOT_IN_PLAN,
            ), (dialled, decision.reason)
            outcomes[decision.reason.value] += 1

    # The run is not vacuous: every kind of outcome happens, many times.
    assert sum(outcomes.values()) == SAMPLES
    assert outcomes["allowed"] >= 100, outcomes
    assert outcomes["destination_not_sold"] >= 500, outcomes
    assert outcomes["destination_not_in_plan"] >= 50, outcomes
    assert outcomes["invalid_number"] >= 200, outcomes
