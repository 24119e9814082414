"""Payments' ports on SQLAlchemy (SQLite and PostgreSQL), tables from migration 0012.

`start_payment`, `start_refund`, `keep` (provider events) and `open_case` insert under a unique
key and, when the key is taken (by an earlier call or a concurrent process), return the row
already there: the unique index, not a read-then-write, is what makes them idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select, update

from tawasol.adapters.store.mapping import checked_amount, from_row, money_columns, values_of
from tawasol.adapters.store.payment_models import (
    DunningCaseRow,
    PaymentEventRow,
    PaymentMethodRow,
    PaymentRefundRow,
    PaymentRow,
)
from tawasol.adapters.store.sessions import Transactions
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.money import Money
from tawasol.domain.payments.dunning import DunningCase, DunningStatus
from tawasol.domain.payments.events import EventKind, ProviderEvent, StoredEvent
from tawasol.domain.payments.methods import PaymentMethod, PaymentMethodKind, PaymentMethodStatus
from tawasol.domain.payments.outcomes import FailureCode, PaymentStatus, RefundStatus
from tawasol.domain.payments.payments import Payment, Refund


class SqlPaymentStore:
    """`PaymentStore`, `ProviderEventLog` and `DunningStore` on the store's engine."""

    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    # -- PaymentStore: methods ----------------------------------------------------------------
    def add_method(self, method: PaymentMethod) -> PaymentMethod:
        try:
            with self._transactions.writing() as session:
                row = PaymentMethodRow(**_method_columns(method))
                session.add(row)
                session.flush()
                return _method(row)
        except Conflict as error:
            raise Conflict(
                "this payment method is known already",
                provider=method.provider,
                method_reference=method.method_reference,
            ) from error

    def save_method(self, method: PaymentMethod) -> PaymentMethod:
        with self._transactions.writing() as session:
            row = session.get(PaymentMethodRow, method.id)
            if row is None:
                raise NotFound("no such payment method", payment_method_id=method.id)
            row.status = method.status.value
            row.label = method.label
            row.expires = method.expires
            row.details = dict(method.details)
            return _method(row)

    def method(self, method_id: int) -> PaymentMethod:
        with self._transactions.reading() as session:
            row = session.get(PaymentMethodRow, method_id)
            if row is None:
                raise NotFound("no such payment method", payment_method_id=method_id)
            return _method(row)

    def find_method(self, *, provider: str, method_reference: str) -> PaymentMethod | None:
        with self._transactions.reading() as session:
            row = session.scalars(
                select(PaymentMethodRow).where(
                    PaymentMethodRow.provider == provider,
                    PaymentMethodRow.method_reference == method_reference,
                )
            ).one_or_none()
            return None if row is None else _method(row)

    def methods(self, *, subscriber_id: int | None = None) -> Sequence[PaymentMethod]:
        query = select(PaymentMethodRow).order_by(PaymentMethodRow.id)
        if subscriber_id is not None:
            query = query.where(PaymentMethodRow.subscriber_id == subscriber_id)
        with self._transactions.reading() as session:
            return [_method(row) for row in session.scalars(query)]

    # -- PaymentStore: payments ---------------------------------------------------------------
    def start_payment(self, payment: Payment) -> tuple[Payment, bool]:
        try:
            with self._transactions.writing() as session:
                row = PaymentRow(**_payment_columns(payment))
                session.add(row)
                session.flush()
                return _payment(row), True
        except Conflict:
            known = self.find_payment(idempotency_key=payment.idempotency_key)
            if known is None:  # pragma: no cover - another constraint failed
                raise
            return known, False

    def save_payment(self, payment: Payment) -> Payment:
        with self._transactions.writing() as session:
            row = session.get(PaymentRow, payment.id)
            if row is None:
                raise NotFound("no such payment", payment_id=payment.id)
            row.status = payment.status.value
            row.provider_reference = payment.provider_reference
            row.action_url = payment.action_url
            row.failure_code = payment.failure_code.value if payment.failure_code else None
            row.failure_message = payment.failure_message
            return _payment(row)

    def payment(self, payment_id: int) -> Payment:
        with self._transactions.reading() as session:
            row = session.get(PaymentRow, payment_id)
            if row is None:
                raise NotFound("no such payment", payment_id=payment_id)
            return _payment(row)

    def find_payment(
        self, *, idempotency_key: str = "", provider: str = "", provider_reference: str = ""
    ) -> Payment | None:
        if idempotency_key:
            query = select(PaymentRow).where(PaymentRow.idempotency_key == idempotency_key)
        elif provider_reference:
            query = (
                select(PaymentRow)
                .where(
                    PaymentRow.provider == provider,
                    PaymentRow.provider_reference == provider_reference,
                )
                .order_by(PaymentRow.id)
                .limit(1)
            )
        else:
            return None
        with self._transactions.reading() as session:
            row = session.scalars(query).one_or_none()
            return None if row is None else _payment(row)

    def payments(
        self, *, subscriber_id: int | None = None, reference: str | None = None
    ) -> Sequence[Payment]:
        query = select(PaymentRow).order_by(PaymentRow.id)
        if subscriber_id is not None:
            query = query.where(PaymentRow.subscriber_id == subscriber_id)
        if reference is not None:
            query = query.where(PaymentRow.reference == reference)
        with self._transactions.reading() as session:
            return [_payment(row) for row in session.scalars(query)]

    # -- PaymentStore: refunds ----------------------------------------------------------------
    def start_refund(self, refund: Refund) -> tuple[Refund, bool]:
        with self._transactions.reading() as session:
            if session.get(PaymentRow, refund.payment_id) is None:
                raise NotFound("no such payment", payment_id=refund.payment_id)
        try:
            with self._transactions.writing() as session:
                row = PaymentRefundRow(**_refund_columns(refund))
                session.add(row)
                session.flush()
                return _refund(row), True
        except Conflict:
            with self._transactions.reading() as session:
                known = session.scalars(
                    select(PaymentRefundRow).where(
                        PaymentRefundRow.idempotency_key == refund.idempotency_key
                    )
                ).one()
                return _refund(known), False

    def save_refund(self, refund: Refund) -> Refund:
        with self._transactions.writing() as session:
            row = session.get(PaymentRefundRow, refund.id)
            if row is None:
                raise NotFound("no such refund", refund_id=refund.id)
            row.status = refund.status.value
            row.provider_reference = refund.provider_reference
            return _refund(row)

    def refunds(self, *, payment_id: int) -> Sequence[Refund]:
        with self._transactions.reading() as session:
            rows = session.scalars(
                select(PaymentRefundRow)
                .where(PaymentRefundRow.payment_id == payment_id)
                .order_by(PaymentRefundRow.id)
            )
            return [_refund(row) for row in rows]

    def find_refund(self, *, provider_reference: str) -> Refund | None:
        if not provider_reference:
            return None
        with self._transactions.reading() as session:
            row = session.scalars(
                select(PaymentRefundRow)
                .where(PaymentRefundRow.provider_reference == provider_reference)
                .limit(1)
            ).one_or_none()
            return None if row is None else _refund(row)

    # -- ProviderEventLog ---------------------------------------------------------------------
    def keep(self, event: ProviderEvent, *, at: datetime) -> StoredEvent:
        try:
            with self._transactions.writing() as session:
                row = PaymentEventRow(**_event_columns(event), received_at=at)
                session.add(row)
                session.flush()
                return _stored_event(row)
        except Conflict:
            with self._transactions.writing() as session:
                session.execute(
                    update(PaymentEventRow)
                    .where(
                        PaymentEventRow.provider == event.provider,
                        PaymentEventRow.event_id == event.event_id,
                    )
                    .values(deliveries=PaymentEventRow.deliveries + 1)
                )
                known = session.scalars(
                    select(PaymentEventRow).where(
                        PaymentEventRow.provider == event.provider,
                        PaymentEventRow.event_id == event.event_id,
                    )
                ).one()
                return _stored_event(known)

    def mark_applied(self, *, provider: str, event_id: str, at: datetime, outcome: str) -> None:
        with self._transactions.writing() as session:
            row = session.scalars(
                select(PaymentEventRow).where(
                    PaymentEventRow.provider == provider, PaymentEventRow.event_id == event_id
                )
            ).one_or_none()
            if row is None:
                raise NotFound("no such provider event", provider=provider, event_id=event_id)
            if row.applied_at is None:
                row.applied_at = at
                row.outcome = outcome[:2000]

    def unapplied(self, *, limit: int = 100) -> Sequence[StoredEvent]:
        with self._transactions.reading() as session:
            rows = session.scalars(
                select(PaymentEventRow)
                .where(PaymentEventRow.applied_at.is_(None))
                .order_by(PaymentEventRow.id)
                .limit(limit)
            )
            return [_stored_event(row) for row in rows]

    def events(self, *, provider: str | None = None, limit: int = 100) -> Sequence[StoredEvent]:
        query = select(PaymentEventRow).order_by(PaymentEventRow.id.desc()).limit(limit)
        if provider is not None:
            query = query.where(PaymentEventRow.provider == provider)
        with self._transactions.reading() as session:
            return [_stored_event(row) for row in session.scalars(query)]

    # -- DunningStore -------------------------------------------------------------------------
    def open_case(self, case: DunningCase) -> tuple[DunningCase, bool]:
        try:
            with self._transactions.writing() as session:
                row = DunningCaseRow(**_case_columns(case))
                session.add(row)
                session.flush()
                return _case(row), True
        except Conflict:
            known = self.case(case.reference)
            if known is None:  # pragma: no cover - another constraint failed
                raise
            return known, False

    def save_case(self, case: DunningCase) -> DunningCase:
        with self._transactions.writing() as session:
            row = session.get(DunningCaseRow, case.id)
            if row is None or row.reference != case.reference:
                raise NotFound("no such dunning case", reference=case.reference)
            for key, value in _case_columns(case).items():
                setattr(row, key, value)
            session.flush()
            return _case(row)

    def case(self, reference: str) -> DunningCase | None:
        with self._transactions.reading() as session:
            row = session.scalars(
                select(DunningCaseRow).where(DunningCaseRow.reference == reference)
            ).one_or_none()
            return None if row is None else _case(row)

    def cases(
        self, *, subscriber_id: int | None = None, open_only: bool = True
    ) -> Sequence[DunningCase]:
        query = select(DunningCaseRow).order_by(DunningCaseRow.id)
        if subscriber_id is not None:
            query = query.where(DunningCaseRow.subscriber_id == subscriber_id)
        if open_only:
            query = query.where(
                DunningCaseRow.status.in_([s.value for s in DunningStatus if not s.closed])
            )
        with self._transactions.reading() as session:
            return [_case(row) for row in session.scalars(query)]


