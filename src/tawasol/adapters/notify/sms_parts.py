"""A text as the short messages (SMS) that carry it: alphabet, and concatenated parts.

3GPP TS 23.038 (GSM 03.38) gives two alphabets a handset always reads: the GSM 7-bit default
alphabet (with its extension table, where `€`, `[`, `{` ... take two septets: ESC 0x1B and the
character) and UCS-2 (UTF-16 big-endian; Arabic needs it). One message holds 140 octets:
160 GSM-7 septets or 70 UCS-2 characters. A longer text is sent as concatenated parts, each
starting with a User Data Header (3GPP TS 23.040 §9.2.3.24.1: IEI 0x00, length 3, reference,
total, sequence) that takes 6 octets: 153 septets or 67 UTF-16 units per part. A part never
ends between ESC and its character, nor between the two halves of a UTF-16 surrogate pair (an
emoji), so every part decodes on its own (smpplib 2.2.4 gets both wrong).

Over SMPP 3.4 the septets are sent one per octet (unpacked), `data_coding` 0x00 (the SMSC's
default alphabet, GSM-7 for the SMSCs this operator uses) or 0x08 (UCS-2), and the UDH flag is
bit 6 of `esm_class` (SMPP 3.4 §5.2.12). Encoding uses the maintained `gsm0338` codec.
"""

from __future__ import annotations

from dataclasses import dataclass

import gsm0338  # noqa: F401 - registers the "gsm03.38" codec

__all__ = ["DATA_CODING_GSM7", "DATA_CODING_UCS2", "UDHI", "SmsParts", "join_parts", "split_sms"]

DATA_CODING_GSM7 = 0x00
DATA_CODING_UCS2 = 0x08
UDHI = 0x40  # esm_class bit 6: the short message starts with a User Data Header

_OCTETS = 140
_ESCAPE = 0x1B


@dataclass(frozen=True)
class SmsParts:
    """The short messages of one text: `data_coding` (0x00 GSM-7, 0x08 UCS-2), `esm_class`
    (UDHI set when there are several parts) and each part's bytes, UDH included."""

    data_coding: int
    esm_class: int
    parts: tuple[bytes, ...]


def _gsm7(text: str) -> bytes | None:
    """The text in GSM-7 septets, or None when it has a character GSM-7 cannot carry back
    unchanged (ESC itself and a few controls encode but do not decode to themselves)."""
    try:
        encoded = text.encode("gsm03.38")
        if encoded.decode("gsm03.38") == text:
            return encoded
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return None


def _cut(units: list[bytes], size: int) -> list[bytes]:
    """Consecutive runs of whole units (a character's bytes) of at most `size` bytes."""
    runs: list[bytes] = []
    current = b""
    for unit in units:
        if len(current) + len(unit) > size:
            runs.append(current)
            current = b""
        current += unit
    if current or not runs:
        runs.append(current)
    return runs


def split_sms(text: str, *, reference: int) -> SmsParts:
    """`text` as SMS parts. `reference` (0-255, taken modulo 256) identifies the concatenated
    message: keep it stable for one notice so a retry's parts are the same parts.

    Raises ValueError for an empty text or one over 255 parts (the UDH's limit)."""
    if not text:
        raise ValueError("an SMS needs some text")
    encoded = _gsm7(text)
    if encoded is not None:
        data_coding = DATA_CODING_GSM7
        units = []
        index = 0
        while index < len(encoded):  # an ESC and its character stay together
            width = 2 if encoded[index] == _ESCAPE and index + 1 < len(encoded) else 1
            units.append(encoded[index : index + width])
            index += width
    else:
        data_coding = DATA_CODING_UCS2
        # one unit per character: 2 octets, 4 for a character outside the BMP (surrogate pair)
        units = [character.encode("utf-16-be") for character in text]
        encoded = b"".join(units)
    # GSM-7: 160 septets alone, 153 after a UDH (its 6 octets and a fill bit take 7 septets);
    # UCS-2: 140 octets alone, 134 after a UDH.
    single, per_part = (160, 153) if data_coding == DATA_CODING_GSM7 else (_OCTETS, _OCTETS - 6)
    if len(encoded) <= single:
        return SmsParts(data_coding, 0, (encoded,))
    runs = _cut(units, per_part)
    if len(runs) > 255:
        raise ValueError("text too long for a concatenated SMS (255 parts at most)")
    total = len(runs)
    ref = reference % 256
    return SmsParts(
        data_coding,
        UDHI,
        tuple(bytes([5, 0, 3, ref, total, seq]) + run for seq, run in enumerate(runs, start=1)),
    )


def join_parts(parts: list[bytes], *, data_coding: int, esm_class: int) -> str:
    """The text of received parts (in any order), as a handset reassembles it: the inverse of
    `split_sms`. Raises ValueError for a part without a valid concatenation header."""
    if not esm_class & UDHI:
        (single,) = parts
        return _decode(single, data_coding)
    ordered: dict[int, bytes] = {}
    for part in parts:
        header_length = part[0] if part else 0
        header = part[1 : 1 + header_length]
        if header_length < 5 or header[0] != 0 or header[1] != 3:
            raise ValueError("a concatenated part without an 8-bit reference header")
        ordered[header[4]] = part[1 + header_length :]
    return "".join(_decode(ordered[seq], data_coding) for seq in sorted(ordered))


def _decode(payload: bytes, data_coding: int) -> str:
    if data_coding == DATA_CODING_UCS2:
        return payload.decode("utf-16-be")
    return payload.decode("gsm03.38")
