"""`tawasol direct trunk|pool|caller-id|contact`: calling from any phone (docs/direct-numbers.md).

`caller-id add` sends the verification code by SMS when an SMSC is configured; without one, or
when the SMSC does not take the SMS, it prints the code for the operator to pass on to the
subscriber (the code is never stored in clear and not shown again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tawasol.adapters.api.schemas import Id, bounds
from tawasol.cli.common import app, brain_session, console, subscriber_named
from tawasol.domain.direct_numbers import InboundTrunk, national_format
from tawasol.domain.errors import InvalidInput

direct_app = typer.Typer(
    help="Direct numbers: inbound trunks, the pool, caller IDs, contacts.", no_args_is_help=True
)
trunk_app = typer.Typer(help="Inbound trunks (DID providers).", no_args_is_help=True)
pool_app = typer.Typer(help="The pool of direct numbers.", no_args_is_help=True)
caller_app = typer.Typer(help="The numbers a subscriber calls from.", no_args_is_help=True)
contact_app = typer.Typer(
    help="A subscriber's contacts and their direct numbers.", no_args_is_help=True
)
direct_app.add_typer(trunk_app, name="trunk")
direct_app.add_typer(pool_app, name="pool")
direct_app.add_typer(caller_app, name="caller-id")
direct_app.add_typer(contact_app, name="contact")
app.add_typer(direct_app, name="direct")

User = Annotated[str, typer.Argument(help="The subscriber's SIP username.")]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read {path}: {error}") from error


# -- trunks ---------------------------------------------------------------------------------------
@trunk_app.command("set")
def trunk_set(
    code: Annotated[str, typer.Argument(help="Trunk code, e.g. fr-did.")],
    name: Annotated[str, typer.Option(help="The provider's name.")],
    country: Annotated[str, typer.Option(help="ISO country its numbers are read with.")],
    address: Annotated[
        list[str], typer.Option(help="An address or network it calls from (repeat).")
    ],
    number_range: Annotated[
        list[str] | None, typer.Option("--range", help="E.164 prefix of its numbers (repeat).")
    ] = None,
    trust_asserted_identity: Annotated[
        bool, typer.Option("--trust-pai", help="Read the caller from P-Asserted-Identity.")
    ] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Refuse its calls.")] = False,
) -> None:
    """Create or replace an inbound trunk (its rate deck is kept)."""
    with brain_session() as brain:
        existing = brain.direct_numbers.trunks_by_code().get(code)
        trunk = InboundTrunk(
            code=code,
            name=name,
            country=country.upper(),
            addresses=tuple(address),
            number_ranges=tuple(number_range or ()),
            trust_asserted_identity=trust_asserted_identity,
            enabled=not disabled,
            **({"rate_deck": existing.rate_deck} if existing else {}),
        )
        brain.direct_numbers.save_trunk(trunk)
    console.print(f"inbound trunk {code} saved")


@trunk_app.command("list")
def trunk_list() -> None:
    """The inbound trunks."""
    with brain_session() as brain:
        trunks = brain.direct_numbers.trunks()
    table = Table(title="inbound trunks")
    for column in ("code", "name", "country", "addresses", "ranges", "PAI", "rates", "on"):
        table.add_column(column)
    for trunk in trunks:
        table.add_row(
            trunk.code,
            trunk.name,
            trunk.country,
            " ".join(trunk.addresses),
            " ".join(trunk.number_ranges) or "(country)",
            "trusted" if trunk.trust_asserted_identity else "-",
            str(len(trunk.rate_deck)),
            "yes" if trunk.enabled else "no",
        )
    console.print(table)


@trunk_app.command("rates")
def trunk_rates(
    code: Annotated[str, typer.Argument(help="Trunk code.")],
    import_file: Annotated[Path, typer.Option("--import", help="The rate deck CSV.")],
) -> None:
    """Replace what the provider charges per minute, by the caller's number (the carriers'
    rate-deck CSV: prefix, rate, currency, effective_from, increment); all or nothing."""
    from tawasol.adapters.rate_deck_csv import parse_rate_deck

    with brain_session() as brain:
        rates = parse_rate_deck(_read(import_file))
        brain.direct_numbers.replace_trunk_rates(code, rates)
    console.print(f"{code}: {len(rates)} rates imported")


# -- the pool -------------------------------------------------------------------------------------
@pool_app.command("import")
def pool_import(
    file: Annotated[Path, typer.Argument(help="CSV: number;trunk[;description].")],
) -> None:
    """Add the file's numbers to the pool: all or nothing (a bad row imports none)."""
    from tawasol.adapters.pool_csv import parse_pool_csv

    with brain_session() as brain:
        added = brain.direct_numbers.import_pool(parse_pool_csv(_read(file)))
    console.print(f"{added} numbers added to the pool")


