"""Create or upgrade the store's schema to the newest revision, from code.

`tawasol init` calls `migrate(url)`. Alembic is configured here rather than by an alembic.ini,
so an installed wheel needs nothing but the migration scripts shipped inside the package.
Running it on an up-to-date database changes nothing, and two processes running it at once
(two brains starting together) take turns: SQLite's BEGIN IMMEDIATE or a PostgreSQL advisory
lock, held until the upgrade commits.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

from tawasol.adapters.store.engine import (
    SQLITE_BEGIN,
    create_store_engine,
    describe_url,
    translated,
)
from tawasol.domain.errors import InvalidConfiguration

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: the key of the PostgreSQL advisory lock that serialises migrations.
MIGRATION_LOCK_KEY = 0x7A3A501


def alembic_config() -> Config:
    """An Alembic configuration pointing at the migrations inside this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema, in one transaction where possible."""
    database = describe_url(url)
    engine = create_store_engine(url).execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    try:
        with translated(database), engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except CommandError as error:
        # Typically a database migrated by a newer tawasol: its revision is unknown here.
        raise InvalidConfiguration(
            f"cannot migrate the database {database}: {error}", database=database
        ) from error
    finally:
        engine.engine.dispose()


def current_revision(url: str) -> str | None:
    """The schema revision of the database at `url` (None: never migrated)."""
    engine = create_store_engine(url)
    try:
        with translated(describe_url(url)), engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """The newest revision shipped with this version of tawasol."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
