"""The tables of calling from any phone (see `tawasol.domain.direct_numbers`), on the store's
shared metadata. Only `direct_numbers_sql` reads them.

A trunk's addresses, number ranges and rate deck are JSON columns: they are read whole with
their trunk and never queried alone. Contacts are never deleted (their removal starts the
quarantine of their direct number); a subscriber has at most one active contact per direct
number, checked by the store inside the writing transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tawasol.adapters.store.models import Base, BigId


class InboundTrunkRow(Base):
    __tablename__ = "inbound_trunks"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    country: Mapped[str] = mapped_column(String(2), nullable=False)
    addresses: Mapped[list[Any]] = mapped_column(nullable=False)
    number_ranges: Mapped[list[Any]] = mapped_column(nullable=False)
    trust_asserted_identity: Mapped[bool] = mapped_column(Boolean, nullable=False)
    rates: Mapped[list[Any]] = mapped_column(nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)


class PoolNumberRow(Base):
    __tablename__ = "direct_number_pool"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    trunk: Mapped[str] = mapped_column(
        ForeignKey("inbound_trunks.code", ondelete="RESTRICT"), nullable=False
    )


class CallerIdRow(Base):
    __tablename__ = "caller_ids"

    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    verified_at: Mapped[datetime | None] = mapped_column()
    code_hash: Mapped[str] = mapped_column(Text, nullable=False)
    code_expires_at: Mapped[datetime | None] = mapped_column()
    failed_attempts: Mapped[int] = mapped_column(Integer, nullable=False)


class ContactRow(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_subscriber_id_direct_number", "subscriber_id", "direct_number"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    number: Mapped[str] = mapped_column(String(16), nullable=False)
    direct_number: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    removed_at: Mapped[datetime | None] = mapped_column()
