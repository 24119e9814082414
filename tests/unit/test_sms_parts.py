"""SMS parts (3GPP TS 23.038 / 23.040): the alphabet chosen, the part sizes, and parts that
each decode on their own and reassemble to the exact text; SMS settings checked at start."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tawasol.adapters.notify.sms_parts import (
    DATA_CODING_GSM7,
    DATA_CODING_UCS2,
    UDHI,
    join_parts,
    split_sms,
)
from tawasol.config import Settings
from tawasol.domain.errors import InvalidConfiguration


def reassembled(text: str) -> str:
    sms = split_sms(text, reference=42)
    return join_parts(
        list(reversed(sms.parts)), data_coding=sms.data_coding, esm_class=sms.esm_class
    )


def test_given_160_gsm_characters_when_split_then_one_message_without_header() -> None:
    sms = split_sms("a" * 160, reference=1)
    assert (sms.data_coding, sms.esm_class, len(sms.parts)) == (DATA_CODING_GSM7, 0, 1)
    assert sms.parts[0] == b"a" * 160


def test_given_161_gsm_characters_when_split_then_two_parts_of_153_and_8() -> None:
    sms = split_sms("a" * 161, reference=300)
    assert sms.esm_class == UDHI
    assert [len(part) - 6 for part in sms.parts] == [153, 8]
    assert sms.parts[0][:6] == bytes([5, 0, 3, 300 % 256, 2, 1])
    assert sms.parts[1][:6] == bytes([5, 0, 3, 300 % 256, 2, 2])


def test_given_a_euro_sign_at_a_part_boundary_then_its_escape_stays_with_it() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the escape would be septet 153, the € septet 154
    sms = split_sms(text, reference=1)
    assert sms.data_coding == DATA_CODING_GSM7
    first = sms.parts[0][6:]
    assert first == b"a" * 152 and not first.endswith(b"\x1b")
    assert reassembled(text) == text


def test_given_arabic_then_ucs2_with_67_characters_per_part() -> None:
    text = "م" * 300
    sms = split_sms(text, reference=7)
    assert sms.data_coding == DATA_CODING_UCS2 and sms.esm_class == UDHI
    assert [(len(part) - 6) // 2 for part in sms.parts] == [67, 67, 67, 67, 32]
    assert reassembled(text) == text


def test_given_70_arabic_characters_then_one_message() -> None:
    assert len(split_sms("ب" * 70, reference=1).parts) == 1
    assert len(split_sms("ب" * 71, reference=1).parts) == 2


def test_given_an_emoji_at_a_part_boundary_then_its_surrogate_pair_stays_together() -> None:
    text = "ب" * 66 + "😀" + "ب" * 10  # the pair would be units 67 and 68
    sms = split_sms(text, reference=1)
    first = sms.parts[0][6:].decode("utf-16-be")  # raises if a surrogate was cut
    assert first == "ب" * 66
    assert reassembled(text) == text


def test_given_no_text_or_too_long_a_text_then_value_error() -> None:
    with pytest.raises(ValueError):
        split_sms("", reference=1)
    with pytest.raises(ValueError):
        split_sms("ب" * 67 * 256, reference=1)


@given(st.text(min_size=1, max_size=600))
def test_any_text_reassembles_exactly_and_every_part_fits_140_octets(text: str) -> None:
    sms = split_sms(text, reference=9)
    assert all(
        len(part) <= (160 if sms.data_coding == DATA_CODING_GSM7 else 140) for part in sms.parts
    )
    assert reassembled(text) == text


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"notice_smpp_host": "smsc.example.net"}, "needs notice_smpp_system_id"),
        ({"notice_sms_sender": "Tawasol Telecom"}, "notice_sms_sender must be"),
        ({"notice_sms_sender": "+3361234567890123"}, "notice_sms_sender must be"),
        ({"notice_sms_sender": ""}, "notice_sms_sender must be"),
    ],
)
def test_given_contradictory_sms_settings_then_refused_with_their_names(
    tmp_path, settings: dict[str, str], problem: str
) -> None:
    with pytest.raises(InvalidConfiguration, match=problem):
        Settings(data_dir=tmp_path, **settings).check()


def test_given_a_usable_sms_sender_then_accepted(tmp_path) -> None:
    for sender in ("Tawasol", "TWSL-INFO", "+33612345678", "33612345678"):
        Settings(
            data_dir=tmp_path,
            notice_smpp_host="smsc.example.net",
            notice_smpp_system_id="tawasol",
            notice_sms_sender=sender,
        ).check()
