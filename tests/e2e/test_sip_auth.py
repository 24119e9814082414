"""Authentication and abuse protections at the edge (real Kamailio, real brain, SIPp)."""

from __future__ import annotations

import re
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import SUBSCRIBERS, Brain, edge_settings, subscriber_call

from support.sipp import CallerRun, SipMessage, SippCarrier, free_port
from tawasol.adapters.sip import EdgeProcess, start_edge

pytestmark = pytest.mark.sip

_VARIABLE = re.compile(r'(tag|nonce|branch|received|rport|opaque)=("[^"]*"|[^;,\s]*)')
_SENT_BY = re.compile(r"^(SIP/2\.0/\w+) [^;]+")


def _refused_call(
    edge: EdgeProcess, workdir: Path, user: str, password: str, name: str
) -> CallerRun:
    return subscriber_call(
        edge,
        workdir,
        user,
        scenario="caller_refused.xml",
        password=password,
        name=name,
        timeout_s=15,
    )


def _shape(message: SipMessage, user: str) -> tuple[str, list[tuple[str, str]]]:
    """A reply with everything that differs between two calls masked: tags, nonces, Call-ID,
    CSeq, Via parameters and the username itself."""
    skip = {"call-id", "content-length"}
    headers = [
        (name.lower(), _SENT_BY.sub(r"\1 *", _VARIABLE.sub(r"\1=*", value)).replace(user, "USER"))
        for name, value in message.headers
        if name.lower() not in skip
    ]
    return message.first_line, headers


def _replies(run: CallerRun) -> list[SipMessage]:
    return [m for m in run.messages() if m.direction == "received"]


def test_given_wrong_password_or_unknown_user_when_calling_then_same_407_then_403(
    brain: Brain, edge: EdgeProcess, workdir: Path
) -> None:
    carrier = SippCarrier("carrier_answer.xml", free_port(), workdir).start()
    brain.point_carriers(flat_port=carrier.port, minute_port=carrier.port)
    try:
        wrong = _refused_call(edge, workdir, "bilal", "not-the-password", "wrong-password")
        unknown = _refused_call(edge, workdir, "nobody42", "whatever-password", "unknown-user")
    finally:
        carrier.stop()
    assert wrong.returncode == 0, wrong.output
    assert unknown.returncode == 0, unknown.output
    assert [m.status for m in _replies(wrong)] == [407, 100, 403]
    assert [_shape(m, "bilal") for m in _replies(wrong)] == [
        _shape(m, "nobody42") for m in _replies(unknown)
    ]
    assert carrier.invites() == []


def test_given_three_failed_logins_when_right_password_follows_then_user_is_refused(
    brain: Brain, edge: EdgeProcess, workdir: Path
) -> None:
    password = SUBSCRIBERS["chems"][0]
    for attempt in range(3):
        failed = _refused_call(edge, workdir, "chems", "bad-password", f"lock-{attempt}")
        assert [m.status for m in _replies(failed)] == [407, 100, 403]
    locked = _refused_call(edge, workdir, "chems", password, "locked")
    assert [m.status for m in _replies(locked)] == [407, 100, 403]
    # the lock-out is per user: another subscriber on the same address still calls
    carrier = SippCarrier("carrier_answer.xml", free_port(), workdir).start()
    brain.point_carriers(flat_port=carrier.port, minute_port=carrier.port)
    try:
        other = subscriber_call(edge, workdir, "amina", name="not-locked", timeout_s=15)
    finally:
        carrier.stop()
    assert other.returncode == 0, other.output


def test_given_softphone_when_registering_then_challenged_and_accepted(
    brain: Brain, edge: EdgeProcess, workdir: Path
) -> None:
    run = subscriber_call(
        edge, workdir, "amina", scenario="register.xml", dialled="", name="register", timeout_s=15
    )
    assert run.returncode == 0, run.output
    statuses = [m.status for m in _replies(run)]
    assert statuses == [401, 200]
    accepted = _replies(run)[-1]
    assert ";expires=300" in (accepted.header("Contact") or "")