@pool_app.command("usage")
def pool_usage() -> None:
    """Pool usage: numbers per subscriber, the most used numbers, and who is running out."""
    with brain_session() as brain:
        usage = brain.direct_numbers.usage()
    console.print(f"pool: {usage.pool_size} numbers")
    most = Table(title="most used direct numbers (active contacts)")
    most.add_column("number")
    most.add_column("contacts")
    for number, count in list(usage.subscribers_per_number.items())[:10]:
        most.add_row(number, str(count))
    console.print(most)
    if usage.alert:
        console.print(
            f"[red]ALERT:[/red] {len(usage.running_out)} subscriber(s) have fewer than "
            f"{usage.alert_below} free numbers: "
            + ", ".join(f"#{sid} ({left} left)" for sid, left in usage.running_out.items())
        )


# -- caller IDs -----------------------------------------------------------------------------------
@caller_app.command("add")
def caller_add(user: User, number: Annotated[str, typer.Argument(help="Their phone.")]) -> None:
    """Register a number the subscriber calls from; a code is sent to it by SMS (shown here
    when no SMSC is configured or it did not take the SMS: read it to the subscriber, then
    `caller-id verify`)."""
    with brain_session() as brain:
        issued = brain.direct_numbers.register_caller_id(subscriber_named(brain, user).id, number)
    if issued.sent:
        console.print(f"{issued.caller_id.number}: verification code sent by SMS")
    else:
        console.print(
            f"{issued.caller_id.number}: the code could not go by SMS (no SMSC configured, "
            "or it did not take the message), give the subscriber this code "
            f"(valid 15 minutes): [bold]{issued.code}[/bold]"
        )


@caller_app.command("verify")
def caller_verify(
    user: User,
    number: Annotated[str, typer.Argument(help="The registered phone.")],
    code: Annotated[str, typer.Argument(help="The code the subscriber received.")],
) -> None:
    """Verify a registered number with its code: from now on its calls are the subscriber's."""
    with brain_session() as brain:
        caller = brain.direct_numbers.verify_caller_id(
            subscriber_named(brain, user).id, number, code
        )
    console.print(f"{caller.number}: verified")


@caller_app.command("remove")
def caller_remove(user: User, number: Annotated[str, typer.Argument()]) -> None:
    with brain_session() as brain:
        brain.direct_numbers.remove_caller_id(subscriber_named(brain, user).id, number)
    console.print(f"{number}: removed")


@caller_app.command("list")
def caller_list(user: User) -> None:
    with brain_session() as brain:
        callers = brain.direct_numbers.caller_ids(subscriber_named(brain, user).id)
    for caller in callers:
        console.print(f"{caller.number}  {'verified' if caller.verified else 'NOT verified'}")


# -- contacts -------------------------------------------------------------------------------------
@contact_app.command("add")
def contact_add(
    user: User,
    name: Annotated[str, typer.Argument(help="e.g. Maman.")],
    number: Annotated[str, typer.Argument(help="Their number abroad, covered by the plan.")],
) -> None:
    """Add a contact and give it a direct number from the pool."""
    with brain_session() as brain:
        contact = brain.direct_numbers.add_contact(
            subscriber_named(brain, user).id, name=name, number=number
        )
    console.print(
        f"contact #{contact.id}: call {national_format(contact.direct_number)} "
        f"to reach {contact.name} ({contact.number})"
    )


@contact_app.command("remove")
def contact_remove(user: User, contact_id: Annotated[int, typer.Argument(**bounds(Id))]) -> None:
    """Remove a contact: its direct number stops ringing them now, and is not given to this
    subscriber again before the quarantine (TAWASOL_DIRECT_NUMBER_QUARANTINE_DAYS)."""
    with brain_session() as brain:
        contact = brain.direct_numbers.remove_contact(subscriber_named(brain, user).id, contact_id)
    console.print(f"contact #{contact.id} ({contact.name}) removed")


@contact_app.command("list")
def contact_list(user: User) -> None:
    with brain_session() as brain:
        contacts = brain.direct_numbers.contacts(subscriber_named(brain, user).id)
    table = Table(title=f"{user}: contacts")
    for column in ("id", "name", "number", "direct number"):
        table.add_column(column)
    for contact in contacts:
        table.add_row(
            str(contact.id), contact.name, contact.number, national_format(contact.direct_number)
        )
    console.print(table)
