"""The edge's pieces that run without Kamailio: rules, brain client, event spool, rendering.

Fast (no SIP), kept next to the e2e tests because they test the same adapter; they could move
to tests/unit.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sipp_driver import free_port

from tawasol.adapters.sip import check_config, render_config, write_config
from tawasol.adapters.sip.kemi import edge_brain, edge_rules
from tawasol.config import Settings
from tawasol.domain.errors import InvalidConfiguration

FAILOVER = (408, 500, 502, 503, 504)


# -- failover ----------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [500, 502, 503, 504, 408])
def test_network_failures_fail_over(code: int) -> None:
    assert edge_rules.should_fail_over(
        code,
        local_timeout=False,
        provisional_seen=True,
        reason_header=None,
        failover_codes=FAILOVER,
    )


@pytest.mark.parametrize("code", [404, 480, 486, 600, 603, 487, 403])
def test_callee_answers_stop_the_hunt(code: int) -> None:
    assert not edge_rules.should_fail_over(
        code,
        local_timeout=False,
        provisional_seen=True,
        reason_header=None,
        failover_codes=FAILOVER,
    )


def test_408_with_q850_cause_18_is_the_callee() -> None:
    for header in (
        "Q.850;cause=18",
        'Q.850 ;cause=18;text="no user responding"',
        "SIP;cause=408, Q.850;cause=18",
    ):
        assert not edge_rules.should_fail_over(
            408,
            local_timeout=False,
            provisional_seen=False,
            reason_header=header,
            failover_codes=FAILOVER,
        )
    assert edge_rules.should_fail_over(
        408,
        local_timeout=False,
        provisional_seen=False,
        reason_header="Q.850;cause=102",
        failover_codes=FAILOVER,
    )


def test_local_timeout_fails_over_only_when_nothing_came_back() -> None:
    silent = dict(local_timeout=True, reason_header=None, failover_codes=FAILOVER)
    assert edge_rules.should_fail_over(408, provisional_seen=False, **silent)  # type: ignore[arg-type]
    assert not edge_rules.should_fail_over(408, provisional_seen=True, **silent)  # type: ignore[arg-type]


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
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_brain() -> Any:
    brain = _Brain()
    yield brain
    brain.close()


def test_brain_client_keeps_its_connection_and_fails_closed(fake_brain: _Brain) -> None:
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=300)
    assert client.post("/sip/v1/authorize", {"a": 1})["echo"] == {"a": 1}
    first_socket = client._connection.sock if client._connection else None
    assert client.post("/sip/v1/authorize", {"a": 2})["echo"] == {"a": 2}
    assert client._connection is not None and client._connection.sock is first_socket
    fake_brain.delay_s = 0.6
    with pytest.raises(edge_brain.BrainUnavailable) as slow:
        client.post("/sip/v1/authorize", {"a": 3})
    assert slow.value.request_sent
    fake_brain.delay_s = 0
    fake_brain.status = 500
    with pytest.raises(edge_brain.BrainUnavailable):
        client.post("/sip/v1/authorize", {"a": 4})
    client.close()
    refused = edge_brain.BrainClient("127.0.0.1", free_port(), timeout_ms=300)
    with pytest.raises(edge_brain.BrainUnavailable) as down:
        refused.post("/sip/v1/authorize", {"a": 5})
    assert not down.value.request_sent
    refused.close()


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
    assert len(spool.pending()) == 2  # kept while the brain refuses
    fake_brain.status = 200
    spool._retry_at = 0  # skip the back-off
    assert spool.ship(client) == 3
    assert [event["type"] for event in fake_brain.events] == ["attempt", "answer", "end"]
    assert spool.pending() == []
    client.close()


def test_a_file_the_brain_rejects_for_good_is_set_aside_not_lost(
    fake_brain: _Brain, tmp_path: Path
) -> None:
    spool = edge_brain.EventSpool(tmp_path / "spool")
    spool.ensure()
    fake_brain.status = 422
    spool.write([{"call_id": "bad"}])
    client = edge_brain.BrainClient("127.0.0.1", fake_brain.port, timeout_ms=500)
    assert spool.ship(client) == 0
    assert spool.pending() == []
    assert len(list(spool.rejected_dir.iterdir())) == 1
    client.close()


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


@pytest.mark.sip
def test_rendered_config_passes_kamailio_check(tmp_path: Path) -> None:
    config = write_config(Settings(sip_port=free_port(), api_port=free_port()), tmp_path)
    assert "config file ok" in check_config(config)
