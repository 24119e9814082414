"""Numbering: what subscribers dial, read as E.164 and classified with libphonenumber."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.errors import InvalidNumber
from tawasol.domain.numbering import Destination, NumberKind, classify, region_of

MAROC_TELECOM_MOBILE = "+212661234567"


@pytest.mark.parametrize(
    ("dialled", "calling_region"),
    [
        ("00212661234567", "FR"),
        ("+212 661-234567", "FR"),
        ("+212 (0)661 23 45 67", "FR"),
        ("011 212 661 234 567", "US"),
        ("011 212 661 234 567", "CA"),
        ("00212661234567", "CA"),  # Montreal: softphone users dial 00 whatever their country
        ("00212661234567", "US"),
        ("tel:+212661234567", "FR"),
        ("tel:+212-661-234567;phone-context=+212", "FR"),
        ("sip:+212661234567@sip.tawasol.test;user=phone", "FR"),
        ("sip:00212661234567@sip.tawasol.test", "FR"),
        ("sips:+212661234567@sip.tawasol.test", "FR"),
        ("  TEL:+212.661.234.567  ", "FR"),
        ("0661234567", "MA"),
    ],
)
def test_given_any_common_way_of_writing_a_moroccan_mobile_when_classified_then_same_e164(
    dialled: str, calling_region: str
) -> None:
    destination = classify(dialled, calling_region=calling_region)

    assert destination.e164 == MAROC_TELECOM_MOBILE
    assert destination.country == "MA"
    assert destination.country_code == 212
    assert destination.kind is NumberKind.MOBILE
    assert destination.range_holder == "Maroc Telecom"
    assert destination.validated
    assert destination.routable


def test_given_a_region_when_a_national_number_is_dialled_then_it_belongs_to_that_region() -> None:
    # 06 12 34 56 78 is a French mobile from Paris, and not Moroccan: the calling region decides.
    from_paris = classify("06 12 34 56 78", calling_region="FR")
    from_morocco = classify("0612345678", calling_region="ma")

    assert (from_paris.e164, from_paris.country) == ("+33612345678", "FR")
    assert (from_morocco.e164, from_morocco.country) == ("+212612345678", "MA")


def test_given_a_moroccan_fixed_line_when_classified_then_fixed_and_routable() -> None:
    destination = classify("+212 522 12 34 56")

    assert destination.e164 == "+212522123456"
    assert destination.kind is NumberKind.FIXED
    assert destination.routable
    # libphonenumber only names original range holders of mobile ranges.
    assert destination.range_holder == ""


def test_given_a_moroccan_premium_rate_number_when_classified_then_premium_and_not_routable() -> (
    None
):
    destination = classify("00212892123456")

    assert destination.e164 == "+212892123456"
    assert destination.kind is NumberKind.PREMIUM_RATE
    assert destination.validated
    assert not destination.routable


def test_given_an_international_toll_free_number_when_classified_then_not_routable() -> None:
    destination = classify("+1 800 555 0199")

    assert destination.kind is NumberKind.TOLL_FREE
    assert not destination.routable


def test_given_a_tunisian_31x_number_when_classified_then_fixed_or_mobile_and_routable() -> None:
    destination = classify("00216 31 123 456")

    assert destination.e164 == "+21631123456"
    assert destination.country == "TN"
    assert destination.kind is NumberKind.FIXED_OR_MOBILE
    assert destination.routable


@pytest.mark.parametrize(
    ("dialled", "e164", "country", "kind"),
    [
        ("00216 20 123 456", "+21620123456", "TN", NumberKind.MOBILE),
        ("00216 71 123 456", "+21671123456", "TN", NumberKind.FIXED),
        ("00213 551 23 45 67", "+213551234567", "DZ", NumberKind.MOBILE),
        ("00213 21 12 34 56", "+21321123456", "DZ", NumberKind.FIXED),
        ("00221 77 123 45 67", "+221771234567", "SN", NumberKind.MOBILE),
        ("00225 07 07 12 34 56", "+2250707123456", "CI", NumberKind.MOBILE),
    ],
)
def test_given_maghreb_and_west_african_numbers_when_classified_then_country_and_kind_known(
    dialled: str, e164: str, country: str, kind: NumberKind
) -> None:
    destination = classify(dialled)

    assert (destination.e164, destination.country, destination.kind) == (e164, country, kind)
    assert destination.validated


def test_given_a_possible_but_unknown_ivorian_fixed_range_when_classified_then_unlisted() -> None:
    # A ten-digit Ivorian fixed number (27 ...) in a range libphonenumber's metadata does not
    # list: right length for Côte d'Ivoire, so possible, but not valid. Checked against the
    # library itself so that a metadata update that adds the range shows up here.
    dialled = "+225 27 21 45 67 89"
    parsed = phonenumbers.parse(dialled, None)
    assert phonenumbers.is_possible_number(parsed)
    assert not phonenumbers.is_valid_number(parsed)

    destination = classify(dialled)

    assert destination.e164 == "+2252721456789"
    assert destination.country == "CI"
    assert destination.country_code == 225
    assert not destination.validated
    assert destination.unlisted
    assert destination.kind is NumberKind.UNLISTED
    assert not destination.routable
    assert destination.range_holder == ""


def test_given_an_8_digit_cameroon_number_when_classified_then_unknown_not_unlisted() -> None:
    # Cameroon's fixed and mobile numbers have 9 digits; 8 is a toll-free length only, so the
    # number is possible for Cameroon but for no fixed or mobile line.
    destination = classify("+237 1234 5678")

    assert destination.country == "CM"
    assert destination.kind is NumberKind.UNKNOWN
    assert not destination.routable


@pytest.mark.parametrize(
    "e164",
    ["+881612345678", "+883510012345", "+80012345678", "+97912345678", "+88234567890"],
)
def test_given_a_global_service_number_when_classified_then_never_routable(e164: str) -> None:
    # Iridium's +8816 is "mobile" to libphonenumber, but a satellite minute costs dollars.
    destination = classify(e164)

    assert destination.country == "001"
    assert not destination.routable


# ITU-T E.164 / libphonenumber: each region's international prefix (`011` in North America,
# `0011` Australia, `810` Russia, `010` Japan, `00` + a carrier code in Brazil and Korea).
_EVERY_REGION = sorted(phonenumbers.SUPPORTED_REGIONS)


@pytest.mark.parametrize("calling_region", _EVERY_REGION)
def test_given_any_calling_country_when_plus_00_or_its_own_prefix_dialled_then_same_number(
    calling_region: str,
) -> None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(calling_region)
    own_prefix = metadata.preferred_international_prefix or metadata.international_prefix
    ways = ["+212661234567", "00212661234567", "00 212 661 23 45 67"]
    if own_prefix and own_prefix.isdigit():
        ways.append(f"{own_prefix} 212 661 234 567")

    for dialled in ways:
        destination = classify(dialled, calling_region=calling_region)
        assert (destination.e164, destination.kind) == (MAROC_TELECOM_MOBILE, NumberKind.MOBILE), (
            dialled
        )


@pytest.mark.parametrize(
    "dialled",
    [
        "",
        "   ",
        "hello",
        "+212 66I 234 567",  # a capital i instead of a one
        "00212661234567x",
        "+212661234567 ext. 12",
        "+",
        "()",
        "0",
        "+2120",
        "tel:",
        "sip:@sip.tawasol.test",
        "sip:sip:+212661234567",
        "+212661234567<script>",
        "١٢٣٤٥٦٧٨٩",  # Arabic-Indic digits are not what a SIP edge sends
        "2" * 200,
        "+212 " + "6" * 195,
        "1" * 41,
    ],
)
def test_given_garbage_when_classified_then_invalid_number(dialled: str) -> None:
    with pytest.raises(InvalidNumber) as raised:
        classify(dialled)

    assert raised.value.error_id == "invalid_number"


def test_given_a_200_character_string_when_classified_then_details_are_truncated() -> None:
    with pytest.raises(InvalidNumber) as raised:
        classify("9" * 200)

    assert len(raised.value.details["dialled"]) <= 40


def test_given_an_e164_number_when_region_asked_then_its_country() -> None:
    assert region_of("+15148720311") == "CA"
    assert region_of("+33612345678") == "FR"
    assert region_of("not a number") is None


# Characters the SIP edge or a person might put around a number, plus a few that do not belong.
_DIALLING_ALPHABET = "0123456789+()-. /:;@telsipTELSIP#*xX\t"


@settings(max_examples=300, deadline=None)
@given(
    dialled=st.one_of(
        st.text(),
        st.text(alphabet=_DIALLING_ALPHABET, max_size=30),
        st.from_regex(r"\A(tel:|sip:)?(\+|00|011)?[0-9 ()\-.]{0,20}(@[a-z.]{0,10})?\Z"),
    ),
    calling_region=st.sampled_from(["FR", "US", "CA", "MA", "BE", "ZZ"]),
)
def test_classify_only_ever_returns_a_destination_or_raises_invalid_number(
    dialled: str, calling_region: str
) -> None:
    try:
        destination = classify(dialled, calling_region=calling_region)
    except InvalidNumber:
        return
    assert isinstance(destination, Destination)
    assert destination.e164.startswith("+")
    assert destination.e164[1:].isdigit()
    assert len(destination.e164) <= 16  # E.164: at most 15 digits
    assert destination.e164.startswith(f"+{destination.country_code}")
    if destination.validated:
        # Cross-check against libphonenumber itself, read directly.
        parsed = phonenumbers.parse(destination.e164, None)
        assert phonenumbers.is_valid_number(parsed)
        assert phonenumbers.region_code_for_number(parsed) == destination.country


@pytest.mark.parametrize(
    "dialled",
    ["+620000000000000000", "00620000000000000000", "+4912345678901234567", "0033612345678901234"],
)
def test_given_more_digits_than_e164_allows_then_the_number_is_refused_not_cut(
    dialled: str,
) -> None:
    # ITU-T E.164 §6.1: at most 15 digits; libphonenumber read these as 17-digit numbers
    with pytest.raises(InvalidNumber, match="at most 15 digits"):
        classify(dialled, calling_region="FR")


def test_given_the_trunk_zero_after_the_country_code_then_it_is_dropped_not_refused() -> None:
    assert classify("+82 0341768487", calling_region="FR").e164 == "+82341768487"
    assert classify("+44 (0)20 7946 0000", calling_region="FR").e164 == "+442079460000"
