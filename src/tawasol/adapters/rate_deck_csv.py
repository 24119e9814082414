"""Rate decks as CSV: what carriers send, read into domain `Rate`s, and written back.

A carrier's rate deck lists a price per minute for each number prefix, from a date. The file
must start with a header row naming its columns (any case, any order):

    prefix;rate;currency;effective_from;increment;destination
    212;0,0200;EUR;2026-01-01;60/60;Morocco fixed
    2126;0,0780;EUR;2026-01-01T00:00:00+01:00;1/1;Morocco mobile

- `prefix`: E.164 digits without `+` (a leading `+` or `00` is tolerated and stripped), at most
  15 digits (the longest E.164 number), never starting with 0 (country codes do not).
- `rate`: price per minute as a plain decimal (`0.0780`); a decimal comma (`0,0780`) is read
  when it cannot be a thousands separator. Never exponents (`1e5`), signs, NaN or infinity.
- `currency`: ISO 4217 code (`EUR`, any case); optional if `default_currency` is given.
- `effective_from`: ISO 8601 date (00:00 UTC that day) or date and time (UTC without offset).
- `increment`: billing increment `first/next` in seconds (`60/60`, `1/1`, `30/6`); optional,
  60/60 when absent or empty.
- `destination` and `description` are allowed and ignored; any other column is refused, so a
  column the importer does not understand (an end date, a peak rate) is never silently dropped.

Delimiter `,` or `;` (told from the header), UTF-8 byte-order mark, Windows line endings,
blank lines and quoted fields are accepted. The import is all-or-nothing: one bad row refuses
the whole file, with every problem found listed by line number and column. Rows repeating a
(prefix, effective_from) pair with the same price are read once; with a different price they
are an error. At most `MAX_ROWS` rows.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TypeVar

from tawasol.adapters.api.schemas import EARLIEST, LATEST
from tawasol.domain.carriers import BillingIncrement, Rate, rate_clash
from tawasol.domain.codes import check_currency
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money

_Value = TypeVar("_Value")

MAX_ROWS = 500_000
# E.164 §6.1: an international number has at most 15 digits, so no prefix is longer.
MAX_PREFIX_DIGITS = 15
# How many problems the error message lists; all of them are in `details["problems"]`.
_PROBLEMS_IN_MESSAGE = 20

COLUMNS = ("prefix", "rate", "currency", "effective_from", "increment")
_REQUIRED = frozenset({"prefix", "rate", "effective_from"})
_IGNORED = frozenset({"destination", "description"})
_KNOWN = frozenset(COLUMNS) | _IGNORED

_PLAIN_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DECIMAL_COMMA = re.compile(r"([0-9]*),([0-9]+)")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_INCREMENT = re.compile(r"([0-9]{1,6})\s*/\s*([0-9]{1,6})")
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class _Problem:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column '{self.column}'" if self.column else "")
        return f"{where}: {self.message}"


class _CellError(Exception):
    """One cell is wrong; collected into a `_Problem` with its line and column."""


def parse_rate_deck(
    text: str, *, default_currency: str | None = None, max_rows: int = MAX_ROWS
) -> list[Rate]:
    """Read a rate deck; every rate or an `InvalidInput` naming each bad line and column."""
    fallback_currency = None
    if default_currency is not None:
        try:
            fallback_currency = _currency(default_currency)
        except _CellError as error:
            raise InvalidInput(
                f"default currency: {error}", default_currency=default_currency
            ) from None
    text = text.removeprefix("\ufeff")
    # Split as the csv module does (\n, \r\n or \r), so that line numbers agree with it.
    lines = io.StringIO(text, newline="").readlines()
    header_index = next((index for index, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise InvalidInput(
            "the rate deck is empty: the first line must name the columns " + ", ".join(COLUMNS)
        )
    header_line = header_index + 1
    delimiter, columns = _read_header(lines[header_index], header_line)
    missing = sorted(_REQUIRED - set(columns))
    if "currency" not in columns and fallback_currency is None:
        missing.append("currency")
    if missing:
        raise _invalid([_Problem(header_line, name, "required column missing") for name in missing])

    body = lines[header_index + 1 :]
    first_line = header_line + 1
    # Refuse an oversized deck before reading any row in detail; only when the lines are too
    # many can the rows be (a quoted field may span lines), so count rows only then.
    if sum(1 for line in body if line.strip()) > max_rows:
        for count, (line, _) in enumerate(_data_rows(body, delimiter, first_line=first_line), 1):
            if count > max_rows:
                raise _invalid(
                    [_Problem(line, None, f"more than {max_rows:,} rows: split the deck")]
                )
    rows = _data_rows(body, delimiter, first_line=first_line)
    problems: list[_Problem] = []
    rates: list[Rate] = []
    seen: dict[tuple[str, datetime], tuple[int, Rate]] = {}
    for line, cells in rows:
        if isinstance(cells, _Problem):
            problems.append(cells)
            continue
        if len(cells) != len(columns):
            problems.append(
                _Problem(
                    line,
                    None,
                    f"{len(cells)} fields where the header has {len(columns)}"
                    + (' (quote a decimal comma: "0,0780")' if delimiter == "," else ""),
                )
            )
            continue
        rate = _read_row(dict(zip(columns, cells, strict=True)), line, fallback_currency, problems)
        if rate is None:
            continue
        new = (rate.prefix, rate.effective_from) not in seen
        clash = rate_clash(seen, line, rate, where="line")
        if new:
            rates.append(rate)
        elif clash is not None:
            problems.append(_Problem(line, "prefix", clash))
    if problems:
        raise _invalid(problems)
    return rates


def rate_deck_to_csv(rates: Iterable[Rate]) -> str:
    """Write rates in the format `parse_rate_deck` reads (comma-separated, UTC times)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for rate in rates:
        writer.writerow(
            (
                rate.prefix,
                # Fixed-point text, never an exponent: Decimal("1E+1") is written "10".
                format(rate.per_minute.amount, "f"),
                rate.per_minute.currency,
                rate.effective_from.astimezone(UTC).isoformat(),
                str(rate.increment),
            )
        )
    return buffer.getvalue()


