"""Free text an operator types (names, labels, e-mail addresses): printable, not blank.

A control character (Unicode category Cc: C0 U+0000-U+001F, DEL U+007F, C1 U+0080-U+009F) has
no place in a name: NUL breaks C consumers of the data and ESC sequences (ECMA-48) rewrite the
terminal of whoever lists subscribers. One check, used at every boundary (API, CLI, services).
"""

from __future__ import annotations

import unicodedata

from tawasol.domain.errors import InvalidInput


def control_character(value: str) -> str | None:
    """The first control character in `value` as `U+XXXX`, or None when it has none."""
    for character in value:
        if unicodedata.category(character) == "Cc":
            return f"U+{ord(character):04X}"
    return None


def check_free_text(value: str, *, field: str, blank: bool = False) -> str:
    """`value` when it holds no control character and (unless `blank`) is not only spaces;
    raises InvalidInput naming `field` otherwise."""
    found = control_character(value)
    if found is not None:
        raise InvalidInput(f"{field} must not contain control characters ({found})", field=field)
    if not blank and not value.strip():
        raise InvalidInput(f"{field} must not be blank", field=field)
    return value
