"""Every store port's contract runs on each implementation: in memory, SQLite, PostgreSQL.

A test here takes `store` (the whole `Store`) and uses one port of it; the in-memory
implementation must give the same answers and raise the same errors as the SQL one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.stores import postgres_schema
from tawasol.adapters.memory import MemoryStore
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.services.ports import Store


@contextmanager
def _sql_store(url: str) -> Iterator[SqlStore]:
    migrate(url)
    sql_store = SqlStore.from_url(url)
    try:
        yield sql_store
    finally:
        sql_store.close()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        with _sql_store(sqlite_url_for(tmp_path)) as sql_store:
            yield sql_store
    else:
        with postgres_schema() as url, _sql_store(url) as sql_store:
            yield sql_store