def _read_header(line: str, line_number: int) -> tuple[str, list[str]]:
    """The delimiter and the column names (lower case): the delimiter that names most columns."""
    best: tuple[str, list[str]] | None = None
    best_known = 0
    for delimiter in (";", ","):
        names = [name.strip().lower() for name in _split(line, delimiter, line_number)]
        known = sum(1 for name in names if name in _KNOWN)
        if known > best_known:
            best, best_known = (delimiter, names), known
    if best is None:
        raise _invalid(
            [
                _Problem(
                    line_number,
                    None,
                    "the first line must be a header naming the columns "
                    + ", ".join(COLUMNS)
                    + ", separated by ',' or ';'",
                )
            ]
        )
    delimiter, names = best
    problems = [
        _Problem(line_number, name or None, f"unknown column '{name}'")
        if name
        else _Problem(line_number, None, f"column {position} has no name")
        for position, name in enumerate(names, start=1)
        if name not in _KNOWN
    ]
    problems.extend(
        _Problem(line_number, name, "column named twice")
        for name in sorted({name for name in names if names.count(name) > 1})
    )
    if problems:
        raise _invalid(problems)
    return delimiter, names


def _split(line: str, delimiter: str, line_number: int) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter, strict=True), [])
    except csv.Error as error:
        raise _invalid([_Problem(line_number, None, f"unreadable CSV: {error}")]) from None


def _data_rows(
    lines: list[str], delimiter: str, *, first_line: int
) -> Iterator[tuple[int, list[str] | _Problem]]:
    """(line number, stripped cells) of each non-blank row, or the problem reading it."""
    reader = csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter, strict=True)
    while True:
        # A quoted field may span lines: a row starts just after the lines read so far.
        line = first_line + reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield line, _Problem(line, None, f"unreadable CSV: {error}")
            return
        # A row of empty cells (';;;' as spreadsheets export blank lines) counts as blank.
        stripped = [cell.strip() for cell in cells]
        if any(stripped):
            yield line, stripped


