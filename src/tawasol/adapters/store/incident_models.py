"""The incidents' tables (see `tawasol.domain.incidents`), on the store's shared metadata.

Separate from `models` because incidents are their own aggregate behind their own port
(`services.incident_ports.IncidentStore`); only `incidents_sql` reads them. An incident's
carrier is a plain code with no foreign key, like `carrier_events`: incidents outlive carriers.
The scope is three columns (country, kind, range holder) so outage periods can be filtered by
country in SQL. Impact stretches are indexed by start and end for billing's period query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tawasol.adapters.store.models import Base, BigId


class IncidentRow(Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_state_started_at", "state", "started_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    started_at: Mapped[datetime] = mapped_column(nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column()
    carrier_code: Mapped[str | None] = mapped_column(Text)
    scope_country: Mapped[str | None] = mapped_column(String(2))
    scope_kind: Mapped[str | None] = mapped_column(String(32))
    scope_range_holder: Mapped[str | None] = mapped_column(Text)
    automatic: Mapped[bool] = mapped_column(Boolean, nullable=False)
    postmortem: Mapped[str | None] = mapped_column(Text)
    merged_into: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class IncidentUpdateRow(Base):
    """One timeline entry; `message` is {"fr": ..., "ar": ..., "en": ...} (some languages)."""

    __tablename__ = "incident_updates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    author: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    message: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    automatic: Mapped[bool] = mapped_column(Boolean, nullable=False)
    notify: Mapped[bool] = mapped_column(Boolean, nullable=False)


class IncidentImpactRow(Base):
    """A customer-facing stretch of an incident: an outage period for billing."""

    __tablename__ = "incident_impact"
    __table_args__ = (Index("ix_incident_impact_start_end", "start", "end"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False, index=True
    )
    start: Mapped[datetime] = mapped_column(nullable=False)
    end: Mapped[datetime | None] = mapped_column()
    impact: Mapped[str] = mapped_column(String(16), nullable=False)


class IncidentAuditRow(Base):
    """Who changed an incident, when and how: append-only."""

    __tablename__ = "incident_audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    at: Mapped[datetime] = mapped_column(nullable=False)
    author: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class NoticeRow(Base):
    """The notices outbox: one row per message to one subscriber on one channel.

    `key` is unique (incident, occasion, subscriber, channel): queueing twice keeps one row.
    `lease_until` is when a claimed notice may be taken by another sender (its own died).
    """

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    incident_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    occasion: Mapped[str] = mapped_column(String(32), nullable=False)
    occasion_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    subscriber_id: Mapped[int] = mapped_column(Integer, nullable=False)
    channel: Mapped[str] = mapped_column(String(8), nullable=False)
    address: Mapped[str] = mapped_column(Text, nullable=False)
    locale: Mapped[str] = mapped_column(String(8), nullable=False)
    subject: Mapped[str] = mapped_column(Text, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    html: Mapped[str] = mapped_column(Text, nullable=False)
    message_id: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    lease_until: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column()


class NoticePartRow(Base):
    """One message a channel took for a notice (an SMS part and its SMSC message id), and
    what its delivery receipt said: `status` sent, delivered or failed (`error` then)."""

    __tablename__ = "notice_parts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    notice_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("notices.id", ondelete="CASCADE"), nullable=False, index=True
    )
    part: Mapped[int] = mapped_column(Integer, nullable=False)
    reference: Mapped[str] = mapped_column(Text, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime | None] = mapped_column()
