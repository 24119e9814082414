"""Billing reports: credits per incident (from the issued credit notes), revenue per plan and
period, carrier cost and margin per plan and destination (set-based queries through
`ReportQueries`, rules in `tawasol.domain.billing.margins`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from tawasol.domain.billing.documents import Document, DocumentKind
from tawasol.domain.billing.margins import (
    MarginRow,
    PlanTakings,
    RevenueRow,
    Traffic,
    check_period,
    flat_fee_share,
    margins,
    revenue_per_plan,
)
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.money import Money

OUTAGE_CREDIT_PREFIX = "outage-credit:"


def credits_per_incident(documents: Iterable[Document]) -> dict[tuple[int, str], Decimal]:
    """Total VAT-inclusive outage credit notes per (incident id, currency)."""
    totals: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for document in documents:
        if document.kind is DocumentKind.CREDIT_NOTE and document.idempotency_key.startswith(
            OUTAGE_CREDIT_PREFIX
        ):
            incident_id = int(document.idempotency_key.split(":")[1])
            totals[(incident_id, document.currency)] += document.total_gross.amount
    return dict(totals)


class ReportQueries(Protocol):
    """The set-based aggregates the reports need (one GROUP BY each, never a row per
    subscriber): `tawasol.adapters.store.billing_reports_sql`."""

    def plan_takings(self, *, start: datetime, end: datetime) -> Sequence[PlanTakings]:
        """Charges and credits recorded in [start, end), per (plan, country of residence,
        currency)."""
        ...

    def traffic(self, *, start: datetime, end: datetime) -> Sequence[Traffic]:
        """Answered calls started in [start, end) per (plan, destination, carrier, cost
        currency)."""
        ...

    def flat_rate_fees(self) -> Mapping[str, Money]:
        """The monthly fee of each flat-rate carrier."""
        ...


@dataclass(frozen=True)
class PeriodReport:
    """Revenue per plan and margin per plan and destination for [start, end)."""

    start: datetime
    end: datetime
    revenue: list[RevenueRow]
    margins: list[MarginRow]
    flat_fees: dict[str, Money]


class BillingReports:
    """Revenue, carrier cost and margin of a period (rules in `domain.billing.margins`)."""

    def __init__(self, *, queries: ReportQueries, vat: VatTable) -> None:
        self._queries = queries
        self._vat = vat

    def period(self, *, start: datetime, end: datetime) -> PeriodReport:
        """Raises InvalidInput for a period that is not aware and non-empty,
        InvalidConfiguration for a country of residence without a VAT rate."""
        check_period(start, end)
        revenue = revenue_per_plan(self._queries.plan_takings(start=start, end=end), self._vat)
        fees = {
            carrier: flat_fee_share(fee, start, end)
            for carrier, fee in self._queries.flat_rate_fees().items()
        }
        rows = margins(
            revenue=revenue, traffic=self._queries.traffic(start=start, end=end), flat_fees=fees
        )
        return PeriodReport(start, end, revenue, rows, fees)
