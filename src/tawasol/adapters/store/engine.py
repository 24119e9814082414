"""Engines for SQLite and PostgreSQL, and the one table that maps database errors to ours.

SQLite is the default (one file, no server) and must behave under concurrent writers: every
connection gets WAL, synchronous=NORMAL and a busy timeout (the field notes measured ~2x the
throughput and a far lower p99 than the defaults), and foreign keys, which SQLite leaves off.
Python's sqlite3 module also starts transactions late and in DEFERRED mode, so a reader that
later writes can fail with "database is locked" instead of waiting; we take transaction control
from it and emit BEGIN ourselves, BEGIN IMMEDIATE for writers.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, Connection, make_url

from tawasol.domain.errors import (
    Conflict,
    InvalidConfiguration,
    InvalidInput,
    NotFound,
    TawasolError,
    Unavailable,
)

# Execution option naming the SQLite BEGIN mode of a transaction (DEFERRED or IMMEDIATE).
SQLITE_BEGIN = "tawasol_sqlite_begin"
BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_SECONDS = 5

# PostgreSQL SQLSTATEs (Appendix A of its manual).
UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
UNDEFINED_TABLE = "42P01"


def sqlite_url_for(data_dir: Path) -> str:
    """The default database: `tawasol.db` in the data directory."""
    return f"sqlite:///{(Path(data_dir) / 'tawasol.db').resolve()}"


def create_store_engine(url: str | URL) -> Engine:
    """An engine configured for the store: pragmas and BEGIN on SQLite, timeouts on PostgreSQL.

    Raises InvalidConfiguration for a URL SQLAlchemy cannot use (malformed, unknown driver).
    """
    try:
        parsed = make_url(url)
    except exc.ArgumentError as error:
        raise InvalidConfiguration(f"not a database URL: {error}") from error
    options: dict[str, Any] = {
        # Keep Arabic plan names readable in the database rather than \u escapes.
        "json_serializer": lambda value: json.dumps(value, ensure_ascii=False),
    }
    if parsed.get_backend_name() != "sqlite":
        # A server restart drops pooled connections: test each one before use. A SQLite file
        # cannot go away like that, so it is spared the extra round trip.
        options["pool_pre_ping"] = True
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    try:
        engine = create_engine(parsed, **options)
    except exc.ArgumentError as error:
        raise InvalidConfiguration(
            f"cannot use database {describe_url(parsed)}: {error}", database=describe_url(parsed)
        ) from error
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _protect_sqlite_files(database: str | None) -> None:
    """Owner-only (0600) database, -wal and -shm files: they hold every subscriber's HA1.

    Called as each connection opens, before its first read, so that a new file is tightened
    before anything is written and SQLite creates -wal and -shm with the database's mode (its
    unix VFS copies it); files left 0644 by an older version are fixed on the next start.
    """
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(database + suffix)
        try:
            if stat.S_IMODE(path.stat().st_mode) & 0o177:
                path.chmod(0o600)
        except FileNotFoundError:
            continue


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _protect_sqlite_files(engine.url.database)
        # Disable the sqlite3 module's own BEGIN handling; `_on_begin` emits ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE"):  # pragma: no cover - programming error
            raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
        connection.exec_driver_sql(f"BEGIN {mode}")


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent setting), waiting for the lock this needs.

    SQLite answers "database is locked" at once, without calling the busy handler, when
    another connection holds a lock during the switch, which happens when two processes open
    a new database together (two `tawasol init`). Once the file is in WAL this is a no-op.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlstate(error: exc.DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def is_retryable(error: exc.DBAPIError) -> bool:
    """A transaction that lost a race on PostgreSQL and may simply be run again."""
    return _sqlstate(error) in (UNIQUE_VIOLATION, SERIALIZATION_FAILURE, DEADLOCK_DETECTED)


def describe_url(url: str | URL) -> str:
    """The URL without its password, fit for an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return "(unparseable database URL)"


def translate(error: exc.SQLAlchemyError, *, database: str) -> TawasolError:
    """Map a SQLAlchemy error to the domain's error tree; the one place this is decided."""
    if isinstance(error, exc.StatementError) and isinstance(error.orig, TawasolError):
        return error.orig
    if isinstance(error, exc.StatementError) and isinstance(error.orig, ValueError | TypeError):
        return InvalidInput(str(error.orig))
    if isinstance(error, exc.IntegrityError):
        text = str(error.orig)
        if _sqlstate(error) == FOREIGN_KEY_VIOLATION or "FOREIGN KEY constraint" in text:
            return NotFound("a record this one refers to does not exist", cause=text)
        return Conflict("this record already exists or breaks a uniqueness rule", cause=text)
    if isinstance(error, exc.DataError):
        return InvalidInput("the database refused a value", cause=str(error.orig))
    if isinstance(error, exc.ProgrammingError | exc.OperationalError) and (
        _sqlstate(error) == UNDEFINED_TABLE or "no such table" in str(error.orig)
    ):
        return Unavailable(
            f"the database {database} has no tawasol schema: run `tawasol init`",
            cause=str(error.orig),
        )
    if isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError):
        cause = str(error.orig if isinstance(error, exc.DBAPIError) else error).strip()
        return Unavailable(f"cannot reach the database {database}: {cause}", cause=cause)
    return Unavailable(f"database error on {database}: {error}", cause=str(error))


@contextmanager
def translated(database: str) -> Iterator[None]:
    """Run a block, re-raising any SQLAlchemy error as the matching domain error."""
    try:
        yield
    except exc.SQLAlchemyError as error:
        raise translate(error, database=database) from error