def _read_row(
    row: dict[str, str], line: int, fallback_currency: str | None, problems: list[_Problem]
) -> Rate | None:
    found = len(problems)
    prefix = _read_cell(row, "prefix", _prefix, line, problems)
    amount = _read_cell(row, "rate", _amount, line, problems)
    if not row.get("currency") and fallback_currency is not None:
        currency: str | None = fallback_currency
    else:
        currency = _read_cell(row, "currency", _currency, line, problems)
    effective_from = _read_cell(row, "effective_from", _effective_from, line, problems)
    increment = _read_cell(row, "increment", _increment, line, problems)
    if (
        len(problems) > found
        or prefix is None
        or amount is None
        or currency is None
        or effective_from is None
        or increment is None
    ):
        return None
    return Rate(prefix, Money(amount, currency), effective_from, increment)


def _read_cell(
    row: dict[str, str],
    column: str,
    read: Callable[[str], _Value],
    line: int,
    problems: list[_Problem],
) -> _Value | None:
    try:
        return read(row.get(column, ""))
    except _CellError as error:
        problems.append(_Problem(line, column, str(error)))
        return None


def _prefix(text: str) -> str:
    if not text:
        raise _CellError("empty prefix")
    digits = text
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    if not _DIGITS.fullmatch(digits):
        raise _CellError(f"prefix {text!r} is not made of digits")
    if len(digits) > MAX_PREFIX_DIGITS:
        raise _CellError(f"prefix {text!r} is longer than {MAX_PREFIX_DIGITS} digits (E.164)")
    if digits.startswith("0"):
        raise _CellError(f"prefix {text!r} does not start with a country code")
    return digits


def _amount(text: str) -> Decimal:
    if not text:
        raise _CellError("empty rate")
    if text.startswith("-"):
        raise _CellError(f"rate {text!r} is negative")
    decimal_comma = _DECIMAL_COMMA.fullmatch(text)
    if decimal_comma:
        whole, fraction = decimal_comma.groups()
        # "1,234" could be 1.234 or 1234 (thousands separator): refuse rather than guess.
        if len(fraction) == 3 and whole.lstrip("0"):
            raise _CellError(f"rate {text!r} is ambiguous: write it 1.234 or 1234")
        text = f"{whole}.{fraction}"
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise _CellError(f"rate {text!r} is not a plain decimal number such as 0.0780")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise _CellError(f"rate {text!r} is not a number") from None


# Decks repeat a few currencies, dates and increments on every row: read each once.
@lru_cache(maxsize=1024)
def _currency(text: str) -> str:
    if not _CURRENCY.fullmatch(text.strip()):
        raise _CellError(f"currency {text!r} is not an ISO 4217 code such as EUR")
    try:
        return check_currency(text.strip().upper())
    except InvalidInput as error:
        raise _CellError(error.message) from None


@lru_cache(maxsize=1024)
def _effective_from(text: str) -> datetime:
    if not text:
        raise _CellError("empty date")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _CellError(
            f"date {text!r} is not an ISO 8601 date (2026-01-31) or date and time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable instant
        raise _CellError(f"date {text!r} is out of range") from None
    if not EARLIEST <= moment < LATEST:
        raise _CellError(f"date {text!r} is not from {EARLIEST:%Y} to {LATEST.year - 1}")
    return moment


@lru_cache(maxsize=1024)
def _increment(text: str) -> BillingIncrement:
    if not text:
        return BillingIncrement()
    match = _INCREMENT.fullmatch(text)
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise _CellError(
            f"increment {text!r} is not first/next seconds of at least 1, such as 60/60"
        )
    return BillingIncrement(int(match[1]), int(match[2]))


def _invalid(problems: list[_Problem]) -> InvalidInput:
    shown = "; ".join(str(problem) for problem in problems[:_PROBLEMS_IN_MESSAGE])
    more = len(problems) - _PROBLEMS_IN_MESSAGE
    if more > 0:
        shown += f"; and {more} more"
    first = problems[0]
    return InvalidInput(
        f"rate deck refused, nothing imported: {shown}",
        line=first.line,
        column=first.column,
        problems=[
            {"line": problem.line, "column": problem.column, "message": problem.message}
            for problem in problems
        ],
    )
