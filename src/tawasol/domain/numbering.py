"""Numbering: what a subscriber dialled, read as an E.164 number and classified.

A subscriber in Paris dials `00212661234567`, one in Montreal `011 212 661 234 567`, a softphone
sends `+212 (0)661 23 45 67`: all are the same Moroccan mobile. `classify()` turns what was dialled
into a `Destination`: the E.164 number, its country, its kind (fixed, mobile, fixed-or-mobile,
premium rate ...) and the operator that originally held the range. Classification uses Google's
libphonenumber metadata (the `phonenumbers` package), never hand-written prefix tables.

Only fixed and mobile numbers are ever routable: premium-rate, shared-cost, toll-free,
personal/VoIP, UAN, pager, voicemail and unknown numbers are never sold in an unlimited plan.

Some real ranges are missing from the metadata (some Côte d'Ivoire fixed ranges fail
`is_valid_number` although in service), so a number that is *possible* (right length for the
country) but not *valid* is still classified rather than refused: it is flagged
`validated=False` with kind `UNKNOWN`, and the decision (`domain/decision.py`) treats it as
fixed-or-mobile and says so in its explanation; the carrier rejects a number that does not exist.
Ranges the metadata does know as premium-rate, toll-free and the like are valid, so they keep
their kind and are never sold.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType, carrier

from tawasol.domain.errors import InvalidNumber

# The longest number E.164 allows is 15 digits; anything much longer is garbage or an attack.
_MAX_DIALLED_LENGTH = 40
_ALLOWED_CHARACTERS = re.compile(r"^[0-9+()\-. /]*$")


class NumberKind(enum.StrEnum):
    """What kind of line a number reaches, as the numbering plan of its country says."""

    FIXED = "fixed"
    MOBILE = "mobile"
    FIXED_OR_MOBILE = "fixed_or_mobile"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    TOLL_FREE = "toll_free"
    PERSONAL = "personal"
    VOIP = "voip"
    UAN = "uan"
    PAGER = "pager"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"

    @property
    def routable(self) -> bool:
        """Only calls to people's fixed and mobile lines are sold in unlimited plans."""
        return self in _ROUTABLE_KINDS


_ROUTABLE_KINDS = frozenset({NumberKind.FIXED, NumberKind.MOBILE, NumberKind.FIXED_OR_MOBILE})

_KIND_BY_TYPE: dict[int, NumberKind] = {
    PhoneNumberType.FIXED_LINE: NumberKind.FIXED,
    PhoneNumberType.MOBILE: NumberKind.MOBILE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberKind.FIXED_OR_MOBILE,
    PhoneNumberType.PREMIUM_RATE: NumberKind.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: NumberKind.SHARED_COST,
    PhoneNumberType.TOLL_FREE: NumberKind.TOLL_FREE,
    PhoneNumberType.PERSONAL_NUMBER: NumberKind.PERSONAL,
    PhoneNumberType.VOIP: NumberKind.VOIP,
    PhoneNumberType.UAN: NumberKind.UAN,
    PhoneNumberType.PAGER: NumberKind.PAGER,
    PhoneNumberType.VOICEMAIL: NumberKind.VOICEMAIL,
    PhoneNumberType.UNKNOWN: NumberKind.UNKNOWN,
}


@dataclass(frozen=True)
class Destination:
    """A dialled number once read: E.164 form, country, kind and original range holder.

    `range_holder` is the operator the range was first allocated to; with number portability
    (Morocco has it) the line may since have moved to another operator, so it is a hint for
    reports, never a routing fact. `validated` is False when libphonenumber only found the number
    *possible* (plausible length) but not in any range it knows.
    """

    e164: str
    country: str
    country_code: int
    kind: NumberKind
    range_holder: str
    validated: bool

    @property
    def routable(self) -> bool:
        return self.kind.routable


def normalise_dialled(dialled: str) -> str:
    """Strip what people and softphones put around digits; keep `+` and digits only.

    `tel:` and `sip:` prefixes and `;params` are removed; `(0)` trunk prefixes written after the
    country code are dropped by libphonenumber itself.
    """
    text = dialled.strip()
    for scheme in ("tel:", "sip:", "sips:"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    text = text.split("@", 1)[0].split(";", 1)[0]
    if len(text) > _MAX_DIALLED_LENGTH:
        raise InvalidNumber("dialled number is too long", dialled=dialled[:_MAX_DIALLED_LENGTH])
    if not text:
        raise InvalidNumber("nothing was dialled", dialled=dialled)
    if not _ALLOWED_CHARACTERS.match(text):
        raise InvalidNumber("dialled number has characters that are not digits", dialled=dialled)
    return text


def classify(dialled: str, *, calling_region: str = "FR") -> Destination:
    """Read what a subscriber dialled and classify it.

    `calling_region` is the ISO country the subscriber calls from: it decides the international
    prefix understood (`00` in Europe, `011` in North America) and the meaning of a national
    number. Raises `InvalidNumber` when the text cannot be a telephone number.
    """
    return _classify_cached(normalise_dialled(dialled), calling_region.upper())


@lru_cache(maxsize=65536)
def _classify_cached(text: str, calling_region: str) -> Destination:
    try:
        number = phonenumbers.parse(text, calling_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidNumber(f"not a telephone number: {error}", dialled=text) from error
    if not phonenumbers.is_possible_number(number):
        raise InvalidNumber("not a possible telephone number for its country", dialled=text)
    region = phonenumbers.region_code_for_number(number) or "ZZ"
    validated = phonenumbers.is_valid_number(number)
    kind = _KIND_BY_TYPE.get(phonenumbers.number_type(number), NumberKind.UNKNOWN)
    return Destination(
        e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        country=region,
        country_code=number.country_code or 0,
        kind=kind,
        range_holder=carrier.name_for_number(number, "en") if validated else "",
        validated=validated,
    )


@lru_cache(maxsize=131072)
def region_of(e164: str) -> str | None:
    """The ISO country of an E.164 number (e.g. the subscriber's own phone), or None."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(number)