# -- the network-level protections: raw SIP over UDP -------------------------------------------
def _options(
    *,
    edge_port: int,
    source_ip: str = "127.0.0.1",
    user_agent: str = "tawasol-e2e",
    padding: int = 0,
    cseq: str = "1 OPTIONS",
    timeout_s: float = 0.5,
) -> str | None:
    """Send one OPTIONS from `source_ip`; the reply's status line, or None if none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source_ip, 0))
        sock.settimeout(timeout_s)
        port = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:127.0.0.1:{edge_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source_ip}:{port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:probe@{source_ip}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:127.0.0.1:{edge_port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}\r\n"
            f"CSeq: {cseq}\r\n"
            f"User-Agent: {user_agent}\r\n"
            + (f"X-Padding: {'x' * padding}\r\n" if padding else "")
            + "Content-Length: 0\r\n\r\n"
        )
        sock.sendto(request.encode(), ("127.0.0.1", edge_port))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            return None
    return data.decode(errors="replace").split("\r\n", 1)[0]


def _burst(*, edge_port: int, source_ip: str, count: int) -> int:
    """Send `count` OPTIONS at once from `source_ip`; how many were answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source_ip, 0))
        port = sock.getsockname()[1]
        for number in range(count):
            sock.sendto(
                (
                    f"OPTIONS sip:127.0.0.1:{edge_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {source_ip}:{port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                    f"Max-Forwards: 70\r\nFrom: <sip:flood@{source_ip}>;tag=f{number}\r\n"
                    f"To: <sip:127.0.0.1:{edge_port}>\r\nCall-ID: {uuid.uuid4().hex}\r\n"
                    f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", edge_port),
            )
        sock.settimeout(0.5)
        answered = 0
        while True:
            try:
                sock.recv(65535)
            except TimeoutError:
                return answered
            answered += 1


@pytest.fixture(scope="module")
def strict_edge(brain: Brain, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An edge with a low flood limit: 10 new requests per 2 s per address, banned 60 s."""
    run_dir = tmp_path_factory.mktemp("strict-edge")
    settings = edge_settings(
        brain,
        run_dir,
        sip_pike_requests=10,
        sip_pike_interval_s=2,
        sip_ban_s=60,
        sip_children=2,
    )
    process = start_edge(settings, run_dir)
    try:
        yield process
    finally:
        process.stop()


def test_given_address_flooding_when_over_rate_then_banned_while_others_served(
    strict_edge: EdgeProcess,
) -> None:
    flooder = "127.0.0.2"
    answered = _burst(edge_port=strict_edge.port, source_ip=flooder, count=40)
    assert 1 <= answered <= 12  # 10 per 2 s are allowed (pike counts per sampling unit)
    # banned: even a calm request later gets nothing, while another address is served
    assert _options(edge_port=strict_edge.port, source_ip=flooder) is None
    assert _options(edge_port=strict_edge.port, source_ip="127.0.0.3") == "SIP/2.0 200 OK"


@pytest.mark.parametrize(
    "user_agent",
    ["friendly-scanner", "sipvicious 0.3", "sipcli/v1.8", "sip-scan", "VaxSIPUserAgent/3.1"],
)
def test_given_scanner_user_agent_when_probing_then_dropped_silently(
    edge: EdgeProcess, user_agent: str
) -> None:
    assert _options(edge_port=edge.port, source_ip="127.0.0.4", user_agent=user_agent) is None
    assert _options(edge_port=edge.port, source_ip="127.0.0.4") == "SIP/2.0 200 OK"


def test_given_oversized_or_malformed_request_then_refused(edge: EdgeProcess) -> None:
    assert _options(edge_port=edge.port, padding=9000) == "SIP/2.0 513 Message Too Large"
    bad = _options(edge_port=edge.port, cseq="one OPTIONS")
    assert bad is not None and bad.startswith("SIP/2.0 400")
