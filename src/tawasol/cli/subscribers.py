"""`tawasol subscriber ...` and `tawasol plan list`: subscribers and plans."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from tawasol.adapters.api.schemas import Limit, Offset, bounds
from tawasol.cli.common import (
    app,
    brain_session,
    console,
    current_settings,
    fail,
    open_brain,
    subscriber_named,
)
from tawasol.domain.errors import TawasolError

subscriber_app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)
plan_app = typer.Typer(help="The operator's plans.", no_args_is_help=True)
app.add_typer(subscriber_app, name="subscriber")
app.add_typer(plan_app, name="plan")


# -- subscribers and plans --------------------------------------------------------------------
@subscriber_app.command("add")
def subscriber_add(
    sip_username: Annotated[str, typer.Argument(help="SIP username, e.g. amina")],
    name: Annotated[str, typer.Option(help="Full name.")],
    phone: Annotated[str, typer.Option(help="Their own phone, international, e.g. +336...")],
    password: Annotated[
        str | None,
        typer.Option(
            help="SIP password (visible in the shell's history: prefer --ask-password); "
            "default: the platform generates one and prints it."
        ),
    ] = None,
    ask_password: Annotated[
        bool, typer.Option("--ask-password", help="Type the SIP password, hidden, twice.")
    ] = False,
    plan: Annotated[str | None, typer.Option(help="Subscribe to this plan now.")] = None,
    acknowledge: Annotated[
        list[int] | None,
        typer.Option(help="An incident the buyer was shown (plans in an outage need it)."),
    ] = None,
    email: Annotated[str, typer.Option()] = "",
    locale: Annotated[str, typer.Option(help="fr, ar or en.")] = "fr",
    time_zone: Annotated[str, typer.Option(help="e.g. Europe/Paris")] = "Europe/Paris",
    country: Annotated[
        str | None,
        typer.Option(
            help="Country of residence (ISO 3166-1, e.g. FR): VAT follows it. "
            "Default: the phone number's country."
        ),
    ] = None,
    business: Annotated[
        bool,
        typer.Option(
            "--business/--no-business",
            help="A business customer: told of every outage that touches it, short ones "
            "included; Factur-X invoices.",
        ),
    ] = False,
) -> None:
    """Add a subscriber (and optionally subscribe them to a plan): all or nothing."""
    if ask_password:
        password = typer.prompt("SIP password", hide_input=True, confirmation_prompt=True)
    with brain_session() as brain:
        if plan is not None:
            brain.sales_guard.check(brain.catalog.get_plan(plan), acknowledged=acknowledge or ())
        account = brain.catalog.add_subscriber(
            name=name,
            email=email,
            phone=phone,
            locale=locale,
            time_zone=time_zone,
            sip_username=sip_username,
            password=password,
            plan_code=plan,
            country=country,
            business=business,
        )
    subscriber = account.subscriber
    console.print(f"subscriber {subscriber.sip_username} added with id {subscriber.id}")
    if subscriber.country is None:
        console.print(
            "country of residence unknown (billing refuses them until set): "
            f"tawasol subscriber set-country {subscriber.sip_username} COUNTRY"
        )
    elif country is None:
        console.print(
            f"country of residence {subscriber.country} (from the phone number; VAT follows "
            "it: correct it with `tawasol subscriber set-country` if they live elsewhere)"
        )
    if account.password is not None:
        console.print(
            f"SIP password (shown once, only its hash is kept): {account.password}",
            highlight=False,
        )
    if account.subscription is not None:
        console.print(
            f"subscribed to {account.subscription.plan_code} until "
            f"{account.subscription.period_end:%Y-%m-%d %H:%M %Z}"
        )


@subscriber_app.command("set-country")
def subscriber_set_country(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    country: Annotated[str, typer.Argument(help="ISO 3166-1 alpha-2 code, e.g. FR, BE, MA.")],
) -> None:
    """Record the country where a subscriber lives: the VAT of their next invoices follows it
    (Directive 2006/112/EC art. 58), not their phone number."""
    with brain_session() as brain:
        subscriber = subscriber_named(brain, sip_username)
        changed = brain.catalog.set_country(subscriber.id, country)
    console.print(f"{sip_username}: country of residence {changed.country}")


@subscriber_app.command("set-business")
def subscriber_set_business(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    business: Annotated[
        bool,
        typer.Option(
            "--business/--no-business",
            help="--business: a business customer; --no-business: a consumer.",
        ),
    ],
) -> None:
    """Mark a subscriber a business customer (told personally of every customer-facing outage
    that touches it, short ones included; Factur-X invoices) or a consumer."""
    with brain_session() as brain:
        subscriber = subscriber_named(brain, sip_username)
        changed = brain.catalog.set_business(subscriber.id, business)
    console.print(f"{sip_username}: {'business customer' if changed.business else 'consumer'}")


@subscriber_app.command("password")
def subscriber_password(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    ask_password: Annotated[
        bool, typer.Option("--ask-password", help="Type the SIP password, hidden, twice.")
    ] = False,
) -> None:
    """Give a subscriber a new SIP password, on the database (no running brain needed): a
    generated one, printed once, or with --ask-password one typed twice (checked for strength,
    never a published one)."""
    password = (
        typer.prompt("SIP password", hide_input=True, confirmation_prompt=True)
        if ask_password
        else None
    )
    with brain_session() as brain:
        subscriber = subscriber_named(brain, sip_username)
        account = brain.catalog.set_password(subscriber.id, password)
    console.print(f"{account.subscriber.sip_username}: new SIP password set")
    if account.password is not None:
        console.print(
            f"SIP password (shown once, only its hash is kept): {account.password}",
            highlight=False,
        )


@subscriber_app.command("list")
def subscriber_list(
    limit: Annotated[int, typer.Option(**bounds(Limit))] = 100,
    offset: Annotated[int, typer.Option(**bounds(Offset))] = 0,
) -> None:
    """List subscribers with their current plan."""
    brain = open_brain()
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
                status = latest.status.value
                if latest.status.current and not now < latest.period_end:
                    status = f"{status}, period over"
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
        raise fail(error) from error
    finally:
        brain.close()
    console.print(table)


@subscriber_app.command("change-plan")
def subscriber_change_plan(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
    plan: Annotated[str, typer.Argument(help="The new plan's code.")],
    acknowledge: Annotated[
        list[int] | None,
        typer.Option(help="An incident the buyer was shown (plans in an outage need it)."),
    ] = None,
) -> None:
    """Move a subscriber to another plan now. Once billing is set up (TAWASOL_BILLING_VAT_RATES)
    this is `tawasol billing change-plan`: one subscription changes plan, the unused part of the
    old plan is credited and the new plan invoiced. Without billing, the running subscription
    is cancelled and the new one starts, together."""
    if current_settings().billing_vat_rates:
        from tawasol.cli.billing import change_plan_with_billing

        change_plan_with_billing(sip_username, plan, False, acknowledge or [], None)
        return
    with brain_session() as brain:
        subscriber = subscriber_named(brain, sip_username)
        brain.sales_guard.check(brain.catalog.get_plan(plan), acknowledged=acknowledge or ())
        subscription = brain.catalog.change_plan(subscriber_id=subscriber.id, plan_code=plan)
    console.print(
        f"{sip_username}: subscribed to {subscription.plan_code} until "
        f"{subscription.period_end:%Y-%m-%d %H:%M %Z} (the previous subscription is cancelled)"
    )


@subscriber_app.command("show")
def subscriber_show(
    sip_username: Annotated[str, typer.Argument(help="SIP username")],
) -> None:
    """Show a subscriber, their subscriptions and their latest calls."""
    brain = open_brain()
    try:
        subscriber = subscriber_named(brain, sip_username)
        subscriptions = brain.catalog.list_subscriptions(subscriber_id=subscriber.id)
        calls = brain.calls.list_calls(subscriber_id=subscriber.id, limit=10)
    except TawasolError as error:
        raise fail(error) from error
    finally:
        brain.close()
    console.print(f"[bold]{subscriber.name}[/bold] ({subscriber.sip_username}, id {subscriber.id})")
    console.print(f"  email {subscriber.email or '-'}  phone {subscriber.phone}")
    console.print(f"  locale {subscriber.locale}  time zone {subscriber.time_zone}")
    console.print(f"  country of residence {subscriber.country or 'unknown'}")
    console.print(f"  {'business customer' if subscriber.business else 'consumer'}")
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
    brain = open_brain()
    try:
        plans = brain.catalog.list_plans()
    except TawasolError as error:
        raise fail(error) from error
    finally:
        brain.close()
    table = Table(title="plans")
    columns = ("code", "name", "price", "destinations", "hours", "cut after hours", "fair use")
    for column in (*columns, "on sale"):
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
            f"+{plan.window_grace // timedelta(minutes=1)} min" if plan.time_windows else "-",
            ", ".join(limit for limit in limits if limit),
            "yes" if plan.on_sale else "no",
        )
    console.print(table)
