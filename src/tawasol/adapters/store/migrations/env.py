"""Alembic environment for the tawasol store, configured from code rather than alembic.ini.

`tawasol.adapters.store.migrate(url)` hands a live connection in `config.attributes`; the
`alembic` command line works too when given `-x url=...` (for writing new revisions:
`alembic -c /dev/null -x url=sqlite:///dev.db revision --autogenerate -m "..."` with
`script_location` pointing here). SQLite runs in batch mode because it cannot ALTER most
things in place; Alembic then copies the table.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from tawasol.adapters.store import incident_models
from tawasol.adapters.store.engine import create_store_engine
from tawasol.adapters.store.models import Base

config = context.config
# The incidents' tables live in their own module on the same metadata.
assert incident_models.IncidentRow.metadata is Base.metadata
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=bool(url and url.startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database as -x url=sqlite:///path/tawasol.db")
    engine = create_store_engine(url)
    try:
        with engine.connect() as own_connection:
            _configure(own_connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
