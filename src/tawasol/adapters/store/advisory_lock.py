"""A PostgreSQL advisory lock held by one brain of a cluster: who runs the background jobs.

`pg_try_advisory_lock` on a session of its own: the lock is this process's for as long as that
session lives (PostgreSQL manual, §9.27.10 "Advisory Lock Functions": a session-level lock is
held until released or the session ends). A brain that dies (SIGKILL included) loses its
connection, PostgreSQL ends the session and another brain's next attempt takes the lock. A
host that vanishes without closing its sockets is noticed by TCP keepalives on the lock's
connection (~30 s: idle 10 s, then 4 probes 5 s apart).

The lock's key is a 64-bit hash of the database URL (password removed, search_path included):
brains on the same database and schema compete for it, other platforms or test schemas on the
same server do not.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 4,
    "connect_timeout": 5,
}


def advisory_key(url: str, purpose: str = "background-jobs") -> int:
    """A signed 64-bit lock key for `purpose` on the database at `url`."""
    safe = make_url(url).render_as_string(hide_password=True)  # the password as ***
    digest = hashlib.sha256(f"tawasol|{purpose}|{safe}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresAdvisoryLock:
    """The cluster's job lock on PostgreSQL (`ClusterLock` of `tawasol.runtime`)."""

    def __init__(self, url: str, *, purpose: str = "background-jobs") -> None:
        self._engine = create_engine(url, poolclass=NullPool, connect_args=_KEEPALIVES)
        self._key = advisory_key(url, purpose)
        self._connection: Connection | None = None

    @property
    def key(self) -> int:
        return self._key

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False when another session does or the database
        cannot be reached (the next attempt may succeed)."""
        if self.held():
            return True
        try:
            connection = self._engine.connect()
            acquired = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar()
            )
            connection.commit()
        except SQLAlchemyError as error:
            log.warning("cluster lock: database unreachable (%s)", type(error).__name__)
            return False
        if not acquired:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Whether this process still holds the lock: its session still answers."""
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1")).scalar()
            self._connection.commit()
        except SQLAlchemyError:
            log.warning("cluster lock: its database session is gone; the lock is lost")
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.commit()
        except SQLAlchemyError:
            pass  # the session is gone: so is the lock
        self._drop()

    def close(self) -> None:
        self.release()
        self._engine.dispose()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except SQLAlchemyError:
                connection.invalidate()
