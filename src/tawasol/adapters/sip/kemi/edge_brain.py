"""The edge's side of the decision API: one kept HTTP connection per worker, and an event outbox.

Runs inside Kamailio under Debian's system Python: stdlib only, no tawasol import.

- `BrainClient` keeps one HTTP/1.1 connection per Kamailio process, with TCP_NODELAY (the field
  notes measured ~42 ms per answer on a kept connection when Nagle and delayed ACKs meet) and a
  deadline per query: a decision that has not come back in `timeout_ms` is a refusal (fail
  closed). A kept connection the brain closed meanwhile (uvicorn drops idle ones after 5 s) is
  noticed before use, and a query that still dies on a stale connection is retried once on a
  fresh one, within the same deadline. It speaks just the HTTP/1.1 this needs (one request
  written in one send, a Content-Length or chunked answer) on a plain socket: `http.client`
  parses every answer's headers with the `email` package, which cost more CPU per call in
  the SIP worker than the rest of the query (bench/sip_throughput.py, profiled with py-spy).
- `BrainPool` asks several brains in order (the scaled mode), moving on from one that cannot
  be reached within the same deadline.
- `EventSpool` is an outbox: every Kamailio process appends its call events, one JSON line
  each, to its own segment file in the spool directory (one `write` per batch, O_APPEND), and
  one Kamailio timer process ships new lines in batches, remembering how far it got in each
  segment (`offsets.json`) only once the brain has answered 200. The brain dedupes by call id,
  so lines sent twice are harmless; events are never lost while the brain is down or
  restarting, and SIP workers never wait on event delivery. (It used to be one file per event,
  created, renamed and deleted: ~16% of Kamailio's cycles under load.)
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_ANSWER_BYTES = 1 << 20


class BrainUnavailable(Exception):
    """The brain did not answer 200 in time (refused, timed out, or answered an error).

    `request_sent` tells whether the brain may have received the request (and may still act
    on it, e.g. count a call it allowed after the edge gave up waiting); `status` is the HTTP
    status the brain answered, if it answered.
    """

    def __init__(
        self, message: str, *, request_sent: bool = False, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.request_sent = request_sent
        self.status = status


class ProtocolError(Exception):
    """The brain's answer is not HTTP/1.1 as this client understands it."""


