"""The country of an E.164 number as one SQL expression, for billing many subscribers at once.

`tawasol.domain.numbering.region_of` asks libphonenumber (the `phonenumbers` package) one number
at a time, ~40 µs each: 40 s for a million subscribers. This module writes the same rule as a
PostgreSQL `CASE` from libphonenumber's own metadata, so the database answers for every row of
a statement:

- the country calling code is the one of 1-3 digits after `+` that ITU-T E.164 assigns (codes
  are prefix-free, so at most one matches);
- a code used by one country (+33, +216) gives that country;
- a code shared by several (+1, +7, +44, +212 ...) gives, in libphonenumber's order, the first
  country whose leading-digits pattern matches, or, for a country without one, whose number
  types (fixed line, mobile, toll free ...) the number matches (`region_code_for_number`).

What it cannot decide exactly is NULL (the caller asks `region_of` for those few numbers):
anything but `+`, the code and 2-17 digits, and numbers that start with their country's
national prefix (libphonenumber may strip it while parsing). A test compares it with
`region_of` on numbers of every shared code.
"""

from __future__ import annotations

from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _matches_desc(nsn: str, desc: object, general: object) -> str | None:
    """SQL for libphonenumber's `_is_number_matching_desc` (None: never matches)."""
    pattern = getattr(desc, "national_number_pattern", None)
    if desc is None or pattern is None:
        return None
    lengths = getattr(desc, "possible_length", None) or ()
    if not lengths:
        lengths = getattr(general, "possible_length", None) or ()
    test = f"{nsn} ~ {_literal('^(?:' + pattern + ')$')}"
    if lengths and lengths != (-1,):
        test = f"length({nsn}) IN ({', '.join(str(n) for n in lengths if n > 0) or '0'}) AND {test}"
    return f"({test})"


def _known_type(nsn: str, metadata: PhoneMetadata) -> str:
    general = metadata.general_desc
    general_test = _matches_desc(nsn, general, None)
    types = [t for t in (_matches_desc(nsn, getattr(metadata, name), general) for name in _TYPES)]
    specific = [t for t in types if t is not None]
    if general_test is None or not specific:
        return "FALSE"
    return f"({general_test} AND ({' OR '.join(specific)}))"


@cache
def country_expression(phone: str) -> str:
    """A PostgreSQL expression giving the ISO country of the text column `phone` (E.164), or
    NULL where it cannot be decided here (see the module docstring)."""
    codes = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
    cases = []
    for code in codes:
        regions = [r for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code] if r != "001"]
        if not regions:
            continue
        digits = str(code)
        nsn = f"substr({phone}, {len(digits) + 2})"
        main = PhoneMetadata.metadata_for_region(regions[0])
        prefix = main.national_prefix_for_parsing if main is not None else None
        # libphonenumber refuses national numbers under 2 or over 17 digits.
        guard = f"length({nsn}) NOT BETWEEN 2 AND 17"
        if len(regions) == 1:
            body = f"CASE WHEN {guard} THEN NULL ELSE {_literal(regions[0])} END"
        else:
            if prefix:
                guard += f" OR {nsn} ~ {_literal('^(?:' + prefix + ')')}"
            branches = [f"WHEN {guard} THEN NULL"]
            for region in regions:
                metadata = PhoneMetadata.metadata_for_region(region)
                if metadata is None:
                    continue
                if metadata.leading_digits is not None:
                    test = f"{nsn} ~ {_literal('^(?:' + metadata.leading_digits + ')')}"
                else:
                    test = _known_type(nsn, metadata)
                branches.append(f"WHEN {test} THEN {_literal(region)}")
            body = f"CASE {' '.join(branches)} ELSE NULL END"
        cases.append(
            f"WHEN left({phone}, {len(digits) + 1}) = {_literal('+' + digits)} THEN {body}"
        )
    return f"CASE WHEN {phone} !~ '^\\+[1-9][0-9]+$' THEN NULL {' '.join(cases)} ELSE NULL END"
