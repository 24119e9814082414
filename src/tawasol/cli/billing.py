"""`tawasol billing ...`: the run (renewals, invoices, outage credits), payments and refunds,
the subscription lifecycle (change-plan, cancel, pause, resume) and reports."""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from tawasol.cli.common import (
    app,
    brain_session,
    console,
    current_settings,
    errors,
    fail,
    parse_at,
    subscriber_named,
)
from tawasol.domain.billing.lifecycle import CancelReason
from tawasol.domain.errors import (
    InvalidInput,
    TawasolError,
)
from tawasol.services.billing.lifecycle import LifecycleOutcome, Timing
from tawasol.services.billing.reports import PeriodReport

if TYPE_CHECKING:
    from tawasol.composition import Brain

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


# -- the subscription lifecycle -----------------------------------------------------------------
def _subscriber_id(brain: Brain, sip_username: str) -> int:
    return subscriber_named(brain, sip_username).id


def _print_outcome(sip_username: str, what: str, outcome: LifecycleOutcome) -> None:
    subscription = outcome.subscription
    console.print(
        f"{sip_username}: {what}; subscription {subscription.id} {subscription.status.value} "
        f"on {subscription.plan_code} until {subscription.period_end:%Y-%m-%d %H:%M %Z}"
    )
    if outcome.terms.next_plan_code:
        console.print(f"  from the next renewal: {outcome.terms.next_plan_code}")
    if outcome.terms.cancel_at_period_end:
        console.print("  ends at its period end (no renewal)")
    if outcome.charged.amount:
        console.print(f"  charged {outcome.charged}")
    if outcome.credited.amount:
        console.print(f"  credited {outcome.credited}")
    for number in outcome.documents:
        console.print(f"  document {number}")


AtOption = Annotated[
    str | None, typer.Option("--at", help="When (ISO 8601, UTC unless an offset); default now.")
]
AtPeriodEnd = Annotated[
    bool, typer.Option("--at-period-end", help="At the end of the paid period, not now.")
]


@billing_app.command("change-plan")
def billing_change_plan(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    plan: Annotated[str, typer.Argument(help="The new plan's code.")],
    at_period_end: AtPeriodEnd = False,
    acknowledge: Annotated[
        list[int] | None,
        typer.Option(help="An incident the buyer was shown (plans in an outage need it)."),
    ] = None,
    at: AtOption = None,
) -> None:
    """Move a subscriber to another plan: now (the unused part of the old plan credited pro
    rata, the new plan invoiced from now) or at the end of the paid period. One subscription
    before and after; a plan in another currency is refused."""
    change_plan_with_billing(sip_username, plan, at_period_end, acknowledge or [], at)


def change_plan_with_billing(
    sip_username: str, plan: str, at_period_end: bool, acknowledge: list[int], at: str | None
) -> None:
    """`billing change-plan`, also what `subscriber change-plan` does once billing is set up."""
    with brain_session() as brain:
        moment = parse_at(at, "UTC", brain.clock())
        subscriber_id = _subscriber_id(brain, sip_username)
        brain.sales_guard.check(brain.catalog.get_plan(plan), acknowledged=acknowledge)
        outcome = brain.billing.lifecycle.change_plan(
            subscriber_id=subscriber_id,
            plan_code=plan,
            timing=Timing.PERIOD_END if at_period_end else Timing.NOW,
            at=moment,
        )
        brain.authorizer.invalidate()
    _print_outcome(sip_username, f"plan change to {plan}", outcome)


@billing_app.command("cancel")
def billing_cancel(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    reason: Annotated[
        CancelReason,
        typer.Option(
            help="customer (no refund unless TAWASOL_BILLING_REFUND_CUSTOMER_CANCELLATION), "
            "withdrawal (14 days, L221-18), price_change (L224-33), outage, operator."
        ),
    ] = CancelReason.CUSTOMER,
    at_period_end: AtPeriodEnd = False,
    at: AtOption = None,
) -> None:
    """Cancel a subscription now (the unused part credited where the reason gives a refund)
    or at the end of its paid period (no renewal)."""
    with brain_session() as brain:
        moment = parse_at(at, "UTC", brain.clock())
        outcome = brain.billing.lifecycle.cancel(
            subscriber_id=_subscriber_id(brain, sip_username),
            timing=Timing.PERIOD_END if at_period_end else Timing.NOW,
            reason=reason,
            at=moment,
        )
        brain.authorizer.invalidate()
    _print_outcome(sip_username, f"cancellation ({reason.value})", outcome)


