"""Plans with hours: how long a call may go on after the plan's window ends.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

`plans.window_grace_minutes`: 0 (the default, and what every existing plan gets) cuts a call
at the end of the plan's hours; N lets it run N minutes more. Added with a plain `ADD COLUMN`
and a constant default, like 0002's columns (no batch copy of the table on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "plans",
        sa.Column("window_grace_minutes", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("plans", "window_grace_minutes")
