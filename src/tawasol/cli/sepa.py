"""`tawasol payments sepa ...`: SEPA Direct Debit for the operator: mandates, the pain.008
file of a collection date, the bank's returns, the pain.001 file of refunds (docs/payments.md).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tawasol.cli.common import brain_session, console, errors
from tawasol.cli.payments import _table, payments_app
from tawasol.domain.errors import InvalidInput

if TYPE_CHECKING:
    from tawasol.composition import Brain
    from tawasol.domain.payments.sepa_collections import SepaBatch
    from tawasol.services.payments.sepa import SepaDirectDebit

sepa_app = typer.Typer(
    help="SEPA Direct Debit: mandates, debit files, returns, refunds.", no_args_is_help=True
)
payments_app.add_typer(sepa_app, name="sepa")
mandate_app = typer.Typer(help="Subscribers' SEPA mandates.", no_args_is_help=True)
sepa_app.add_typer(mandate_app, name="mandate")


def _sepa(brain: Brain) -> SepaDirectDebit:
    from tawasol.adapters.payments.sepa import SepaProvider

    if brain.settings.sepa_creditor() is None:
        raise InvalidInput(
            "SEPA Direct Debit is not set up: set TAWASOL_PAYMENTS_SEPA_CREDITOR_ID, "
            "_CREDITOR_NAME, _CREDITOR_IBAN and _CREDITOR_BIC (docs/payments.md)"
        )
    # anything else missing (billing's issuing entity, its VAT rates) says so itself
    provider = brain.payments.provider("sepa")
    assert isinstance(provider, SepaProvider)
    return provider.service


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise InvalidInput(f"{option} is a date YYYY-MM-DD", value=text) from error


@mandate_app.command("add")
def mandate_add(
    subscriber_id: Annotated[int, typer.Argument(help="The subscriber who signed.")],
    iban: Annotated[str, typer.Option(help="The account to debit (spaces allowed).")],
    holder: Annotated[str, typer.Option(help="The account holder's name, as the bank has it.")],
    signed_on: Annotated[str, typer.Option(help="Signature date, YYYY-MM-DD.")],
    bic: Annotated[str, typer.Option(help="The bank's BIC, when the subscriber gave it.")] = "",
    reference: Annotated[
        str, typer.Option(help="The paper mandate's reference; default: one is made.")
    ] = "",
    prenotification_days: Annotated[
        int | None,
        typer.Option(help="A shorter pre-notification period agreed in the mandate (days)."),
    ] = None,
) -> None:
    """Record a signed mandate; it becomes the subscriber's payment method."""
    details = {"iban": iban, "holder": holder, "signed_on": signed_on, "bic": bic}
    if reference:
        details["mandate_reference"] = reference
    if prenotification_days is not None:
        details["prenotification_days"] = str(prenotification_days)
    with brain_session() as brain:
        _sepa(brain)
        setup = brain.payments.set_up_method(
            subscriber_id=subscriber_id, provider="sepa", details=details
        )
    method = setup.method
    console.print(
        f"mandate {method.method_reference} ({method.label}): payment method {method.id}, "
        f"{method.status.value}"
    )


