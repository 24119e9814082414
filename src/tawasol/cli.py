"""The `tawasol` command: set up, run and inspect a tawasol operator.

    tawasol init                      create or upgrade the database
    tawasol seed --sample             load the sample operator
    tawasol up / down                 run / stop the brain and the Kamailio edge
    tawasol serve                     run the brain's HTTP API alone
    tawasol sip config                the Kamailio configuration for these settings
    tawasol explain USER NUMBER       why a call is (or is not) allowed
    tawasol subscriber add|list|show  manage subscribers
    tawasol plan list                 the plans on sale

Global options (`--data-dir`, `--database-url`) override the TAWASOL_* environment.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from tawasol.config import Settings

if TYPE_CHECKING:
    from tawasol.composition import Brain
from tawasol.domain.decision import CallRequest
from tawasol.domain.errors import InvalidInput, NotFound, TawasolError, Unavailable

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

    return build_brain(_settings())


def _fail(error: TawasolError) -> typer.Exit:
    code = next(code for kind, code in EXIT_CODES if isinstance(error, kind))
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
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(settings.resolved_database_url)
    except TawasolError as error:
        raise _fail(error) from error
    console.print(f"database ready: {_redact(settings.resolved_database_url)}")


@app.command()
def seed(
    sample: Annotated[bool, typer.Option("--sample", help="Load the sample operator.")] = False,
    carrier_host: Annotated[str, typer.Option(help="Where the sample carriers listen.")] = (
        "127.0.0.1"
    ),
    carrier_first_port: Annotated[
        int, typer.Option(help="Port of the first sample carrier; the others follow by 2.")
    ] = 5080,
) -> None:
    """Load data into the database (today: the sample operator)."""
    from tawasol.services.sample_operator import seed_sample_operator

    if not sample:
        errors.print("nothing to seed: pass --sample")
        raise typer.Exit(2)
    brain = _brain()
    try:
        created = seed_sample_operator(
            brain.catalog,
            now=brain.clock(),
            carrier_host=carrier_host,
            carrier_first_port=carrier_first_port,
        )
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()
    table = Table(title="sample subscribers created (SIP username / password)")
    for column in ("SIP user", "password", "plan", "status", "time zone"):
        table.add_column(column)
    for entry in created:
        table.add_row(
            entry.sip_username, entry.password, entry.plan_code, entry.status.value, entry.time_zone
        )
    console.print("sample plans and carriers loaded")
    if created:
        console.print(table)
    else:
        console.print("sample subscribers already present")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the brain's HTTP API (SIP decision API + admin API) in the foreground."""
    import uvicorn

    from tawasol.adapters.api.app import create_app

    settings = _settings()
    brain = _brain()
    try:
        brain.authorizer.snapshot()
    except TawasolError as error:
        brain.close()
        raise _fail(error) from error
    uvicorn.run(
        create_app(brain),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
        access_log=False,
    )
    brain.close()


@app.command()
def up() -> None:
    """Run the platform in the foreground: the brain's API and the Kamailio SIP edge."""
    from tawasol.adapters.platform import start_platform, supervise

    settings = _settings()
    try:
        settings.check()
        platform = start_platform(settings)
    except TawasolError as error:
        raise _fail(error) from error
    console.print(f"brain API   {settings.api_url}  (OpenAPI: {settings.api_url}/docs)")
    console.print(f"SIP edge    sip:{settings.sip_listen}:{settings.sip_port}  (UDP and TCP)")
    console.print(f"logs        {platform.brain.log}  {platform.edge.log}")
    console.print("Ctrl-C (or `tawasol down` from another shell) stops both.")
    code = supervise(
        platform,
        settings=settings,
        on_exit=lambda why: console.print(f"stopped: {why}", highlight=False),
        on_event=lambda what: console.print(
            f"{datetime.now(UTC):%H:%M:%S}Z {what}", highlight=False
        ),
    )
    if code:
        raise typer.Exit(code)


@app.command()
def down() -> None:
    """Stop a platform started with `tawasol up` (from any shell)."""
    from tawasol.adapters.platform import stop_platform

    stopped = stop_platform(_settings())
    console.print("stopped " + ", ".join(stopped) if stopped else "nothing was running")


