"""`tawasol payments ...`: payment methods, payments, refunds to the original method, dunning
and the provider events kept (docs/payments.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tawasol.cli.common import app, brain_session, console, errors, parse_at
from tawasol.domain.money import Money

payments_app = typer.Typer(
    help="Payments: methods, refunds, dunning, provider events.", no_args_is_help=True
)
app.add_typer(payments_app, name="payments")


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title, box=box.SIMPLE)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@payments_app.command("methods")
def payments_methods(
    subscriber_id: Annotated[int, typer.Argument(help="The subscriber.")],
) -> None:
    """The subscriber's payment methods (the active one is charged for renewals)."""
    with brain_session() as brain:
        brain.catalog.get_subscriber(subscriber_id)
        methods = brain.payments.methods(subscriber_id)
    _table(
        f"payment methods of subscriber {subscriber_id}",
        ["id", "kind", "provider", "label", "expires", "status", "reference"],
        [
            [
                str(m.id),
                m.kind.value,
                m.provider,
                m.label,
                m.expires.isoformat() if m.expires else "",
                m.status.value,
                m.method_reference,
            ]
            for m in methods
        ],
    )


@payments_app.command("method-add")
def payments_method_add(
    subscriber_id: Annotated[int, typer.Argument(help="The subscriber.")],
    provider: Annotated[str, typer.Option(help="stripe (a card), manual ...")] = "stripe",
    detail: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=VALUE for the provider, e.g. payment_method=pm_... (collected by "
            "Stripe.js); repeat for several."
        ),
    ] = None,
) -> None:
    """Save a payment method; prints the link when the subscriber must authenticate."""
    details: dict[str, str] = {}
    for item in detail or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            errors.print(f"[red]error:[/red] --detail {item!r}: expected NAME=VALUE")
            raise typer.Exit(2)
        details[name.strip()] = value.strip()
    with brain_session() as brain:
        setup = brain.payments.set_up_method(
            subscriber_id=subscriber_id, provider=provider, details=details
        )
    method = setup.method
    console.print(f"payment method {method.id} ({method.label}): {method.status.value}")
    if setup.action_url:
        console.print(f"the subscriber must authenticate: {setup.action_url}")


@payments_app.command("list")
def payments_list(
    subscriber_id: Annotated[int, typer.Argument(help="The subscriber.")],
) -> None:
    """The subscriber's payments (each charge attempt) and what they came to."""
    with brain_session() as brain:
        brain.catalog.get_subscriber(subscriber_id)
        payments = brain.payments.store.payments(subscriber_id=subscriber_id)
    _table(
        f"payments of subscriber {subscriber_id}",
        ["id", "amount", "for", "status", "provider reference", "failure"],
        [
            [
                str(p.id),
                str(p.amount),
                p.reference,
                p.status.value,
                p.provider_reference,
                p.failure_code.value if p.failure_code else "",
            ]
            for p in payments
        ],
    )


@payments_app.command("refund")
def payments_refund(
    payment_id: Annotated[int, typer.Argument(help="The payment to refund (payments list).")],
    amount: Annotated[str, typer.Argument(help="Amount to give back, e.g. 4.99.")],
    currency: Annotated[str, typer.Argument(help="ISO 4217 currency, e.g. EUR.")],
    reference: Annotated[str, typer.Option(help="Your reference: the same refund once.")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "",
) -> None:
    """Refund all or part of a payment to the method that paid it (a card refund goes back
    to the card); never more than is left to refund."""
    with brain_session() as brain:
        refund = brain.payments.refund(
            payment_id=payment_id,
            amount=Money.parse(amount, currency),
            reference=reference,
            reason=reason,
        )
    console.print(
        f"refund {refund.id} of {refund.amount} on payment {payment_id}: {refund.status.value}"
        + (f" ({refund.provider_reference})" if refund.provider_reference else "")
    )


@payments_app.command("dunning")
def payments_dunning(
    subscriber_id: Annotated[
        int | None, typer.Option("--subscriber", help="One subscriber's cases.")
    ] = None,
    closed: Annotated[bool, typer.Option("--all", help="Closed cases too.")] = False,
    run: Annotated[
        bool, typer.Option("--run", help="Run a dunning round first (the billing job does).")
    ] = False,
    at: Annotated[str | None, typer.Option(help="With --run: as of this time.")] = None,
) -> None:
    """Unpaid renewals: attempts, last refusal, next retry, suspension date."""
    with brain_session() as brain:
        if run:
            moment = parse_at(at, "UTC", brain.clock())
            summary = brain.payments.run_dunning(at=moment)
            console.print(
                f"dunning round: {summary.charged} charged, {summary.paid} paid, "
                f"{summary.failed} failed, {summary.held} held, {summary.suspended} suspended"
            )
            for message in summary.errors[:20]:
                errors.print(f"[red]{message}[/red]")
        schedule = brain.settings.dunning_schedule()
        cases = brain.payments.dunning.cases(subscriber_id=subscriber_id, open_only=not closed)
    rows = []
    for case in cases:
        due = case.next_charge_at(schedule)
        rows.append(
            [
                case.reference,
                str(case.subscriber_id),
                str(case.amount),
                case.status.value,
                str(case.attempts),
                case.last_failure.value if case.last_failure else "",
                due.isoformat() if due else "",
                "" if case.status.closed else case.suspend_at(schedule).isoformat(),
                "held" if case.held_since else "",
            ]
        )
    _table(
        "dunning",
        [
            "charge",
            "subscriber",
            "amount",
            "status",
            "attempts",
            "last refusal",
            "next try",
            "suspend at",
            "outage",
        ],
        rows,
    )


@payments_app.command("events")
def payments_events(
    provider: Annotated[str | None, typer.Option(help="One provider's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """The provider events kept (most recent first): deliveries and what applying did."""
    with brain_session() as brain:
        events = brain.payments.events.events(provider=provider, limit=limit)
    _table(
        "provider events",
        ["provider", "event", "type", "received", "deliveries", "outcome"],
        [
            [
                e.event.provider,
                e.event.event_id,
                e.event.type,
                e.received_at.isoformat(timespec="seconds"),
                str(e.deliveries),
                e.outcome if e.applied_at else "(not applied yet)",
            ]
            for e in events
        ],
    )
