"""Carrier run time and rating: plan cost ceilings, rated calls, carrier events and capacities.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Written by hand and kept equal to `models.py` (the test suite compares them); column types are
spelled out as in 0001 so later changes to the models cannot rewrite history.

Every new column is added with a plain `ADD COLUMN`, never a batch copy of the table, on purpose:
SQLite would copy `calls` to a new table and DROP the old one inside the migration's
transaction, where `PRAGMA foreign_keys` stays ON (it cannot be changed in a transaction), and
that DROP cascades to `call_attempts`, deleting every attempt ever recorded. SQLite adds a
column natively as long as its default is a constant, hence `'[]'` for `plans.cost_ceilings`
rather than an expression: existing plans get no cost ceilings. On PostgreSQL (11 and later) a
constant default is added without rewriting the table.

`carrier_events` has no foreign key to `carriers`: it is the log incidents and compensation are
built on, and must outlive any change to the carrier it names. `carrier_capacities` does have
one (ON DELETE CASCADE): an operator's cap means nothing without its carrier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric().with_variant(sa.String(32), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

CALL_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("billing", sa.Text()),
    ("rate_per_minute_amount", AMOUNT),
    ("rate_currency", sa.CHAR(3)),
    ("increment", sa.Text()),
    ("cost_amount", AMOUNT),
    ("cost_currency", sa.CHAR(3)),
)
ATTEMPT_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("q850_cause", sa.Integer()),
    ("billing", sa.Text()),
)


def upgrade() -> None:
    op.add_column(
        "plans", sa.Column("cost_ceilings", sa.JSON(), nullable=False, server_default="[]")
    )
    for name, type_ in CALL_COLUMNS:
        op.add_column("calls", sa.Column(name, type_, nullable=True))
    for name, type_ in ATTEMPT_COLUMNS:
        op.add_column("call_attempts", sa.Column(name, type_, nullable=True))

    op.create_table(
        "carrier_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("carrier_code", sa.Text(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("effective_channels", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_carrier_events"),
    )
    op.create_index("ix_carrier_events_carrier_code_at", "carrier_events", ["carrier_code", "at"])
    op.create_index("ix_carrier_events_at", "carrier_events", ["at"])

    op.create_table(
        "carrier_capacities",
        sa.Column("carrier_code", sa.Text(), nullable=False),
        sa.Column("effective_channels", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "effective_channels >= 0",
            name="ck_carrier_capacities_effective_channels_not_negative",
        ),
        sa.ForeignKeyConstraint(
            ["carrier_code"],
            ["carriers.code"],
            name="fk_carrier_capacities_carrier_code_carriers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("carrier_code", name="pk_carrier_capacities"),
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+), for the same reason the upgrade avoids batch copies.
    op.drop_table("carrier_capacities")
    op.drop_index("ix_carrier_events_at", table_name="carrier_events")
    op.drop_index("ix_carrier_events_carrier_code_at", table_name="carrier_events")
    op.drop_table("carrier_events")
    for name, _ in reversed(ATTEMPT_COLUMNS):
        op.drop_column("call_attempts", name)
    for name, _ in reversed(CALL_COLUMNS):
        op.drop_column("calls", name)
    op.drop_column("plans", "cost_ceilings")
