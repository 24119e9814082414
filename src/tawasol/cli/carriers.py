"""`tawasol carriers status|capacity|events|rates`: carriers at run time."""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from tawasol.adapters.api.schemas import Channels, Limit, bounds

if TYPE_CHECKING:
    pass
from tawasol.cli.common import (
    app,
    ask_brain,
    brain_session,
    console,
    errors,
    fail,
    open_brain,
)
from tawasol.domain.errors import (
    InvalidInput,
    TawasolError,
)

carriers_app = typer.Typer(help="Carriers: status, capacity, rate decks.", no_args_is_help=True)
app.add_typer(carriers_app, name="carriers")


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
        rows = ask_brain("GET", "/admin/v1/carriers/status")
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
        raise fail(error) from error
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
        row = ask_brain(
            "PUT", f"/admin/v1/carriers/{code}/capacity", json={"effective_channels": count}
        )
    except TawasolError as error:
        raise fail(error) from error
    console.print(_status_table([row], at=datetime.now().astimezone()))  # type: ignore[list-item]


@carriers_app.command("events")
def carriers_events(
    code: Annotated[str, typer.Argument(help="Carrier code.")],
    limit: Annotated[int, typer.Option(**bounds(Limit))] = 50,
) -> None:
    """The carrier's state changes, newest first."""
    with brain_session() as brain:
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

    brain = open_brain()
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
        raise fail(error) from error
    finally:
        brain.close()
