"""`tawasol billing run|payment|credits`: renewals, invoices, outage credits."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

if TYPE_CHECKING:
    pass
from tawasol.cli.common import (
    app,
    console,
    current_settings,
    errors,
    fail,
    parse_at,
)
from tawasol.domain.errors import (
    InvalidInput,
    TawasolError,
)

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
        moment = parse_at(at, "UTC", system_clock())
        run, billing_store = build_billing_run(current_settings())
    except TawasolError as error:
        raise fail(error) from error
    try:
        with Progress(console=errors, transient=True) as progress:
            task = progress.add_task("billing", total=None)
            summary = run.run(
                at=moment,
                dry_run=dry_run,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except TawasolError as error:
        raise fail(error) from error
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
        _, billing_store = build_billing_run(current_settings())
    except TawasolError as error:
        raise fail(error) from error
    try:
        new = ManualPayments(store=billing_store).record(
            subscriber_id=subscriber_id, amount=money, reference=reference, at=system_clock()
        )
        balance = billing_store.account(subscriber_id=subscriber_id, currency=money.currency)
    except TawasolError as error:
        raise fail(error) from error
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
        _, billing_store = build_billing_run(current_settings())
    except TawasolError as error:
        raise fail(error) from error
    try:
        totals = credits_per_incident(
            billing_store.documents(entity_code=current_settings().billing_entity_code)
        )
    except TawasolError as error:
        raise fail(error) from error
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
