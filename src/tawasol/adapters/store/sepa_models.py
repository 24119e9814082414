"""SEPA Direct Debit's tables (migration 0013): mandates, collections and their
pre-notifications, the files handed to the bank (kept as written), each presentation of a
collection in a file (the bank's returns name it by end-to-end id), credit transfers.

The IBAN is kept whole here (the bank needs it to collect); everything shown to people other
than the operator shows it masked. A file's XML is kept as written so writing it again after a
crash gives the bank the very same file.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CHAR, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tawasol.adapters.store.models import Base, BigId


class SepaMandateRow(Base):
    __tablename__ = "sepa_mandates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reference: Mapped[str] = mapped_column(String(35), nullable=False, unique=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id"), nullable=False, index=True
    )
    iban: Mapped[str] = mapped_column(String(34), nullable=False)
    bic: Mapped[str] = mapped_column(String(11), nullable=False)
    holder: Mapped[str] = mapped_column(String(70), nullable=False)
    signed_on: Mapped[date] = mapped_column(Date, nullable=False)
    prenotification_days: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    state_changed_on: Mapped[date | None] = mapped_column(Date)
    state_reason: Mapped[str] = mapped_column(Text, nullable=False)
    last_collection_on: Mapped[date | None] = mapped_column(Date)


class SepaCollectionRow(Base):
    __tablename__ = "sepa_collections"
    __table_args__ = (Index("ix_sepa_collections_state_due_on", "state", "due_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    mandate_reference: Mapped[str] = mapped_column(
        ForeignKey("sepa_mandates.reference"), nullable=False
    )
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    reference: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    charge_reference: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    presentations: Mapped[int] = mapped_column(Integer, nullable=False)
    notified_on: Mapped[date | None] = mapped_column(Date)
    notified_amount: Mapped[Decimal | None] = mapped_column()


class SepaPrenotificationRow(Base):
    __tablename__ = "sepa_prenotifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("sepa_collections.id"), nullable=False, index=True
    )
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    due_on: Mapped[date] = mapped_column(Date, nullable=False)
    queued_at: Mapped[datetime | None] = mapped_column()


class SepaBatchRow(Base):
    __tablename__ = "sepa_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    message_id: Mapped[str] = mapped_column(String(35), nullable=False, unique=True)
    execution_date: Mapped[date] = mapped_column(Date, nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    transactions: Mapped[int] = mapped_column(Integer, nullable=False)
    control_sum: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    xml: Mapped[str] = mapped_column(Text, nullable=False)


class SepaPresentationRow(Base):
    __tablename__ = "sepa_presentations"

    end_to_end_id: Mapped[str] = mapped_column(String(35), primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("sepa_collections.id"), nullable=False, index=True
    )
    batch_id: Mapped[int] = mapped_column(ForeignKey("sepa_batches.id"), nullable=False, index=True)
    mandate_reference: Mapped[str] = mapped_column(String(35), nullable=False)
    sequence_type: Mapped[str] = mapped_column(String(4), nullable=False)
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    collection_date: Mapped[date] = mapped_column(Date, nullable=False)
    returned_reason: Mapped[str] = mapped_column(String(8), nullable=False)
    returned_on: Mapped[date | None] = mapped_column(Date)


class SepaTransferRow(Base):
    __tablename__ = "sepa_transfers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("sepa_collections.id"), nullable=False, index=True
    )
    iban: Mapped[str] = mapped_column(String(34), nullable=False)
    bic: Mapped[str] = mapped_column(String(11), nullable=False)
    holder: Mapped[str] = mapped_column(String(70), nullable=False)
    amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    remittance: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("sepa_batches.id"), index=True)
