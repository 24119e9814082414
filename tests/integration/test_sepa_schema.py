"""Migration 0013 spells SEPA's tables out by hand: the schema it builds must be the one the
models describe, on SQLite and on PostgreSQL (the store's contract: tests/contract/
test_sepa_store.py)."""

from __future__ import annotations

from test_billing_schema import (  # noqa: F401  (two_databases: the fixture, shared)
    assert_migrated_as_modelled,
    two_databases,
)

from tawasol.adapters.store import sepa_models

SEPA_TABLES = tuple(
    model.__tablename__
    for model in (
        sepa_models.SepaMandateRow,
        sepa_models.SepaCollectionRow,
        sepa_models.SepaPrenotificationRow,
        sepa_models.SepaBatchRow,
        sepa_models.SepaPresentationRow,
        sepa_models.SepaTransferRow,
    )
)


def test_migration_0013_builds_the_sepa_tables_the_models_describe(
    two_databases: tuple[str, str],  # noqa: F811  (the fixture imported above)
) -> None:
    assert_migrated_as_modelled(*two_databases, tables=SEPA_TABLES, before="0012")
