"""`tawasol calls report` and `tawasol explain`: calls made, and why a call is (not) allowed."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

if TYPE_CHECKING:
    pass
from tawasol.cli.common import (
    app,
    ask_brain,
    brain_session,
    console,
    current_settings,
    errors,
    parse_at,
)
from tawasol.domain.decision import CallRequest
from tawasol.domain.errors import (
    InvalidConfiguration,
    InvalidInput,
    Unavailable,
)

calls_app = typer.Typer(help="Call detail records.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")


@calls_app.command("report")
def calls_report(
    since: Annotated[str, typer.Option(help="From (ISO 8601, included), e.g. 2026-11-24.")],
    until: Annotated[str | None, typer.Option(help="To (excluded); default now.")] = None,
) -> None:
    """Calls answered, not answered and refused (per reason code) in a period, in UTC unless
    an offset is given."""
    with brain_session() as brain:
        start = parse_at(since, "UTC", brain.clock(), option="--since")
        end = parse_at(until, "UTC", brain.clock(), option="--until")
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

    with brain_session() as brain:
        subscriber = brain.catalog.find_subscriber(sip_user)
        if subscriber is not None:
            sip_user = subscriber.sip_username  # found ignoring case: `AMINA` is amina
        when = parse_at(at, subscriber.time_zone if subscriber else "UTC", brain.clock())
        answer: ExplainOut | None = None
        # Why the answer was not asked of the running brain (None: it was).
        why_local: str | None = "--database-only was given"
        if not database_only:
            try:
                answer = ExplainOut.model_validate(
                    ask_brain(
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
        console.print(
            f"(answered by the running brain at {current_settings().api_url})", style="dim"
        )
    else:
        errors.print(
            "[yellow]read from the database only[/yellow]: the carriers' live state (down, "
            f"full, capped by an operator) is NOT taken into account ({why_local})."
        )