def _hold(sip_username: str, at: str | None, *, pause: bool) -> None:
    with brain_session() as brain:
        moment = parse_at(at, "UTC", brain.clock())
        lifecycle = brain.billing.lifecycle
        command = lifecycle.pause if pause else lifecycle.resume
        outcome = command(subscriber_id=_subscriber_id(brain, sip_username), at=moment)
        brain.authorizer.invalidate()
    _print_outcome(sip_username, "paused" if pause else "resumed", outcome)


@billing_app.command("pause")
def billing_pause(
    sip_username: Annotated[str, typer.Argument(help="SIP username")], at: AtOption = None
) -> None:
    """Put a subscription on hold: no calls, no renewal, until resumed."""
    _hold(sip_username, at, pause=True)


@billing_app.command("resume")
def billing_resume(
    sip_username: Annotated[str, typer.Argument(help="SIP username")], at: AtOption = None
) -> None:
    """Resume a paused subscription: its period end moves on by the time it was paused."""
    _hold(sip_username, at, pause=False)


@billing_app.command("refund")
def billing_refund(
    subscriber_id: Annotated[int, typer.Argument(help="The subscriber paid back.")],
    amount: Annotated[str, typer.Argument(help="Amount paid back, e.g. 8.32.")],
    currency: Annotated[str, typer.Argument(help="ISO 4217 currency, e.g. EUR.")],
    reference: Annotated[str, typer.Option(help="The bank transfer's reference.")],
) -> None:
    """Record money paid back by bank transfer (once per reference): never more than the
    account holds in the subscriber's favour, nor than was paid."""
    from tawasol.adapters.clock import system_clock
    from tawasol.domain.money import Money

    with brain_session() as brain:
        money = Money.parse(amount, currency)
        new = brain.billing.payments.refund(
            subscriber_id=subscriber_id, amount=money, reference=reference, at=system_clock()
        )
        balance = brain.billing.store.account(subscriber_id=subscriber_id, currency=money.currency)
    state = "recorded" if new else "already recorded"
    console.print(f"refund {reference}: {state}; balance owed {balance.balance}")


# -- reports ------------------------------------------------------------------------------------
StartOption = Annotated[
    str, typer.Option("--start", help="Period start (ISO 8601, UTC unless an offset).")
]
EndOption = Annotated[str, typer.Option("--end", help="Period end, excluded.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="CSV on standard output.")]


def _print_rows(title: str, header: list[str], rows: list[list[str]], csv_output: bool) -> None:
    if csv_output:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(rows)
        return
    table = Table(title=title, box=box.SIMPLE)
    for column in header:
        table.add_column(column, justify="left" if column in ("plan", "destination") else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _period_report(start: str, end: str) -> PeriodReport:
    from tawasol.adapters.clock import system_clock

    with brain_session() as brain:
        now = system_clock()
        return brain.billing.reports.period(
            start=parse_at(start, "UTC", now, option="--start"),
            end=parse_at(end, "UTC", now, option="--end"),
        )


@billing_app.command("revenue")
def billing_revenue(start: StartOption, end: EndOption, csv_output: CsvOption = False) -> None:
    """Revenue per plan in a period: invoiced less credited, VAT included and net of VAT."""
    report = _period_report(start, end)
    rows = [
        [r.plan_code, r.currency, str(r.charged), str(r.credited), str(r.vat), str(r.net)]
        for r in report.revenue
    ]
    header = ["plan", "currency", "charged", "credited", "vat", "net"]
    _print_rows(f"revenue {start} - {end}", header, rows, csv_output)


@billing_app.command("margins")
def billing_margins(start: StartOption, end: EndOption, csv_output: CsvOption = False) -> None:
    """Revenue, carrier cost (CDR costs + flat-rate fees spread over the period) and margin
    per plan and destination. Amounts are rounded to the hundredth here only."""
    report = _period_report(start, end)
    cent, tenth = Decimal("0.01"), Decimal("0.1")
    rows = [
        [
            r.plan_code,
            r.destination,
            r.currency,
            str(r.minutes.quantize(tenth)),
            str(r.revenue.quantize(cent)),
            str(r.cdr_cost.quantize(cent)),
            str(r.flat_rate_cost.quantize(cent)),
            str(r.margin.quantize(cent)),
        ]
        for r in report.margins
    ]
    header = ["plan", "destination", "currency", "minutes", "revenue", "cdr cost", "flat fees"]
    _print_rows(f"margins {start} - {end}", [*header, "margin"], rows, csv_output)