@mandate_app.command("revoke")
def mandate_revoke(
    reference: Annotated[str, typer.Argument(help="The mandate reference.")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
) -> None:
    """Revoke a mandate: nothing more is collected under it; its scheduled debits are
    cancelled and go to dunning (the subscriber is asked for another payment method)."""
    with brain_session() as brain:
        mandate, cancelled = _sepa(brain).revoke_mandate(reference, reason=reason)
    console.print(
        f"mandate {mandate.reference} revoked on {mandate.state_changed_on}; "
        f"{cancelled} scheduled debit(s) cancelled"
    )


@mandate_app.command("list")
def mandate_list(
    subscriber_id: Annotated[
        int | None, typer.Option("--subscriber", help="One subscriber's mandates.")
    ] = None,
) -> None:
    """Mandates with their state today (an unused one expires after 36 months)."""
    with brain_session() as brain:
        mandates = _sepa(brain).mandates(subscriber_id=subscriber_id)
    _table(
        "SEPA mandates",
        ["reference", "subscriber", "account", "holder", "signed", "last debit", "state", "why"],
        [
            [
                m.reference,
                str(m.subscriber_id),
                m.account.masked_iban,
                m.account.holder,
                m.signed_on.isoformat(),
                m.last_collection_on.isoformat() if m.last_collection_on else "",
                m.state.value,
                m.state_reason,
            ]
            for m in mandates
        ],
    )


def _write(batch: SepaBatch, output: Path | None) -> Path:
    path = output or Path(f"{batch.message_id}.xml")
    path.write_text(batch.xml, encoding="utf-8")
    return path


@sepa_app.command("batch")
def sepa_batch(
    collection_date: Annotated[
        str, typer.Option(help="The day the debits are collected (a TARGET2 day), YYYY-MM-DD.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(help="Where to write the pain.008 file; default: MESSAGE-ID.xml here."),
    ] = None,
) -> None:
    """Write the pain.008 file of every debit due by the date whose subscriber was told at
    least the pre-notification period before. Safe to re-run: a file already made for the
    date is written again as it was, nothing is debited twice."""
    with brain_session() as brain:
        service = _sepa(brain)
        day = _day(collection_date, "--collection-date")
        outcome = service.batch(collection_date=day)
        earlier = [
            b
            for b in service.store.batches(execution_date=day)
            if outcome.batch is None or b.id != outcome.batch.id
        ]
    if outcome.batch is not None:
        path = _write(outcome.batch, output)
        console.print(
            f"{path}: {outcome.batch.transactions} debit(s), {outcome.batch.control_sum}, "
            f"collected on {day.isoformat()} (message {outcome.batch.message_id})"
        )
    elif earlier:
        path = _write(earlier[-1], output)
        console.print(f"nothing new is due; {path}: the file made earlier for {day.isoformat()}")
    else:
        console.print(f"nothing is due for {day.isoformat()}: no file written")
    if outcome.renotified or outcome.cancelled:
        console.print(
            f"{outcome.renotified} debit(s) told a new amount, {outcome.cancelled} cancelled"
        )
    for collection_id, why in outcome.waiting[:20]:
        errors.print(f"debit {collection_id} waits: {why}")


@sepa_app.command("returns")
def sepa_returns(
    file: Annotated[Path, typer.Argument(help="The bank's camt.054 or pain.002 file.")],
) -> None:
    """Apply the bank's R-transactions: each returned debit is taken back in the ledger and
    goes to dunning; the mandates the bank says are unusable are closed. Importing the same
    file again changes nothing."""
    from tawasol.adapters.payments.sepa_xml import read_returns

    try:
        content = file.read_bytes()
    except OSError as error:
        errors.print(f"[red]error:[/red] cannot read {file}: {error.strerror}")
        raise typer.Exit(2) from error
    with brain_session() as brain:
        outcome = _sepa(brain).import_returns(read_returns(content))
    reasons = ", ".join(f"{code} x{count}" for code, count in sorted(outcome.by_reason.items()))
    console.print(
        f"{outcome.applied} return(s) applied ({reasons or 'none'}), "
        f"{outcome.already} applied before"
    )
    for reference in outcome.mandates_closed:
        console.print(f"mandate {reference} closed")
    for end_to_end_id in outcome.unknown:
        errors.print(f"[yellow]{end_to_end_id}: no debit of this platform (left alone)[/yellow]")
    if outcome.unknown:
        raise typer.Exit(1)


@sepa_app.command("transfers")
def sepa_transfers(
    execution_date: Annotated[
        str, typer.Option(help="The day the bank pays them (a TARGET2 day), YYYY-MM-DD.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(help="Where to write the pain.001 file; default: MESSAGE-ID.xml here."),
    ] = None,
) -> None:
    """Write the pain.001 file paying every SEPA refund asked (`tawasol payments refund`)
    and not in a file yet, to the account each debit came from."""
    with brain_session() as brain:
        batch = _sepa(brain).transfers(execution_date=_day(execution_date, "--execution-date"))
    if batch is None:
        console.print("no refund is waiting: no file written")
        return
    path = _write(batch, output)
    console.print(f"{path}: {batch.transactions} refund(s), {batch.control_sum}")


@sepa_app.command("collections")
def sepa_collections(
    subscriber_id: Annotated[int, typer.Argument(help="The subscriber.")],
) -> None:
    """The subscriber's debits: amount, date announced, pre-notified on, state."""
    with brain_session() as brain:
        brain.catalog.get_subscriber(subscriber_id)
        service = _sepa(brain)
        rows = service.store.collections(subscriber_id=subscriber_id)
    if not rows:
        console.print(f"no SEPA debit for subscriber {subscriber_id}")
        return
    _table(
        f"SEPA debits of subscriber {subscriber_id}",
        ["id", "amount", "mandate", "date", "pre-notified", "presentations", "state"],
        [
            [
                str(c.id),
                str(c.amount),
                c.mandate_reference,
                c.due_on.isoformat(),
                c.notified_on.isoformat() if c.notified_on else "",
                str(c.presentations),
                c.state.value,
            ]
            for c in rows
        ],
    )