sip_app = typer.Typer(help="The Kamailio SIP edge.", no_args_is_help=True)
app.add_typer(sip_app, name="sip")


@sip_app.command("config")
def sip_config(
    check: Annotated[bool, typer.Option(help="Also have kamailio -c check it.")] = False,
) -> None:
    """Print the Kamailio configuration rendered from the settings."""
    from tawasol.adapters.platform import run_dir_for
    from tawasol.adapters.sip import check_config, render_config, write_config

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
        raise InvalidInput("set TAWASOL_ADMIN_TOKEN to the running brain's admin token")
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
        try:
            body = response.json()
            message = body.get("message", response.text)
        except ValueError:
            message = response.text
        raise (NotFound if response.status_code == 404 else InvalidInput)(str(message))
    return response.json()


def _status_table(rows: list[dict[str, object]]) -> Table:
    table = Table(title="carriers (quality over the last 5 minutes)")
    for column in (
        "carrier",
        "state",
        "channels use/eff/contract",
        "attempts",
        "ASR",
        "NER",
        "ACD",
        "PDD p50/p95",
        "cost/min",
    ):
        table.add_column(column)

    def ratio(value: object) -> str:
        return f"{float(value):.0%}" if isinstance(value, int | float) else "-"

    for row in rows:
        overall = next(
            (q for q in row["quality"] if q["country"] is None),  # type: ignore[attr-defined]
            None,
        )
        effective = row["effective_channels"]
        contracted = row["contracted_channels"]
        state = str(row["state"]) + (" (de-preferred)" if row["de_preferred"] else "")
        colour = {"up": "green", "down": "red", "full": "yellow"}.get(str(row["state"]), "white")
        rate = (
            f"{row['rate_min_per_minute']}-{row['rate_max_per_minute']} {row['currency']}"
            if row["rate_min_per_minute"]
            else "flat rate"
        )
        table.add_row(
            str(row["code"]),
            f"[{colour}]{state}[/{colour}]",
            f"{row['channels_in_use']}/{effective if effective is not None else '-'}"
            f"/{contracted if contracted is not None else '-'}",
            str(overall["attempts"]) if overall else "0",
            ratio(overall["asr"]) if overall else "-",
            ratio(overall["ner"]) if overall else "-",
            f"{overall['acd_s']:.0f} s" if overall and overall["acd_s"] is not None else "-",
            f"{overall['pdd_p50_ms']}/{overall['pdd_p95_ms']} ms"
            if overall and overall["pdd_p50_ms"] is not None
            else "-",
            rate,
        )
    return table


@carriers_app.command("status")
def carriers_status(
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 seconds.")] = False,
) -> None:
    """State, channels, ASR/NER/ACD/PDD of every carrier, from the running brain."""
    import time

    from rich.live import Live

    try:
        rows = _api("GET", "/admin/v1/carriers/status")
        if not watch:
            console.print(_status_table(rows))  # type: ignore[arg-type]
            return
        with Live(_status_table(rows), console=console, refresh_per_second=1) as live:  # type: ignore[arg-type]
            while True:
                time.sleep(2)
                live.update(_status_table(_api("GET", "/admin/v1/carriers/status")))  # type: ignore[arg-type]
    except TawasolError as error:
        raise _fail(error) from error
    except KeyboardInterrupt:
        return


@carriers_app.command("capacity")
def carriers_capacity(
    code: Annotated[str, typer.Argument(help="Carrier code.")],
    channels: Annotated[
        int | None, typer.Argument(help="Most simultaneous calls; omit with --contract.")
    ] = None,
    contract: Annotated[bool, typer.Option("--contract", help="Back to the contract.")] = False,
) -> None:
    """Cap a carrier's simultaneous calls at run time (every brain applies it at once)."""
    if (channels is None) == (not contract):
        errors.print("give a number of channels, or --contract")
        raise typer.Exit(2)
    try:
        row = _api(
            "PUT", f"/admin/v1/carriers/{code}/capacity", json={"effective_channels": channels}
        )
    except TawasolError as error:
        raise _fail(error) from error
    console.print(_status_table([row]))  # type: ignore[list-item]


