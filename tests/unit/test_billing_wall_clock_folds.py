"""`calendar.wall_clock_folds`: the wall-clock times a zone skips or repeats, and the instant the
calendar gives each (fold=0), checked against zoneinfo itself: a wall time has two readings
(fold 0 and 1) exactly when it lies in a fold, and there the calendar's is the wall time less
the fold's offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tawasol.domain.billing.calendar import WallClockFold, wall_clock_folds

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
ZONES = ("Europe/Paris", "America/New_York", "Africa/Casablanca", "Africa/Tunis", "Asia/Tehran")


@cache
def _folds(name: str) -> list[WallClockFold]:
    return wall_clock_folds(name, START, END)


def _readings(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return tuple(  # type: ignore[return-value]
        wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)
    )


@pytest.mark.parametrize("name", ZONES)
def test_each_fold_is_where_a_wall_time_has_two_readings(name: str) -> None:
    zone = ZoneInfo(name)
    folds = wall_clock_folds(name, START, END)
    for fold in folds:
        for wall in (
            fold.start,
            fold.start + (fold.end - fold.start) / 2,
            fold.end - timedelta(seconds=1),
        ):
            early, late = _readings(wall, zone)
            assert early != late
            assert early == (wall - fold.offset).replace(tzinfo=UTC)
        for outside in (fold.start - timedelta(seconds=1), fold.end):
            early, late = _readings(outside, zone)
            assert early == late
    # Paris and New York change twice a year; Tunis has not since 2008; Casablanca around
    # Ramadan; Tehran abolished DST in 2022.
    expected = {"Europe/Paris": 8, "America/New_York": 8, "Africa/Tunis": 0, "Asia/Tehran": 0}
    if name in expected:
        assert len(folds) == expected[name]
    else:
        assert len(folds) >= 6


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(ZONES),
    seconds=st.integers(0, int((END - START).total_seconds()) - 86400),
)
def test_a_wall_time_outside_every_fold_has_one_reading(name: str, seconds: int) -> None:
    zone = ZoneInfo(name)
    wall = (START + timedelta(seconds=seconds)).replace(tzinfo=None)
    inside = [fold for fold in _folds(name) if fold.start <= wall < fold.end]
    early, late = _readings(wall, zone)
    assert (early != late) == bool(inside)
    if inside:
        assert early == (wall - inside[0].offset).replace(tzinfo=UTC)
