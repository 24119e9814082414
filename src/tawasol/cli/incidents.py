"""`tawasol incidents list|show|open|update|resolve|reopen|merge|notices`: the operator's
incidents and the progress of their notices.

Works on the database directly (like `tawasol subscriber`): a running brain reads every
incident again before it changes one, and a change from a stale read is refused (Conflict), so
the CLI and the brain never overwrite each other. Every change names its author (`--author`,
else the login name).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from tawasol.cli.common import app, brain_session, console, fail
from tawasol.domain.errors import InvalidInput
from tawasol.domain.incidents import Incident, IncidentKind, IncidentState
from tawasol.domain.notices import NoticeStatus
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutageScope
from tawasol.services.incidents import IncidentService, describe

incidents_app = typer.Typer(help="Incidents: outages seen or announced.", no_args_is_help=True)
app.add_typer(incidents_app, name="incidents")

AuthorOption = Annotated[
    str | None, typer.Option("--author", help="Who makes the change (default: login name).")
]
FrOption = Annotated[str | None, typer.Option("--fr", help="Message in French.")]
ArOption = Annotated[str | None, typer.Option("--ar", help="Message in Arabic.")]
EnOption = Annotated[str | None, typer.Option("--en", help="Message in English.")]


def _author(author: str | None) -> str:
    return author or getpass.getuser()


def _messages(fr: str | None, ar: str | None, en: str | None) -> dict[str, str]:
    return {lang: text for lang, text in (("fr", fr), ("ar", ar), ("en", en)) if text}


def _scope(scope: str | None) -> OutageScope | None:
    """COUNTRY[/KIND[/RANGE HOLDER]], e.g. MA, MA/mobile, "MA/mobile/Maroc Telecom"."""
    if not scope:
        return None
    parts = scope.split("/", 2)
    country = parts[0].strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise InvalidInput("a scope starts with an ISO country code: MA, MA/mobile, ...")
    kind = None
    if len(parts) > 1 and parts[1]:
        try:
            kind = NumberKind(parts[1].strip())
        except ValueError as error:
            raise InvalidInput(
                "the kind of a scope is fixed, mobile or fixed_or_mobile", kind=parts[1]
            ) from error
        if not kind.routable:
            raise InvalidInput("the kind of a scope is fixed, mobile or fixed_or_mobile")
    holder = parts[2].strip() if len(parts) > 2 and parts[2].strip() else None
    return OutageScope(country, kind, holder)


def _act(change: Callable[[IncidentService], Incident]) -> None:
    """Run one change on a brain's incidents service, then print the incident."""

    with brain_session() as brain:
        incident = change(brain.incidents)
    _print(incident)


def _print(incident: Incident) -> None:

    scope = describe(incident.scope)
    console.print(
        f"[bold]#{incident.id}[/bold] {incident.title}\n"
        f"  {incident.kind.value} · {incident.state.value} · {scope}"
        + (f" · carrier {incident.carrier}" if incident.carrier else "")
        + (" · customer-facing" if incident.customer_facing else "")
        + f"\n  started {incident.started_at.isoformat(timespec='seconds')}"
        + (
            f", resolved {incident.resolved_at.isoformat(timespec='seconds')}"
            if incident.resolved_at
            else ""
        )
        + (f"\n  merged into #{incident.merged_into}" if incident.merged_into else "")
    )
    for stretch in incident.impact:
        end = stretch.end.isoformat(timespec="seconds") if stretch.end else "now"
        console.print(
            f"  impact {stretch.impact.value}: {stretch.start.isoformat(timespec='seconds')}"
            f" - {end}"
        )
    for update in incident.updates:
        texts = " | ".join(f"{lang}: {text}" for lang, text in update.message.items())
        console.print(
            f"  {update.at.isoformat(timespec='seconds')} {update.state.value} "
            f"({update.author}) {texts}"
        )
    if incident.postmortem:
        console.print(f"  postmortem: {incident.postmortem}")


