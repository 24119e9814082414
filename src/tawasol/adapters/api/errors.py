"""One table maps every domain error to an HTTP status and a stable `error_id`.

Clients match on `error_id`, never on the message. Malformed JSON and schema violations are
422 with the field in error; nothing the client sends can produce a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tawasol.domain.errors import (
    Conflict,
    InvalidConfiguration,
    InvalidInput,
    InvalidNumber,
    InvalidSignature,
    NotFound,
    TawasolError,
    Unavailable,
)

log = logging.getLogger(__name__)

# Most specific first: the first class an error is an instance of decides.
ERROR_TABLE: tuple[tuple[type[TawasolError], int], ...] = (
    (InvalidSignature, 400),  # a webhook that does not verify: the provider reads 4xx
    (InvalidNumber, 422),
    (InvalidConfiguration, 422),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (TawasolError, 500),
)


# The `error_id` of an error the framework raises (routing, authentication), by HTTP status;
# any other status is `http_error`. Every id here and in ERROR_TABLE is listed in the README.
HTTP_ERROR_IDS: dict[int, str] = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_input",
    503: "unavailable",
}
OTHER_HTTP_ERROR_ID = "http_error"


def error_body(error_id: str, message: str, details: object = None) -> dict[str, object]:
    return {"error_id": error_id, "message": message, "details": details or {}}


def invalid_request_body(
    errors: Sequence[Any], *, location: tuple[str, ...] = ()
) -> dict[str, object]:
    """The 422 document for schema violations (pydantic's error list), one problem per field.

    `location` prefixes each field's path, e.g. ("body",) for errors of a request body
    validated outside FastAPI, so that both paths name fields the same way.
    """
    problems = [
        {
            "field": ".".join(str(part) for part in (*location, *problem.get("loc", ()))),
            "problem": problem.get("msg", ""),
        }
        for problem in errors
    ]
    first = problems[0] if problems else {"field": "", "problem": "invalid request"}
    message = f"invalid request: {first['field']}: {first['problem']}"
    return error_body("invalid_input", message, {"problems": problems})


def status_for(error: TawasolError) -> int:
    for error_type, status in ERROR_TABLE:
        if isinstance(error, error_type):
            return status
    return 500  # pragma: no cover - TawasolError is last in the table


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TawasolError)
    async def _domain_error(request: Request, error: TawasolError) -> JSONResponse:
        status = status_for(error)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, error.message)
        return JSONResponse(
            error_body(error.error_id, error.message, error.details), status_code=status
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(invalid_request_body(error.errors()), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        error_id = HTTP_ERROR_IDS.get(error.status_code, OTHER_HTTP_ERROR_ID)
        return JSONResponse(
            error_body(error_id, str(error.detail)),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )
