"""What every `tawasol` command shares: the app and its global options, settings, a brain
for one command, asking the running brain, errors and exit codes, time arguments."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from typer.core import TyperOption

from tawasol.config import Settings

if TYPE_CHECKING:
    from tawasol.composition import Brain
    from tawasol.domain.subscribers import Subscriber
from tawasol.domain.errors import (
    InvalidConfiguration,
    InvalidInput,
    NotFound,
    TawasolError,
    Unavailable,
)


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """Typer 0.2x labels every flag `<bool>` in --help although a flag takes no value."""
    return None if self.is_flag else _option_type(self, ctx)


_option_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

app = typer.Typer(help="tawasol: unlimited international calling plans.", no_args_is_help=True)

console = Console()
errors = Console(stderr=True)

# Exit codes by error class: scripts can tell a typo from an outage.
EXIT_CODES: tuple[tuple[type[TawasolError], int], ...] = (
    (InvalidInput, 2),
    (NotFound, 3),
    (Unavailable, 4),
    (TawasolError, 1),
)


PORTS: dict[str, int] = {"min": 1, "max": 65535}


class _State:
    settings: Settings | None = None


state = _State()


@app.callback()
def main_options(
    data_dir: Annotated[
        Path | None, typer.Option(help="Data directory (SQLite file, run files).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL; default SQLite in the data directory.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    try:
        state.settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        errors.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from error


def current_settings() -> Settings:
    if state.settings is None:  # pragma: no cover - the callback always runs first
        state.settings = Settings()
    return state.settings


def open_brain() -> Brain:
    from tawasol.composition import build_brain

    settings = current_settings()
    require_database(settings)
    try:
        return build_brain(settings)
    except TawasolError as error:  # e.g. Redis or the database unreachable: its exit code
        raise fail(error) from error


def require_database(settings: Settings) -> None:
    """End the command, creating nothing, when the SQLite database it would open is absent:
    run from another working directory, the default `./var` is not the operator's data, and
    opening it would leave an empty database and keys there. Only `tawasol init` creates one."""
    url = settings.resolved_database_url
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return  # a server database: nothing is created by connecting to it
    database = Path(url.removeprefix("sqlite:///").partition("?")[0]).resolve()
    if database.exists():
        return
    raise fail(
        NotFound(
            f"no tawasol database at {database} (data directory {settings.data_dir}, "
            "relative to the working directory unless absolute). Point at the right one with "
            "--data-dir DIR or TAWASOL_DATA_DIR=DIR (or TAWASOL_DATABASE_URL for PostgreSQL), "
            "or create this one with `tawasol init`",
            database=str(database),
        )
    )


@contextmanager
def brain_session() -> Iterator[Brain]:
    """A brain for one command: its errors end the command with their exit code, and it is
    closed (refused calls still queued are written) whatever happens."""
    brain = open_brain()
    try:
        yield brain
    except TawasolError as error:
        raise fail(error) from error
    finally:
        brain.close()


def subscriber_named(brain: Brain, sip_username: str) -> Subscriber:
    """The subscriber with this SIP username (found ignoring case); NotFound otherwise."""
    subscriber = brain.catalog.find_subscriber(sip_username)
    if subscriber is None:
        raise NotFound("no subscriber with this SIP username", sip_username=sip_username)
    return subscriber


def fail(error: TawasolError) -> typer.Exit:
    code = (
        error.exit_code
        if isinstance(error, RemoteError)
        else next(code for kind, code in EXIT_CODES if isinstance(error, kind))
    )
    detail = "".join(f"\n  {key}: {value}" for key, value in error.details.items())
    errors.print(f"[red]error ({error.error_id}):[/red] {error.message}{detail}")
    return typer.Exit(code)


def ask_brain(method: str, path: str, **kwargs: object) -> object:
    """Ask the running brain (live channel counts and probing live in its memory)."""
    import httpx

    settings = current_settings()
    token = settings.admin_token.get_secret_value()
    if not token:
        raise InvalidConfiguration(
            "set TAWASOL_ADMIN_TOKEN to the running brain's admin token (scripts/run keeps it "
            "in var/admin-token)"
        )
    try:
        response = httpx.request(
            method,
            f"{settings.api_url}{path}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5.0,
            **kwargs,  # type: ignore[arg-type]
        )
    except httpx.HTTPError as error:
        raise Unavailable(
            f"the brain does not answer at {settings.api_url}: is `tawasol up` running?"
        ) from error
    if response.status_code >= 400:
        raise remote_error(response.status_code, response.text)
    return response.json()


class RemoteError(TawasolError):
    """An error the running brain answered with, under the brain's own `error_id`."""

    def __init__(self, error_id: str, message: str, exit_code: int, **details: object) -> None:
        super().__init__(message, **details)
        self.error_id = error_id
        self.exit_code = exit_code


# HTTP status of the brain's answer -> exit code (as EXIT_CODES for errors raised here).
_EXIT_BY_STATUS = {401: 5, 403: 5, 404: 3, 409: 1, 413: 2, 422: 2, 503: 4}


def remote_error(status: int, text: str) -> RemoteError:
    """The brain's error document as an error of this command, with the same `error_id`."""
    import json

    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"error_id": "unavailable" if status >= 500 else "invalid_input", "message": text}
    details: dict[str, object] = body["details"] if isinstance(body.get("details"), dict) else {}
    return RemoteError(
        str(body.get("error_id") or "tawasol_error"),
        str(body.get("message") or text),
        _EXIT_BY_STATUS.get(status, 4 if status >= 500 else 1),
        **details,
    )


def parse_at(text: str | None, time_zone: str, now: datetime, *, option: str = "--at") -> datetime:
    """`text` (ISO 8601) as an instant within `Instant`'s bounds, read in `time_zone` without
    an offset; errors name `option`, the option the user typed."""
    from pydantic import TypeAdapter

    from tawasol.adapters.api.schemas import Instant

    if text is None:
        return now
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise InvalidInput(
            f"{option} must be ISO 8601, e.g. 2026-11-24T14:00", **{option[2:]: text}
        ) from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(time_zone))
    try:
        return TypeAdapter(Instant).validate_python(value)
    except ValidationError as error:
        problem = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{option} {problem}", **{option[2:]: text}) from error


def redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url
