"""Payments' tables (migration 0012): payment methods, payments, refunds, provider events and
dunning cases. Only `payments_sql` reads them.

A payment, a refund and a provider event are inserted before anything is asked of a provider
or applied, under a unique key (the idempotency key; provider + event id), so that a process
killed at any point finds them again and never sends or applies a second one. Provider events
keep their body as received, for audit; nothing is ever deleted.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CHAR, BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy import UniqueConstraint as Unique
from sqlalchemy.orm import Mapped, mapped_column

from tawasol.adapters.store.models import Base, BigId


class PaymentMethodRow(Base):
    __tablename__ = "payment_methods"
    __table_args__ = (Unique("provider", "method_reference"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    customer_reference: Mapped[str] = mapped_column(String(200), nullable=False)
    method_reference: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str] = mapped_column(Text, nullable=False)
    expires: Mapped[date | None] = mapped_column(Date)
    details: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class PaymentRow(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_provider_provider_reference", "provider", "provider_reference"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    method_id: Mapped[int] = mapped_column(ForeignKey("payment_methods.id"), nullable=False)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    reference: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    provider_reference: Mapped[str] = mapped_column(String(200), nullable=False)
    action_url: Mapped[str] = mapped_column(Text, nullable=False)
    failure_code: Mapped[str | None] = mapped_column(String(32))
    failure_message: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class PaymentRefundRow(Base):
    __tablename__ = "payment_refunds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    payment_id: Mapped[int] = mapped_column(ForeignKey("payments.id"), nullable=False, index=True)
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    provider_reference: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)


class PaymentEventRow(Base):
    """Every provider event as received (audit), once per (provider, event_id)."""

    __tablename__ = "payment_events"
    __table_args__ = (Unique("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    event_id: Mapped[str] = mapped_column(String(200), nullable=False)
    type: Mapped[str] = mapped_column(String(100), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(nullable=False)
    received_at: Mapped[datetime] = mapped_column(nullable=False)
    deliveries: Mapped[int] = mapped_column(Integer, nullable=False)
    applied_at: Mapped[datetime | None] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(Text, nullable=False)
    payment_reference: Mapped[str] = mapped_column(String(200), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False)
    method_reference: Mapped[str] = mapped_column(String(200), nullable=False)
    refund_reference: Mapped[str] = mapped_column(String(200), nullable=False)
    amount: Mapped[Decimal | None] = mapped_column()
    currency: Mapped[str | None] = mapped_column(CHAR(3))
    failure_code: Mapped[str | None] = mapped_column(String(32))
    failure_message: Mapped[str] = mapped_column(Text, nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)


class DunningCaseRow(Base):
    __tablename__ = "dunning_cases"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    subscription_id: Mapped[int | None] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    opened_at: Mapped[datetime] = mapped_column(nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_failure: Mapped[str | None] = mapped_column(String(32))
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    held_since: Mapped[datetime | None] = mapped_column()
    held_for_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    suspended_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