# -- mapping: rows whose columns bear the domain fields' names (mapping.values_of/from_row) -----
def _method_columns(method: PaymentMethod) -> dict[str, Any]:
    return values_of(
        method,
        leave_out=("id",),
        kind=method.kind.value,
        status=method.status.value,
        details=dict(method.details),
    )


def _method(row: PaymentMethodRow) -> PaymentMethod:
    return from_row(
        PaymentMethod,
        row,
        kind=PaymentMethodKind(row.kind),
        status=PaymentMethodStatus(row.status),
        details=dict(row.details),
    )


def _payment_columns(payment: Payment) -> dict[str, Any]:
    return values_of(
        payment,
        leave_out=("id",),
        amount=checked_amount(payment.amount),
        currency=payment.amount.currency,
        status=payment.status.value,
        failure_code=payment.failure_code.value if payment.failure_code else None,
    )


def _payment(row: PaymentRow) -> Payment:
    return from_row(
        Payment,
        row,
        amount=Money(row.amount, row.currency),
        status=PaymentStatus(row.status),
        failure_code=FailureCode(row.failure_code) if row.failure_code else None,
    )


def _refund_columns(refund: Refund) -> dict[str, Any]:
    return values_of(
        refund,
        leave_out=("id",),
        amount=checked_amount(refund.amount),
        currency=refund.amount.currency,
        status=refund.status.value,
    )


