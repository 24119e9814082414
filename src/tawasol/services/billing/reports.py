"""Billing reports read from issued documents: revenue per plan, credits per incident."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from tawasol.domain.billing.documents import Document, DocumentKind

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


def revenue_per_plan(documents: Iterable[Document]) -> dict[tuple[str, str], Decimal]:
    """Invoiced minus credited, VAT excluded, per (line description = plan name, currency)."""
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for document in documents:
        sign = 1 if document.kind is DocumentKind.INVOICE else -1
        for line in document.lines:
            name = line.description.split(":")[0]
            totals[(name, document.currency)] += sign * line.split.net.amount
    return dict(totals)
