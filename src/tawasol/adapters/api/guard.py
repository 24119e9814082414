"""Who may send the brain a request body, and how large: checked before a byte of it is read.

The brain's two private APIs are guarded in front of everything else (the outermost ASGI
middleware), so that an unauthenticated or oversized request costs a header comparison, not a
JSON parse in the event loop that every decision waits on:

- `/sip/v1/*` (the SIP edge's decision and event API): `Authorization: Bearer <edge token>`
  (`Settings.resolved_edge_token()`), else 401 `edge_unauthorized`. A POST must say
  `Content-Type: application/json`, else 415: a browser page can send a cross-origin
  `text/plain` POST without a CORS preflight (Fetch standard, "CORS-safelisted request
  header"), but not one with an `Authorization` header or a JSON content type.
- `/admin/v1/*`: the admin bearer token (401, or 403 when none is configured), then the body
  is read up to `Settings.admin_body_limit_bytes` (the rate deck upload: its own limit) and
  refused with 413 beyond it, whether the client announced a `Content-Length` or not.

Tokens are compared in constant time (`hmac.compare_digest`). The routes keep their own checks
(`admin.require_admin`); this guard is what makes them cheap to refuse.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from tawasol.adapters.api.errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SIP_PREFIX = "/sip/"
ADMIN_PREFIX = "/admin/"
_JSON = b"application/json"


class BodyTooLarge(Exception):
    """A request body went past its limit while it was being read."""


@dataclass(frozen=True)
class Refusal:
    status: int
    error_id: str
    message: str
    headers: tuple[tuple[bytes, bytes], ...] = ()


_BEARER_CHALLENGE = ((b"www-authenticate", b"Bearer"),)


def bearer_matches(authorization: bytes, expected: str) -> bool:
    """True when an `Authorization` header value is `Bearer <expected>` (RFC 6750 §2.1)."""
    scheme, _, given = authorization.partition(b" ")
    if scheme.lower() != b"bearer" or not expected:
        return False
    return hmac.compare_digest(given.strip(), expected.encode())


class RequestGuard:
    """ASGI middleware: the token and the size of every private request, before its body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        edge_token: str,
        admin_token: str,
        admin_body_limit_bytes: int,
        large_bodies: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self._edge_token = edge_token
        self._admin_token = admin_token
        self._admin_limit = admin_body_limit_bytes
        # (method, path suffix) -> limit: uploads that may be larger than the admin default
        self._large_bodies = large_bodies or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(SIP_PREFIX):
            refusal = self._edge_refusal(scope)
            if refusal is not None:
                await _refuse(send, refusal)
                return
            await self.app(scope, receive, send)
            return
        if not path.startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        refusal = self._admin_refusal(scope)
        if refusal is None:
            limit = self._body_limit(scope)
            try:
                body = await read_body(receive, limit=limit, announced=_content_length(scope))
            except BodyTooLarge:
                refusal = Refusal(
                    413, "payload_too_large", f"the request body is larger than {limit} bytes"
                )
            else:
                await self.app(scope, _replay(body, receive), send)
                return
        await _refuse(send, refusal)

    def _edge_refusal(self, scope: Scope) -> Refusal | None:
        headers = _headers(scope)
        if not bearer_matches(headers.get(b"authorization", b""), self._edge_token):
            return Refusal(
                401,
                "edge_unauthorized",
                "the SIP decision API answers the edge only: send its bearer token",
                _BEARER_CHALLENGE,
            )
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if scope["method"] == "POST" and content_type != _JSON:
            return Refusal(415, "unsupported_media_type", "the body must be application/json")
        return None

    def _admin_refusal(self, scope: Scope) -> Refusal | None:
        if not self._admin_token:
            return Refusal(403, "forbidden", "admin API disabled: no admin token set")
        if not bearer_matches(_headers(scope).get(b"authorization", b""), self._admin_token):
            return Refusal(401, "unauthorized", "missing or wrong bearer token", _BEARER_CHALLENGE)
        return None

    def _body_limit(self, scope: Scope) -> int:
        path: str = scope["path"]
        for (method, suffix), limit in self._large_bodies.items():
            if scope["method"] == method and path.endswith(suffix):
                return limit
        return self._admin_limit


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope["headers"]}


def _content_length(scope: Scope) -> int | None:
    raw = _headers(scope).get(b"content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


async def read_body(receive: Receive, *, limit: int, announced: int | None = None) -> bytes:
    """The whole body, or BodyTooLarge as soon as it (or its announced length) passes `limit`."""
    if announced is not None and announced > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then waits on the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, refusal: Refusal) -> None:
    content = json.dumps(
        error_body(refusal.error_id, refusal.message), separators=(",", ":")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", _JSON),
                (b"content-length", str(len(content)).encode()),
                *refusal.headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})
