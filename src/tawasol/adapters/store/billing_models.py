"""Billing's tables (migration 0005): accounts, ledger entries, documents and their sequences,
billing terms and paid periods per subscription, applied steps, documents to send.

Ledger entries and documents are only ever inserted (the store has no UPDATE or DELETE for
them): the history cannot be rewritten. A document keeps its full content as JSON, as issued.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tawasol.adapters.store.models import Base, BigId


class BillingAccountRow(Base):
    __tablename__ = "billing_accounts"
    __table_args__ = (UniqueConstraint("subscriber_id", "currency"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False
    )
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)


class LedgerEntryRow(Base):
    __tablename__ = "ledger_entries"
    # What credits already took from a charge (migration 0011): credits only.
    __table_args__ = (
        Index(
            "ix_ledger_entries_credit_reference",
            "reference",
            postgresql_where=text("kind = 'credit'"),
            sqlite_where=text("kind = 'credit'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("billing_accounts.id"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)
    reference: Mapped[str] = mapped_column(Text, nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False)


class DocumentSequenceRow(Base):
    """The last number used per issuing entity; its row lock serialises issuing."""

    __tablename__ = "document_sequences"

    entity_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, nullable=False)


class BillingDocumentRow(Base):
    __tablename__ = "billing_documents"
    __table_args__ = (UniqueConstraint("entity_code", "sequence"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entity_code: Mapped[str] = mapped_column(String(32), nullable=False)
    sequence: Mapped[int] = mapped_column(BigInteger, nullable=False)
    number: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    issued_at: Mapped[datetime] = mapped_column(nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False)
    content: Mapped[dict[str, Any]] = mapped_column(nullable=False)


class BillingTermsRow(Base):
    __tablename__ = "billing_terms"

    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    anchor: Mapped[datetime] = mapped_column(nullable=False)
    period_index: Mapped[int] = mapped_column(Integer, nullable=False)
    price_paid: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    next_plan_code: Mapped[str | None] = mapped_column(Text)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, nullable=False)
    paused_at: Mapped[datetime | None] = mapped_column()


class PaidPeriodRow(Base):
    __tablename__ = "billing_paid_periods"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False)
    plan_code: Mapped[str] = mapped_column(Text, nullable=False)
    period_index: Mapped[int] = mapped_column(Integer, nullable=False)
    start: Mapped[datetime] = mapped_column(nullable=False, index=True)
    end: Mapped[datetime] = mapped_column(nullable=False)
    price_paid: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    charge_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)


class BillingStepRow(Base):
    __tablename__ = "billing_steps"

    idempotency_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(nullable=False)


class DocumentOutboxRow(Base):
    __tablename__ = "billing_outbox"

    number: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient: Mapped[str] = mapped_column(Text, nullable=False)
    queued_at: Mapped[datetime] = mapped_column(nullable=False)
