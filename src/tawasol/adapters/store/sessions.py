"""Transactions for the stores of single aggregates (incidents, notices) on a shared engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tawasol.adapters.store.engine import SQLITE_BEGIN, describe_url, translated


class Transactions:
    """Reader and writer sessions on one engine; SQLite writers BEGIN IMMEDIATE so that
    concurrent writers queue instead of failing on a lock upgrade."""

    def __init__(self, engine: Engine) -> None:
        self.database = describe_url(engine.url)
        self.postgres = engine.dialect.name == "postgresql"
        self.reader = engine
        self.writer = (
            engine if self.postgres else engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        )

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._session(self.reader) as session:
            yield session

    @contextmanager
    def writing(self) -> Iterator[Session]:
        with self._session(self.writer) as session:
            yield session

    @contextmanager
    def _session(self, bind: Engine) -> Iterator[Session]:
        with (
            translated(self.database),
            Session(bind, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session
