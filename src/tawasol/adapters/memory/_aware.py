"""The rule both stores apply to instants: timezone-aware, kept as UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from tawasol.domain.errors import InvalidInput


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """`value` in UTC; a naive datetime is refused (the SQL store's column type does the same:
    a naive time cannot be placed on the timeline)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"refusing to store naive datetime {value.isoformat()}")
    return value.astimezone(UTC)
