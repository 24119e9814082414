"""The decision API's hot path: `POST /sip/v1/authorize` and `POST /sip/v1/events`, answered
in front of FastAPI.

Every new call costs the edge one decision request, and the edge posts call events ten times
a second. Routed through FastAPI, each request went through routing, dependency solving and
a dozen ASGI layers that together cost more CPU than the decision itself (a profile under SIP
load: ~25% of the brain's time in the framework around two endpoints). This wrapper answers
exactly those two requests itself: it reads the body, validates it with the same models,
calls the same functions as the FastAPI routes (`sip.decide`, `sip.record_events`) and answers
with the same documents, errors included (422 `invalid_input` naming the field as FastAPI
does, the domain's error table for the rest). Any other request goes to the app unchanged.
Installed by `create_app` just inside `guard.RequestGuard`, which has already refused any
request without the edge's bearer token, and, with its own guard, in front of the framework
(`app.BrainApp.edge_front`), which is where the edge's requests are answered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from pydantic import ValidationError

from tawasol.adapters.api import sip
from tawasol.adapters.api.errors import error_body, invalid_request_body, status_for
from tawasol.adapters.api.guard import BodyTooLarge, read_body
from tawasol.adapters.api.schemas import AuthorizeIn, CallEventsIn
from tawasol.domain.errors import TawasolError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

AUTHORIZE_PATH = "/sip/v1/authorize"
EVENTS_PATH = "/sip/v1/events"
# A decision request is a few hundred bytes; a batch of 1,000 events (the most the schema
# accepts) is ~300 KB. Anything far larger is refused before it is read whole.
MAX_BODY_BYTES = {AUTHORIZE_PATH: 64 * 1024, EVENTS_PATH: 4 * 1024 * 1024}
_JSON_HEADERS = [(b"content-type", b"application/json")]


class SipFastPath:
    """ASGI middleware answering the edge's two requests without the framework."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in MAX_BODY_BYTES
        ):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        try:
            body = await read_body(receive, limit=MAX_BODY_BYTES[path])
        except BodyTooLarge:
            await _answer_json(
                send,
                413,
                error_body(
                    "payload_too_large",
                    f"the request body is larger than {MAX_BODY_BYTES[path]} bytes",
                ),
            )
            return
        brain = scope["app"].state.brain
        try:
            if path == AUTHORIZE_PATH:
                request = AuthorizeIn.model_validate_json(body)
                latency = scope["app"].state.decision_latency
                await _answer(send, 200, sip.decide(brain, request, latency))
            else:
                batch = CallEventsIn.model_validate_json(body)
                await _answer_json(send, 200, await sip.record_events(brain, batch))
        except ValidationError as error:
            problems = error.errors(include_url=False, include_context=False)
            await _answer_json(send, 422, invalid_request_body(problems, location=("body",)))
        except TawasolError as error:
            status = status_for(error)
            if status >= 500:
                log.error("POST %s: %s", path, error.message)
            await _answer_json(
                send, status, error_body(error.error_id, error.message, error.details)
            )


async def _answer_json(send: Send, status: int, document: object) -> None:
    await _answer(send, status, orjson.dumps(document))


async def _answer(send: Send, status: int, content: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})
