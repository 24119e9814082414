"""The tables of the system of record, as SQLAlchemy 2 typed declarative models.

These classes are the store's private vocabulary: `sql_store` translates them to and from the
domain's frozen values, and nothing outside `adapters/store` imports them. Every change here
needs a migration in `migrations/versions/` (the test suite compares the two).

Choices worth knowing:
- a plan's names, destinations and time windows are small, always read together and never
  queried, so they are JSON columns; its fair-use limits are plain columns;
- a carrier's gateways, destinations and rates are child tables because rate decks run to tens
  of thousands of rows and are replaced in bulk;
- money is an `Amount` (exact decimal) plus a CHAR(3) currency, times are `UtcDateTime`;
- carrier events are a log with no foreign key to `carriers`: incidents and compensation are
  built on them, so they must outlive any change to the carrier they name.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    CHAR,
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tawasol.adapters.store.types import Amount, UtcDateTime

# Named constraints: Alembic's batch mode on SQLite and error messages both need stable names.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        Decimal: Amount(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class CatalogRevisionRow(Base):
    """One row counting catalog writes, so deciders reload only when something changed."""

    __tablename__ = "catalog_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False)


class PlanRow(Base):
    """An offer sold to subscribers (see `tawasol.domain.catalog.Plan`)."""

    __tablename__ = "plans"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    names: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    period: Mapped[str] = mapped_column(String(16), nullable=False)
    price_amount: Mapped[Decimal] = mapped_column(nullable=False)
    price_currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    # [{"country": "MA", "kind": "mobile"}, ...], sorted
    destinations: Mapped[list[Any]] = mapped_column(nullable=False)
    # [{"weekdays": [5, 6], "start": "20:00:00", "end": "08:00:00"}, ...], in plan order
    time_windows: Mapped[list[Any]] = mapped_column(nullable=False)
    max_call_duration_seconds: Mapped[int | None] = mapped_column(Integer)
    minutes_per_period: Mapped[int | None] = mapped_column(Integer)
    distinct_numbers_per_period: Mapped[int | None] = mapped_column(Integer)
    concurrent_calls: Mapped[int | None] = mapped_column(Integer)
    on_sale: Mapped[bool] = mapped_column(Boolean, nullable=False)
    # [{"country": "MA", "kind": "mobile" or null, "max_per_minute": "0.0200",
    #   "currency": "EUR"}, ...], in plan order; amounts as text so they stay exact
    cost_ceilings: Mapped[list[Any]] = mapped_column(nullable=False, server_default="[]")
    # minutes a call may go on after the plan's hours end (0: cut at the end)
    window_grace_minutes: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class SubscriberRow(Base):
    """A customer with a SIP account; the SIP username is unique."""

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    email: Mapped[str] = mapped_column(Text, nullable=False)
    phone: Mapped[str] = mapped_column(Text, nullable=False)
    locale: Mapped[str] = mapped_column(String(8), nullable=False)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False)
    sip_username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    ha1: Mapped[str] = mapped_column(CHAR(32), nullable=False)
    caller_ids: Mapped[list[Any]] = mapped_column(nullable=False)
    # Country of residence (ISO 3166-1), which decides VAT; NULL: unknown (migration 0007).
    country: Mapped[str | None] = mapped_column(CHAR(2))
    # A business customer: told of short outages, invoiced with Factur-X (migration 0010).
    business: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )


class SubscriptionRow(Base):
    """A subscriber's plan for a period [period_start, period_end)."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id"), nullable=False, index=True
    )
    plan_code: Mapped[str] = mapped_column(ForeignKey("plans.code"), nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    period_start: Mapped[datetime] = mapped_column(nullable=False)
    period_end: Mapped[datetime] = mapped_column(nullable=False)
    created_at: Mapped[datetime | None] = mapped_column()


class CarrierRow(Base):
    """A carrier we hand calls to; its children are replaced together on every save."""

    __tablename__ = "carriers"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    number_format: Mapped[str] = mapped_column(String(16), nullable=False)
    max_channels: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    flat_rate_channels: Mapped[int | None] = mapped_column(Integer)
    flat_rate_fee_amount: Mapped[Decimal | None] = mapped_column()
    flat_rate_fee_currency: Mapped[str | None] = mapped_column(CHAR(3))


class CarrierGatewayRow(Base):
    """One SIP address of a carrier; `position` keeps the order the operator gave."""

    __tablename__ = "carrier_gateways"

    carrier_code: Mapped[str] = mapped_column(
        ForeignKey("carriers.code", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    host: Mapped[str] = mapped_column(Text, nullable=False)
    port: Mapped[int] = mapped_column(Integer, nullable=False)
    transport: Mapped[str] = mapped_column(String(8), nullable=False)


class CarrierDestinationRow(Base):
    """A country and kind of line a carrier terminates, with its priority (lower first)."""

    __tablename__ = "carrier_destinations"

    carrier_code: Mapped[str] = mapped_column(
        ForeignKey("carriers.code", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    country: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False)


class CarrierRateRow(Base):
    """One line of a carrier's rate deck: a prefix's per-minute price from a date."""

    __tablename__ = "carrier_rates"
    __table_args__ = (Index("ix_carrier_rates_carrier_code_prefix", "carrier_code", "prefix"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    carrier_code: Mapped[str] = mapped_column(
        ForeignKey("carriers.code", ondelete="CASCADE"), nullable=False
    )
    prefix: Mapped[str] = mapped_column(Text, nullable=False)
    per_minute_amount: Mapped[Decimal] = mapped_column(nullable=False)
    currency: Mapped[str] = mapped_column(CHAR(3), nullable=False)
    effective_from: Mapped[datetime] = mapped_column(nullable=False)
    increment_first_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    increment_next_seconds: Mapped[int] = mapped_column(Integer, nullable=False)


class CallRow(Base):
    """The call detail record: exactly one row per SIP Call-ID."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_subscription_id_started_at", "subscription_id", "started_at"),
        Index("ix_calls_subscriber_id_started_at", "subscriber_id", "started_at"),
        Index("ix_calls_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    started_at: Mapped[datetime] = mapped_column(nullable=False)
    sip_username: Mapped[str] = mapped_column(Text, nullable=False)
    dialled: Mapped[str] = mapped_column(Text, nullable=False)
    subscriber_id: Mapped[int | None] = mapped_column(Integer)
    subscription_id: Mapped[int | None] = mapped_column(Integer)
    destination: Mapped[str] = mapped_column(Text, nullable=False)
    country: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    carrier: Mapped[str | None] = mapped_column(Text)
    final_sip_code: Mapped[int | None] = mapped_column(Integer)
    hangup_cause: Mapped[str | None] = mapped_column(Text)
    # Rating, once the call is answered and over: how the carrier is paid ("flat_rate",
    # "per_minute"), the rate applied and its increment ("60/60"), and the cost. A NULL cost
    # means "not rated" (unanswered, or no rate found), distinct from a rated cost of zero.
    billing: Mapped[str | None] = mapped_column(Text)
    rate_per_minute_amount: Mapped[Decimal | None] = mapped_column()
    rate_currency: Mapped[str | None] = mapped_column(CHAR(3))
    increment: Mapped[str | None] = mapped_column(Text)
    cost_amount: Mapped[Decimal | None] = mapped_column()
    cost_currency: Mapped[str | None] = mapped_column(CHAR(3))
    # The brain refused the call (the decision's reason code, e.g. "no_route"); NULL for a
    # call that was allowed.
    refusal_reason: Mapped[str | None] = mapped_column(Text)
    # Calls to a direct number (migration 0009): how the call came in (NULL: softphone), the
    # inbound trunk that brought it, the caller's number, and what that trunk charges.
    access: Mapped[str | None] = mapped_column(Text)
    inbound_trunk: Mapped[str | None] = mapped_column(Text)
    caller_id: Mapped[str | None] = mapped_column(Text)
    inbound_cost_amount: Mapped[Decimal | None] = mapped_column()
    inbound_cost_currency: Mapped[str | None] = mapped_column(CHAR(3))


class CallAttemptRow(Base):
    """One try of a call on one carrier's gateway; (call_id, attempt) is unique."""

    __tablename__ = "call_attempts"

    call_id: Mapped[str] = mapped_column(
        ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    carrier: Mapped[str] = mapped_column(Text, nullable=False)
    gateway: Mapped[str] = mapped_column(Text, nullable=False)
    sip_code: Mapped[int | None] = mapped_column(Integer)
    pdd_ms: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(nullable=False)
    # ITU-T Q.850 cause from the carrier's Reason header (RFC 3326), e.g. 34 "no circuit".
    q850_cause: Mapped[int | None] = mapped_column(Integer)
    billing: Mapped[str | None] = mapped_column(Text)


class CarrierEventRow(Base):
    """A carrier's state change (down, up, capacity learned, raised, restored or set).

    An append-only log: no foreign key, so events outlive whatever later happens to the
    carrier row, and recording one never fails because of the catalog.
    """

    __tablename__ = "carrier_events"
    __table_args__ = (
        # One carrier's events newest first, and everyone's newest first.
        Index("ix_carrier_events_carrier_code_at", "carrier_code", "at"),
        Index("ix_carrier_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    carrier_code: Mapped[str] = mapped_column(Text, nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, nullable=False)
    effective_channels: Mapped[int | None] = mapped_column(Integer)


class CarrierCapacityRow(Base):
    """An operator's cap on a carrier's simultaneous calls; no row means "as contracted".

    Part of the catalog (writing it bumps the revision); it goes with its carrier.
    """

    __tablename__ = "carrier_capacities"
    __table_args__ = (
        CheckConstraint("effective_channels >= 0", name="effective_channels_not_negative"),
    )

    carrier_code: Mapped[str] = mapped_column(
        ForeignKey("carriers.code", ondelete="CASCADE"), primary_key=True
    )
    effective_channels: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)