@carriers_app.command("events")
def carriers_events(
    code: Annotated[str, typer.Argument(help="Carrier code.")],
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """The carrier's state changes, newest first."""
    brain = _brain()
    try:
        events = brain.store.list_carrier_events(carrier=code, limit=limit)
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()
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
) -> None:
    """Print the decision for a call and every reason behind it."""
    brain = _brain()
    try:
        subscriber = brain.catalog.find_subscriber(sip_user)
        when = _parse_at(at, subscriber.time_zone if subscriber else "UTC", brain.clock())
        decision = brain.authorizer.explain(
            CallRequest(sip_username=sip_user, dialled=number), now=when
        )
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()
    colour = "green" if decision.allowed else "red"
    verdict = "ALLOWED" if decision.allowed else f"DENIED: {decision.reason.value}"
    console.print(f"[bold {colour}]{verdict}[/bold {colour}]  ({when.isoformat()})")
    for line in decision.explanation:
        console.print(f"  - {line}", highlight=False)
    if decision.allowed:
        table = Table(title=f"routes, tried in order (cut after {decision.max_duration})")
        for column in ("#", "carrier", "billing", "cost/min", "gateway URI", "timeout"):
            table.add_column(column)
        for index, route in enumerate(decision.routes, start=1):
            table.add_row(
                str(index),
                route.carrier,
                route.billing.value,
                str(route.cost_per_minute) if route.cost_per_minute else "-",
                route.uri,
                f"{route.timeout_ms} ms",
            )
        console.print(table)
    else:
        console.print(f"  SIP reply: {decision.sip_code} {decision.sip_reason}")


def _parse_at(text: str | None, time_zone: str, now: datetime) -> datetime:
    if text is None:
        return now
    try:
        value = datetime.fromisoformat(text)
    except ValueError as error:
        raise InvalidInput("--at must be ISO 8601, e.g. 2026-11-24T14:00", at=text) from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(time_zone))
    return value


# -- subscribers and plans --------------------------------------------------------------------
@subscriber_app.command("add")
def subscriber_add(
    sip_username: Annotated[str, typer.Argument(help="SIP username, e.g. amina")],
    name: Annotated[str, typer.Option(help="Full name.")],
    phone: Annotated[str, typer.Option(help="Their own phone, international, e.g. +336...")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    plan: Annotated[str | None, typer.Option(help="Subscribe to this plan now.")] = None,
    email: Annotated[str, typer.Option()] = "",
    locale: Annotated[str, typer.Option(help="fr, ar or en.")] = "fr",
    time_zone: Annotated[str, typer.Option(help="e.g. Europe/Paris")] = "Europe/Paris",
) -> None:
    """Add a subscriber (and optionally subscribe them to a plan)."""
    brain = _brain()
    try:
        subscriber = brain.catalog.add_subscriber(
            name=name,
            email=email,
            phone=phone,
            locale=locale,
            time_zone=time_zone,
            sip_username=sip_username,
            password=password,
        )
        console.print(f"subscriber {subscriber.sip_username} added with id {subscriber.id}")
        if plan:
            subscription = brain.catalog.subscribe(subscriber_id=subscriber.id, plan_code=plan)
            console.print(f"subscribed to {plan} until {subscription.period_end:%Y-%m-%d %H:%M %Z}")
    except TawasolError as error:
        raise _fail(error) from error
    finally:
        brain.close()


@subscriber_app.command("list")
def subscriber_list(
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    offset: Annotated[int, typer.Option(min=0)] = 0,
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
                status = "active" if latest.usable_at(now) else latest.status.value
                if latest.status.value == "active" and not latest.usable_at(now):
                    status = "period over"
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
        calls = brain.store.list_calls(subscriber_id=subscriber.id, limit=10)
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
    for column in ("code", "name", "price", "destinations", "hours", "fair use", "on sale"):
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


def main() -> None:
    try:
        app()
    except TawasolError as error:  # pragma: no cover - commands catch their own
        errors.print(f"error: {error.message}")
        sys.exit(1)
