"""The system of record: SQLAlchemy on SQLite (default) or PostgreSQL, migrated by Alembic.

    store = SqlStore.from_url(sqlite_url_for(data_dir))   # after migrate(url)

Only domain values and errors cross this package's boundary (see `services.ports.Store`).
"""

from tawasol.adapters.store import (
    billing_models,  # noqa: F401  (its tables join Base.metadata)
    direct_number_models,  # noqa: F401  (registers the tables)
    payment_models,  # noqa: F401  (registers the tables)
    sepa_models,  # noqa: F401  (registers the tables)
)
from tawasol.adapters.store import incident_models as _incident_models  # registers the tables
from tawasol.adapters.store.engine import sqlite_url_for
from tawasol.adapters.store.incidents_sql import SqlIncidentStore
from tawasol.adapters.store.migrate import current_revision, head_revision, migrate
from tawasol.adapters.store.sql_store import SqlStore

__all__ = [
    "SqlIncidentStore",
    "SqlStore",
    "current_revision",
    "head_revision",
    "migrate",
    "sqlite_url_for",
]

del _incident_models
