"""One migrated engine per backend for the contract tests of the aggregates' stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from support.stores import postgres_schema
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for


@contextmanager
def migrated_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite file or PostgreSQL schema, migrated to head; its engine."""
    if backend == "sqlite":
        url = sqlite_url_for(tmp_path)
        migrate(url)
        store = SqlStore.from_url(url)
        try:
            yield store.engine
        finally:
            store.close()
        return
    with postgres_schema() as url:
        migrate(url)
        store = SqlStore.from_url(url)
        try:
            yield store.engine
        finally:
            store.close()
