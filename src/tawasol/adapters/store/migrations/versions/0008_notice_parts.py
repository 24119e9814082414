"""SMS notices: the parts a channel took (SMSC message ids) and their delivery receipts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

A new table only (`notice_parts`); nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from the models, so later model changes cannot rewrite it.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "notice_parts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "notice_id", BigId, sa.ForeignKey("notices.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("at", TIMESTAMP),
    )
    op.create_index("ix_notice_parts_notice_id", "notice_parts", ["notice_id"])
    op.create_index("ix_notice_parts_reference", "notice_parts", ["reference"])


def downgrade() -> None:
    op.drop_index("ix_notice_parts_reference", table_name="notice_parts")
    op.drop_index("ix_notice_parts_notice_id", table_name="notice_parts")
    op.drop_table("notice_parts")