@incidents_app.command("list")
def incidents_list(
    all_: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Incidents, newest first (open ones unless --all)."""

    with brain_session() as brain:
        incidents = brain.incidents.list_incidents(open_only=not all_, limit=limit)
    table = Table(title="incidents")
    for column in ("id", "state", "kind", "scope", "carrier", "customers", "started", "title"):
        table.add_column(column)
    for incident in incidents:
        table.add_row(
            str(incident.id),
            incident.state.value,
            incident.kind.value,
            describe(incident.scope),
            incident.carrier or "-",
            "affected" if incident.customer_facing else "-",
            incident.started_at.isoformat(timespec="seconds"),
            incident.title,
        )
    console.print(table)


@incidents_app.command("show")
def incidents_show(incident_id: Annotated[int, typer.Argument(min=1)]) -> None:
    """One incident: scope, impact over time, timeline, postmortem, audit."""

    with brain_session() as brain:
        incident = brain.incidents.get(incident_id)
        audit = brain.incidents.audit(incident_id)
    _print(incident)
    for entry in audit:
        console.print(
            f"  audit: {entry.at.isoformat(timespec='seconds')} {entry.action} by {entry.author}"
        )


@incidents_app.command("open")
def incidents_open(
    title: Annotated[str, typer.Argument(help="A short title.")],
    kind: Annotated[IncidentKind, typer.Option(help="carrier, destination or maintenance.")],
    scope: Annotated[
        str | None, typer.Option(help='COUNTRY[/KIND[/RANGE HOLDER]]: "MA/mobile/Maroc Telecom".')
    ] = None,
    carrier: Annotated[str | None, typer.Option(help="Carrier code (carrier incidents).")] = None,
    impact: Annotated[
        OutageImpact | None, typer.Option(help="Customer-facing from the start: partial, major.")
    ] = None,
    started_at: Annotated[
        datetime | None, typer.Option(help="When it started (ISO 8601, with offset).")
    ] = None,
    fr: FrOption = None,
    ar: ArOption = None,
    en: EnOption = None,
    author: AuthorOption = None,
) -> None:
    """Open an incident by hand (a carrier announces maintenance or ends its contract)."""
    _act(
        lambda incidents: incidents.open(
            author=_author(author),
            kind=kind,
            title=title,
            message=_messages(fr, ar, en),
            carrier=carrier,
            scope=_scope(scope),
            started_at=started_at,
            impact=impact,
        )
    )


@incidents_app.command("update")
def incidents_update(
    incident_id: Annotated[int, typer.Argument(min=1)],
    state: Annotated[
        IncidentState | None, typer.Option(help="investigating, identified or monitoring.")
    ] = None,
    impact: Annotated[
        str | None, typer.Option(help="Customer impact now: partial, major or none.")
    ] = None,
    notify: Annotated[
        bool,
        typer.Option("--notify", help="Tell the affected subscribers (at most once per window)."),
    ] = False,
    fr: FrOption = None,
    ar: ArOption = None,
    en: EnOption = None,
    author: AuthorOption = None,
) -> None:
    """Add an update to the timeline (refused on a resolved incident: reopen it first)."""
    if impact not in (None, "none", "partial", "major"):
        raise fail(InvalidInput("impact is partial, major or none", impact=impact))
    _act(
        lambda incidents: incidents.update(
            incident_id,
            author=_author(author),
            message=_messages(fr, ar, en),
            state=state,
            impact=OutageImpact(impact) if impact in ("partial", "major") else None,
            end_impact=impact == "none",
            notify=notify,
        )
    )


@incidents_app.command("resolve")
def incidents_resolve(
    incident_id: Annotated[int, typer.Argument(min=1)],
    postmortem: Annotated[str | None, typer.Option(help="What happened and what changes.")] = None,
    fr: FrOption = None,
    ar: ArOption = None,
    en: EnOption = None,
    author: AuthorOption = None,
) -> None:
    """Resolve an incident (its customer impact ends now)."""
    _act(
        lambda incidents: incidents.resolve(
            incident_id,
            author=_author(author),
            message=_messages(fr, ar, en),
            postmortem=postmortem,
        )
    )


@incidents_app.command("reopen")
def incidents_reopen(
    incident_id: Annotated[int, typer.Argument(min=1)],
    fr: FrOption = None,
    ar: ArOption = None,
    en: EnOption = None,
    author: AuthorOption = None,
) -> None:
    """Reopen a resolved incident (the outage came back)."""
    _act(
        lambda incidents: incidents.reopen(
            incident_id, author=_author(author), message=_messages(fr, ar, en)
        )
    )


@incidents_app.command("merge")
def incidents_merge(
    incident_id: Annotated[int, typer.Argument(min=1, help="The duplicate.")],
    into: Annotated[int, typer.Option(min=1, help="The incident that carries on.")],
    author: AuthorOption = None,
) -> None:
    """Merge a duplicate incident into another (the same outage seen twice)."""

    with brain_session() as brain:
        incident = brain.incidents.merge(incident_id, into=into, author=_author(author))
    _print(incident)


@incidents_app.command("notices")
def incidents_notices(
    incident_id: Annotated[
        int | None, typer.Option("--incident", min=1, help="One incident's notices only.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Progress of personal notices and alerts per channel: queued, sending, sent, delivered
    (where the channel reports it: SMS receipts), failed."""

    with brain_session() as brain:
        progress = brain.notices.outbox.progress(incident_id=incident_id)
    states = list(NoticeStatus)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    channel.value: {state.value: counts.get(state, 0) for state in states}
                    for channel, counts in sorted(progress.items())
                }
            )
        )
        return
    title = f"notices of incident {incident_id}" if incident_id else "notices"
    table = Table(title=title)
    for column in ("channel", *(state.value for state in states), "total"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    for channel, counts in sorted(progress.items()):
        table.add_row(
            channel.value,
            *(str(counts.get(state, 0)) for state in states),
            str(sum(counts.values())),
        )
    console.print(table)
