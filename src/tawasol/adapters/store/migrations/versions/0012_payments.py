"""Payments: payment methods, payments (charge attempts), refunds, provider events (audit),
dunning cases.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

New tables only.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric().with_variant(sa.String(32), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
REFERENCE = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "payment_methods",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("customer_reference", REFERENCE, nullable=False),
        sa.Column("method_reference", REFERENCE, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("expires", sa.Date(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_payment_methods_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payment_methods"),
        sa.UniqueConstraint("provider", "method_reference", name="uq_payment_methods_provider"),
    )
    op.create_index("ix_payment_methods_subscriber_id", "payment_methods", ["subscriber_id"])
    op.create_table(
        "payments",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", REFERENCE, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("method_id", BIG_ID, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("reference", REFERENCE, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_reference", REFERENCE, nullable=False),
        sa.Column("action_url", sa.Text(), nullable=False),
        sa.Column("failure_code", sa.String(32), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["method_id"], ["payment_methods.id"], name="fk_payments_method_id_payment_methods"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("idempotency_key", name="uq_payments_idempotency_key"),
    )
    op.create_index("ix_payments_subscriber_id", "payments", ["subscriber_id"])
    op.create_index("ix_payments_reference", "payments", ["reference"])
    op.create_index(
        "ix_payments_provider_provider_reference", "payments", ["provider", "provider_reference"]
    )
    op.create_table(
        "payment_refunds",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", REFERENCE, nullable=False),
        sa.Column("payment_id", BIG_ID, nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("provider_reference", REFERENCE, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name="fk_payment_refunds_payment_id_payments"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_payment_refunds"),
        sa.UniqueConstraint("idempotency_key", name="uq_payment_refunds_idempotency_key"),
    )
    op.create_index("ix_payment_refunds_payment_id", "payment_refunds", ["payment_id"])
    op.create_index(
        "ix_payment_refunds_provider_reference", "payment_refunds", ["provider_reference"]
    )
    op.create_table(
        "payment_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("event_id", REFERENCE, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("occurred_at", TIMESTAMP, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("applied_at", TIMESTAMP, nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("payment_reference", REFERENCE, nullable=False),
        sa.Column("idempotency_key", REFERENCE, nullable=False),
        sa.Column("method_reference", REFERENCE, nullable=False),
        sa.Column("refund_reference", REFERENCE, nullable=False),
        sa.Column("amount", AMOUNT, nullable=True),
        sa.Column("currency", sa.CHAR(3), nullable=True),
        sa.Column("failure_code", sa.String(32), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_payment_events"),
        sa.UniqueConstraint("provider", "event_id", name="uq_payment_events_provider"),
    )
    op.create_index("ix_payment_events_applied_at", "payment_events", ["applied_at"])
    op.create_table(
        "dunning_cases",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("reference", REFERENCE, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("opened_at", TIMESTAMP, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.String(32), nullable=True),
        sa.Column("last_attempt_at", TIMESTAMP, nullable=True),
        sa.Column("held_since", TIMESTAMP, nullable=True),
        sa.Column("held_for_ms", sa.BigInteger(), nullable=False),
        sa.Column("suspended_at", TIMESTAMP, nullable=True),
        sa.Column("closed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dunning_cases"),
        sa.UniqueConstraint("reference", name="uq_dunning_cases_reference"),
    )
    op.create_index("ix_dunning_cases_subscriber_id", "dunning_cases", ["subscriber_id"])
    op.create_index("ix_dunning_cases_status", "dunning_cases", ["status"])


def downgrade() -> None:
    op.drop_table("dunning_cases")
    op.drop_table("payment_events")
    op.drop_table("payment_refunds")
    op.drop_table("payments")
    op.drop_table("payment_methods")
