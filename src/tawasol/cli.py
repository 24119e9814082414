"""The `tawasol` command: set up, run and inspect a tawasol operator.

    tawasol init                      create or upgrade the database (data kept)
    tawasol seed --sample --demo      load the sample operator (demo mode, empty database)
    tawasol up / down                 run / stop the brain and the Kamailio edge
    tawasol serve                     run the brain's HTTP API alone
    tawasol sip config                the Kamailio configuration for these settings
    tawasol explain USER NUMBER       why a call is (or is not) allowed, from the running brain
    tawasol subscriber add|list|show|change-plan|password   manage subscribers
    tawasol plan list                 the plans on sale
    tawasol carriers status|capacity|events|rates  carriers at run time
    tawasol calls report --since DATE calls answered, not answered and refused per reason
    tawasol incidents list|show|open|update|resolve|reopen|merge   outages (docs/incidents.md)

Global options (`--data-dir`, `--database-url`) override the TAWASOL_* environment.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.table import Table
from typer.core import TyperOption

from tawasol.adapters.api.schemas import Channels, Limit, Offset, bounds
from tawasol.config import Settings, private_directory

if TYPE_CHECKING:
    from tawasol.composition import Brain
    from tawasol.runtime.processes import Platform
    from tawasol.services.billing.schedule import BillingScheduler
from tawasol.domain.decision import CallRequest
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
subscriber_app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)
plan_app = typer.Typer(help="The operator's plans.", no_args_is_help=True)
app.add_typer(subscriber_app, name="subscriber")
app.add_typer(plan_app, name="plan")

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


_state = _State()


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
        _state.settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        errors.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from error


def _settings() -> Settings:
    if _state.settings is None:  # pragma: no cover - the callback always runs first
        _state.settings = Settings()
    return _state.settings


def _brain() -> Brain:
    from tawasol.composition import build_brain

    settings = _settings()
    _require_database(settings)
    return build_brain(settings)


def _require_database(settings: Settings) -> None:
    """End the command, creating nothing, when the SQLite database it would open is absent:
    run from another working directory, the default `./var` is not the operator's data, and
    opening it would leave an empty database and keys there. Only `tawasol init` creates one."""
    url = settings.resolved_database_url
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return  # a server database: nothing is created by connecting to it
    database = Path(url.removeprefix("sqlite:///").partition("?")[0]).resolve()
    if database.exists():
        return
    raise _fail(
        NotFound(
            f"no tawasol database at {database} (data directory {settings.data_dir}, "
            "relative to the working directory unless absolute). Point at the right one with "
            "--data-dir DIR or TAWASOL_DATA_DIR=DIR (or TAWASOL_DATABASE_URL for PostgreSQL), "
            "or create this one with `tawasol init`",
            database=str(database),
        )
    )


@contextmanager
def _brain_session() -> Iterator[Brain]:
    """A brain for one command: its errors end the command with their exit code, and it is
    closed (refused calls still queued are written) whatever happens."""
    brain = _brain()
    try:
        yield brain
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()


def _fail(error: TawasolError) -> typer.Exit:
    code = (
        error.exit_code
        if isinstance(error, RemoteError)
        else next(code for kind, code in EXIT_CODES if isinstance(error, kind))
    )
    detail = "".join(f"\n  {key}: {value}" for key, value in error.details.items())
    errors.print(f"[red]error ({error.error_id}):[/red] {error.message}{detail}")
    return typer.Exit(code)


# -- set up -----------------------------------------------------------------------------------
@app.command()
def init() -> None:
    """Create the database, or upgrade it to the current schema."""
    from tawasol.adapters.store import migrate

    settings = _settings()
    try:
        settings.check()
        private_directory(settings.data_dir)
        migrate(settings.resolved_database_url)
        # The keys too (when not given as settings), so that later commands create nothing.
        settings.resolved_grant_key()
        settings.resolved_edge_token()
    except TawasolError as error:
        raise _fail(error) from error
    console.print(f"database ready: {_redact(settings.resolved_database_url)}")


@app.command()
def seed(
    sample: Annotated[bool, typer.Option("--sample", help="Load the sample operator.")] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Demo mode (as TAWASOL_DEMO=true): required.")
    ] = False,
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Skip quietly when the database already holds data."),
    ] = False,
    carrier_host: Annotated[str, typer.Option(help="Where the sample carriers listen.")] = (
        "127.0.0.1"
    ),
    carrier_first_port: Annotated[
        int,
        typer.Option(help="Port of the first sample carrier; the others follow by 2.", **PORTS),
    ] = 5080,
) -> None:
    """Load the sample operator into an EMPTY database, in demo mode only.

    Its subscribers' passwords are published in the README: never on a production platform.
    A database holding any plan, carrier or subscriber is left exactly as it is.
    """
    from tawasol.services.sample_operator import seed_sample_operator

    if not sample:
        errors.print("nothing to seed: pass --sample")
        raise typer.Exit(2)
    if not (demo or _settings().demo):
        errors.print(
            "[red]refused:[/red] the sample operator's accounts have published passwords; load "
            "it only for a demonstration: `tawasol seed --sample --demo` (or TAWASOL_DEMO=true)"
        )
        raise typer.Exit(2)
    with _brain_session() as brain:
        if if_empty and brain.catalog.holds_operator_data():
            console.print("the database already holds the operator's data: left as it is")
            return
        created = seed_sample_operator(
            brain.catalog,
            now=brain.clock(),
            carrier_host=carrier_host,
            carrier_first_port=carrier_first_port,
        )
    console.print(DEMO_BANNER, style="bold yellow")
    table = Table(title="sample subscribers created (SIP username / password)")
    for column in ("SIP user", "password", "plan", "status", "time zone"):
        table.add_column(column)
    for entry in created:
        table.add_row(
            entry.sip_username, entry.password, entry.plan_code, entry.status.value, entry.time_zone
        )
    console.print("sample plans and carriers loaded")
    console.print(table)


DEMO_BANNER = (
    "DEMO MODE: the sample operator's accounts have passwords published in the README. "
    "Never expose this platform to the internet or to real customers."
)


def _check_not_a_published_demo(demo: bool) -> None:
    """Outside demo mode, refuse to run while a sample account with its published password
    exists; in demo mode, say so loudly."""
    from tawasol.services.sample_operator import published_sample_accounts

    settings = _settings()
    if demo or settings.demo:
        # Children (`tawasol up` starts the brain as `tawasol serve`) inherit demo mode.
        _state.settings = settings.model_copy(update={"demo": True})
        errors.print(f"[bold yellow]{DEMO_BANNER}[/bold yellow]")
        return
    with _brain_session() as brain:
        exposed = [
            username
            for username, ha1 in published_sample_accounts(settings.sip_realm).items()
            if (found := brain.catalog.find_subscriber(username)) is not None and found.ha1 == ha1
        ]
    if exposed:
        errors.print(
            f"[red]refused:[/red] sample account(s) {', '.join(exposed)} still have the "
            "passwords published in the README. Run in demo mode (--demo or TAWASOL_DEMO=true), "
            "or give them new passwords first: `tawasol subscriber password USER` (works on the "
            "database, no brain needed)."
        )
        raise typer.Exit(2)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.", **PORTS)] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Demo mode (sample accounts).")] = False,
) -> None:
    """Run the brain's HTTP API (SIP decision API + admin API) in the foreground."""
    import uvicorn

    from tawasol.adapters.api.app import create_app
    from tawasol.runtime.jobs import brain_runtime

    _check_not_a_published_demo(demo)
    settings = _settings()
    brain = _brain()
    try:
        brain.authorizer.snapshot()
    except TawasolError as error:
        brain.close()
        raise _fail(error) from error
    uvicorn.run(
        create_app(brain, background=brain_runtime(brain)),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
        access_log=False,
    )
    brain.close()


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="Demo mode (sample accounts).")] = False,
) -> None:
    """Run the platform in the foreground: the brain's API and the Kamailio SIP edge."""
    from tawasol.runtime.processes import start_platform

    _check_not_a_published_demo(demo)
    settings = _settings()
    scheduler = _billing_scheduler(settings)  # its settings are checked before anything starts
    try:
        settings.check()
        platform = start_platform(settings)
    except TawasolError as error:
        raise _fail(error) from error
    console.print(f"brain API   {settings.api_url}  (OpenAPI: {settings.api_url}/docs)")
    console.print(f"SIP edge    sip:{settings.sip_listen}:{settings.sip_port}  (UDP and TCP)")
    console.print(f"logs        {platform.brain.log}  {platform.edge.log}")
    console.print("Ctrl-C (or `tawasol down` from another shell) stops both.")
    if scheduler is not None:
        scheduler.start()
        console.print(f"billing     every {settings.billing_run_interval_s} s")
    try:
        code = _supervised(platform, settings)
    finally:
        if scheduler is not None:
            scheduler.stop()
    if code:
        raise typer.Exit(code)


