"""Billing reports' aggregates on SQLAlchemy (SQLite and PostgreSQL): one GROUP BY query per
aggregate, the database doing the summing, whatever the number of subscribers or calls.

Charges are joined to the period they paid for by their key (`billing_paid_periods.charge_key`
is the charge's idempotency key); credits by their reference (every credit entry references
the charge it corrects), which gives each its plan.

A call counts for the plan its subscriber was on when it started: the subscription's paid
periods are its plan history (a plan change now starts a paid period of the new plan at the
change, a change at period end with the renewal), so a call belongs to the plan of the latest
paid period started at or before it; before any, to the first paid period's plan; a
subscription billing has not met yet, to its plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Float, Integer, cast, func, select
from sqlalchemy.orm import Session

from tawasol.adapters.store.billing_models import LedgerEntryRow, PaidPeriodRow
from tawasol.adapters.store.engine import describe_url, translated
from tawasol.adapters.store.models import CallRow, CarrierRow, SubscriberRow, SubscriptionRow
from tawasol.domain.billing.ledger import EntryKind
from tawasol.domain.billing.margins import UNALLOCATED, PlanTakings, Traffic
from tawasol.domain.money import Money

MICRO = Decimal("0.000001")


class SqlReportQueries:
    """`ReportQueries` on the store's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._database = describe_url(engine.url)
        self._sqlite = engine.dialect.name == "sqlite"

    def _sum(self, column: Any) -> Any:
        """An exact SUM of an amount column. SQLite keeps amounts as text (see
        `types.Amount`) and would sum them as floats: there they are summed as integer
        millionths (amounts have at most 6 decimals), exact below 9 x 10^9 units."""
        if self._sqlite:
            return func.sum(cast(func.round(cast(column, Float) * 1_000_000), Integer))
        return func.sum(column)

    def _amount(self, value: Any) -> Decimal:
        if value is None:
            return Decimal(0)
        return (Decimal(int(value)) * MICRO).normalize() if self._sqlite else Decimal(value)

    def plan_takings(self, *, start: datetime, end: datetime) -> Sequence[PlanTakings]:
        def totals(kind: EntryKind, key: object) -> dict[tuple[str, str, str], Decimal]:
            query = (
                select(
                    PaidPeriodRow.plan_code,
                    SubscriberRow.country,
                    PaidPeriodRow.currency,
                    self._sum(LedgerEntryRow.amount),
                )
                .join(PaidPeriodRow, PaidPeriodRow.charge_key == key)
                .join(SubscriberRow, SubscriberRow.id == PaidPeriodRow.subscriber_id)
                .where(LedgerEntryRow.kind == kind.value)
                .where(LedgerEntryRow.recorded_at >= start, LedgerEntryRow.recorded_at < end)
                .group_by(PaidPeriodRow.plan_code, SubscriberRow.country, PaidPeriodRow.currency)
            )
            return {
                (plan, country or "", currency): self._amount(amount)
                for plan, country, currency, amount in session.execute(query)
            }

        with translated(self._database), Session(self._engine) as session:
            charged = totals(EntryKind.CHARGE, LedgerEntryRow.idempotency_key)
            credited = totals(EntryKind.CREDIT, LedgerEntryRow.reference)
        return [
            PlanTakings(
                plan,
                country,
                Money(charged.get((plan, country, currency), Decimal(0)), currency),
                Money(credited.get((plan, country, currency), Decimal(0)), currency),
            )
            for plan, country, currency in sorted(set(charged) | set(credited))
        ]

    def traffic(self, *, start: datetime, end: datetime) -> Sequence[Traffic]:
        def paid_plan(*, before_call: bool) -> Any:
            """The plan of the subscription's latest paid period started by the call (or,
            `before_call` False, of its first paid period)."""
            query = select(PaidPeriodRow.plan_code).where(
                PaidPeriodRow.subscription_id == CallRow.subscription_id
            )
            if before_call:
                query = query.where(PaidPeriodRow.start <= CallRow.started_at).order_by(
                    PaidPeriodRow.start.desc(), PaidPeriodRow.id.desc()
                )
            else:
                query = query.order_by(PaidPeriodRow.start, PaidPeriodRow.id)
            return query.limit(1).correlate(CallRow).scalar_subquery()

        calls = (
            select(
                func.coalesce(
                    paid_plan(before_call=True),
                    paid_plan(before_call=False),
                    SubscriptionRow.plan_code,
                ).label("plan_code"),
                CallRow.country,
                CallRow.carrier,
                CallRow.cost_currency,
                CallRow.duration_ms,
                CallRow.cost_amount,
            )
            .outerjoin(SubscriptionRow, SubscriptionRow.id == CallRow.subscription_id)
            .where(CallRow.started_at >= start, CallRow.started_at < end)
            .where(CallRow.answered_at.is_not(None), CallRow.carrier.is_not(None))
            .subquery()
        )
        query = select(
            calls.c.plan_code,
            calls.c.country,
            calls.c.carrier,
            calls.c.cost_currency,
            func.sum(calls.c.duration_ms),
            self._sum(calls.c.cost_amount),
        ).group_by(calls.c.plan_code, calls.c.country, calls.c.carrier, calls.c.cost_currency)
        with translated(self._database), Session(self._engine) as session:
            return [
                Traffic(
                    plan_code or UNALLOCATED,
                    country or UNALLOCATED,
                    carrier,
                    int(duration or 0),
                    Money(self._amount(cost), currency) if currency and cost is not None else None,
                )
                for plan_code, country, carrier, currency, duration, cost in session.execute(query)
            ]

    def flat_rate_fees(self) -> Mapping[str, Money]:
        query = select(
            CarrierRow.code, CarrierRow.flat_rate_fee_amount, CarrierRow.flat_rate_fee_currency
        ).where(CarrierRow.flat_rate_fee_amount.is_not(None))
        with translated(self._database), Session(self._engine) as session:
            return {
                code: Money(amount, currency)
                for code, amount, currency in session.execute(query)
                if currency and amount is not None
            }
