"""Migration 0013 spells SEPA's tables out by hand: the schema it builds must be the one the
models describe, on SQLite and on PostgreSQL (the store's contract: tests/contract/
test_sepa_store.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from test_billing_schema import _describe, _migrate_to, _url

from tawasol.adapters.store import migrate, sepa_models
from tawasol.adapters.store.engine import create_store_engine
from tawasol.adapters.store.models import Base

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    migrated_dir, modelled_dir = tmp_path / "migrated", tmp_path / "modelled"
    migrated_dir.mkdir()
    modelled_dir.mkdir()
    for migrated in _url(request.param, migrated_dir):
        for modelled in _url(request.param, modelled_dir):
            yield migrated, modelled


def test_migration_0013_builds_the_sepa_tables_the_models_describe(
    two_databases: tuple[str, str],
) -> None:
    migrated_url, modelled_url = two_databases
    migrate(migrated_url)
    _migrate_to(modelled_url, "0012")
    migrated, modelled = create_store_engine(migrated_url), create_store_engine(modelled_url)
    try:
        Base.metadata.create_all(
            modelled, tables=[Base.metadata.tables[name] for name in SEPA_TABLES]
        )
        for table in SEPA_TABLES:
            assert _describe(migrated, table) == _describe(modelled, table), table
        with migrated.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in differences if any(t in repr(d) for t in SEPA_TABLES)] == []
    finally:
        migrated.dispose()
        modelled.dispose()