def _billing_scheduler(settings: Settings) -> BillingScheduler | None:
    """Billing on a timer inside `tawasol up`, once the operator has set the VAT rates."""
    if not settings.billing_vat_rates or not settings.billing_run_interval_s:
        return None
    from tawasol.adapters.clock import system_clock
    from tawasol.composition import build_billing_run
    from tawasol.services.billing.schedule import BillingScheduler

    try:
        run, _ = build_billing_run(settings)
    except TawasolError as error:
        raise _fail(error) from error
    scheduler = BillingScheduler(
        run=run,
        clock=system_clock,
        interval=timedelta(seconds=settings.billing_run_interval_s),
        on_summary=lambda summary: console.print(
            "billing: " + ", ".join(f"{k} {v}" for k, v in summary.rows() if v not in ("0", "")),
            highlight=False,
        ),
    )
    return scheduler


def _supervised(platform: Platform, settings: Settings) -> int:
    from tawasol.runtime.processes import supervise

    return supervise(
        platform,
        settings=settings,
        on_exit=lambda why: console.print(f"stopped: {why}", highlight=False),
        on_event=lambda what: console.print(
            f"{datetime.now(UTC):%H:%M:%S}Z {what}", highlight=False
        ),
    )


@app.command()
def down() -> None:
    """Stop a platform started with `tawasol up` (from any shell)."""
    from tawasol.runtime.processes import stop_platform

    stopped = stop_platform(_settings())
    console.print("stopped " + ", ".join(stopped) if stopped else "nothing was running")


