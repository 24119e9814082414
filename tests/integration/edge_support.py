"""What a real SIP edge puts on its requests to the brain, for tests that play the edge over
HTTP: its bearer token, a phone's digest answer (RFC 2617 §3.2.2, computed here independently
of the brain's own check) and the grants of the calls it reports."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from tawasol.adapters.api.app import create_app
from tawasol.composition import Brain


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def edge_headers(brain: Brain) -> dict[str, str]:
    return {"Authorization": f"Bearer {brain.settings.resolved_edge_token()}"}


@contextmanager
def edge_client(brain: Brain, *, raise_server_exceptions: bool = False) -> Iterator[TestClient]:
    """The brain's app (started and stopped with the block, without a runtime), spoken to as
    the edge: every request carries the edge's bearer token. A 500 comes back as a response
    unless `raise_server_exceptions`."""
    with TestClient(create_app(brain), raise_server_exceptions=raise_server_exceptions) as client:
        client.headers.update(edge_headers(brain))
        yield client


def digest_answer(
    *,
    user: str,
    ha1: str,
    realm: str,
    uri: str,
    method: str = "INVITE",
    nonce: str | None = None,
    cnonce: str | None = None,
    nc: str = "00000001",
) -> str:
    """The Proxy-Authorization value a phone knowing the password (its HA1) sends."""
    nonce = nonce or secrets.token_hex(16)
    cnonce = cnonce or secrets.token_hex(8)
    ha2 = _md5(f"{method}:{uri}")
    response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
    )


def credentials(brain: Brain, user: str, dialled: str) -> str:
    """A right digest answer for `user` (a wrong one for a username nobody has)."""
    subscriber = brain.catalog.find_subscriber(user)
    ha1 = subscriber.ha1 if subscriber else "0" * 32
    return digest_answer(
        user=user, ha1=ha1, realm=brain.settings.sip_realm, uri=f"sip:{dialled}@edge"
    )


def decide(client: Any, *, user: str, dialled: str, call_id: str) -> dict[str, Any]:
    """`POST /sip/v1/authorize` as the edge sends it for a phone that knows its password."""
    response = client.post(
        "/sip/v1/authorize",
        json={
            "call_id": call_id,
            "user": user,
            "dialled": dialled,
            "credentials": credentials(client.app.state.brain, user, dialled),
        },
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def granted(brain: Brain, events: list[dict[str, Any]], max_duration_s: int = 7200) -> list[dict]:
    """The events with the grant the brain would have given their calls."""
    return [
        {
            **event,
            "grant": brain.grants.issue(
                call_id=event["call_id"],
                username=event.get("user", ""),
                max_duration_s=max_duration_s,
            ),
        }
        for event in events
    ]
