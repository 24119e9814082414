"""SEPA Direct Debit: mandates, collections, pre-notifications, files for the bank,
presentations, credit transfers.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

New tables only; nothing existing changes. Spelled out rather than built from the models
(`tawasol.adapters.store.sepa_models`), so a later change to them cannot rewrite this revision
(tests/integration/test_sepa_schema.py compares the migrated schema with the models).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric().with_variant(sa.String(32), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEY = sa.String(200)


def upgrade() -> None:
    op.create_table(
        "sepa_mandates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("reference", sa.String(35), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("iban", sa.String(34), nullable=False),
        sa.Column("bic", sa.String(11), nullable=False),
        sa.Column("holder", sa.String(70), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=False),
        sa.Column("prenotification_days", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_changed_on", sa.Date(), nullable=True),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("last_collection_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name="fk_sepa_mandates_subscriber_id_subscribers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sepa_mandates"),
        sa.UniqueConstraint("reference", name="uq_sepa_mandates_reference"),
    )
    op.create_index("ix_sepa_mandates_subscriber_id", "sepa_mandates", ["subscriber_id"])
    op.create_table(
        "sepa_collections",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("mandate_reference", sa.String(35), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("reference", KEY, nullable=False),
        sa.Column("charge_reference", KEY, nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("presentations", sa.Integer(), nullable=False),
        sa.Column("notified_on", sa.Date(), nullable=True),
        sa.Column("notified_amount", AMOUNT, nullable=True),
        sa.ForeignKeyConstraint(
            ["mandate_reference"],
            ["sepa_mandates.reference"],
            name="fk_sepa_collections_mandate_reference_sepa_mandates",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sepa_collections"),
        sa.UniqueConstraint("reference", name="uq_sepa_collections_reference"),
    )
    op.create_index("ix_sepa_collections_subscriber_id", "sepa_collections", ["subscriber_id"])
    op.create_index(
        "ix_sepa_collections_charge_reference", "sepa_collections", ["charge_reference"]
    )
    op.create_index("ix_sepa_collections_state_due_on", "sepa_collections", ["state", "due_on"])
    op.create_table(
        "sepa_prenotifications",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("collection_id", BIG_ID, nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("queued_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["sepa_collections.id"],
            name="fk_sepa_prenotifications_collection_id_sepa_collections",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sepa_prenotifications"),
    )
    op.create_index(
        "ix_sepa_prenotifications_collection_id", "sepa_prenotifications", ["collection_id"]
    )
    op.create_table(
        "sepa_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(35), nullable=False),
        sa.Column("execution_date", sa.Date(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("transactions", sa.Integer(), nullable=False),
        sa.Column("control_sum", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sepa_batches"),
        sa.UniqueConstraint("message_id", name="uq_sepa_batches_message_id"),
    )
    op.create_index("ix_sepa_batches_execution_date", "sepa_batches", ["execution_date"])
    op.create_table(
        "sepa_presentations",
        sa.Column("end_to_end_id", sa.String(35), nullable=False),
        sa.Column("collection_id", BIG_ID, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("mandate_reference", sa.String(35), nullable=False),
        sa.Column("sequence_type", sa.String(4), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("collection_date", sa.Date(), nullable=False),
        sa.Column("returned_reason", sa.String(8), nullable=False),
        sa.Column("returned_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["sepa_collections.id"],
            name="fk_sepa_presentations_collection_id_sepa_collections",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["sepa_batches.id"], name="fk_sepa_presentations_batch_id_sepa_batches"
        ),
        sa.PrimaryKeyConstraint("end_to_end_id", name="pk_sepa_presentations"),
    )
    op.create_index("ix_sepa_presentations_collection_id", "sepa_presentations", ["collection_id"])
    op.create_index("ix_sepa_presentations_batch_id", "sepa_presentations", ["batch_id"])
    op.create_table(
        "sepa_transfers",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("idempotency_key", KEY, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("collection_id", BIG_ID, nullable=False),
        sa.Column("iban", sa.String(34), nullable=False),
        sa.Column("bic", sa.String(11), nullable=False),
        sa.Column("holder", sa.String(70), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("remittance", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["sepa_collections.id"],
            name="fk_sepa_transfers_collection_id_sepa_collections",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["sepa_batches.id"], name="fk_sepa_transfers_batch_id_sepa_batches"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sepa_transfers"),
        sa.UniqueConstraint("idempotency_key", name="uq_sepa_transfers_idempotency_key"),
    )
    op.create_index("ix_sepa_transfers_collection_id", "sepa_transfers", ["collection_id"])
    op.create_index("ix_sepa_transfers_batch_id", "sepa_transfers", ["batch_id"])


def downgrade() -> None:
    for table in (
        "sepa_transfers",
        "sepa_presentations",
        "sepa_batches",
        "sepa_prenotifications",
        "sepa_collections",
        "sepa_mandates",
    ):
        op.drop_table(table)
