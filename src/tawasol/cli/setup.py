"""`tawasol init|seed|serve|up|down` and `tawasol sip config`: set up and run the platform."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tawasol.config import Settings, private_directory

if TYPE_CHECKING:
    from tawasol.runtime.processes import Platform
from tawasol.cli.common import (
    PORTS,
    app,
    brain_session,
    console,
    current_settings,
    errors,
    fail,
    open_brain,
    redact,
    state,
)
from tawasol.domain.errors import (
    TawasolError,
)


# -- set up -----------------------------------------------------------------------------------
@app.command()
def init() -> None:
    """Create the database, or upgrade it to the current schema."""
    from tawasol.adapters.store import migrate

    settings = current_settings()
    try:
        settings.check()
        private_directory(settings.data_dir)
        migrate(settings.resolved_database_url)
        # The keys too (when not given as settings), so that later commands create nothing.
        settings.resolved_grant_key()
        settings.resolved_edge_token()
    except TawasolError as error:
        raise fail(error) from error
    console.print(f"database ready: {redact(settings.resolved_database_url)}")


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
    if not (demo or current_settings().demo):
        errors.print(
            "[red]refused:[/red] the sample operator's accounts have published passwords; load "
            "it only for a demonstration: `tawasol seed --sample --demo` (or TAWASOL_DEMO=true)"
        )
        raise typer.Exit(2)
    with brain_session() as brain:
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

    settings = current_settings()
    if demo or settings.demo:
        # Children (`tawasol up` starts the brain as `tawasol serve`) inherit demo mode.
        state.settings = settings.model_copy(update={"demo": True})
        errors.print(f"[bold yellow]{DEMO_BANNER}[/bold yellow]")
        return
    with brain_session() as brain:
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
    settings = current_settings()
    brain = open_brain()
    try:
        brain.authorizer.snapshot()
    except TawasolError as error:
        brain.close()
        raise fail(error) from error
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
    settings = current_settings()
    _check_billing(settings)  # before anything starts; the brain's runtime runs it
    try:
        settings.check()
        platform = start_platform(settings)
    except TawasolError as error:
        raise fail(error) from error
    console.print(f"brain API   {settings.api_url}  (OpenAPI: {settings.api_url}/docs)")
    console.print(f"SIP edge    sip:{settings.sip_listen}:{settings.sip_port}  (UDP and TCP)")
    console.print(f"logs        {platform.brain.log}  {platform.edge.log}")
    console.print("Ctrl-C (or `tawasol down` from another shell) stops both.")
    if settings.billing_vat_rates and settings.billing_run_interval_s:
        console.print(f"billing     every {settings.billing_run_interval_s} s (in the brain)")
    code = _supervised(platform, settings)
    if code:
        raise typer.Exit(code)


def _check_billing(settings: Settings) -> None:
    """Refuse to start with billing scheduled (VAT rates set) but its issuing entity or VAT
    table wrong: the brain's billing job would fail every round."""
    if not settings.billing_vat_rates or not settings.billing_run_interval_s:
        return
    from tawasol.composition import build_billing_run

    try:
        _, store = build_billing_run(settings)
    except TawasolError as error:
        raise fail(error) from error
    store.close()


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

    stopped = stop_platform(current_settings())
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

    settings = current_settings()
    try:
        settings.check()
        run_dir = run_dir_for(settings)
        if check:
            path = write_config(settings, run_dir)
            check_config(path)
            errors.print(f"{path}: kamailio -c found no error")
        sys.stdout.write(render_config(settings, run_dir=run_dir))
    except TawasolError as error:
        raise fail(error) from error
