"""Migration 0006 spells billing's tables out by hand: the schema it builds must be the one the
models describe, column by column, constraint by constraint, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from support.stores import postgres_schema
from tawasol.adapters.store import billing_models, migrate, sqlite_url_for
from tawasol.adapters.store.engine import create_store_engine
from tawasol.adapters.store.migrate import alembic_config
from tawasol.adapters.store.models import Base

BILLING_TABLES = tuple(
    model.__tablename__
    for model in (
        billing_models.BillingAccountRow,
        billing_models.LedgerEntryRow,
        billing_models.DocumentSequenceRow,
        billing_models.BillingDocumentRow,
        billing_models.BillingTermsRow,
        billing_models.PaidPeriodRow,
        billing_models.BillingStepRow,
        billing_models.DocumentOutboxRow,
    )
)


def _url(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield sqlite_url_for(directory)
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(an empty database to migrate, an empty one to build from the models), same kind."""
    migrated_dir, modelled_dir = tmp_path / "migrated", tmp_path / "modelled"
    migrated_dir.mkdir()
    modelled_dir.mkdir()
    for migrated in _url(request.param, migrated_dir):
        for modelled in _url(request.param, modelled_dir):
            yield migrated, modelled


def _migrate_to(url: str, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) to exactly `revision`, as `migrate` does for the head."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)
    finally:
        engine.dispose()


def _describe(engine: Engine, table: str) -> dict[str, Any]:
    """Everything the schema says about `table`, in a form that compares across builds."""
    inspector = inspect(engine)
    return {
        "columns": [
            (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)
        ],
        "primary_key": inspector.get_pk_constraint(table),
        "unique": sorted(
            (u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
        ),
        "indexes": sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in inspector.get_indexes(table)
            if not (i["name"] or "").startswith("sqlite_autoindex")
        ),
        "foreign_keys": sorted(
            (
                f["name"],
                tuple(f["constrained_columns"]),
                f["referred_table"],
                tuple(f["referred_columns"]),
                (f.get("options") or {}).get("ondelete"),
            )
            for f in inspector.get_foreign_keys(table)
        ),
    }


def test_migration_0006_builds_the_billing_tables_the_models_describe(
    two_databases: tuple[str, str],
) -> None:
    # The reference: the tables 0006 depends on from migration 0005, billing's from the models.
    assert_migrated_as_modelled(*two_databases, tables=BILLING_TABLES, before="0005")


def assert_migrated_as_modelled(
    migrated_url: str, modelled_url: str, *, tables: tuple[str, ...], before: str
) -> None:
    """Migrate one empty database to the head, build `tables` from the models in another
    migrated to `before`, and compare the two, table by table and with Alembic."""
    migrate(migrated_url)
    _migrate_to(modelled_url, before)
    migrated, modelled = create_store_engine(migrated_url), create_store_engine(modelled_url)
    try:
        Base.metadata.create_all(modelled, tables=[Base.metadata.tables[name] for name in tables])
        for table in tables:
            assert _describe(migrated, table) == _describe(modelled, table), table
        with migrated.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert [d for d in differences if any(t in repr(d) for t in tables)] == []
    finally:
        migrated.dispose()
        modelled.dispose()


def test_migration_0006_downgrades_to_0005_and_upgrades_again(tmp_path: Path) -> None:
    url = sqlite_url_for(tmp_path)
    migrate(url)
    _migrate_to(url, "0005", down=True)
    engine = create_store_engine(url)
    try:
        assert not set(BILLING_TABLES) & set(inspect(engine).get_table_names())
        migrate(url)
        assert set(BILLING_TABLES) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
