"""Every store port's contract runs on each implementation: in memory, SQLite, PostgreSQL.

A test here takes `store` (the whole `Store`) and uses one port of it; the in-memory
implementation must give the same answers and raise the same errors as the SQL one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.stores import migrated_store, postgres_schema
from tawasol.adapters.memory import MemoryStore
from tawasol.adapters.store import sqlite_url_for
from tawasol.services.ports import Store


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        with migrated_store(sqlite_url_for(tmp_path)) as sql_store:
            yield sql_store
    else:
        with postgres_schema() as url, migrated_store(url) as sql_store:
            yield sql_store
