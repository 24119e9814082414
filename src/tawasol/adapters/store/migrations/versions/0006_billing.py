"""Billing: accounts and ledger, documents numbered per entity, terms, paid periods, outbox.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

New tables only (see `tawasol.adapters.store.billing_models`); nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from tawasol.adapters.store import billing_models
from tawasol.adapters.store.models import Base

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Created from the models as they are at this revision; a later change to them comes with
# its own migration.
TABLES = (
    billing_models.BillingAccountRow,
    billing_models.LedgerEntryRow,
    billing_models.DocumentSequenceRow,
    billing_models.BillingDocumentRow,
    billing_models.BillingTermsRow,
    billing_models.PaidPeriodRow,
    billing_models.BillingStepRow,
    billing_models.DocumentOutboxRow,
)


def upgrade() -> None:
    bind = op.get_bind()
    Base.metadata.create_all(bind, tables=[model.__table__ for model in TABLES])  # type: ignore[misc]


def downgrade() -> None:
    bind = op.get_bind()
    Base.metadata.drop_all(bind, tables=[model.__table__ for model in reversed(TABLES)])  # type: ignore[misc]
