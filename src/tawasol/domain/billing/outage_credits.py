"""Outage credits: what a subscriber gets back for time their plan did not work.

When a customer-facing incident closes, each subscriber whose plan covers part of its scope gets
one credit note for that incident: plan price x (counted outage time inside their paid period) /
period length, under the operator's `CreditPolicy`:

- outage time counts fully while the impact is `major`, times `partial_factor` while it is
  `partial` (e.g. half capacity); where periods of one incident overlap, the worse impact counts,
  once;
- below `threshold` nothing is credited (a ten-minute blip);
- the counted time is rounded *up* to whole `minimum_unit`s (a day), never beyond the period;
- the remedy is a credit note (money) or an extension of the paid period by the counted time.

A credit never exceeds what was paid for the period. Renewals are *deferred* while a major
outage covering every destination of the plan has lasted `renewal_deferral_after`: nothing is
debited for a service that does not work (docs/billing.md).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from functools import cache

from tawasol.domain.billing.amounts import share_of
from tawasol.domain.billing.calendar import BillingPeriod
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope


class Remedy(enum.StrEnum):
    CREDIT = "credit"  # a credit note on the account
    EXTEND = "extend"  # the paid period is extended by the counted outage time


@dataclass(frozen=True)
class CreditPolicy:
    """The operator's rules for outage credits (see the module docstring)."""

    minimum_unit: timedelta = timedelta(days=1)
    partial_factor: Decimal = Decimal("0.5")
    threshold: timedelta = timedelta(hours=4)
    remedy: Remedy = Remedy.CREDIT
    renewal_deferral_after: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.minimum_unit < timedelta(seconds=1):
            raise InvalidConfiguration("the minimum credit unit is at least one second")
        if not isinstance(self.partial_factor, Decimal) or not (
            Decimal(0) <= self.partial_factor <= Decimal(1)
        ):
            raise InvalidConfiguration("the partial-outage factor is a Decimal from 0 to 1")
        if self.threshold < timedelta(0) or self.renewal_deferral_after < timedelta(0):
            raise InvalidConfiguration("thresholds cannot be negative")


@cache
def _kinds(kind: NumberKind | None) -> frozenset[NumberKind]:
    """The kinds of line a scope's `number_kind` covers (None: every kind)."""
    if kind is None:
        return frozenset(NumberKind)
    if kind is NumberKind.FIXED_OR_MOBILE:
        return frozenset({NumberKind.FIXED, NumberKind.MOBILE, kind})
    return frozenset({kind})


def scope_touches(scope: OutageScope, rules: Iterable[DestinationRule]) -> bool:
    """Whether an outage scope covers part of a plan's destinations (a scope limited to one
    range holder touches the plan's rule for its country and kind)."""
    return any(
        rule.country == scope.country and rule.kind in _kinds(scope.number_kind) for rule in rules
    )


def scope_covers_all(scopes: Iterable[OutageScope], rules: Iterable[DestinationRule]) -> bool:
    """Whether scopes (without range-holder limits) together cover every destination rule."""
    whole = [s for s in scopes if s.range_holder is None]
    return all(
        any(s.country == rule.country and rule.kind in _kinds(s.number_kind) for s in whole)
        for rule in rules
    )


def _weight(impact: OutageImpact, policy: CreditPolicy) -> Decimal:
    return Decimal(1) if impact is OutageImpact.MAJOR else policy.partial_factor


def weighted_outage_seconds(
    periods: Sequence[OutagePeriod], window: BillingPeriod, policy: CreditPolicy
) -> Decimal:
    """Seconds of outage inside `window`, partial time weighted, overlaps counted once at the
    worse impact. `periods` are one incident's periods that touch the plan."""
    edges = sorted(
        {window.start, window.end}
        | {p.start for p in periods if window.contains(p.start)}
        | {p.end for p in periods if p.end is not None and window.contains(p.end)}
    )
    total = Decimal(0)
    for left, right in itertools.pairwise(edges):
        covering = [
            _weight(p.impact, policy)
            for p in periods
            if p.start <= left and (p.end is None or p.end >= right)
        ]
        if covering:
            total += max(covering) * int((right - left).total_seconds())
    return total


@dataclass(frozen=True)
class OutageCredit:
    """What one incident gives one subscription for one paid period."""

    incident_id: int
    period: BillingPeriod
    weighted_seconds: Decimal
    counted: timedelta  # rounded to the policy's unit, 0 below the threshold
    amount: Money  # the credit (zero when the remedy is an extension)
    extension: timedelta  # the extension (zero when the remedy is a credit)

    @property
    def due(self) -> bool:
        return self.counted > timedelta(0)


