"""Billing periods: when each period of a subscription starts and ends, and pro-rata shares.

A subscription renews every week, month or year *in the subscriber's time zone*: a monthly plan
taken on 31 January at 10:00 in Casablanca renews on 28 (or 29) February, 31 March, 30 April,
31 May at 10:00 Casablanca time, whatever the UTC offset is that day. Every boundary is computed
from the *anchor* (the moment the first period started): the n-th boundary is the anchor plus n
weeks, months or years of wall-clock time, the day clamped to the month's last day. Chaining
one month after another from the previous end drifts (31 January -> 28 February -> 28 March):
that is what `relativedelta` chaining does, and what this module avoids.

A wall-clock boundary that does not exist (inside a spring-forward gap) is read with the offset
in force before the gap, as RFC 5545 §3.3.5 does for recurring events (02:30 -> 03:30).
"""

from __future__ import annotations

import calendar as gregorian
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tawasol.domain.billing.amounts import share_of
from tawasol.domain.catalog import Period
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money


def _check_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} must be time-zone aware", **{name: moment.isoformat()})


def boundary(anchor: datetime, period: Period, index: int, time_zone: str) -> datetime:
    """The start of period number `index` (0 = the anchor's own), in UTC.

    `anchor` is aware; `time_zone` an IANA name ("Africa/Casablanca").
    """
    _check_aware("anchor", anchor)
    zone = ZoneInfo(time_zone)
    local = anchor.astimezone(zone).replace(tzinfo=None)
    if period is Period.WEEK:
        wall = local + timedelta(weeks=index)
    else:
        months = index * (12 if period is Period.YEAR else 1)
        month_index = local.month - 1 + months
        year, month = local.year + month_index // 12, month_index % 12 + 1
        day = min(local.day, gregorian.monthrange(year, month)[1])
        wall = local.replace(year=year, month=month, day=day)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


@dataclass(frozen=True)
class BillingPeriod:
    """One paid period [start, end) of a subscription, in UTC, and its number from the anchor."""

    index: int
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def period_number(anchor: datetime, period: Period, index: int, time_zone: str) -> BillingPeriod:
    """Period number `index` counted from `anchor` (see `boundary`)."""
    if index < 0:
        raise InvalidInput("a period number is 0 or more", index=index)
    return BillingPeriod(
        index,
        boundary(anchor, period, index, time_zone),
        boundary(anchor, period, index + 1, time_zone),
    )


_NOMINAL_DAYS = {Period.WEEK: 7, Period.MONTH: 30.436875, Period.YEAR: 365.2425}


def period_containing(
    anchor: datetime, period: Period, moment: datetime, time_zone: str
) -> BillingPeriod:
    """The period (counted from `anchor`) that contains `moment`; raises InvalidInput before
    the anchor."""
    _check_aware("moment", moment)
    if moment < anchor:
        raise InvalidInput(
            "this moment is before the subscription's first period",
            moment=moment.isoformat(),
            anchor=anchor.isoformat(),
        )
    # A guess from the mean length, then a few steps to the exact period.
    elapsed_days = (moment - anchor).total_seconds() / 86400
    index = max(int(elapsed_days // _NOMINAL_DAYS[period]) - 1, 0)
    while boundary(anchor, period, index + 1, time_zone) <= moment:
        index += 1
    while index > 0 and boundary(anchor, period, index, time_zone) > moment:
        index -= 1
    return period_number(anchor, period, index, time_zone)


def unused_share(price: Money, paid: BillingPeriod, at: datetime) -> Money:
    """The part of `price` paid for `paid` that covers [at, paid.end): the pro-rata credit of a
    plan change or a cancellation at `at`.

    Counted in seconds of real elapsed time (a DST day has 23 or 25 hours, February 28 or 29
    days), rounded down to the currency's minor unit so it never exceeds the price.
    """
    _check_aware("at", at)
    moment = min(max(at, paid.start), paid.end)
    remaining = int((paid.end - moment).total_seconds())
    return share_of(price, remaining, int(paid.length.total_seconds()))


@dataclass(frozen=True)
class WallClockFold:
    """Wall-clock times of a zone around one UTC offset change: [`start`, `end`) (naive, local)
    either does not exist (a spring-forward gap) or exists twice (a fall-back repeat).
    `boundary` reads each of them with `offset`, the one in force before the change (fold=0,
    RFC 5545 §3.3.5): its instant is the wall time minus `offset`."""

    time_zone: str
    start: datetime
    end: datetime
    offset: timedelta


def wall_clock_folds(time_zone: str, start: datetime, end: datetime) -> list[WallClockFold]:
    """The folds of `time_zone` whose change happens in [start, end) (aware), oldest first.

    Everywhere else a wall-clock time has one instant; a database that converts local times
    itself can take these few ranges as the exceptions where the calendar's reading is spelled
    out (the bulk billing path does). Finds each change by probing every 6 hours, then to the
    second (zones change their offset at most a few times a year, never twice in 6 hours).
    """
    _check_aware("start", start)
    _check_aware("end", end)
    zone = ZoneInfo(time_zone)
    step = 6 * 3600
    first, last = int(start.timestamp()), int(end.timestamp())

    def offset_at(second: int) -> timedelta:
        found = datetime.fromtimestamp(second, UTC).astimezone(zone).utcoffset()
        return found if found is not None else timedelta(0)

    folds = []
    probe, before = first, offset_at(first)
    while probe < last:
        following = min(probe + step, last)
        after = offset_at(following)
        if after != before:
            low, high = probe, following  # offset_at(low) == before, offset_at(high) != before
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset_at(middle) == before else (low, middle)
            change = datetime.fromtimestamp(high, UTC).replace(tzinfo=None)
            folds.append(
                WallClockFold(
                    time_zone,
                    change + min(before, after),
                    change + max(before, after),
                    before,
                )
            )
        probe, before = following, after
    return folds
