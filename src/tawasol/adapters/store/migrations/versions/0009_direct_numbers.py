"""Calling from any phone: inbound trunks, the direct-number pool, caller IDs, contacts; the
access path, inbound trunk, caller ID and inbound cost of each call record.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

New tables, and plain nullable `ADD COLUMN`s on `calls` (see 0002 for why never a batch copy
of `calls` on SQLite): NULL `access` is a softphone call, which every existing call was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric().with_variant(sa.String(32), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

CALL_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("access", sa.Text()),
    ("inbound_trunk", sa.Text()),
    ("caller_id", sa.Text()),
    ("inbound_cost_amount", AMOUNT),
    ("inbound_cost_currency", sa.CHAR(3)),
)


def upgrade() -> None:
    for name, type_ in CALL_COLUMNS:
        op.add_column("calls", sa.Column(name, type_, nullable=True))
    op.create_table(
        "inbound_trunks",
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("number_ranges", sa.JSON(), nullable=False),
        sa.Column("trust_asserted_identity", sa.Boolean(), nullable=False),
        sa.Column("rates", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_inbound_trunks"),
    )
    op.create_table(
        "direct_number_pool",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("trunk", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["trunk"],
            ["inbound_trunks.code"],
            name="fk_direct_number_pool_trunk_inbound_trunks",
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_direct_number_pool"),
        sa.UniqueConstraint("number", name="uq_direct_number_pool_number"),
    )
    op.create_table(
        "caller_ids",
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("verified_at", TIMESTAMP, nullable=True),
        sa.Column("code_hash", sa.Text(), nullable=False),
        sa.Column("code_expires_at", TIMESTAMP, nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_caller_ids"),
    )
    op.create_index("ix_caller_ids_subscriber_id", "caller_ids", ["subscriber_id"])
    op.create_table(
        "contacts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("direct_number", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("removed_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_contacts"),
    )
    op.create_index(
        "ix_contacts_subscriber_id_direct_number", "contacts", ["subscriber_id", "direct_number"]
    )


def downgrade() -> None:
    op.drop_index("ix_contacts_subscriber_id_direct_number", table_name="contacts")
    op.drop_table("contacts")
    op.drop_index("ix_caller_ids_subscriber_id", table_name="caller_ids")
    op.drop_table("caller_ids")
    op.drop_table("direct_number_pool")
    op.drop_table("inbound_trunks")
    for name, _type in reversed(CALL_COLUMNS):
        op.drop_column("calls", name)
