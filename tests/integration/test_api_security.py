"""The brain's private APIs under attack (issue 9, faults 1, 2, 3, 4 and 7), over HTTP against
the real app on a real SQLite store. docs/security.md says what each protection stops."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest
from edge_support import credentials, digest_answer, granted
from fastapi.testclient import TestClient
from sample_brain import AUTH, NOW

from tawasol.adapters.api.app import create_app
from tawasol.adapters.sip import render_config
from tawasol.adapters.sip.launcher import write_config
from tawasol.composition import build_brain
from tawasol.config import Settings

ADMIN = AUTH
MOBILE = "00212661234567"
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture
def anyone(brain):
    """A client without the edge's token: a process or a browser page on the network."""
    with TestClient(create_app(brain), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def edge(client):
    """The SIP edge: `client` from conftest.py carries the edge's token."""
    return client


def _decision_request(brain, call_id: str, *, user: str = "amina", answer: str | None = None):
    return {
        "call_id": call_id,
        "user": user,
        "dialled": MOBILE,
        "credentials": credentials(brain, user, MOBILE) if answer is None else answer,
    }


def _calls_in_progress(edge) -> int:
    return edge.get("/sip/v1/stats").json()["calls_in_progress"]


# -- fault 1: the decision API answers the edge only ----------------------------------------
def test_given_no_edge_token_when_asking_for_a_decision_then_401_and_no_ha1(brain, anyone):
    body = {"call_id": "x", "user": "amina", "dialled": "register"}
    response = anyone.post("/sip/v1/authorize", json=body)
    assert response.status_code == 401
    assert response.json()["error_id"] == "edge_unauthorized"
    assert "ha1" not in response.text
    wrong = anyone.post(
        "/sip/v1/authorize", json=body, headers={"Authorization": "Bearer not-the-token"}
    )
    assert wrong.status_code == 401
    for path in ("/sip/v1/stats", "/sip/v1/peers"):
        assert anyone.get(path).status_code == 401


def test_given_a_browser_text_plain_post_then_refused_and_nothing_recorded(brain, anyone, edge):
    event = {"call_id": "forged", "type": "answer", "at_ms": NOW_MS, "user": "amina"}
    forged = f'{{"events": [{__import__("json").dumps(event)}]}}'
    # what a page can send cross-origin without a preflight: text/plain, no Authorization
    assert (
        anyone.post(
            "/sip/v1/events", content=forged, headers={"Content-Type": "text/plain"}
        ).status_code
        == 401
    )
    # even with the token, only JSON is taken
    assert (
        edge.post("/sip/v1/events", content=forged, headers={"Content-Type": "text/plain"})
    ).status_code == 415
    assert edge.get("/admin/v1/calls", headers=ADMIN).json() == []


def test_given_events_for_a_call_the_brain_never_allowed_then_422_and_nothing_recorded(edge):
    common = {"call_id": "ghost-call", "user": "amina", "dialled": MOBILE}
    forged = [
        {**common, "type": "answer", "at_ms": NOW_MS, "carrier": "ma-flat"},
        {**common, "type": "end", "at_ms": NOW_MS + 3_600_000, "duration_ms": 3_600_000},
    ]
    response = edge.post("/sip/v1/events", json={"events": forged})
    assert response.status_code == 422
    assert response.json()["error_id"] == "call_not_granted"
    assert response.json()["details"]["call_ids"] == ["ghost-call"]
    badly_signed = [{**event, "grant": "7200." + "0" * 32} for event in forged]
    assert edge.post("/sip/v1/events", json={"events": badly_signed}).status_code == 422
    assert edge.get("/admin/v1/calls", headers=ADMIN).json() == []


def test_given_an_end_event_longer_than_the_grant_then_the_call_lasts_what_was_allowed(brain, edge):
    decision = edge.post("/sip/v1/authorize", json=_decision_request(brain, "granted-1")).json()
    assert decision["allow"] is True and decision["grant"].startswith("7200.")
    common = {
        "call_id": "granted-1",
        "user": "amina",
        "dialled": MOBILE,
        "grant": decision["grant"],
    }
    hours = 3 * 3_600_000
    events = [
        {**common, "type": "answer", "at_ms": NOW_MS, "carrier": "ma-flat"},
        {**common, "type": "end", "at_ms": NOW_MS + hours, "duration_ms": hours},
    ]
    assert edge.post("/sip/v1/events", json={"events": events}).status_code == 200
    call = edge.get("/admin/v1/calls/granted-1", headers=ADMIN).json()
    assert call["duration_ms"] == 7200 * 1000
    # the grant is bound to the username: another subscriber's events cannot ride on it
    stolen = [{**events[0], "user": "karim", "call_id": "granted-1"}]
    assert edge.post("/sip/v1/events", json={"events": stolen}).status_code == 422


def test_the_edge_token_is_generated_per_data_dir_private_and_rendered_for_the_edge(tmp_path):
    first = Settings(data_dir=tmp_path / "one")
    token = first.resolved_edge_token()
    assert len(token) >= 40 and first.resolved_edge_token() == token
    path = tmp_path / "one" / "edge.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Settings(data_dir=tmp_path / "two").resolved_edge_token() != token
    assert f"#!define TAWASOL_EDGE_TOKEN {token}\n" in render_config(first, run_dir=tmp_path)
    config = write_config(first, tmp_path / "run")
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600


# -- faults 2 and 4: nothing is counted before the digest verified, and only once -------------
def test_given_wrong_or_stale_digests_when_deciding_then_nothing_counted(brain, edge):
    # karim's stolen-nonce attack: response="x", or a well-formed answer from a wrong password
    for index, answer in enumerate(
        [
            'Digest username="amina", realm="tawasol.local", nonce="stale", '
            'uri="sip:x@edge", response="x"',
            digest_answer(user="amina", ha1="0" * 32, realm="tawasol.local", uri="sip:x@edge"),
            "",
        ]
    ):
        body = edge.post(
            "/sip/v1/authorize", json=_decision_request(brain, f"bad-{index}", answer=answer)
        ).json()
        assert body["allow"] is False
        assert body["reason"] in ("credentials_rejected", "credentials_missing")
        assert body["routes"] == [] and body["grant"] is None
    assert _calls_in_progress(edge) == 0
    # amina may have one call at a time: the real one goes through, a second is the limit
    assert edge.post("/sip/v1/authorize", json=_decision_request(brain, "real")).json()["allow"]
    second = edge.post("/sip/v1/authorize", json=_decision_request(brain, "second")).json()
    assert second["reason"] == "concurrent_limit"


def test_given_a_digest_answer_used_by_one_call_when_another_call_shows_it_then_refused(
    brain, edge
):
    answer = credentials(brain, "amina", MOBILE)
    first = edge.post("/sip/v1/authorize", json=_decision_request(brain, "c-1", answer=answer))
    assert first.json()["allow"] is True
    # the same INVITE again (a retransmission) is the same call
    again = edge.post("/sip/v1/authorize", json=_decision_request(brain, "c-1", answer=answer))
    assert again.json()["allow"] is True
    replayed = edge.post("/sip/v1/authorize", json=_decision_request(brain, "c-2", answer=answer))
    assert replayed.json()["reason"] == "credentials_replayed"
    assert _calls_in_progress(edge) == 1


# -- fault 3: repeated failures are told to the operator --------------------------------------
def test_given_repeated_failures_from_an_address_then_the_operator_sees_a_report(brain, edge):
    wrong = digest_answer(user="amina", ha1="1" * 32, realm="tawasol.local", uri="sip:x@edge")
    for index in range(3):
        request = _decision_request(brain, f"guess-{index}", answer=wrong)
        edge.post("/sip/v1/authorize", json={**request, "source_ip": "203.0.113.9"})
    assert edge.get("/admin/v1/security/auth-failures").status_code == 401
    reports = edge.get("/admin/v1/security/auth-failures", headers=ADMIN).json()
    assert [(r["sip_username"], r["source_ip"], r["failures"]) for r in reports] == [
        ("amina", "203.0.113.9", 3)
    ]
    assert reports[0]["known_subscriber"] is True
    # kept across a restart, for the subscriber's notices to send
    restarted = build_brain(brain.settings, clock=lambda: NOW)
    try:
        kept = restarted.credentials.reports()
    finally:
        restarted.close()
    assert [(r.sip_username, r.source_ip, r.failures) for r in kept] == [
        ("amina", "203.0.113.9", 3)
    ]


# -- fault 7: bodies are authenticated and size-checked before they are read ----------------
class Body:
    """An ASGI receive() for a body of `size` bytes in 1 MB chunks, counting what was read."""

    def __init__(self, size: int, chunk: int = 1 << 20) -> None:
        self.left = size
        self.chunk = chunk
        self.read = 0

    async def __call__(self) -> dict:
        piece = min(self.chunk, self.left)
        self.left -= piece
        self.read += piece
        return {"type": "http.request", "body": b" " * piece, "more_body": self.left > 0}


def _send_raw(app, path: str, body: Body, headers: dict[str, str]) -> int:
    statuses: list[int] = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, body, send))
    return statuses[0]


