"""Business subscribers: `subscribers.business`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

A business customer is told personally of every customer-facing outage that touches them,
short ones included (issue 13), and is invoiced with Factur-X. Every existing subscriber is
a consumer (false) until the operator says otherwise (`tawasol subscriber set-business`,
`PUT /admin/v1/subscribers/{id}/business`). A plain `ADD COLUMN` with a constant default: no
table copy on SQLite, no rewrite on PostgreSQL 11+.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscribers",
        sa.Column("business", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("business")
