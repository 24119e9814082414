"""The edge's side of the decision API: one kept HTTP connection per worker, and an event outbox.

Runs inside Kamailio under Debian's system Python: stdlib only, no tawasol import.

- `BrainClient` keeps one HTTP/1.1 connection per Kamailio process, with TCP_NODELAY (the field
  notes measured ~42 ms per answer on a kept connection when Nagle and delayed ACKs meet) and a
  deadline per query: a decision that has not come back in `timeout_ms` is a refusal (fail
  closed). A kept connection the brain closed meanwhile (uvicorn drops idle ones after 5 s) is
  noticed before use, and a query that still dies on a stale connection is retried once on a
  fresh one, within the same deadline.
- `EventSpool` is an outbox: every call event is first written to its own file in the run
  directory (written to `tmp/`, then renamed into `events/`, so a reader never sees half a file),
  and one Kamailio timer process ships the files in batches and deletes them only once the brain
  has answered 200. The brain dedupes by call id, so a batch sent twice is harmless; events are
  never lost while the brain is down or restarting, and SIP workers never wait on event delivery.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import socket
import time
from pathlib import Path
from typing import Any


class BrainUnavailable(Exception):
    """The brain did not answer 200 in time (refused, timed out, or answered an error).

    `request_sent` tells whether the brain may have received the request (and may still act
    on it, e.g. count a call it allowed after the edge gave up waiting).
    """

    def __init__(self, message: str, *, request_sent: bool = False) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class BrainClient:
    """A blocking HTTP client on one kept connection (one instance per Kamailio process)."""

    def __init__(self, host: str, port: int, *, timeout_ms: int) -> None:
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self, timeout_s: float) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
        connection.connect()
        assert connection.sock is not None
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _usable(self) -> http.client.HTTPConnection | None:
        """The kept connection, unless the brain closed it while idle (readable = EOF)."""
        connection = self._connection
        if connection is None or connection.sock is None:
            return None
        try:
            readable, _, _ = select.select([connection.sock], [], [], 0)
        except (OSError, ValueError):
            readable = [connection.sock]
        if readable:
            self.close()
            return None
        return connection

    def post(self, path: str, body: dict[str, Any], *, timeout_ms: int | None = None) -> Any:
        """POST JSON, return the decoded JSON answer; raise BrainUnavailable otherwise."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        deadline = time.monotonic() + (timeout_ms or self.timeout_ms) / 1000
        last_error: Exception | None = None
        sent = False
        for _try in range(2):
            remaining = deadline - time.monotonic()
            if remaining <= 0.005:
                break
            reused = self._usable()
            try:
                connection = reused or self._connect(remaining)
                self._connection = connection
                assert connection.sock is not None
                connection.sock.settimeout(remaining)
                connection.request(
                    "POST",
                    path,
                    body=payload,
                    headers={"Content-Type": "application/json", "Connection": "keep-alive"},
                )
                sent = True
                response = connection.getresponse()
                data = response.read()
                if response.will_close:
                    self.close()
            except (OSError, http.client.HTTPException) as error:
                self.close()
                last_error = error
                if reused is not None and not isinstance(error, TimeoutError):
                    continue  # a stale kept connection: one more try on a fresh one
                break
            if response.status != 200:
                raise BrainUnavailable(
                    f"{path}: HTTP {response.status}: {data[:200]!r}", request_sent=True
                )
            try:
                return json.loads(data)
            except ValueError as error:
                raise BrainUnavailable(
                    f"{path}: not JSON: {data[:200]!r}", request_sent=True
                ) from error
        raise BrainUnavailable(f"{path}: {last_error or 'no time left'}", request_sent=sent)


class EventSpool:
    """Call events written one per file, shipped in batches, deleted once the brain has them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.events_dir = directory / "events"
        self.tmp_dir = directory / "tmp"
        self.rejected_dir = directory / "rejected"
        self._sequence = 0
        self._retry_at = 0.0
        self._backoff_s = 0.0

    def ensure(self) -> None:
        for path in (self.events_dir, self.tmp_dir, self.rejected_dir):
            path.mkdir(parents=True, exist_ok=True)

    def write(self, events: list[dict[str, Any]]) -> None:
        """Append events atomically: they are in the spool, or not at all."""
        if not events:
            return
        self._sequence += 1
        name = f"{time.time_ns():020d}-{os.getpid()}-{self._sequence}.json"
        temporary = self.tmp_dir / name
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(events, handle, separators=(",", ":"))
        os.rename(temporary, self.events_dir / name)

    def pending(self) -> list[Path]:
        try:
            names = sorted(entry.name for entry in os.scandir(self.events_dir))
        except FileNotFoundError:
            return []
        return [self.events_dir / name for name in names if name.endswith(".json")]

    def ship(self, client: BrainClient, *, batch_files: int = 200) -> int:
        """Send what is spooled; return the number of events the brain accepted.

        After a failure, wait (0.2 s doubling up to 5 s) before the next try, so that a brain
        coming back is not flooded by every timer tick.
        """
        now = time.monotonic()
        if now < self._retry_at:
            return 0
        shipped = 0
        while True:
            files = self.pending()[:batch_files]
            if not files:
                break
            events: list[dict[str, Any]] = []
            readable: list[Path] = []
            for path in files:
                try:
                    events.extend(json.loads(path.read_text(encoding="utf-8")))
                    readable.append(path)
                except FileNotFoundError:
                    continue
                except ValueError:
                    os.replace(path, self.rejected_dir / path.name)
            if not events:
                continue
            try:
                client.post("/sip/v1/events", {"events": events})
            except BrainUnavailable as error:
                if " HTTP 422" in str(error) and len(readable) == 1:
                    # The brain refuses this file for good: keep it aside for a human, never
                    # drop it silently, and let the rest flow.
                    os.replace(readable[0], self.rejected_dir / readable[0].name)
                    continue
                if " HTTP 422" in str(error):
                    batch_files = max(1, len(readable) // 2)  # find the bad file by halving
                    continue
                self._backoff_s = min(5.0, max(0.2, self._backoff_s * 2))
                self._retry_at = time.monotonic() + self._backoff_s
                return shipped
            for path in readable:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            shipped += len(events)
            self._backoff_s = 0.0
        return shipped