def _refund(row: PaymentRefundRow) -> Refund:
    return from_row(
        Refund, row, amount=Money(row.amount, row.currency), status=RefundStatus(row.status)
    )


def _event_columns(event: ProviderEvent) -> dict[str, Any]:
    amount, currency = money_columns(event.amount)
    return values_of(
        event,
        type=event.type[:100],
        kind=event.kind.value,
        amount=amount,
        currency=currency,
        failure_code=event.failure_code.value if event.failure_code else None,
        deliveries=1,
        applied_at=None,
        outcome="",
    )


def _stored_event(row: PaymentEventRow) -> StoredEvent:
    amount = (
        Money(Decimal(row.amount), row.currency)
        if row.amount is not None and row.currency
        else None
    )
    event = from_row(
        ProviderEvent,
        row,
        kind=EventKind(row.kind),
        amount=amount,
        failure_code=FailureCode(row.failure_code) if row.failure_code else None,
    )
    return from_row(StoredEvent, row, event=event)


def _case_columns(case: DunningCase) -> dict[str, Any]:
    return values_of(
        case,
        leave_out=("id", "held_for"),
        amount=checked_amount(case.amount),
        currency=case.amount.currency,
        status=case.status.value,
        last_failure=case.last_failure.value if case.last_failure else None,
        held_for_ms=case.held_for // timedelta(milliseconds=1),
    )


def _case(row: DunningCaseRow) -> DunningCase:
    return from_row(
        DunningCase,
        row,
        amount=Money(row.amount, row.currency),
        status=DunningStatus(row.status),
        last_failure=FailureCode(row.last_failure) if row.last_failure else None,
        held_for=timedelta(milliseconds=row.held_for_ms),
    )
