"""Numbering: what a subscriber dialled, read as an E.164 number and classified.

A subscriber in Paris dials `00212661234567`, one in Montreal `011 212 661 234 567`, a softphone
sends `+212 (0)661 23 45 67`: all are the same Moroccan mobile. `classify()` turns what was dialled
into a `Destination`: the E.164 number, its country, its kind (fixed, mobile, fixed-or-mobile,
premium rate ...) and the operator that originally held the range. Classification uses Google's
libphonenumber metadata (the `phonenumbers` package), never hand-written prefix tables.

Only fixed and mobile numbers are ever routable: premium-rate, shared-cost, toll-free,
personal/VoIP, UAN, pager, voicemail and unknown numbers are never sold in an unlimited plan,
nor is any number of a non-geographic "country" (ITU-T E.164 global services: +800 freephone,
+808 shared cost, +870 Inmarsat, +881 satellite, +882/+883 international networks, +979
international premium rate), whatever libphonenumber calls its kind.

A number counts as fixed or mobile only when libphonenumber finds it *valid* (in a range its
metadata lists for that type). A number that is only *possible* for a fixed or mobile line
(right length, no listed range) is `UNLISTED`: not routable, unless the operator lists its
country as one whose metadata is incomplete (some Côte d'Ivoire fixed ranges in service fail
`is_valid_number`); the decision (`domain/decision.py`) then treats it as fixed-or-mobile and
flags it. A number possible for no fixed or mobile line (an 8-digit Cameroon number is a
toll-free length) is `UNKNOWN` and never sold.

International prefixes (issue 11): `+`, `00` and the calling country's own international prefix
(`011` in North America, `0011` in Australia, `810` in Russia: libphonenumber knows each
region's) are all understood. Softphone users dial `00` whatever their country, so `00` is read
as international unless the calling country's own prefix pattern claims those digits (Brazil's
`0021` carrier-selection prefix, Korea's `002`).
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
_NOT_DIGITS = re.compile(r"[^0-9]")
# ITU-T E.164 §6.1: an international number has at most 15 digits (country code included)
_E164_MAX_DIGITS = 15
_TRUNK_ZERO = re.compile(r"\(\s*0\s*\)")  # "+44 (0)20 ...": the national trunk 0, not dialled

#: libphonenumber's region code for ITU-T E.164 global services (non-geographic numbers).
NON_GEOGRAPHIC = "001"


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
    UNLISTED = "unlisted"  # possible for a fixed or mobile line, in no listed range
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
        """A fixed or mobile line of a country: never a global service (satellite, +979)."""
        return self.kind.routable and self.country != NON_GEOGRAPHIC

    @property
    def unlisted(self) -> bool:
        """Possible for its country but in no range libphonenumber's metadata lists."""
        return not self.validated


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

    `calling_region` is the ISO country the subscriber calls from: it decides the meaning of a
    national number and the international prefix understood besides `+` and `00` (`011` in
    North America). Raises `InvalidNumber` when the text cannot be a telephone number.
    """
    return _classify_cached(normalise_dialled(dialled), calling_region.upper())


def _readings(text: str, calling_region: str) -> tuple[str, ...]:
    """The ways to read what was dialled, best first: as the calling region dials, and, for
    `00` + digits, as `+` + digits when the region's own international prefix is not `00`
    (Montreal's `011`) or reads those digits differently (Brazil's `0021` carrier code)."""
    digits = _NOT_DIGITS.sub("", text)
    if text.startswith("+") or not digits.startswith("00"):
        return (text,)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(calling_region)
    pattern = metadata.international_prefix if metadata is not None else None
    international = "+" + digits[2:]
    if pattern and re.match(pattern, digits):
        return (text, international)
    return (international,)


def _parse(text: str, calling_region: str) -> phonenumbers.PhoneNumber:
    """The first reading of `text` that is a valid number, else the first possible one;
    raises `InvalidNumber` when none is possible."""
    error: phonenumbers.NumberParseException | None = None
    possible: phonenumbers.PhoneNumber | None = None
    for reading in _readings(text, calling_region):
        try:
            number = phonenumbers.parse(reading, calling_region)
        except phonenumbers.NumberParseException as parse_error:
            error = error or parse_error
            continue
        if phonenumbers.is_valid_number(number):
            return number
        if possible is None and phonenumbers.is_possible_number(number):
            possible = number
    if possible is not None:
        return possible
    if error is not None:
        raise InvalidNumber(f"not a telephone number: {error}", dialled=text) from error
    raise InvalidNumber("not a possible telephone number for its country", dialled=text)


def _international_digits(text: str) -> str | None:
    """The digits after `+` or `00` (country code first), or None for a national reading."""
    digits = _NOT_DIGITS.sub("", _TRUNK_ZERO.sub("", text))
    if text.startswith("+"):
        return digits
    return digits[2:] if digits.startswith("00") else None


@lru_cache(maxsize=65536)
def _classify_cached(text: str, calling_region: str) -> Destination:
    international = _international_digits(text)
    # one digit more than E.164 allows is the national trunk 0 people often dial after the
    # country code (+82 0341..., which libphonenumber drops); anything longer is refused whole
    # before libphonenumber reads it (it keeps up to 17 national digits)
    if international is not None and len(international) > _E164_MAX_DIGITS + 1:
        raise InvalidNumber(
            f"an international number has at most {_E164_MAX_DIGITS} digits (ITU-T E.164)",
            dialled=text,
        )
    number = _parse(text, calling_region)
    region = phonenumbers.region_code_for_number(number) or "ZZ"
    validated = phonenumbers.is_valid_number(number)
    if validated:
        kind = _KIND_BY_TYPE.get(phonenumbers.number_type(number), NumberKind.UNKNOWN)
    elif any(
        phonenumbers.is_possible_number_for_type(number, line)
        for line in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE)
    ):
        kind = NumberKind.UNLISTED
    else:
        kind = NumberKind.UNKNOWN
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(e164) - 1 > _E164_MAX_DIGITS:  # a national reading that is too long
        raise InvalidNumber(
            f"an international number has at most {_E164_MAX_DIGITS} digits (ITU-T E.164)",
            dialled=text,
        )
    return Destination(
        e164=e164,
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
