"""The initial schema: catalog (plans, subscribers, subscriptions, carriers) and call records.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written by hand and kept equal to `models.py` (the test suite compares them). Column types are
spelled out here rather than imported, so later changes to the models cannot rewrite history:
amounts are NUMERIC on PostgreSQL (no fixed scale, so 0.0780 reads back as 0.0780; the store
checks the NUMERIC(18, 6) range before writing) and text on SQLite (NUMERIC affinity would turn
them into floats there); timestamps are `timestamptz`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric().with_variant(sa.String(32), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    revision_table = op.create_table(
        "catalog_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_revision"),
    )
    op.bulk_insert(revision_table, [{"id": 1, "revision": 0}])

    op.create_table(
        "plans",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("price_amount", AMOUNT, nullable=False),
        sa.Column("price_currency", sa.CHAR(3), nullable=False),
        sa.Column("destinations", sa.JSON(), nullable=False),
        sa.Column("time_windows", sa.JSON(), nullable=False),
        sa.Column("max_call_duration_seconds", sa.Integer(), nullable=True),
        sa.Column("minutes_per_period", sa.Integer(), nullable=True),
        sa.Column("distinct_numbers_per_period", sa.Integer(), nullable=True),
        sa.Column("concurrent_calls", sa.Integer(), nullable=True),
        sa.Column("on_sale", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_plans"),
    )

    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("sip_username", sa.String(64), nullable=False),
        sa.Column("ha1", sa.CHAR(32), nullable=False),
        sa.Column("caller_ids", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscribers"),
        sa.UniqueConstraint("sip_username", name="uq_subscribers_sip_username"),
    )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("plan_code", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("period_start", TIMESTAMP, nullable=False),
        sa.Column("period_end", TIMESTAMP, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name="fk_subscriptions_subscriber_id_subscribers"
        ),
        sa.ForeignKeyConstraint(
            ["plan_code"], ["plans.code"], name="fk_subscriptions_plan_code_plans"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
    )
    op.create_index("ix_subscriptions_subscriber_id", "subscriptions", ["subscriber_id"])
    op.create_index("ix_subscriptions_plan_code", "subscriptions", ["plan_code"])

    op.create_table(
        "carriers",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("number_format", sa.String(16), nullable=False),
        sa.Column("max_channels", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("flat_rate_channels", sa.Integer(), nullable=True),
        sa.Column("flat_rate_fee_amount", AMOUNT, nullable=True),
        sa.Column("flat_rate_fee_currency", sa.CHAR(3), nullable=True),
        sa.PrimaryKeyConstraint("code", name="pk_carriers"),
    )

    op.create_table(
        "carrier_gateways",
        sa.Column("carrier_code", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_code"],
            ["carriers.code"],
            name="fk_carrier_gateways_carrier_code_carriers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("carrier_code", "position", name="pk_carrier_gateways"),
    )

    op.create_table(
        "carrier_destinations",
        sa.Column("carrier_code", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_code"],
            ["carriers.code"],
            name="fk_carrier_destinations_carrier_code_carriers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("carrier_code", "position", name="pk_carrier_destinations"),
    )

    op.create_table(
        "carrier_rates",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("carrier_code", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("per_minute_amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("effective_from", TIMESTAMP, nullable=False),
        sa.Column("increment_first_seconds", sa.Integer(), nullable=False),
        sa.Column("increment_next_seconds", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["carrier_code"],
            ["carriers.code"],
            name="fk_carrier_rates_carrier_code_carriers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_carrier_rates"),
    )
    op.create_index(
        "ix_carrier_rates_carrier_code_prefix", "carrier_rates", ["carrier_code", "prefix"]
    )

    op.create_table(
        "calls",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("sip_username", sa.Text(), nullable=False),
        sa.Column("dialled", sa.Text(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("country", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("answered_at", TIMESTAMP, nullable=True),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("carrier", sa.Text(), nullable=True),
        sa.Column("final_sip_code", sa.Integer(), nullable=True),
        sa.Column("hangup_cause", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calls"),
        sa.UniqueConstraint("call_id", name="uq_calls_call_id"),
    )
    op.create_index(
        "ix_calls_subscription_id_started_at", "calls", ["subscription_id", "started_at"]
    )
    op.create_index("ix_calls_subscriber_id_started_at", "calls", ["subscriber_id", "started_at"])
    op.create_index("ix_calls_started_at", "calls", ["started_at"])

    op.create_table(
        "call_attempts",
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("carrier", sa.Text(), nullable=False),
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("sip_code", sa.Integer(), nullable=True),
        sa.Column("pdd_ms", sa.Integer(), nullable=True),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.call_id"],
            name="fk_call_attempts_call_id_calls",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("call_id", "attempt", name="pk_call_attempts"),
    )


def downgrade() -> None:
    op.drop_table("call_attempts")
    op.drop_index("ix_calls_started_at", table_name="calls")
    op.drop_index("ix_calls_subscriber_id_started_at", table_name="calls")
    op.drop_index("ix_calls_subscription_id_started_at", table_name="calls")
    op.drop_table("calls")
    op.drop_index("ix_carrier_rates_carrier_code_prefix", table_name="carrier_rates")
    op.drop_table("carrier_rates")
    op.drop_table("carrier_destinations")
    op.drop_table("carrier_gateways")
    op.drop_table("carriers")
    op.drop_index("ix_subscriptions_plan_code", table_name="subscriptions")
    op.drop_index("ix_subscriptions_subscriber_id", table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("subscribers")
    op.drop_table("plans")
    op.drop_table("catalog_revision")