def outage_credit(
    *,
    incident_id: int,
    periods: Sequence[OutagePeriod],
    paid: BillingPeriod,
    price_paid: Money,
    plan_rules: Iterable[DestinationRule],
    policy: CreditPolicy,
) -> OutageCredit:
    """The credit one incident gives a subscription for its paid period `paid`.

    `periods` may include other scopes: only those touching `plan_rules` count. `price_paid` is
    what was charged for `paid` (the credit is never more).
    """
    rules = tuple(plan_rules)
    relevant = [
        p for p in periods if p.incident_id == incident_id and scope_touches(p.scope, rules)
    ]
    weighted = weighted_outage_seconds(relevant, paid, policy)
    period_seconds = int(paid.length.total_seconds())
    unit_seconds = int(policy.minimum_unit.total_seconds())
    if weighted <= 0 or weighted < int(policy.threshold.total_seconds()):
        counted_seconds = 0
    else:
        # A started unit counts whole (Decimal's // truncates, so round the quotient up).
        units = int((weighted / unit_seconds).to_integral_value(rounding=ROUND_CEILING))
        counted_seconds = min(units * unit_seconds, period_seconds)
    counted = timedelta(seconds=counted_seconds)
    zero = Money(Decimal(0), price_paid.currency)
    if policy.remedy is Remedy.EXTEND:
        return OutageCredit(incident_id, paid, weighted, counted, zero, counted)
    amount = share_of(price_paid, counted_seconds, period_seconds)
    return OutageCredit(incident_id, paid, weighted, counted, amount, timedelta(0))


def renewal_deferred_until(
    *,
    due_at: datetime,
    periods: Sequence[OutagePeriod],
    plan_rules: Iterable[DestinationRule],
    policy: CreditPolicy,
) -> datetime | None:
    """If a renewal due at `due_at` must wait, the moment it may be charged (the end of the
    major outage; `due_at` itself is returned for an outage still open, so the caller tries
    again later); None when it may be charged now.

    It waits while major outage periods covering every destination of the plan (together)
    have lasted at least `renewal_deferral_after` at `due_at`.
    """
    rules = tuple(plan_rules)
    major = [
        p
        for p in periods
        if p.impact is OutageImpact.MAJOR
        and p.start <= due_at
        and (p.end is None or p.end > due_at)
        and scope_touches(p.scope, rules)
    ]
    if not major or not scope_covers_all((p.scope for p in major), rules):
        return None
    started = max(min(p.start for p in major if scope_covers_all([p.scope], [r])) for r in rules)
    if due_at - started < policy.renewal_deferral_after:
        return None
    ends = [p.end for p in major]
    if any(end is None for end in ends):
        return due_at
    return min(end for end in ends if end is not None)


@dataclass(frozen=True)
class DeferralWindow:
    """Due times in [start, end) whose renewal `renewal_deferred_until` defers.

    `resume` is when such a renewal may be charged (the end of the major outage); None while the
    outage is still open (the renewal waits for a later run).
    """

    start: datetime
    end: datetime | None
    resume: datetime | None


def renewal_deferral_windows(
    *,
    periods: Sequence[OutagePeriod],
    plan_rules: Iterable[DestinationRule],
    policy: CreditPolicy,
) -> list[DeferralWindow]:
    """`renewal_deferred_until` as windows of due times, for applying it to many subscriptions
    of one plan at once (e.g. in one SQL statement).

    The answer of `renewal_deferred_until` only changes where an outage period starts or ends,
    or where one has lasted `renewal_deferral_after`: between two such moments it is constant
    (or, for an open outage, the due time itself). So it is asked once per stretch, at the
    stretch's start, and the stretches where it defers are returned, oldest first.
    """
    rules = tuple(plan_rules)
    relevant = [p for p in periods if scope_touches(p.scope, rules)]
    edges = sorted(
        {p.start for p in relevant}
        | {p.start + policy.renewal_deferral_after for p in relevant}
        | {p.end for p in relevant if p.end is not None}
    )
    windows: list[DeferralWindow] = []
    for index, start in enumerate(edges):
        end = edges[index + 1] if index + 1 < len(edges) else None
        resume = renewal_deferred_until(
            due_at=start, periods=relevant, plan_rules=rules, policy=policy
        )
        if resume is None:
            continue
        windows.append(DeferralWindow(start, end, None if resume == start else resume))
    return windows


def outage_weights(
    periods: Sequence[OutagePeriod], policy: CreditPolicy
) -> list[tuple[datetime, datetime, Decimal]]:
    """One incident's outage as disjoint stretches (start, end, weight), oldest first: the
    weight is 1 while the worst impact covering the stretch is major, `partial_factor` while
    partial (what `weighted_outage_seconds` integrates over a paid period). `periods` are
    closed (every `end` set)."""
    edges = sorted({p.start for p in periods} | {p.end for p in periods if p.end is not None})
    stretches = []
    for left, right in itertools.pairwise(edges):
        covering = [
            _weight(p.impact, policy)
            for p in periods
            if p.start <= left and (p.end is None or p.end >= right)
        ]
        if covering:
            stretches.append((left, right, max(covering)))
    return stretches
