"""The edge asks several brains in order (issue 19, the scaled mode): a brain that cannot be
reached or dies mid-query is skipped within the same deadline; one that answered an error is
not (the others share its database and counters)."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import pytest
from test_sip_edge_units import _Brain

from support.stack import free_port
from tawasol.adapters.sip import render_config
from tawasol.adapters.sip.kemi import edge_brain
from tawasol.config import Settings
from tawasol.domain.errors import InvalidConfiguration


class _KillableBrain:
    """Answers every request 200 with a JSON body counting requests; `kill` closes the
    listening socket and every connection at once, as the kernel does for a killed process."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests = 0
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if len(rest) < length:
                    break
                buffer = rest[length:]
                self.requests += 1
                body = b'{"served":%d}' % self.requests
                try:
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                except OSError:
                    return

    def kill(self) -> None:
        # shutdown first: close() alone leaves a thread blocked in accept/recv serving on
        for each in (self.server, *self.connections):
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)
            each.close()


@pytest.fixture
def brains() -> list[_Brain]:
    started = [_Brain(), _Brain()]
    yield started
    for brain in started:
        brain.close()


def test_given_the_first_brain_down_then_the_second_answers_and_stays_preferred(
    brains: list[_Brain],
) -> None:
    dead = free_port()
    pool = edge_brain.BrainPool(
        [("127.0.0.1", dead), ("127.0.0.1", brains[0].port)], timeout_ms=500
    )
    try:
        assert pool.post("/sip/v1/authorize", {"n": 1})["echo"] == {"n": 1}
        assert pool.current == ("127.0.0.1", brains[0].port)
        assert pool.post("/sip/v1/authorize", {"n": 2})["echo"] == {"n": 2}
        assert pool.current == ("127.0.0.1", brains[0].port)
    finally:
        pool.close()


def test_given_the_brain_in_use_dies_then_the_next_query_goes_to_the_other() -> None:
    first, second = _KillableBrain(), _KillableBrain()
    pool = edge_brain.BrainPool(
        [("127.0.0.1", first.port), ("127.0.0.1", second.port)], timeout_ms=500
    )
    try:
        assert pool.post("/sip/v1/authorize", {"n": 1}) == {"served": 1}
        assert pool.post("/sip/v1/authorize", {"n": 2}) == {"served": 2}
        first.kill()  # its kept connection dies under the pool
        assert pool.post("/sip/v1/authorize", {"n": 3}) == {"served": 1}
        assert pool.current == ("127.0.0.1", second.port)
        assert first.requests == 2 and second.requests == 1
    finally:
        pool.close()
        first.kill()
        second.kill()


def test_given_a_brain_answers_an_error_then_the_pool_does_not_ask_another(
    brains: list[_Brain],
) -> None:
    first, second = brains
    first.status = 503
    pool = edge_brain.BrainPool(
        [("127.0.0.1", first.port), ("127.0.0.1", second.port)], timeout_ms=500
    )
    try:
        with pytest.raises(edge_brain.BrainUnavailable) as refused:
            pool.post("/sip/v1/events", {"events": [{"call_id": "a"}]})
        assert refused.value.status == 503
        assert second.events == []
    finally:
        pool.close()


def test_given_every_brain_down_then_unavailable_within_the_deadline() -> None:
    pool = edge_brain.BrainPool(
        [("127.0.0.1", free_port()), ("127.0.0.1", free_port())], timeout_ms=300
    )
    with pytest.raises(edge_brain.BrainUnavailable) as down:
        pool.post("/sip/v1/authorize", {})
    assert not down.value.request_sent
    pool.close()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.11:8040", [("10.0.0.11", 8040)]),
        ("a:1/ b.example:65535", [("a", 1), ("b.example", 65535)]),
        ("::1:8040", [("::1", 8040)]),
        ("[::1]:8040", [("::1", 8040)]),
    ],
)
def test_brain_addresses_are_read_from_the_rendered_define(
    text: str, expected: list[tuple[str, int]]
) -> None:
    assert edge_brain.parse_brain_addresses(text) == expected


@pytest.mark.parametrize("text", ["", "host", "host:0", "host:70000", ":8040", "h:80a"])
def test_bad_brain_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        edge_brain.parse_brain_addresses(text)


def test_the_edge_config_lists_every_brain_in_order(tmp_path: Path) -> None:
    settings = Settings(edge_brains="10.0.0.11:8040, 10.0.0.12:8041", api_port=8999)
    text = render_config(settings, run_dir=tmp_path)
    assert '#!define TAWASOL_BRAIN_ADDRESSES "10.0.0.11:8040/10.0.0.12:8041"' in text
    assert "#!define TAWASOL_BRAIN_HOST 10.0.0.11" in text
    default = render_config(Settings(api_port=8999), run_dir=tmp_path)
    assert '#!define TAWASOL_BRAIN_ADDRESSES "127.0.0.1:8999"' in default


@pytest.mark.parametrize("value", ["10.0.0.11", "10.0.0.11:port", "bad host:80", "a:1,,b:2"])
def test_given_a_malformed_brain_list_then_the_settings_check_says_which(value: str) -> None:
    with pytest.raises(InvalidConfiguration, match="edge_brains"):
        Settings(edge_brains=value).check()
