"""The verification code's SMS text: the subscriber's language, one SMS part each (160 GSM-7
characters, or 70 UCS-2 characters for Arabic: 3GPP TS 23.038 / 23.040)."""

from __future__ import annotations

import pytest

from tawasol.adapters.notify.sms_parts import DATA_CODING_GSM7, DATA_CODING_UCS2, split_sms
from tawasol.domain.direct_numbers import verification_code_text


@pytest.mark.parametrize(
    ("locale", "expected", "data_coding"),
    [
        ("fr", "Votre code tawasol : 654321 (valable 15 min)", DATA_CODING_GSM7),
        ("fr_MA", "Votre code tawasol : 654321 (valable 15 min)", DATA_CODING_GSM7),
        ("ar", "رمز tawasol الخاص بك: 654321 (صالح 15 دقيقة)", DATA_CODING_UCS2),
        ("en", "Your tawasol code: 654321 (valid 15 min)", DATA_CODING_GSM7),
        ("wo", "Your tawasol code: 654321 (valid 15 min)", DATA_CODING_GSM7),
    ],
)
def test_the_code_text_is_in_the_subscribers_language_and_fits_one_sms(
    locale: str, expected: str, data_coding: int
) -> None:
    text = verification_code_text("654321", locale=locale, valid_minutes=15)
    assert text.startswith(expected)
    sms = split_sms(text, reference=1)
    assert (len(sms.parts), sms.data_coding) == (1, data_coding)