@pytest.mark.parametrize("path", ["/admin/v1/explain", "/admin/v1/plans", "/sip/v1/authorize"])
def test_given_an_unauthenticated_50_mb_body_then_401_before_reading_it(brain, path):
    app = create_app(brain)
    body = Body(50 << 20)
    json_type = {"Content-Type": "application/json", "Content-Length": str(50 << 20)}
    assert _send_raw(app, path, body, json_type) == 401
    assert body.read == 0


def test_given_an_admin_body_over_the_limit_then_413_having_read_at_most_the_limit(brain):
    app = create_app(brain)
    announced = Body(50 << 20)
    headers = {**ADMIN, "Content-Type": "application/json"}
    assert (
        _send_raw(app, "/admin/v1/explain", announced, {**headers, "Content-Length": str(50 << 20)})
        == 413
    )
    assert announced.read == 0
    unannounced = Body(50 << 20)  # chunked: no Content-Length
    assert _send_raw(app, "/admin/v1/explain", unannounced, headers) == 413
    assert unannounced.read <= brain.settings.admin_body_limit_bytes + (1 << 20)


def test_admin_requests_within_the_limit_still_work(brain, edge):
    response = edge.post(
        "/admin/v1/explain",
        headers=ADMIN,
        json={"sip_username": "amina", "dialled": MOBILE},
    )
    assert response.status_code == 200, response.text


def test_events_are_accepted_with_their_grants(brain, edge):
    event = {
        "call_id": "signed",
        "type": "failure",
        "at_ms": NOW_MS,
        "user": "amina",
        "dialled": MOBILE,
        "sip_code": 486,
    }
    response = edge.post("/sip/v1/events", json={"events": granted(brain, [event])})
    assert response.status_code == 200
