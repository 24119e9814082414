"""One migrated engine per backend for the contract tests of the aggregates' stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine

from support.stores import migrated_backend


@contextmanager
def migrated_engine(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite file or PostgreSQL schema, migrated to head; its engine."""
    with migrated_backend(backend, tmp_path) as store:
        yield store.engine
