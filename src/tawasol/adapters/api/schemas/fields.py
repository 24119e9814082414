"""The bounds and field types of the HTTP API and the CLI, declared once, and the checks the
schemas share (free text, instants, routable hosts, amounts in a currency's minor units).

Money travels as strings ("9.99") so that no JSON parser turns it into a float; times as
ISO 8601 with an offset (admin API) or integer milliseconds since the epoch (SIP API).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from annotated_types import Ge, Le
from babel.numbers import get_currency_precision
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
)

from tawasol.domain.catalog import (
    Period,
)
from tawasol.domain.codes import check_country, check_currency
from tawasol.domain.errors import InvalidInput
from tawasol.domain.subscribers import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
)
from tawasol.domain.text import control_character

# -- bounds of every field at the API and CLI boundary, declared once ---------------------------
# The CLI reads the same types (`bounds`), so `--offset` and `?offset=` refuse the same values.
# Row ids are 32-bit integers in both databases (INTEGER on SQLite and PostgreSQL).
MAX_ID = 2_147_483_647
MAX_PAGE = 1000
# Channels of one carrier: the largest trunk an operator of this size buys is a few thousand.
MAX_CHANNELS = 100_000
# Fair-use counts: a year has at most 527,040 minutes; numbers and calls at once far below.
MAX_MINUTES_PER_PERIOD = 527_040
MAX_DISTINCT_NUMBERS = 1_000_000
MAX_CONCURRENT_CALLS = 1000
# Instants an operator gives (subscription starts, rate dates, explain's `at`, `since`): a
# typo or a clock gone wrong must not file anything in 1970 or in the year 9999.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone offset, e.g. 2026-11-22T10:00:00+01:00")
    return value


def _instant(value: datetime) -> datetime:
    _aware(value)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y} to {LATEST.year - 1}")
    return value


Id = Annotated[int, Ge(1), Le(MAX_ID)]
Offset = Annotated[int, Ge(0), Le(MAX_ID)]
Limit = Annotated[int, Ge(1), Le(MAX_PAGE)]
Channels = Annotated[int, Ge(0), Le(MAX_CHANNELS)]
Instant = Annotated[
    datetime,
    AfterValidator(_instant),
    Field(examples=["2026-11-22T10:00:00+01:00"]),
]
Amount = Annotated[str, Field(pattern=r"^\d{1,12}(\.\d{1,6})?$", examples=["9.99"])]
Currency = Annotated[
    str,
    Field(pattern=r"^[A-Z]{3}$", examples=["EUR"], description="ISO 4217 currency in use"),
    AfterValidator(lambda code: _domain_check(check_currency, code)),
]
Country = Annotated[
    str,
    Field(pattern=r"^[A-Z]{2}$", examples=["MA"], description="ISO 3166-1 alpha-2"),
    AfterValidator(lambda code: _domain_check(check_country, code)),
]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["20:00"])]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Password = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


# Validation context of data read back from the store: the checks added after it was written
# (free text, gateways, consistency) must not turn a GET of old data into a 500.
STORED = {"stored": True}


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _free_text(value: str, info: ValidationInfo) -> str:
    if _stored(info):
        return value
    found = control_character(value)
    if found is not None:
        raise ValueError(f"must not contain control characters ({found})")
    return value


def _not_blank(value: str, info: ValidationInfo) -> str:
    if not _stored(info) and not value.strip():
        raise ValueError("must not be blank")
    return value


# Free text an operator types (domain/text.py): no control characters; a name is not blank.
Text = Annotated[str, AfterValidator(_free_text)]
Name = Annotated[str, Field(min_length=1), AfterValidator(_free_text), AfterValidator(_not_blank)]


def _domain_check(check: Callable[[str], str], value: str) -> str:
    """A domain check as a pydantic validator: its InvalidInput becomes the field's error."""
    try:
        return check(value)
    except InvalidInput as error:
        raise ValueError(error.message) from error


# The longest period of each kind in minutes: a week, a 31-day month, a leap year.
_PERIOD_MINUTES = {Period.WEEK: 7 * 1440, Period.MONTH: 31 * 1440, Period.YEAR: 366 * 1440}


def _check_minor_units(amount: str, currency: str, *, field: str) -> None:
    """An amount charged in `currency` has at most its minor-unit decimals (ISO 4217: EUR 2,
    JPY 0, TND 3); per-minute rates are not charged as such and keep their finer decimals."""
    decimals = len(amount.partition(".")[2].rstrip("0"))
    allowed = get_currency_precision(currency)
    if decimals > allowed:
        raise ValueError(
            f"{field}: {amount} {currency} has {decimals} decimals; {currency} has {allowed}"
        )


def _refuse_repeats(field: str, keys: list[str]) -> None:
    """Raise naming `field`'s item that repeats an earlier one's key (they would contradict)."""
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        earlier = first.setdefault(key, index)
        if earlier != index:
            raise ValueError(f"{field}[{index}] repeats {field}[{earlier}] ({key})")


def bounds(annotated: object) -> dict[str, int]:
    """`min`/`max` of an integer type above, for `typer.Option(**bounds(Offset))`."""
    limits: dict[str, int] = {}
    for item in getattr(annotated, "__metadata__", ()):
        if isinstance(item, Ge):
            limits["min"] = int(item.ge)  # type: ignore[call-overload]
        if isinstance(item, Le):
            limits["max"] = int(item.le)  # type: ignore[call-overload]
    return limits


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _routable_host(host: str, info: ValidationInfo) -> str:
    """A gateway's host when an INVITE can be sent to it: not the unspecified address (0.0.0.0,
    ::), a multicast group (RFC 3261 §18.1.1 multicast is for discovery, not trunks) or the
    limited broadcast address. Names are checked for their form by the domain."""
    if _stored(info):
        return host
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if address.is_unspecified:
        raise ValueError(f"{host} is the unspecified address, not a gateway")
    if address.is_multicast or address == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(f"{host} is a multicast or broadcast address, not a gateway")
    return host
