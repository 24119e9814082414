"""Revenue, carrier cost and margin of a reporting period, per plan and per destination.

- **Revenue** of a plan in a period is what was invoiced for it in the period (charges
  recorded in it) less what was credited on its invoices in the period (outage credits,
  pro-rata credits of plan changes and cancellations), net of VAT: the VAT collected is owed to
  the state, not the operator's income. VAT is taken per country of residence on each
  country's total (`VatTable.split`), so a report's VAT can differ by a minor unit from the
  sum of the invoices' lines.
- **Carrier cost** is what the call detail records (CDRs) cost (per-minute carriers) plus the
  flat-rate carriers' monthly fees *spread over the period*: a fee counts for the share of
  each calendar month (UTC) the period covers (a 10-day period in a 30-day month carries a
  third of the fee).
- **Allocation**: a plan's revenue is shared among its destinations by the answered minutes
  its subscribers called there; a flat-rate fee among the (plan, destination) pairs by the
  answered minutes they sent that carrier. Revenue of a plan nobody called with, or a fee of a
  carrier nobody used, stays on the destination "-" rather than vanish.
- **Margin** = allocated revenue - allocated cost, per (plan, destination, currency). Amounts
  are kept exact here; rounding is the presentation's.
"""

from __future__ import annotations

import calendar as gregorian
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tawasol.domain.billing.vat import VatTable
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money

UNALLOCATED = "-"


@dataclass(frozen=True)
class PlanTakings:
    """VAT-inclusive charges and credits of one plan for subscribers living in one country,
    recorded in the reporting period."""

    plan_code: str
    country: str
    charged: Money
    credited: Money


@dataclass(frozen=True)
class Traffic:
    """Answered calls of a reporting period for one (plan, destination country, carrier):
    their duration in milliseconds and what their CDRs cost (None: no per-minute cost, a
    flat-rate call). `plan_code` "-" for calls without a subscription."""

    plan_code: str
    destination: str
    carrier: str
    duration_ms: int
    cost: Money | None


@dataclass(frozen=True)
class RevenueRow:
    plan_code: str
    currency: str
    charged: Decimal  # VAT included
    credited: Decimal  # VAT included
    vat: Decimal
    net: Decimal  # charged - credited - vat


@dataclass(frozen=True)
class MarginRow:
    plan_code: str
    destination: str
    currency: str
    minutes: Decimal
    revenue: Decimal  # net of VAT, allocated by minutes
    cdr_cost: Decimal
    flat_rate_cost: Decimal

    @property
    def cost(self) -> Decimal:
        return self.cdr_cost + self.flat_rate_cost

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost


def check_period(start: datetime, end: datetime) -> None:
    """Raises InvalidInput unless [start, end) is an aware, non-empty period."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("a reporting period's bounds carry a time zone offset")
    if end <= start:
        raise InvalidInput(
            "a reporting period ends after it starts", start=start.isoformat(), end=end.isoformat()
        )


def revenue_per_plan(takings: Iterable[PlanTakings], vat: VatTable) -> list[RevenueRow]:
    """Revenue net of VAT per (plan, currency), sorted. Raises InvalidConfiguration for a
    country without a VAT rate, InvalidInput for credits above charges in one country (a
    net refund is not revenue: VAT is split on positive amounts only)."""
    rows: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for item in takings:
        gross = item.charged - item.credited
        split_vat = Decimal(0)
        if gross.amount > 0:
            split_vat = vat.split(gross, item.country).vat.amount
        elif gross.amount < 0:
            split_vat = -vat.split(Money(-gross.amount, gross.currency), item.country).vat.amount
        totals = rows[(item.plan_code, item.charged.currency)]
        totals[0] += item.charged.amount
        totals[1] += item.credited.amount
        totals[2] += split_vat
    return [
        RevenueRow(plan, currency, charged, credited, vat_total, charged - credited - vat_total)
        for (plan, currency), (charged, credited, vat_total) in sorted(rows.items())
    ]


def flat_fee_share(monthly_fee: Money, start: datetime, end: datetime) -> Money:
    """The part of a monthly fee a period [start, end) carries: for each calendar month (UTC)
    it overlaps, fee x overlap / the month's length, counted in seconds."""
    check_period(start, end)
    total = Decimal(0)
    cursor = datetime(start.year, start.month, 1, tzinfo=UTC)
    while cursor < end:
        days = gregorian.monthrange(cursor.year, cursor.month)[1]
        following = (
            datetime(cursor.year + 1, 1, 1, tzinfo=UTC)
            if cursor.month == 12
            else datetime(cursor.year, cursor.month + 1, 1, tzinfo=UTC)
        )
        overlap = (min(end, following) - max(start, cursor)).total_seconds()
        if overlap > 0:
            total += monthly_fee.amount * Decimal(int(overlap)) / Decimal(days * 86400)
        cursor = following
    return Money(total, monthly_fee.currency)


def margins(
    *,
    revenue: Iterable[RevenueRow],
    traffic: Iterable[Traffic],
    flat_fees: Mapping[str, Money],
) -> list[MarginRow]:
    """Margin per (plan, destination, currency): see the module docstring. `flat_fees` are
    each flat-rate carrier's fee share for the period (`flat_fee_share`)."""
    traffic = list(traffic)
    minutes_ms: dict[tuple[str, str], int] = defaultdict(int)
    plan_ms: dict[str, int] = defaultdict(int)
    carrier_ms: dict[str, int] = defaultdict(int)
    carrier_pair_ms: dict[tuple[str, str, str], int] = defaultdict(int)
    cdr: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for item in traffic:
        minutes_ms[(item.plan_code, item.destination)] += item.duration_ms
        plan_ms[item.plan_code] += item.duration_ms
        carrier_ms[item.carrier] += item.duration_ms
        carrier_pair_ms[(item.carrier, item.plan_code, item.destination)] += item.duration_ms
        if item.cost is not None and item.cost.amount:
            cdr[(item.plan_code, item.destination, item.cost.currency)] += item.cost.amount
    rows: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for line in revenue:
        total_ms = plan_ms.get(line.plan_code, 0)
        if not total_ms:
            rows[(line.plan_code, UNALLOCATED, line.currency)][0] += line.net
            continue
        for (plan, destination), ms in minutes_ms.items():
            if plan == line.plan_code and ms:
                share = line.net * Decimal(ms) / Decimal(total_ms)
                rows[(plan, destination, line.currency)][0] += share
    for (plan, destination, currency), amount in cdr.items():
        rows[(plan, destination, currency)][1] += amount
    for carrier, fee in flat_fees.items():
        used = carrier_ms.get(carrier, 0)
        if not used:
            rows[(UNALLOCATED, UNALLOCATED, fee.currency)][2] += fee.amount
            continue
        for (owner, plan, destination), ms in carrier_pair_ms.items():
            if owner == carrier and ms:
                share = fee.amount * Decimal(ms) / Decimal(used)
                rows[(plan, destination, fee.currency)][2] += share
    return [
        MarginRow(
            plan,
            destination,
            currency,
            Decimal(minutes_ms.get((plan, destination), 0)) / Decimal(60_000),
            revenue_share,
            cdr_cost,
            flat_cost,
        )
        for (plan, destination, currency), (revenue_share, cdr_cost, flat_cost) in sorted(
            rows.items()
        )
    ]
