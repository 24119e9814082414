"""The wall clock, behind the clock port (`services.ports.clock.Clock`): the only place the
brain reads it (`make check` greps domain/ and services/ for other reads)."""

from __future__ import annotations

from datetime import UTC, datetime


def system_clock() -> datetime:
    """Now, timezone-aware UTC."""
    return datetime.now(UTC)
