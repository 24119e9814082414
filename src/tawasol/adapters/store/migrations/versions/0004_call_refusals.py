"""Refused calls in the call detail records: `calls.refusal_reason`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Every call the brain refuses (no route, concurrent limit, fair use, not in the plan...) is now a
call record with the decision's reason code, so an outage's impact can be counted. A plain
nullable `ADD COLUMN` (see 0002 for why never a batch copy of `calls` on SQLite): existing
calls were all allowed, NULL is right for them, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("calls", sa.Column("refusal_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of `calls` would cascade-delete attempts.
    op.drop_column("calls", "refusal_reason")
