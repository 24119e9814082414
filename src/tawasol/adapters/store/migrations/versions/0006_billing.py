"""Billing: accounts and ledger, documents numbered per entity, terms, paid periods, outbox.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

New tables only; nothing existing changes. Spelled out rather than built from the models, so a
later change to `tawasol.adapters.store.billing_models` cannot rewrite this revision (the test
suite compares the migrated schema with the models on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric().with_variant(sa.String(32), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEY = sa.String(200)  # idempotency keys


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name="fk_billing_accounts_subscriber_id_subscribers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_billing_accounts"),
        sa.UniqueConstraint("subscriber_id", "currency", name="uq_billing_accounts_subscriber_id"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("idempotency_key", KEY, nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["billing_accounts.id"],
            name="fk_ledger_entries_account_id_billing_accounts",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_entries"),
        sa.UniqueConstraint("idempotency_key", name="uq_ledger_entries_idempotency_key"),
    )
    op.create_index("ix_ledger_entries_account_id", "ledger_entries", ["account_id"])
    op.create_table(
        "document_sequences",
        sa.Column("entity_code", sa.String(32), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("entity_code", name="pk_document_sequences"),
    )
    op.create_table(
        "billing_documents",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("entity_code", sa.String(32), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("issued_at", TIMESTAMP, nullable=False),
        sa.Column("idempotency_key", KEY, nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_documents"),
        sa.UniqueConstraint("entity_code", "sequence", name="uq_billing_documents_entity_code"),
        sa.UniqueConstraint("number", name="uq_billing_documents_number"),
    )
    op.create_index("ix_billing_documents_subscriber_id", "billing_documents", ["subscriber_id"])
    op.create_table(
        "billing_terms",
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("anchor", TIMESTAMP, nullable=False),
        sa.Column("period_index", sa.Integer(), nullable=False),
        sa.Column("price_paid", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("next_plan_code", sa.Text(), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("paused_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name="fk_billing_terms_subscription_id_subscriptions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscription_id", name="pk_billing_terms"),
    )
    op.create_table(
        "billing_paid_periods",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("plan_code", sa.Text(), nullable=False),
        sa.Column("period_index", sa.Integer(), nullable=False),
        sa.Column("start", TIMESTAMP, nullable=False),
        sa.Column("end", TIMESTAMP, nullable=False),
        sa.Column("price_paid", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("charge_key", KEY, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_billing_paid_periods"),
        sa.UniqueConstraint("charge_key", name="uq_billing_paid_periods_charge_key"),
    )
    op.create_index(
        "ix_billing_paid_periods_subscription_id", "billing_paid_periods", ["subscription_id"]
    )
    op.create_index("ix_billing_paid_periods_start", "billing_paid_periods", ["start"])
    op.create_table(
        "billing_steps",
        sa.Column("idempotency_key", KEY, nullable=False),
        sa.Column("applied_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_billing_steps"),
    )
    op.create_table(
        "billing_outbox",
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("queued_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_billing_outbox"),
    )


def downgrade() -> None:
    op.drop_table("billing_outbox")
    op.drop_table("billing_steps")
    op.drop_table("billing_paid_periods")
    op.drop_table("billing_terms")
    op.drop_table("billing_documents")
    op.drop_table("document_sequences")
    op.drop_table("ledger_entries")
    op.drop_table("billing_accounts")