class BrainClient:
    """A blocking HTTP client on one kept connection (one instance per Kamailio process)."""

    def __init__(self, host: str, port: int, *, timeout_ms: int, token: str = "") -> None:
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self._socket: socket.socket | None = None
        # The edge's bearer token: the brain answers /sip/v1 to nobody else (docs/security.md).
        authorization = f"Authorization: Bearer {token}\r\n" if token else ""
        self._headers = (
            f"Host: {host}:{port}\r\nContent-Type: application/json\r\n{authorization}"
            "Connection: keep-alive\r\n"
        ).encode()

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
            self._socket = None

    def _connect(self, timeout_s: float) -> socket.socket:
        connection = socket.create_connection((self.host, self.port), timeout=timeout_s)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection

    def _usable(self) -> socket.socket | None:
        """The kept connection, unless the brain closed it while idle (readable = EOF)."""
        connection = self._socket
        if connection is None:
            return None
        try:
            readable, _, _ = select.select([connection], [], [], 0)
        except (OSError, ValueError):
            readable = [connection]
        if readable:
            self.close()
            return None
        return connection

    def post(self, path: str, body: dict[str, Any], *, timeout_ms: int | None = None) -> Any:
        """POST JSON, return the decoded JSON answer; raise BrainUnavailable otherwise."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        return self._exchange(b"POST", path, payload, timeout_ms=timeout_ms)

    def get(self, path: str, *, timeout_ms: int | None = None) -> Any:
        """GET, return the decoded JSON answer; raise BrainUnavailable otherwise."""
        return self._exchange(b"GET", path, None, timeout_ms=timeout_ms)

    def _exchange(
        self, method: bytes, path: str, payload: bytes | None, *, timeout_ms: int | None
    ) -> Any:
        if payload is None:
            request = b"%s %s HTTP/1.1\r\n%s\r\n" % (method, path.encode(), self._headers)
        else:
            request = b"%s %s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (
                method,
                path.encode(),
                self._headers,
                len(payload),
                payload,
            )
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
                self._socket = connection
                connection.settimeout(remaining)
                connection.sendall(request)
                sent = True
                status, data, keep = _read_answer(connection, deadline)
                if not keep:
                    self.close()
            except (OSError, ProtocolError) as error:
                self.close()
                last_error = error
                if reused is not None and not isinstance(error, TimeoutError):
                    continue  # a stale kept connection: one more try on a fresh one
                break
            if status != 200:
                raise BrainUnavailable(
                    f"{path}: HTTP {status}: {data[:200]!r}", request_sent=True, status=status
                )
            try:
                return json.loads(data)
            except ValueError as error:
                raise BrainUnavailable(
                    f"{path}: not JSON: {data[:200]!r}", request_sent=True, status=status
                ) from error
        raise BrainUnavailable(f"{path}: {last_error or 'no time left'}", request_sent=sent)


class BrainPool:
    """Several brains in order of preference, one kept connection each (the scaled mode).

    A query goes to the brain that answered last; a brain that cannot be reached, or whose
    connection dies before it answers (killed, restarted), is skipped for the next one within
    the same deadline, so a dead brain costs the calls in flight on it nothing more than a
    reconnection. A brain that answered with an error status is not skipped: the others
    share its database and counters and would answer the same. Re-asking another brain for
    a decision is safe: a brain counts a call id once (`CallAuthorizer.authorize` frees the
    same call id first), and call events are deduplicated by call id.
    """

    def __init__(
        self, addresses: list[tuple[str, int]], *, timeout_ms: int, token: str = ""
    ) -> None:
        if not addresses:
            raise ValueError("a brain pool needs at least one brain address")
        self.timeout_ms = timeout_ms
        self._clients = [
            BrainClient(host, port, timeout_ms=timeout_ms, token=token) for host, port in addresses
        ]
        self._current = 0

    @property
    def current(self) -> tuple[str, int]:
        client = self._clients[self._current]
        return client.host, client.port

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def post(self, path: str, body: dict[str, Any], *, timeout_ms: int | None = None) -> Any:
        payload = json.dumps(body, separators=(",", ":")).encode()
        return self._ask(b"POST", path, payload, timeout_ms)

    def get(self, path: str, *, timeout_ms: int | None = None) -> Any:
        return self._ask(b"GET", path, None, timeout_ms)

    def _ask(self, method: bytes, path: str, payload: bytes | None, timeout_ms: int | None) -> Any:
        deadline = time.monotonic() + (timeout_ms or self.timeout_ms) / 1000
        last: BrainUnavailable | None = None
        count = len(self._clients)
        for offset in range(count):
            index = (self._current + offset) % count
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 5:
                break
            try:
                answer = self._clients[index]._exchange(method, path, payload, timeout_ms=left_ms)
            except BrainUnavailable as error:
                if error.status is not None:
                    raise  # it answered: the others would answer the same
                last = error
                continue
            self._current = index
            return answer
        raise last or BrainUnavailable(f"{path}: no time left", request_sent=False)


class Every:
    """Whether work repeated every `interval_s` seconds (the timer's refreshes from the brain)
    is due: true at the first ask, then once per interval (monotonic clock)."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._next_at = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next_at:
            return False
        self._next_at = now + self._interval_s
        return True


def parse_brain_addresses(text: str) -> list[tuple[str, int]]:
    """`host:port/host:port` as rendered into the configuration (an IPv6 host bare or in
    brackets: the port is after the last colon) as (host, port) pairs."""
    addresses = []
    for item in text.split("/"):
        host, _, port = item.strip().rpartition(":")
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"not a brain address host:port: {item.strip()!r}")
        addresses.append((host, int(port)))
    return addresses


