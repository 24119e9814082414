"""The catalog: the plans an operator sells.

A *plan* is what a subscriber buys: "Maroc Illimité" for 9.99 EUR a month lets them call fixed and
mobile phones in Morocco as much as they like, within fair-use limits that stop abuse (call
shops, SIM boxes) without bothering a family. Some plans are cheaper because they only work at
certain times ("Soirées Maghreb": evenings and weekends, in the subscriber's own time zone).
"""

from __future__ import annotations

import calendar
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tawasol.domain.codes import check_country
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination, NumberKind

if TYPE_CHECKING:
    from tawasol.domain.carriers import Carrier

LOCALES = ("fr", "ar", "en")


class Period(enum.StrEnum):
    """How often a plan is paid for and its fair-use counters start again."""

    WEEK = "week"
    MONTH = "month"
    YEAR = "year"

    def end_of_period_starting(self, start: datetime) -> datetime:
        """When a period that starts at `start` ends: a week later, the same day next month
        (the 31st becomes the month's last day), or the same day next year."""
        if self is Period.WEEK:
            return start + timedelta(days=7)
        months = 1 if self is Period.MONTH else 12
        month_index = start.month - 1 + months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)


@dataclass(frozen=True, order=True)
class DestinationRule:
    """One country and one kind of line a plan or carrier covers, e.g. Morocco mobile.

    `FIXED_OR_MOBILE` numbers (Tunisia's 31x ranges, the US) are covered by a rule for fixed or for
    mobile: the plan sells calls to people's phones, whichever the metadata cannot tell apart.
    """

    country: str
    kind: NumberKind

    def __post_init__(self) -> None:
        check_country(self.country)

    def covers(self, destination: Destination) -> bool:
        if destination.country != self.country:
            return False
        if destination.kind == self.kind:
            return True
        if destination.kind == NumberKind.FIXED_OR_MOBILE:
            return self.kind in (NumberKind.FIXED, NumberKind.MOBILE)
        return False

    def __str__(self) -> str:
        return f"{self.country} {self.kind.value}"


