"""Every store port's contract runs on each implementation: in memory, SQLite, PostgreSQL.

A test here takes `store` (the whole `Store`) and uses one port of it; the in-memory
implementation must give the same answers and raise the same errors as the SQL one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.stores import BACKENDS, on_backend
from tawasol.adapters.memory import MemoryStore
from tawasol.adapters.store import SqlStore
from tawasol.services.ports import Store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from on_backend(request.param, tmp_path, memory=MemoryStore, sql=SqlStore)
