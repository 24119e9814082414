"""The edge's pieces that run without Kamailio: rules, brain client, event spool, rendering.

Fast, no SIP (the brain client talks to small HTTP servers on 127.0.0.1); Kamailio's own check
of the rendered configuration is in tests/e2e/test_sip_config_check.py.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.stack import free_port
from tawasol.adapters.sip import render_config
from tawasol.adapters.sip.kemi import edge_brain, edge_rules
from tawasol.config import Settings
from tawasol.domain import sip_semantics
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.sip_semantics import q850_cause_from_reason


def _verdict(code: int, header: str | None = None, **timer: bool) -> tuple[str, int]:
    _code, _cause, meaning = edge_rules.attempt_meaning(
        code,
        local_timeout=timer.get("local_timeout", False),
        rang=timer.get("rang", False),
        q850=edge_rules.q850_cause(header),
    )
    return meaning.action.value, meaning.reply_code


# -- failover: the edge reads the one table (tests/unit/test_sip_semantics.py has all of it) ---
@pytest.mark.parametrize("code", [500, 501, 502, 503, 504, 505, 513, 580, 408, 599])
def test_network_failures_fail_over(code: int) -> None:
    assert _verdict(code) == ("fail_over", 503)


@pytest.mark.parametrize("code", [404, 480, 486, 600, 603, 487, 604, 699])
def test_callee_answers_stop_the_hunt(code: int) -> None:
    action, reply = _verdict(code)
    assert action == "stop"
    assert reply == (600 if code == 699 else code)  # an unknown 6xx is a 600 (RFC 3261 §8.1.3.2)


def test_408_with_q850_cause_18_is_the_callee() -> None:
    for header in (
        "Q.850;cause=18",
        'Q.850 ;cause=18;text="no user responding"',
        "SIP;cause=408, Q.850;cause=18",
    ):
        assert _verdict(408, header) == ("stop", 408)
    assert _verdict(408, "Q.850;cause=102") == ("fail_over", 503)


def test_congestion_on_a_callee_code_fails_over_and_a_callee_cause_on_503_stops() -> None:
    assert _verdict(480, "Q.850;cause=47") == ("fail_over", 503)  # fault 1 (FreeSWITCH #732)
    assert _verdict(503, 'Q.850;cause=17;text="User busy"') == ("stop", 486)


def test_the_edge_reads_a_cause_after_quoted_text_with_a_comma() -> None:
    header = 'Q.850;text="Temporary failure, retry";cause=41'  # fault 7
    assert edge_rules.q850_cause(header) == 41
    assert edge_rules.q850_cause(header) == q850_cause_from_reason(header)


def test_local_timeout_fails_over_only_when_the_carrier_never_rang() -> None:
    # a 100 Trying is not ringing: a carrier silent after it is left like a silent one
    assert _verdict(408, local_timeout=True, rang=False) == ("fail_over", 503)
    # our ring timer after an 18x: nobody answered (cause 19), the caller gets 480
    assert _verdict(408, local_timeout=True, rang=True) == ("stop", 480)
    assert edge_rules.attempt_meaning(408, local_timeout=True, rang=True, q850=None)[:2] == (
        408,
        19,
    )


def test_a_hold_off_runs_until_its_time() -> None:
    assert edge_rules.held_off("2000", now_ms=1999)
    assert not edge_rules.held_off("2000", now_ms=2000)
    assert not edge_rules.held_off(None, now_ms=0)
    assert not edge_rules.held_off("garbage", now_ms=0)


_EDGE_TABLE = """
import json, sys
sys.path.insert(0, sys.argv[1])  # what app_python3 does for the script's directory
import edge_rules
verdicts = {
    f"{code}/{cause}": edge_rules.attempt_meaning(
        code, local_timeout=False, rang=False, q850=cause
    )[2].row()
    for code in range(300, 700)
    for cause in [None, *range(1, 128)]
}
print(json.dumps({
    "module": edge_rules.semantics.__file__,
    "table": edge_rules.semantics.table_rows(),
    "verdicts": verdicts,
}))
"""


def test_the_edge_runtime_copy_of_the_table_agrees_with_the_brains() -> None:
    # Kamailio runs the routing script under Debian's system Python, without the virtualenv:
    # load the edge's rules there, as app_python3 does, and compare its table with the brain's.
    kemi = Path(edge_rules.__file__).parent
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", _EDGE_TABLE, str(kemi)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    edge = json.loads(result.stdout)
    assert Path(edge["module"]).resolve() == Path(sip_semantics.__file__).resolve()
    assert edge["table"] == json.loads(json.dumps(sip_semantics.table_rows()))
    brain = {
        f"{code}/{cause}": sip_semantics.meaning_of(code, cause).row()
        for code in range(300, 700)
        for cause in [None, *range(1, 128)]
    }
    assert edge["verdicts"] == brain


# -- abuse and replies -------------------------------------------------------------------------
def test_scanners_are_recognised() -> None:
    for agent in (
        "friendly-scanner",
        "SIPVicious 0.3.4",
        "sipcli/v1.8",
        "sip-scan",
        "VaxSIPUserAgent/3.5",
        "sipsak 0.9.7",
    ):
        assert edge_rules.is_scanner(agent), agent
    phones: tuple[str | None, ...] = ("Linphone/5.2.0 (belle-sip/5.2.0)", "baresip v3.10.1")
    for phone in (*phones, "Z 5.6.1", None, ""):
        assert not edge_rules.is_scanner(phone), phone


def test_warning_and_reason_headers_carry_the_stable_code() -> None:
    assert (
        edge_rules.warning_header("destination_not_in_plan")
        == 'Warning: 399 tawasol "destination_not_in_plan"\r\n'
    )
    assert (
        edge_rules.reason_header(403, 'x"y\r\nInjected: 1')
        == 'Reason: SIP;cause=403;text="xyInjected: 1"\r\n'
    )
    assert edge_rules.safe_reason_phrase("Destination\r\nNot In Plan", "Forbidden") == (
        "DestinationNot In Plan"
    )
    assert edge_rules.safe_reason_phrase("", "Forbidden") == "Forbidden"


def test_auth_failures_are_counted_in_a_sliding_window() -> None:
    window = 900_000
    failures = edge_rules.record_auth_failure([], now_ms=1_000, window_ms=window)
    failures = edge_rules.record_auth_failure(failures, now_ms=2_000, window_ms=window)
    assert failures == [1_000, 2_000]
    later = edge_rules.record_auth_failure(failures, now_ms=901_500, window_ms=window)
    assert later == [2_000, 901_500]
    text = edge_rules.format_failures(later)
    assert edge_rules.parse_failures(text) == later
    assert edge_rules.parse_failures("junk,12") == [12]


def test_contact_and_expiry_of_a_registration() -> None:
    assert edge_rules.parse_contact('"A" <sip:a@1.2.3.4:5060;transport=udp>;expires=120') == (
        "sip:a@1.2.3.4:5060;transport=udp",
        "120",
    )
    assert edge_rules.parse_contact("sip:a@1.2.3.4") == ("sip:a@1.2.3.4", None)
    assert edge_rules.register_expiry("30") == 60
    assert edge_rules.register_expiry("86400") == 3600
    assert edge_rules.register_expiry(None) == 600
    assert edge_rules.register_expiry("0") == 0


# -- the brain client and the event spool ------------------------------------------------------
class _Brain:
    def __init__(self) -> None:
        self.status = 200
        self.events: list[dict[str, Any]] = []
        self.delay_s = 0.0
        brain = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if brain.delay_s:
                    threading.Event().wait(brain.delay_s)
                if self.path == "/sip/v1/events" and brain.status == 200:
                    brain.events.extend(body["events"])
                data = json.dumps({"ok": True, "echo": body}).encode()
                self.send_response(brain.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        # shutdown() waits for serve_forever for ever: bounded here, so that a test that
        # failed cannot hang the run in its teardown.
        threading.Thread(target=self.server.shutdown, daemon=True).start()
        self.thread.join(timeout=5)
        self.server.server_close()


@pytest.fixture
def fake_brain() -> Any:
    brain = _Brain()
    yield brain
    brain.close()


def test_brain_client_keeps_its_connection_and_fails_closed(fake_brain: _Brain) -> None:
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=300)
    assert client.post("/sip/v1/authorize", {"a": 1})["echo"] == {"a": 1}
    first_socket = client._socket
    assert client.post("/sip/v1/authorize", {"a": 2})["echo"] == {"a": 2}
    assert client._socket is not None and client._socket is first_socket
    fake_brain.delay_s = 0.6
    with pytest.raises(edge_brain.BrainUnavailable) as slow:
        client.post("/sip/v1/authorize", {"a": 3})
    assert slow.value.request_sent
    fake_brain.delay_s = 0
    fake_brain.status = 500
    with pytest.raises(edge_brain.BrainUnavailable) as failed:
        client.post("/sip/v1/authorize", {"a": 4})
    assert failed.value.status == 500
    client.close()
    refused = edge_brain.BrainClient("127.0.0.1", free_port(), timeout_ms=300)
    with pytest.raises(edge_brain.BrainUnavailable) as down:
        refused.post("/sip/v1/authorize", {"a": 5})
    assert not down.value.request_sent
    refused.close()


class _RawBrain:
    """Answers every request with the same raw bytes, then closes or keeps the connection."""

    def __init__(self, answer: bytes, *, close: bool = False) -> None:
        self.answer = answer
        self.close_after = close
        self.requests: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                data = b""
                while True:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    if len(body) < length:
                        continue
                    self.requests.append(data)
                    data = b""
                    # in pieces, as a slow network would deliver it
                    for index in range(0, len(self.answer), 7):
                        connection.sendall(self.answer[index : index + 7])
                    if self.close_after:
                        break

    def stop(self) -> None:
        # Closing the listening socket alone does not stop the thread: an accept() about to
        # run on its descriptor number would take the connections of whatever socket the
        # next test opens under that number (a later test's brain answered {"ok":true}).
        # shutdown() wakes a blocked accept(); the thread ends before the number is freed.
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=5)
        assert not self.thread.is_alive(), "the raw brain's thread did not stop"
        self.server.close()


@pytest.mark.parametrize(
    ("answer", "close"),
    [
        (b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{"ok":true}', False),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4\r\n{"ok\r\n7\r\n":true}\r\n0\r\n\r\n',
            False,
        ),
        (b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"ok":true}', True),
    ],
)
def test_brain_client_reads_every_way_an_http_answer_can_be_framed(
    answer: bytes, close: bool
) -> None:
    brain = _RawBrain(answer, close=close)
    client = edge_brain.BrainClient("127.0.0.1", brain.port, timeout_ms=500)
    try:
        assert client.post("/sip/v1/authorize", {"n": 1}) == {"ok": True}
        assert client.post("/sip/v1/authorize", {"n": 2}) == {"ok": True}
        request = brain.requests[0]
        assert request.startswith(b"POST /sip/v1/authorize HTTP/1.1\r\n")
        assert request.endswith(b'\r\n\r\n{"n":1}')
        assert (client._socket is None) == close
    finally:
        client.close()
        brain.stop()


def test_brain_client_refuses_an_answer_that_is_not_http() -> None:
    brain = _RawBrain(b"SIP/2.0 200 OK\r\n\r\n", close=True)
    client = edge_brain.BrainClient("127.0.0.1", brain.port, timeout_ms=500)
    try:
        with pytest.raises(edge_brain.BrainUnavailable, match=r"not an HTTP/1\.1 status line"):
            client.post("/sip/v1/authorize", {"n": 1})
    finally:
        client.close()
        brain.stop()


def test_spooled_events_survive_an_outage_and_are_shipped_once(
    fake_brain: _Brain, tmp_path: Path
) -> None:
    spool = edge_brain.EventSpool(tmp_path / "spool")
    spool.ensure()
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=500)
    fake_brain.status = 503
    spool.write([{"call_id": "c1", "type": "attempt"}])
    spool.write([{"call_id": "c1", "type": "answer"}, {"call_id": "c1", "type": "end"}])
    assert spool.ship(client) == 0
    assert spool.pending_events() == 3  # kept while the brain refuses
    fake_brain.status = 200
    spool._retry_at = 0  # skip the back-off
    assert spool.ship(client) == 3
    assert [event["type"] for event in fake_brain.events] == ["attempt", "answer", "end"]
    assert spool.pending_events() == 0
    assert spool.ship(client) == 0  # nothing is sent twice
    spool.write([{"call_id": "c2", "type": "attempt"}])
    assert spool.ship(client) == 1
    assert [event["call_id"] for event in fake_brain.events] == ["c1", "c1", "c1", "c2"]
    client.close()


def test_a_new_shipper_goes_on_where_the_last_one_stopped(
    fake_brain: _Brain, tmp_path: Path
) -> None:
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=500)
    writer = edge_brain.EventSpool(tmp_path / "spool")
    writer.ensure()
    writer.write([{"call_id": "c1", "type": "attempt"}])
    assert edge_brain.EventSpool(tmp_path / "spool").ship(client) == 1
    writer.write([{"call_id": "c1", "type": "end"}])
    # Kamailio restarted: a new shipper reads where the old one got to
    assert edge_brain.EventSpool(tmp_path / "spool").ship(client) == 1
    assert [event["type"] for event in fake_brain.events] == ["attempt", "end"]
    client.close()


def test_segments_rotate_and_shipped_closed_segments_are_deleted(
    fake_brain: _Brain, tmp_path: Path
) -> None:
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=500)
    spool = edge_brain.EventSpool(tmp_path / "spool", rotate_bytes=1, batch_events=2)
    spool.ensure()
    for index in range(5):
        spool.write([{"call_id": f"c{index}", "type": "attempt"}])
    segments = spool.segments()
    assert len(segments) == 5
    assert [segment.closed for segment in segments] == [True] * 4 + [False]
    assert spool.ship(client) == 5  # in three requests of at most two events
    assert [event["call_id"] for event in fake_brain.events] == [f"c{i}" for i in range(5)]
    # closed and shipped: deleted; the segment this process still writes to stays
    assert [segment.closed for segment in spool.segments()] == [False]
    spool.close()
    assert spool.ship(client) == 0
    assert spool.segments() == []
    client.close()


def test_one_tick_ships_a_bounded_number_of_batches(fake_brain: _Brain, tmp_path: Path) -> None:
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=500)
    spool = edge_brain.EventSpool(tmp_path / "spool", batch_events=2, batches_per_tick=2)
    spool.ensure()
    spool.write([{"call_id": f"c{index}", "type": "attempt"} for index in range(5)])
    assert spool.ship(client) == 4  # two batches of two: the fifth waits for the next tick
    assert spool.pending_events() == 1
    assert spool.ship(client) == 1
    assert [event["call_id"] for event in fake_brain.events] == [f"c{i}" for i in range(5)]
    client.close()


def test_the_segment_of_a_process_that_died_is_shipped_and_its_torn_line_set_aside(
    fake_brain: _Brain, tmp_path: Path
) -> None:
    spool = edge_brain.EventSpool(tmp_path / "spool")
    spool.ensure()
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer exists
    orphan = spool.segments_dir / f"{time.time_ns():020d}-{dead.pid}.open"
    orphan.write_bytes(b'{"call_id":"c1","type":"end"}\nnot json\n{"call_id":"c2","ty')
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=500)
    assert spool.ship(client) == 1
    assert [event["call_id"] for event in fake_brain.events] == ["c1"]
    assert spool.segments() == []
    rejected = b"".join(path.read_bytes() for path in spool.rejected_dir.glob("*.jsonl"))
    assert b"not json\n" in rejected and b'{"call_id":"c2","ty\n' in rejected
    client.close()


def test_events_spooled_by_an_earlier_edge_version_are_shipped_after_an_upgrade(
    fake_brain: _Brain, tmp_path: Path
) -> None:
    legacy = tmp_path / "spool" / "events"
    legacy.mkdir(parents=True)
    (legacy / "0001-1-1.json").write_text('[{"call_id":"old","type":"attempt"}]')
    (legacy / "0002-1-2.json").write_text('[{"call_id":"old","type":"end"}]')
    (legacy / "0003-1-3.json").write_text("{broken")
    spool = edge_brain.EventSpool(tmp_path / "spool")
    spool.ensure()
    spool.write([{"call_id": "new", "type": "attempt"}])
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=500)
    assert spool.ship(client) == 3
    assert [(e["call_id"], e["type"]) for e in fake_brain.events] == [
        ("old", "attempt"),
        ("old", "end"),
        ("new", "attempt"),
    ]
    assert list(legacy.iterdir()) == []
    assert b"{broken" in b"".join(p.read_bytes() for p in spool.rejected_dir.glob("*.jsonl"))
    client.close()


def test_an_event_the_brain_rejects_for_good_is_set_aside_not_lost(
    tmp_path: Path,
) -> None:
    class Picky:
        """Refuses (422) any batch holding the event of call "bad"."""

        def __init__(self) -> None:
            self.accepted: list[str] = []

        def post(self, path: str, body: dict[str, Any]) -> Any:
            ids = [event["call_id"] for event in body["events"]]
            if "bad" in ids:
                raise edge_brain.BrainUnavailable("HTTP 422", request_sent=True, status=422)
            self.accepted.extend(ids)
            return {"accepted": len(ids)}

    spool = edge_brain.EventSpool(tmp_path / "spool")
    spool.ensure()
    spool.write([{"call_id": name} for name in ("a", "b", "bad", "c", "d")])
    brain = Picky()
    assert spool.ship(brain) == 5  # type: ignore[arg-type]
    assert brain.accepted == ["a", "b", "c", "d"]
    assert spool.pending_events() == 0
    rejected = list(spool.rejected_dir.glob("*.jsonl"))
    assert len(rejected) == 1 and b'"bad"' in rejected[0].read_bytes()


def test_a_refresh_every_interval_is_due_at_once_then_once_per_interval() -> None:
    hourly = edge_brain.Every(3600)
    assert hourly.due()  # the first ask: the timer fills its tables at start
    assert not hourly.due()  # asked again within the hour
    always = edge_brain.Every(0)
    assert always.due() and always.due()


# -- rendering -------------------------------------------------------------------------------
def test_config_is_rendered_from_settings(tmp_path: Path) -> None:
    settings = Settings(
        sip_listen="127.0.0.1",
        sip_port=5099,
        api_port=8999,
        sip_children=3,
        sip_pike_requests=42,
        brain_timeout_ms=700,
        sip_realm="voip.example.ma",
    )
    text = render_config(settings, run_dir=tmp_path)
    assert "{{" not in text
    assert "listen=udp:127.0.0.1:5099" in text
    assert "children=3" in text
    assert "#!define TAWASOL_BRAIN_PORT 8999" in text
    assert "#!define TAWASOL_BRAIN_TIMEOUT_MS 700" in text
    assert '"reqs_density_per_unit", 42' in text
    assert f"unix:{tmp_path.resolve()}/kamailio_ctl" in text


def test_values_that_would_break_the_config_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfiguration, match="realm"):
        render_config(Settings(sip_realm='bad realm"'), run_dir=tmp_path)
    with pytest.raises(InvalidConfiguration, match="too long"):
        render_config(Settings(), run_dir=tmp_path / ("x" * 120))