sip_app = typer.Typer(help="The Kamailio SIP edge.", no_args_is_help=True)
app.add_typer(sip_app, name="sip")


@sip_app.command("config")
def sip_config(
    check: Annotated[bool, typer.Option(help="Also have kamailio -c check it.")] = False,
) -> None:
    """Print the Kamailio configuration rendered from the settings."""
    from tawasol.adapters.sip import check_config, render_config, write_config
    from tawasol.runtime.processes import run_dir_for

    settings = _settings()
    try:
        settings.check()
        run_dir = run_dir_for(settings)
        if check:
            path = write_config(settings, run_dir)
            check_config(path)
            errors.print(f"{path}: kamailio -c found no error")
        sys.stdout.write(render_config(settings, run_dir=run_dir))
    except TawasolError as error:
        raise _fail(error) from error


carriers_app = typer.Typer(help="Carriers: status, capacity, rate decks.", no_args_is_help=True)
app.add_typer(carriers_app, name="carriers")


def _api(method: str, path: str, **kwargs: object) -> object:
    """Ask the running brain (live channel counts and probing live in its memory)."""
    import httpx

    settings = _settings()
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
        raise _remote_error(response.status_code, response.text)
    return response.json()


class RemoteError(TawasolError):
    """An error the running brain answered with, under the brain's own `error_id`."""

    def __init__(self, error_id: str, message: str, exit_code: int, **details: object) -> None:
        super().__init__(message, **details)
        self.error_id = error_id
        self.exit_code = exit_code


# HTTP status of the brain's answer -> exit code (as EXIT_CODES for errors raised here).
_EXIT_BY_STATUS = {401: 5, 403: 5, 404: 3, 409: 1, 413: 2, 422: 2, 503: 4}


def _remote_error(status: int, text: str) -> RemoteError:
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


