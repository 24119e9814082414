"""An index on the credits' reference (the charge each credit corrects).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

A credit never exceeds what was paid for its period: before crediting a period, billing sums
the credits already recorded against its charge (`ledger_entries.reference`). The bulk path
asks this for every period an incident touched (a million on a large operator): without an
index it walks each account's entries. Partial (credits only), so charges and payments do not
pay for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CREDITS_ONLY = sa.text("kind = 'credit'")


def upgrade() -> None:
    op.create_index(
        "ix_ledger_entries_credit_reference",
        "ledger_entries",
        ["reference"],
        postgresql_where=CREDITS_ONLY,
        sqlite_where=CREDITS_ONLY,
    )


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_credit_reference", table_name="ledger_entries")