@dataclass(frozen=True)
class TimeWindow:
    """When a plan may be used: on the given weekdays (0 = Monday), from `start` to `end`.

    An `end` at or before `start` runs past midnight: 20:00-08:00 on Monday covers Monday 20:00
    to Tuesday 08:00. `start == end` means the whole day.
    """

    weekdays: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.weekdays or not self.weekdays <= frozenset(range(7)):
            raise InvalidConfiguration("a time window needs weekdays between 0 (Mon) and 6 (Sun)")

    def contains(self, local: datetime) -> bool:
        moment = local.time().replace(tzinfo=None)
        today = local.weekday()
        yesterday = (today - 1) % 7
        if self.start == self.end:
            return today in self.weekdays
        if self.start < self.end:
            return today in self.weekdays and self.start <= moment < self.end
        # Past midnight: the evening part belongs to today, the morning part to yesterday.
        return (today in self.weekdays and moment >= self.start) or (
            yesterday in self.weekdays and moment < self.end
        )

    def end_after(self, local: datetime) -> datetime:
        """Where the stretch of this window that contains `local` (aware, in the subscriber's
        zone) ends, as a wall-clock time in that zone."""
        zone = local.tzinfo
        moment = local.time().replace(tzinfo=None)
        day = local.date()
        if self.start == self.end:
            return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        if self.start < self.end or moment < self.end:
            return datetime.combine(day, self.end, tzinfo=zone)
        return datetime.combine(day + timedelta(days=1), self.end, tzinfo=zone)

    def describe(self) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = ",".join(names[d] for d in sorted(self.weekdays))
        if self.start == self.end:
            return f"{days} all day"
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class FairUse:
    """The limits that keep an unlimited plan fair. None means no limit.

    - `max_call_duration`: one call is cut after this long (it can be redialled).
    - `minutes_per_period`: total answered minutes in the current period.
    - `distinct_numbers_per_period`: how many different numbers may be called in the period;
      a family calls a few, a call shop hundreds.
    - `concurrent_calls`: calls at the same time on one subscription.
    """

    max_call_duration: timedelta | None = timedelta(hours=2)
    minutes_per_period: int | None = None
    distinct_numbers_per_period: int | None = None
    concurrent_calls: int | None = 1

    def __post_init__(self) -> None:
        for name in ("minutes_per_period", "distinct_numbers_per_period", "concurrent_calls"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InvalidConfiguration(f"fair use {name} must be at least 1 or unset")
        if self.max_call_duration is not None and self.max_call_duration <= timedelta(0):
            raise InvalidConfiguration("fair use max_call_duration must be positive or unset")


@dataclass(frozen=True)
class CostCeiling:
    """The most the operator will pay a carrier per minute for this plan's calls to a country
    (optionally one kind of line). No call is routed over a dearer per-minute route: an
    unlimited plan sold at 9.99 a month cannot carry hours of 0.30/min termination."""

    country: str
    max_per_minute: Money
    kind: NumberKind | None = None

    def __post_init__(self) -> None:
        check_country(self.country)
        if self.max_per_minute.amount < 0:
            raise InvalidConfiguration("a cost ceiling cannot be negative", country=self.country)


@dataclass(frozen=True)
class Plan:
    """An offer sold to subscribers: a price per period for unlimited calls to destinations.

    `names` holds the plan's commercial name per locale (fr, ar, en). `time_windows`, when not
    empty, restricts use to those windows in the subscriber's time zone: a call may only start
    inside one, and is cut when the window ends, plus `window_grace` (zero by default: a call
    started at 07:59 in a 20:00-08:00 plan lasts one minute; with a grace of 10 minutes, up to
    eleven). The grace never lets a call start after the end. `on_sale` False keeps existing
    subscriptions running while no new one can be sold.
    """

    code: str
    names: dict[str, str]
    period: Period
    price: Money
    destinations: frozenset[DestinationRule]
    fair_use: FairUse = field(default_factory=FairUse)
    time_windows: tuple[TimeWindow, ...] = ()
    on_sale: bool = True
    cost_ceilings: tuple[CostCeiling, ...] = ()
    window_grace: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if not self.code or not self.code.replace("-", "").replace("_", "").isalnum():
            raise InvalidConfiguration("a plan code is letters, digits, - and _", code=self.code)
        if not self.destinations:
            raise InvalidConfiguration("a plan needs at least one destination", code=self.code)
        if self.price.amount < 0:
            raise InvalidConfiguration("a plan price cannot be negative", code=self.code)
        if not any(self.names.get(locale) for locale in LOCALES):
            raise InvalidConfiguration("a plan needs a name in fr, ar or en", code=self.code)
        for ceiling in self.cost_ceilings:
            # One currency per plan: a ceiling in another currency cannot be compared with
            # the plan's carriers' rates without a conversion nobody configured.
            if ceiling.max_per_minute.currency != self.price.currency:
                raise InvalidConfiguration(
                    f"plan {self.code} is sold in {self.price.currency}: its cost ceiling for "
                    f"{ceiling.country} must be in {self.price.currency} too, not "
                    f"{ceiling.max_per_minute.currency}",
                    code=self.code,
                    country=ceiling.country,
                )
        if not timedelta(0) <= self.window_grace <= MAX_WINDOW_GRACE:
            raise InvalidConfiguration(
                "a plan's window grace is between 0 and 24 hours", code=self.code
            )

    def name(self, locale: str) -> str:
        for candidate in (locale, "en", "fr", "ar"):
            if self.names.get(candidate):
                return self.names[candidate]
        return self.code

    def covers(self, destination: Destination) -> bool:
        return any(rule.covers(destination) for rule in self.destinations)

    def cost_ceiling_for(self, destination: Destination) -> Money | None:
        """The ceiling for this destination: one for its kind of line beats one for the
        whole country; None when the plan sets none."""
        best: CostCeiling | None = None
        for ceiling in self.cost_ceilings:
            if ceiling.country != destination.country:
                continue
            if ceiling.kind is not None and ceiling.kind != destination.kind:
                continue
            if best is None or (best.kind is None and ceiling.kind is not None):
                best = ceiling
        return best.max_per_minute if best else None

    def in_window(self, now: datetime, time_zone: str) -> bool:
        """True when the plan may be used at `now` (aware) in the subscriber's time zone."""
        if not self.time_windows:
            return True
        local = now.astimezone(ZoneInfo(time_zone))
        return any(window.contains(local) for window in self.time_windows)

    def window_end(self, now: datetime, time_zone: str) -> datetime | None:
        """When the plan's hours that contain `now` end (aware, UTC), windows that follow each
        other without a gap taken as one (Sat all day then Sun all day ends Monday 00:00).
        None when the plan has no hours, or when they run on for a week (no end to cut at).
        At `now` outside the plan's hours: `now`."""
        if not self.time_windows:
            return None
        moment = now.astimezone(ZoneInfo(time_zone))
        for _ in range(_MAX_CHAINED_WINDOWS):
            ends = [w.end_after(moment) for w in self.time_windows if w.contains(moment)]
            if not ends:
                return moment.astimezone(UTC)
            # Wall-clock end, read again in the zone (a DST change in between moves it).
            moment = max(ends).astimezone(UTC).astimezone(moment.tzinfo)
        return None


# A plan's hours that run on through more windows than this (a week of all-day windows) have
# no end to cut calls at.
_MAX_CHAINED_WINDOWS = 15
MAX_WINDOW_GRACE = timedelta(hours=24)


def currency_conflicts(plans: Iterable[Plan], carriers: Iterable[Carrier]) -> list[str]:
    """Every pair of a plan's cost ceiling and a carrier's rates that use different currencies.

    A ceiling is compared with the per-minute rates of every carrier that serves its country:
    with a USD deck under a EUR ceiling, every call would be refused `no_route` (no price can
    be compared), so such a pair is refused when either side is saved. A carrier's rate deck is
    in one currency (the one it invoices in). Returns readable descriptions, empty when all
    agree.
    """
    problems: list[str] = []
    carriers = list(carriers)
    for carrier in carriers:
        mixed = sorted({rate.per_minute.currency for rate in carrier.rate_deck.rates()})
        if len(mixed) > 1:
            problems.append(
                f"carrier {carrier.code}'s rate deck mixes currencies ({', '.join(mixed)}): "
                "a carrier's rates are in the one currency it invoices in"
            )
    for plan in plans:
        for ceiling in plan.cost_ceilings:
            for carrier in carriers:
                serves = any(
                    entry.rule.country == ceiling.country
                    and (ceiling.kind is None or entry.rule.kind == ceiling.kind)
                    for entry in carrier.destinations
                )
                deck = {rate.per_minute.currency for rate in carrier.rate_deck.rates()}
                other = sorted(deck - {ceiling.max_per_minute.currency})
                if serves and other:
                    problems.append(
                        f"plan {plan.code} caps {ceiling.country} calls at "
                        f"{ceiling.max_per_minute} per minute but carrier {carrier.code} "
                        f"charges {ceiling.country} calls in {', '.join(other)}: use one currency"
                    )
    return problems