def _read_answer(connection: socket.socket, deadline: float) -> tuple[int, bytes, bool]:
    """(status, body, connection kept) of one HTTP/1.1 answer, read before `deadline`."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        buffer += _receive(connection, deadline)
        if len(buffer) > MAX_ANSWER_BYTES:
            raise ProtocolError("answer headers too large")
    head, _, buffer = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.1 status line: {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    keep = headers.get(b"connection", b"").lower() != b"close" and parts[0] == b"HTTP/1.1"
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return status, _read_chunked(connection, buffer, deadline), keep
    length_text = headers.get(b"content-length")
    if length_text is None:  # the body runs until the brain closes the connection
        while True:
            try:
                more = _receive(connection, deadline)
            except ConnectionError:
                break
            buffer += more
            if len(buffer) > MAX_ANSWER_BYTES:
                raise ProtocolError("answer too large")
        return status, buffer, False
    if not length_text.isdigit() or int(length_text) > MAX_ANSWER_BYTES:
        raise ProtocolError(f"bad Content-Length {length_text[:20]!r}")
    length = int(length_text)
    while len(buffer) < length:
        buffer += _receive(connection, deadline)
    if len(buffer) > length:
        raise ProtocolError("more bytes than the Content-Length")
    return status, buffer, keep


def _read_chunked(connection: socket.socket, buffer: bytes, deadline: float) -> bytes:
    body = b""
    while True:
        while b"\r\n" not in buffer:
            buffer += _receive(connection, deadline)
        size_line, _, buffer = buffer.partition(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0], 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_line[:20]!r}") from None
        if len(body) + size > MAX_ANSWER_BYTES:
            raise ProtocolError("answer too large")
        while len(buffer) < size + 2:
            buffer += _receive(connection, deadline)
        if size == 0:
            return body  # no trailers are sent by the brain
        body += buffer[:size]
        buffer = buffer[size + 2 :]


def _receive(connection: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("no answer in time")
    connection.settimeout(remaining)
    data = connection.recv(65536)
    if not data:
        raise ConnectionError("the brain closed the connection")
    return data


# -- the event outbox -----------------------------------------------------------------------------
OPEN_SUFFIX = ".open"  # a segment its process may still append to
CLOSED_SUFFIX = ".closed"  # a segment no process will write again: deleted once shipped


@dataclass(frozen=True)
class Segment:
    path: Path
    stem: str  # "<creation time ns>-<pid>": the order segments are shipped in
    pid: int
    closed: bool


class EventSpool:
    """Call events appended as JSON lines to one segment file per process, shipped in batches.

    A process rotates its segment (renamed `.open` -> `.closed`) after `rotate_after_s` or
    `rotate_bytes`; the shipper deletes a closed segment once every line of it is shipped, and
    closes the segment of a process that no longer exists (Kamailio restarted). A line that is
    not JSON (a process killed in the middle of a write) and an event the brain refuses for
    good (422) are set aside in `rejected/` for a human, never dropped silently.
    """

    def __init__(
        self,
        directory: Path,
        *,
        rotate_after_s: float = 60.0,
        rotate_bytes: int = 8 << 20,
        batch_events: int = 1000,  # the most the brain takes in one request
        batches_per_tick: int = 50,
        read_bytes: int = 1 << 20,
    ) -> None:
        self.directory = directory
        self.segments_dir = directory / "segments"
        self.rejected_dir = directory / "rejected"
        self.offsets_path = directory / "offsets.json"
        self.rotate_after_s = rotate_after_s
        self.rotate_bytes = rotate_bytes
        self.batch_events = batch_events
        self.batches_per_tick = batches_per_tick
        self.read_bytes = read_bytes
        # the writer's side (one per process)
        self._fd: int | None = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._written = 0
        # the shipper's side (one timer process)
        self._offsets: dict[str, int] | None = None
        self._retry_at = 0.0
        self._backoff_s = 0.0

    def ensure(self) -> None:
        for path in (self.segments_dir, self.rejected_dir):
            path.mkdir(parents=True, exist_ok=True)

    # -- writing (every Kamailio process) -------------------------------------------------------
    def write(self, events: list[dict[str, Any]]) -> None:
        """Append events in one write: they are in the spool, or (on an error) not at all."""
        if not events:
            return
        data = b"".join(
            json.dumps(event, separators=(",", ":")).encode() + b"\n" for event in events
        )
        now = time.monotonic()
        if self._fd is not None and (
            now - self._opened_at >= self.rotate_after_s or self._written >= self.rotate_bytes
        ):
            self._rotate()
        if self._fd is None:
            self._open(now)
        assert self._fd is not None
        written = os.write(self._fd, data)
        if written != len(data):
            # A full disk: the segment ends with a torn line. Close it, so that the next events
            # start a new segment instead of being glued to that tail (the shipper sets a torn
            # last line aside).
            self._rotate()
            raise OSError(f"short write to the event spool ({written} of {len(data)} bytes)")
        self._written += written

    def _open(self, now: float) -> None:
        stem = f"{time.time_ns():020d}-{os.getpid()}"
        path = self.segments_dir / (stem + OPEN_SUFFIX)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._path = path
        self._opened_at = now
        self._written = 0

    def _rotate(self) -> None:
        assert self._fd is not None and self._path is not None
        with contextlib.suppress(FileNotFoundError):
            os.rename(self._path, self._path.with_suffix(CLOSED_SUFFIX))
        os.close(self._fd)
        self._fd = None
        self._path = None

    def close(self) -> None:
        """Close this process's segment (it is shipped, then deleted)."""
        if self._fd is not None:
            self._rotate()

    # -- shipping (one timer process) -----------------------------------------------------------
    def segments(self) -> list[Segment]:
        try:
            entries = list(os.scandir(self.segments_dir))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            stem, dot, suffix = entry.name.rpartition(".")
            pid_text = stem.rpartition("-")[2]
            if not dot or f".{suffix}" not in (OPEN_SUFFIX, CLOSED_SUFFIX):
                continue
            if not pid_text.isdigit():
                continue
            found.append(
                Segment(
                    path=Path(entry.path),
                    stem=stem,
                    pid=int(pid_text),
                    closed=f".{suffix}" == CLOSED_SUFFIX,
                )
            )
        return sorted(found, key=lambda segment: segment.stem)

    def pending_events(self) -> int:
        """Lines written and not yet shipped, in every segment (as the shipper last recorded)."""
        offsets = self._read_offsets()
        total = 0
        for segment in self.segments():
            try:
                with open(segment.path, "rb") as handle:
                    handle.seek(offsets.get(segment.stem, 0))
                    total += handle.read().count(b"\n")
            except FileNotFoundError:
                continue
        return total

    def ship(self, client: BrainClient | BrainPool) -> int:
        """Send what is spooled; return the number of events taken off the spool (accepted by
        the brain, or refused for good and set aside).

        After a failure, wait (0.2 s doubling up to 5 s) before the next try, so that a brain
        coming back is not flooded by every timer tick.
        """
        if time.monotonic() < self._retry_at:
            return 0
        shipped = self._ship_legacy(client)
        if shipped < 0:
            return 0
        offsets = self._load_offsets()
        for _batch in range(self.batches_per_tick):  # the rest waits for the next tick
            batch, advanced, bad_lines = self._next_batch(offsets)
            if not batch and not advanced:
                break
            if batch and not self._deliver(client, batch):
                self._back_off()
                return shipped
            if bad_lines:
                self._reject_lines(bad_lines, "not JSON")
            offsets.update(advanced)
            self._save_offsets(offsets)
            shipped += len(batch)
            self._backoff_s = 0.0
        self._retire(offsets)
        return shipped

    def _back_off(self) -> None:
        self._backoff_s = min(5.0, max(0.2, self._backoff_s * 2))
        self._retry_at = time.monotonic() + self._backoff_s

    def _ship_legacy(self, client: BrainClient | BrainPool) -> int:
        """Files of the first spool layout (`events/*.json`, one JSON list each), left by an
        edge of an earlier version: shipped and deleted, so that an upgrade loses nothing.
        -1 when the brain did not take them (back off like any failure)."""
        legacy = self.directory / "events"
        try:
            paths = sorted(legacy.glob("*.json"))
        except OSError:
            return 0
        shipped = 0
        for path in paths:
            try:
                events = json.loads(path.read_text(encoding="utf-8"))
                if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                    raise ValueError("not a list of events")
            except ValueError:
                self._reject_lines([path.read_bytes()], f"unreadable legacy file {path.name}")
                path.unlink()
                continue
            for start in range(0, len(events), self.batch_events):
                if not self._deliver(client, events[start : start + self.batch_events]):
                    self._back_off()
                    return -1  # the file stays whole: what went through is deduped later
            path.unlink()
            shipped += len(events)
        return shipped

    def _next_batch(
        self, offsets: dict[str, int]
    ) -> tuple[list[dict[str, Any]], dict[str, int], list[bytes]]:
        """Up to `batch_events` unshipped events from the segments, oldest segments first, and
        the offsets each segment reaches once they are shipped."""
        batch: list[dict[str, Any]] = []
        advanced: dict[str, int] = {}
        bad: list[bytes] = []
        for segment in self.segments():
            offset = offsets.get(segment.stem, 0)
            try:
                with open(segment.path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(self.read_bytes)
            except FileNotFoundError:
                continue
            # Only whole lines: a writer may be in the middle of appending the next one.
            end = data.rfind(b"\n") + 1
            position = offset
            if end == 0 and len(data) == self.read_bytes:  # no event is that long: garbage
                bad.append(data)
                advanced[segment.stem] = offset + len(data)
                continue
            for line in data[:end].split(b"\n")[:-1]:
                position += len(line) + 1
                try:
                    event = json.loads(line)
                except ValueError:
                    bad.append(line)
                else:
                    batch.append(event)
                if len(batch) >= self.batch_events:
                    break
            if position != offset:
                advanced[segment.stem] = position
            if len(batch) >= self.batch_events:
                break
        return batch, advanced, bad

    def _deliver(self, client: BrainClient | BrainPool, events: list[dict[str, Any]]) -> bool:
        """True once the brain took the events (or refused some for good, set aside)."""
        try:
            client.post("/sip/v1/events", {"events": events})
        except BrainUnavailable as error:
            if error.status != 422:
                return False
            if len(events) == 1:  # refused for good: keep it for a human, let the rest flow
                self._reject_lines(
                    [json.dumps(events[0], separators=(",", ":")).encode()], str(error)
                )
                return True
            middle = len(events) // 2  # find the refused events by halving
            return self._deliver(client, events[:middle]) and self._deliver(client, events[middle:])
        return True

    def _retire(self, offsets: dict[str, int]) -> None:
        """Delete shipped closed segments; close the segments of processes that are gone."""
        changed = False
        for found in self.segments():
            segment = found
            if not found.closed:
                if _alive(found.pid):
                    continue
                closed = found.path.with_suffix(CLOSED_SUFFIX)
                with contextlib.suppress(FileNotFoundError):
                    os.rename(found.path, closed)
                segment = Segment(path=closed, stem=found.stem, pid=found.pid, closed=True)
            try:
                size = segment.path.stat().st_size
            except FileNotFoundError:
                continue
            offset = offsets.get(segment.stem, 0)
            if offset < size:
                with open(segment.path, "rb") as handle:
                    handle.seek(offset)
                    rest = handle.read()
                if b"\n" in rest:
                    continue  # whole lines still to ship
                # A torn last line: its process died in the middle of writing it.
                self._reject_lines([rest], "torn line")
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
            offsets.pop(segment.stem, None)
            changed = True
        if changed:
            self._save_offsets(offsets)

    def _reject_lines(self, lines: list[bytes], why: str) -> None:
        path = self.rejected_dir / f"{time.time_ns():020d}-{os.getpid()}.jsonl"
        with open(path, "ab") as handle:
            for line in lines:
                handle.write(line.rstrip(b"\n") + b"\n")
        with open(path.with_suffix(".why"), "a", encoding="utf-8") as handle:
            handle.write(why + "\n")

    def _load_offsets(self) -> dict[str, int]:
        """The shipper's offsets: read once, then kept in memory and saved after each batch."""
        if self._offsets is None:
            self._offsets = self._read_offsets()
        return self._offsets

    def _read_offsets(self) -> dict[str, int]:
        try:
            loaded = json.loads(self.offsets_path.read_text(encoding="utf-8"))
            return {
                str(stem): offset
                for stem, offset in loaded.items()
                if isinstance(offset, int) and offset >= 0
            }
        except (FileNotFoundError, ValueError, AttributeError):
            return {}  # at worst, lines already shipped are shipped again

    def _save_offsets(self, offsets: dict[str, int]) -> None:
        temporary = self.offsets_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(offsets), encoding="utf-8")
        os.replace(temporary, self.offsets_path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