def _status_table(rows: list[dict[str, Any]], *, at: datetime) -> Table:
    """The carriers board, readable at 80 columns: short columns, rates without trailing
    zeros, the meaning of the abbreviations under the table, the figures' time in the title."""
    table = Table(
        title=f"carriers at {at:%H:%M:%S} (quality: last 5 minutes)",
        caption="chan.: in use/effective/contracted; per min: lowest-highest rate",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    for column in ("carrier", "state", "chan.", "calls", "ASR", "NER", "ACD", "PDD p50/95"):
        table.add_column(column, no_wrap=column != "state")
    table.add_column("per min")

    def ratio(value: object) -> str:
        return f"{float(value):.0%}" if isinstance(value, int | float) else "-"

    def count(value: object) -> str:
        return "-" if value is None else str(value)

    def amount(value: object) -> str:
        return format(Decimal(str(value)).normalize(), "f")

    for row in rows:
        overall = next((q for q in row["quality"] if q["country"] is None), None)
        state = str(row["state"]) + (" (last)" if row["de_preferred"] else "")
        if row.get("held_off_until"):
            state += f" until {str(row['held_off_until'])[11:19]} (Retry-After)"
        colour = {"up": "green", "down": "red", "full": "yellow", "held_off": "yellow"}.get(
            str(row["state"]), "white"
        )
        rate = (
            f"{amount(row['rate_min_per_minute'])}-{amount(row['rate_max_per_minute'])} "
            f"{row['currency']}"
            if row["rate_min_per_minute"]
            else "flat rate"
        )
        table.add_row(
            str(row["code"]),
            f"[{colour}]{state}[/{colour}]",
            f"{row['channels_in_use']}/{count(row['effective_channels'])}"
            f"/{count(row['contracted_channels'])}",
            str(overall["attempts"]) if overall else "0",
            ratio(overall["asr"]) if overall else "-",
            ratio(overall["ner"]) if overall else "-",
            f"{overall['acd_s']:.0f}s" if overall and overall["acd_s"] is not None else "-",
            f"{overall['pdd_p50_ms']}/{overall['pdd_p95_ms']}ms"
            if overall and overall["pdd_p50_ms"] is not None
            else "-",
            rate,
        )
    return table


@carriers_app.command("status")
def carriers_status(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 seconds.")] = False,
) -> None:
    """State, channels, ASR/NER/ACD/PDD of every carrier, from the running brain.

    With --watch on a terminal the table is redrawn in place; into a file or a pipe, one table
    per refresh is appended, each with its time.
    """
    import time

    from rich.live import Live

    def board() -> Table:
        rows = _api("GET", "/admin/v1/carriers/status")
        return _status_table(rows, at=datetime.now().astimezone())  # type: ignore[arg-type]

    try:
        if not watch:
            console.print(board())
            return
        if not console.is_terminal:
            while True:
                console.print(board())
                sys.stdout.flush()
                time.sleep(2)
        with Live(board(), console=console, refresh_per_second=1) as live:
            while True:
                time.sleep(2)
                live.update(board())
    except TawasolError as error:
        raise _fail(error) from error
    except KeyboardInterrupt:
        return


@carriers_app.command(
    "capacity",
    # A negative count must reach the check below, not be taken for an unknown option.
    context_settings={"ignore_unknown_options": True},
)
def carriers_capacity(
    code: Annotated[str, typer.Argument(help="Carrier code.")],
    channels: Annotated[
        str | None,
        typer.Argument(
            help="Most simultaneous calls, 0 to the contracted channels; omit with --contract.",
            metavar="CHANNELS",
            show_default=False,
        ),
    ] = None,
    contract: Annotated[bool, typer.Option("--contract", help="Back to the contract.")] = False,
) -> None:
    """Cap a carrier's simultaneous calls at run time (every brain applies it at once); the
    capacity learned from its congestion is forgotten at once."""
    if (channels is None) == (not contract):
        errors.print("give a number of channels, or --contract")
        raise typer.Exit(2)
    limits = bounds(Channels)
    count: int | None = None
    if channels is not None:
        try:
            count = int(channels)
        except ValueError:
            count = None
        if count is None or not limits["min"] <= count <= limits["max"]:
            errors.print(
                f"[red]error (invalid_input):[/red] channels must be a whole number from "
                f"{limits['min']} to the carrier's contracted channels, not {channels}"
            )
            raise typer.Exit(2)
    try:
        row = _api("PUT", f"/admin/v1/carriers/{code}/capacity", json={"effective_channels": count})
    except TawasolError as error:
        raise _fail(error) from error
    console.print(_status_table([row], at=datetime.now().astimezone()))  # type: ignore[list-item]


@carriers_app.command("events")
def carriers_events(
    code: Annotated[str, typer.Argument(help="Carrier code.")],
    limit: Annotated[int, typer.Option(**bounds(Limit))] = 50,
) -> None:
    """The carrier's state changes, newest first."""
    with _brain_session() as brain:
        brain.catalog.get_carrier(code)
        events = brain.carrier_events.list_carrier_events(carrier=code, limit=limit)
    table = Table(title=f"{code}: state changes")
    for column in ("at", "change", "channels", "detail"):
        table.add_column(column)
    for event in events:
        table.add_row(
            event.at.isoformat(timespec="seconds"),
            event.kind.value,
            str(event.effective_channels) if event.effective_channels is not None else "-",
            event.detail,
        )
    console.print(table)


@carriers_app.command("rates")
def carriers_rates(
    code: Annotated[str, typer.Argument(help="Carrier code.")],
    import_file: Annotated[
        Path | None, typer.Option("--import", help="Replace the rate deck with this CSV.")
    ] = None,
    export_file: Annotated[
        Path | None, typer.Option("--export", help="Write the rate deck to this CSV.")
    ] = None,
) -> None:
    """Import or export a carrier's per-minute rate deck (CSV: prefix, rate, currency,
    effective_from, increment). An import is all or nothing."""
    from tawasol.adapters.rate_deck_csv import parse_rate_deck, rate_deck_to_csv
    from tawasol.domain.carriers import RateDeck

    brain = _brain()
    try:
        if import_file is not None:
            try:
                text = import_file.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as error:
                raise InvalidInput(f"cannot read {import_file}: {error}") from error
            rates = parse_rate_deck(text)
            old = brain.catalog.replace_rate_deck(code, RateDeck(rates))
            console.print(f"{code}: {len(rates)} rates imported (replacing {old})")
        carrier = brain.catalog.get_carrier(code)
        if export_file is not None:
            export_file.write_text(rate_deck_to_csv(carrier.rate_deck.rates()), encoding="utf-8")
            console.print(f"{code}: {len(carrier.rate_deck)} rates written to {export_file}")
        elif import_file is None:
            sys.stdout.write(rate_deck_to_csv(carrier.rate_deck.rates()))
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()


calls_app = typer.Typer(help="Call detail records.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")


@calls_app.command("report")
def calls_report(
    since: Annotated[str, typer.Option(help="From (ISO 8601, included), e.g. 2026-11-24.")],
    until: Annotated[str | None, typer.Option(help="To (excluded); default now.")] = None,
) -> None:
    """Calls answered, not answered and refused (per reason code) in a period, in UTC unless
    an offset is given."""
    with _brain_session() as brain:
        start = _parse_at(since, "UTC", brain.clock(), option="--since")
        end = _parse_at(until, "UTC", brain.clock(), option="--until")
        if end <= start:
            raise InvalidInput("--until must be after --since")
        counts = brain.calls.count_calls(since=start, until=end)
    table = Table(title=f"calls from {start.isoformat()} to {end.isoformat()}")
    table.add_column("outcome")
    table.add_column("calls", justify="right")
    for key in ("total", "answered", "not_answered", "refused"):
        table.add_row(key.replace("_", " "), str(counts[key]))
    for key, value in sorted(counts.items()):
        if key.startswith("refused:"):
            table.add_row(f"  refused: {key.removeprefix('refused:')}", str(value))
    console.print(table)


billing_app = typer.Typer(help="Billing: renewals, invoices, outage credits.", no_args_is_help=True)
app.add_typer(billing_app, name="billing")


@billing_app.command("run")
def billing_run(
    at: Annotated[
        str | None, typer.Option(help="Bill as of this time (ISO 8601, UTC unless an offset).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what it would do.")] = False,
) -> None:
    """Renew what is due, defer renewals during long outages, credit closed incidents.

    Each step is written once: safe to re-run, and after a crash at any point."""
    from rich.progress import Progress

    from tawasol.adapters.clock import system_clock
    from tawasol.composition import build_billing_run

    try:
        moment = _parse_at(at, "UTC", system_clock())
        run, billing_store = build_billing_run(_settings())
    except TawasolError as error:
        raise _fail(error) from error
    try:
        with Progress(console=errors, transient=True) as progress:
            task = progress.add_task("billing", total=None)
            summary = run.run(
                at=moment,
                dry_run=dry_run,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        billing_store.close()
    title = f"billing {'dry run' if dry_run else 'run'} at {moment.isoformat()}"
    table = Table(title=title, box=box.SIMPLE)
    table.add_column("step")
    table.add_column("count / amount", justify="right")
    for label, value in summary.rows():
        table.add_row(label, value)
    console.print(table)
    for subscription_id, message in summary.errors[:20]:
        errors.print(f"[red]subscription {subscription_id}:[/red] {message}")
    if summary.errors:
        raise typer.Exit(1)


@billing_app.command("payment")
def billing_payment(
    subscriber_id: Annotated[int, typer.Argument(help="The subscriber who paid.")],
    amount: Annotated[str, typer.Argument(help="Amount received, e.g. 9.99.")],
    currency: Annotated[str, typer.Argument(help="ISO 4217 currency, e.g. EUR.")],
    reference: Annotated[str, typer.Option(help="The bank transfer's reference.")],
) -> None:
    """Record a payment received by bank transfer or cash (recorded once per reference)."""
    from tawasol.adapters.clock import system_clock
    from tawasol.composition import build_billing_run
    from tawasol.domain.money import Money
    from tawasol.services.billing.payments import ManualPayments

    try:
        money = Money.parse(amount, currency)
        if money.amount <= 0:
            raise InvalidInput("a payment is a positive amount", amount=amount)
        _, billing_store = build_billing_run(_settings())
    except TawasolError as error:
        raise _fail(error) from error
    try:
        new = ManualPayments(store=billing_store).record(
            subscriber_id=subscriber_id, amount=money, reference=reference, at=system_clock()
        )
        balance = billing_store.account(subscriber_id=subscriber_id, currency=money.currency)
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        billing_store.close()
    state = "recorded" if new else "already recorded"
    console.print(f"payment {reference}: {state}; balance owed {balance.balance}")


@billing_app.command("credits")
def billing_credits(
    csv_output: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
) -> None:
    """Outage credits per incident: the total of the credit notes issued for each."""
    from tawasol.composition import build_billing_run
    from tawasol.services.billing.reports import credits_per_incident

    try:
        _, billing_store = build_billing_run(_settings())
    except TawasolError as error:
        raise _fail(error) from error
    try:
        totals = credits_per_incident(
            billing_store.documents(entity_code=_settings().billing_entity_code)
        )
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        billing_store.close()
    rows = sorted(totals.items())
    if csv_output:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(["incident_id", "currency", "credited"])
        writer.writerows([incident, currency, str(total)] for (incident, currency), total in rows)
        return
    table = Table(title="outage credits per incident", box=box.SIMPLE)
    for column in ("incident", "currency", "credited"):
        table.add_column(column, justify="right")
    for (incident, currency), total in rows:
        table.add_row(str(incident), currency, str(total))
    console.print(table)


# -- support ----------------------------------------------------------------------------------
@app.command()
def explain(
    sip_user: Annotated[str, typer.Argument(help="The subscriber's SIP username.")],
    number: Annotated[str, typer.Argument(help="What they dialled, e.g. 00212661234567.")],
    at: Annotated[
        str | None,
        typer.Option(
            help="When (ISO 8601, e.g. 2026-11-24T14:00). Without an offset it is read in the "
            "subscriber's time zone. Default: now."
        ),
    ] = None,
    database_only: Annotated[
        bool,
        typer.Option(
            "--database-only", help="Do not ask the running brain; read the database only."
        ),
    ] = False,
) -> None:
    """Print the decision for a call and every reason behind it.

    Asks the running brain (`POST /admin/v1/explain`), which knows the carriers' live state
    (down, full, capped); when no brain answers, decides from the database alone and says so.
    """
    from tawasol.adapters.api.schemas import ExplainOut

    with _brain_session() as brain:
        subscriber = brain.catalog.find_subscriber(sip_user)
        if subscriber is not None:
            sip_user = subscriber.sip_username  # found ignoring case: `AMINA` is amina
        when = _parse_at(at, subscriber.time_zone if subscriber else "UTC", brain.clock())
        answer: ExplainOut | None = None
        # Why the answer was not asked of the running brain (None: it was).
        why_local: str | None = "--database-only was given"
        if not database_only:
            try:
                answer = ExplainOut.model_validate(
                    _api(
                        "POST",
                        "/admin/v1/explain",
                        json={"sip_username": sip_user, "dialled": number, "at": when.isoformat()},
                    )
                )
                why_local = None
            except (Unavailable, InvalidConfiguration) as error:
                why_local = error.message
        if answer is None:
            answer = ExplainOut.from_domain(
                brain.authorizer.explain(
                    CallRequest(sip_username=sip_user, dialled=number), now=when
                )
            )
    colour = "green" if answer.allow else "red"
    verdict = "ALLOWED" if answer.allow else f"DENIED: {answer.reason}"
    console.print(f"[bold {colour}]{verdict}[/bold {colour}]  ({when.isoformat()})")
    for line in answer.explanation:
        console.print(f"  - {line}", highlight=False)
    if answer.allow:
        cut = timedelta(seconds=answer.max_duration_s)
        table = Table(title=f"routes, tried in order (cut after {cut})")
        for column in ("#", "carrier", "billing", "cost/min", "gateway URI", "timeout"):
            table.add_column(column)
        for index, route in enumerate(answer.routes, start=1):
            table.add_row(
                str(index),
                route.carrier,
                route.billing,
                f"{route.cost_per_minute} {route.currency}" if route.cost_per_minute else "-",
                route.uri,
                f"{route.timeout_ms} ms",
            )
        console.print(table)
    else:
        console.print(f"  SIP reply: {answer.sip_code} {answer.sip_reason}")
    if why_local is None:
        console.print(f"(answered by the running brain at {_settings().api_url})", style="dim")
    else:
        errors.print(
            "[yellow]read from the database only[/yellow]: the carriers' live state (down, "
            f"full, capped by an operator) is NOT taken into account ({why_local})."
        )


def _parse_at(text: str | None, time_zone: str, now: datetime, *, option: str = "--at") -> datetime:
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


# -- subscribers and plans --------------------------------------------------------------------
@subscriber_app.command("add")
def subscriber_add(
    sip_username: Annotated[str, typer.Argument(help="SIP username, e.g. amina")],
    name: Annotated[str, typer.Option(help="Full name.")],
    phone: Annotated[str, typer.Option(help="Their own phone, international, e.g. +336...")],
    password: Annotated[
        str | None,
        typer.Option(
            help="SIP password (visible in the shell's history: prefer --ask-password); "
            "default: the platform generates one and prints it."
        ),
    ] = None,
    ask_password: Annotated[
        bool, typer.Option("--ask-password", help="Type the SIP password, hidden, twice.")
    ] = False,
    plan: Annotated[str | None, typer.Option(help="Subscribe to this plan now.")] = None,
    acknowledge: Annotated[
        list[int] | None,
        typer.Option(help="An incident the buyer was shown (plans in an outage need it)."),
    ] = None,
    email: Annotated[str, typer.Option()] = "",
    locale: Annotated[str, typer.Option(help="fr, ar or en.")] = "fr",
    time_zone: Annotated[str, typer.Option(help="e.g. Europe/Paris")] = "Europe/Paris",
) -> None:
    """Add a subscriber (and optionally subscribe them to a plan): all or nothing."""
    if ask_password:
        password = typer.prompt("SIP password", hide_input=True, confirmation_prompt=True)
    with _brain_session() as brain:
        if plan is not None:
            brain.sales_guard.check(brain.catalog.get_plan(plan), acknowledged=acknowledge or ())
        account = brain.catalog.add_subscriber(
            name=name,
            email=email,
            phone=phone,
            locale=locale,
            time_zone=time_zone,
            sip_username=sip_username,
            password=password,
            plan_code=plan,
        )
    subscriber = account.subscriber
    console.print(f"subscriber {subscriber.sip_username} added with id {subscriber.id}")
    if account.password is not None:
        console.print(
            f"SIP password (shown once, only its hash is kept): {account.password}",
            highlight=False,
        )
    if account.subscription is not None:
        console.print(
            f"subscribed to {account.subscription.plan_code} until "
            f"{account.subscription.period_end:%Y-%m-%d %H:%M %Z}"
        )


@subscriber_app.command("password")
def subscriber_password(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    ask_password: Annotated[
        bool, typer.Option("--ask-password", help="Type the SIP password, hidden, twice.")
    ] = False,
) -> None:
    """Give a subscriber a new SIP password, on the database (no running brain needed): a
    generated one, printed once, or with --ask-password one typed twice (checked for strength,
    never a published one)."""
    password = (
        typer.prompt("SIP password", hide_input=True, confirmation_prompt=True)
        if ask_password
        else None
    )
    with _brain_session() as brain:
        subscriber = brain.catalog.find_subscriber(sip_username)
        if subscriber is None:
            raise NotFound("no subscriber with this SIP username", sip_username=sip_username)
        account = brain.catalog.set_password(subscriber.id, password)
    console.print(f"{account.subscriber.sip_username}: new SIP password set")
    if account.password is not None:
        console.print(
            f"SIP password (shown once, only its hash is kept): {account.password}",
            highlight=False,
        )


@subscriber_app.command("list")
def subscriber_list(
    limit: Annotated[int, typer.Option(**bounds(Limit))] = 100,
    offset: Annotated[int, typer.Option(**bounds(Offset))] = 0,
) -> None:
    """List subscribers with their current plan."""
    brain = _brain()
    try:
        now = brain.clock()
        table = Table(title="subscribers")
        for column in ("id", "SIP user", "name", "phone", "time zone", "plan", "status"):
            table.add_column(column)
        for subscriber in brain.catalog.list_subscribers(offset=offset, limit=limit):
            subscriptions = brain.catalog.list_subscriptions(subscriber_id=subscriber.id)
            latest = max(subscriptions, key=lambda s: s.period_start, default=None)
            status = "-"
            if latest is not None:
                status = latest.status.value
                if latest.status.current and not now < latest.period_end:
                    status = f"{status}, period over"
            table.add_row(
                str(subscriber.id),
                subscriber.sip_username,
                subscriber.name,
                subscriber.phone,
                subscriber.time_zone,
                latest.plan_code if latest else "-",
                status,
            )
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()
    console.print(table)


@subscriber_app.command("change-plan")
def subscriber_change_plan(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    plan: Annotated[str, typer.Argument(help="The new plan's code.")],
    acknowledge: Annotated[
        list[int] | None,
        typer.Option(help="An incident the buyer was shown (plans in an outage need it)."),
    ] = None,
) -> None:
    """Move a subscriber to another plan now: the running subscription is cancelled and the
    new one starts, together."""
    with _brain_session() as brain:
        subscriber = brain.catalog.find_subscriber(sip_username)
        if subscriber is None:
            raise NotFound("no subscriber with this SIP username", sip_username=sip_username)
        brain.sales_guard.check(brain.catalog.get_plan(plan), acknowledged=acknowledge or ())
        subscription = brain.catalog.change_plan(subscriber_id=subscriber.id, plan_code=plan)
    console.print(
        f"{sip_username}: subscribed to {subscription.plan_code} until "
        f"{subscription.period_end:%Y-%m-%d %H:%M %Z} (the previous subscription is cancelled)"
    )


@subscriber_app.command("show")
def subscriber_show(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
) -> None:
    """Show a subscriber, their subscriptions and their latest calls."""
    brain = _brain()
    try:
        subscriber = brain.catalog.find_subscriber(sip_username)
        if subscriber is None:
            raise NotFound("no subscriber with this SIP username", sip_username=sip_username)
        subscriptions = brain.catalog.list_subscriptions(subscriber_id=subscriber.id)
        calls = brain.calls.list_calls(subscriber_id=subscriber.id, limit=10)
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()
    console.print(f"[bold]{subscriber.name}[/bold] ({subscriber.sip_username}, id {subscriber.id})")
    console.print(f"  email {subscriber.email or '-'}  phone {subscriber.phone}")
    console.print(f"  locale {subscriber.locale}  time zone {subscriber.time_zone}")
    table = Table(title="subscriptions")
    for column in ("id", "plan", "status", "period start", "period end"):
        table.add_column(column)
    for subscription in subscriptions:
        table.add_row(
            str(subscription.id),
            subscription.plan_code,
            subscription.status.value,
            subscription.period_start.isoformat(timespec="minutes"),
            subscription.period_end.isoformat(timespec="minutes"),
        )
    console.print(table)
    history = Table(title="latest calls")
    for column in ("started", "destination", "status", "carrier", "duration", "SIP"):
        history.add_column(column)
    for record in calls:
        history.add_row(
            record.started_at.isoformat(timespec="seconds"),
            record.destination or record.dialled,
            record.status.value,
            record.carrier or "-",
            f"{record.duration_ms / 1000:.0f} s" if record.duration_ms is not None else "-",
            str(record.final_sip_code or "-"),
        )
    console.print(history)


@plan_app.command("list")
def plan_list(
    locale: Annotated[str, typer.Option(help="Language of plan names: fr, ar or en.")] = "fr",
) -> None:
    """List plans with price, destinations, hours and fair-use limits."""
    brain = _brain()
    try:
        plans = brain.catalog.list_plans()
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()
    table = Table(title="plans")
    columns = ("code", "name", "price", "destinations", "hours", "cut after hours", "fair use")
    for column in (*columns, "on sale"):
        table.add_column(column)
    for plan in plans:
        fair = plan.fair_use
        limits = [
            f"{fair.minutes_per_period} min" if fair.minutes_per_period else "",
            f"{fair.distinct_numbers_per_period} numbers"
            if fair.distinct_numbers_per_period
            else "",
            f"{fair.concurrent_calls} at once" if fair.concurrent_calls else "",
            f"calls <= {fair.max_call_duration}" if fair.max_call_duration else "",
        ]
        table.add_row(
            plan.code,
            plan.name(locale),
            f"{plan.price}/{plan.period.value}",
            ", ".join(sorted(str(rule) for rule in plan.destinations)),
            "; ".join(window.describe() for window in plan.time_windows) or "any time",
            f"+{plan.window_grace // timedelta(minutes=1)} min" if plan.time_windows else "-",
            ", ".join(limit for limit in limits if limit),
            "yes" if plan.on_sale else "no",
        )
    console.print(table)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
    return url


from tawasol.cli_incidents import incidents_app  # noqa: E402 - needs the app above

app.add_typer(incidents_app, name="incidents")


def main() -> None:
    try:
        app()
    except TawasolError as error:  # pragma: no cover - commands catch their own
        errors.print(f"error: {error.message}")
        sys.exit(1)
