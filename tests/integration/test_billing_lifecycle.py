"""Subscription lifecycle commands with their money, on memory, SQLite and PostgreSQL alike:
plan change now and at period end, cancellation, pause and resume, refunds; and the bad input
of must-show 5 (a plan in another currency, a refund larger than paid): a clear error and
nothing written. Figures are worked out by hand in each test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from support.stores import a_new_subscriber, a_plan, postgres_schema
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.adapters.store.billing_memory import InMemoryBillingStore, InMemoryOutageHistory
from tawasol.adapters.store.billing_sql import SqlBillingStore
from tawasol.domain.billing.documents import DocumentKind, IssuingEntity, check_gap_free
from tawasol.domain.billing.lifecycle import CancelReason, RefundPolicy
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import Plan
from tawasol.domain.errors import Conflict, InvalidInput, NotFound
from tawasol.domain.money import Money
from tawasol.domain.subscribers import Subscription, SubscriptionStatus
from tawasol.services.billing.lifecycle import SubscriptionLifecycle, Timing
from tawasol.services.billing.payments import ManualPayments
from tawasol.services.billing.ports import BillingCustomer
from tawasol.services.billing.run import BillingRun, BillingSettings

ENTITY = IssuingEntity(
    "FR1", "Tawasol SAS", "1 rue de la Paix, 75002 Paris", "123456789", "FR12123456789"
)
SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
SEP_16 = datetime(2026, 9, 16, tzinfo=UTC)
PLANS = {
    plan.code: plan
    for plan in (
        a_plan(time_windows=()),
        a_plan("maroc-plus", time_windows=(), price=Money(Decimal("14.99"), "EUR")),
        a_plan("maroc-dirham", time_windows=(), price=Money(Decimal("99.00"), "MAD")),
    )
}


@dataclass
class World:
    """One subscriber (id `subscriber_id`) on maroc-illimite, 1-30 September, first invoice
    issued by the run on 1 September."""

    billing: InMemoryBillingStore | SqlBillingStore
    lifecycle: SubscriptionLifecycle
    payments: ManualPayments
    subscriber_id: int
    subscription_id: int

    def entries(self) -> list[tuple[str, str, str]]:
        return [
            (entry.kind.value, str(entry.amount.amount), entry.idempotency_key)
            for account in self.billing.accounts(subscriber_id=self.subscriber_id)
            for entry in account.entries
        ]

    def balance(self) -> Money:
        return self.billing.account(subscriber_id=self.subscriber_id, currency="EUR").balance

    def running(self) -> list[Subscription]:
        return [
            i.subscription for i in self.billing.current_items(subscriber_id=self.subscriber_id)
        ]


def _services(billing: InMemoryBillingStore | SqlBillingStore, refund: bool = False):
    run = BillingRun(
        store=billing,
        plans=lambda: PLANS,
        outages=InMemoryOutageHistory([]),
        settings=BillingSettings(ENTITY, VatTable.parse("FR=20")),
    )
    lifecycle = SubscriptionLifecycle(
        store=billing, run=run, refund_policy=RefundPolicy(refund_customer_cancellation=refund)
    )
    return run, lifecycle, ManualPayments(store=billing)


def _sql_world(url: str) -> Iterator[World]:
    migrate(url)
    store = SqlStore.from_url(url)
    for plan in PLANS.values():
        store.save_plan(plan)
    subscriber = store.add_subscriber(a_new_subscriber("amina"))
    subscription = store.add_subscription(
        subscriber_id=subscriber.id,
        plan_code="maroc-illimite",
        status=SubscriptionStatus.ACTIVE,
        period_start=SEP_1,
        period_end=OCT_1,
    )
    billing = SqlBillingStore.from_url(url)
    run, lifecycle, payments = _services(billing)
    run.run(at=SEP_1)
    try:
        yield World(billing, lifecycle, payments, subscriber.id, subscription.id)
    finally:
        billing.close()
        store.close()


def _memory_world() -> World:
    billing = InMemoryBillingStore()
    subscriber = a_new_subscriber("amina")
    billing.add(
        BillingCustomer(1, subscriber.name, subscriber.email, "FR", "Europe/Paris", "fr"),
        Subscription(1, 1, "maroc-illimite", SubscriptionStatus.ACTIVE, SEP_1, OCT_1),
    )
    run, lifecycle, payments = _services(billing)
    run.run(at=SEP_1)
    return World(billing, lifecycle, payments, 1, 1)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "memory":
        yield _memory_world()
    elif request.param == "sqlite":
        yield from _sql_world(sqlite_url_for(tmp_path))
    else:
        with postgres_schema() as url:
            yield from _sql_world(url)


def test_given_a_plan_change_now_then_unused_part_credited_new_plan_charged_one_subscription(
    world: World,
):
    outcome = world.lifecycle.change_plan(
        subscriber_id=world.subscriber_id, plan_code="maroc-plus", timing=Timing.NOW, at=SEP_16
    )

    # 15 of 30 days unused: 9.99 x 15/30 = 4.995 -> 4.99 (rounded down); the new plan in full.
    assert outcome.credited == Money(Decimal("4.99"), "EUR")
    assert outcome.charged == Money(Decimal("14.99"), "EUR")
    assert world.balance() == Money(Decimal("19.99"), "EUR")  # 9.99 - 4.99 + 14.99
    (running,) = world.running()
    assert running.id == world.subscription_id
    assert (running.plan_code, running.status) == ("maroc-plus", SubscriptionStatus.ACTIVE)
    assert (running.period_start, running.period_end) == (
        SEP_16,
        datetime(2026, 10, 16, tzinfo=UTC),
    )
    documents = world.billing.documents(entity_code="FR1")
    assert [d.kind for d in documents] == [
        DocumentKind.INVOICE,
        DocumentKind.CREDIT_NOTE,
        DocumentKind.INVOICE,
    ]
    note = documents[1]
    assert note.corrects == f"first:{world.subscription_id}"
    assert note.total_gross.amount == Decimal("4.99")
    assert note.total_vat.amount == Decimal("0.83")  # 4.99 x 0.2 / 1.2 = 0.8316... -> 0.83
    assert outcome.documents == (documents[1].number, documents[2].number)
    check_gap_free([d.sequence for d in documents])


def test_given_a_plan_in_another_currency_when_changed_then_clear_error_and_nothing_written(
    world: World,
):
    before = (world.entries(), len(world.billing.documents(entity_code="FR1")), world.running())

    for timing in Timing:
        with pytest.raises(InvalidInput, match=r"sold in MAD.*paid in EUR"):
            world.lifecycle.change_plan(
                subscriber_id=world.subscriber_id,
                plan_code="maroc-dirham",
                timing=timing,
                at=SEP_16,
            )

    after = (world.entries(), len(world.billing.documents(entity_code="FR1")), world.running())
    assert after == before


def test_given_a_plan_change_at_period_end_then_the_renewal_charges_the_new_plan(world: World):
    world.lifecycle.change_plan(
        subscriber_id=world.subscriber_id,
        plan_code="maroc-plus",
        timing=Timing.PERIOD_END,
        at=SEP_16,
    )
    assert world.balance() == Money(Decimal("9.99"), "EUR")  # nothing charged yet

    _, lifecycle, _ = _services(world.billing)
    lifecycle._run.run(at=OCT_1)  # the renewal

    (running,) = world.running()
    assert (running.plan_code, running.period_start) == ("maroc-plus", OCT_1)
    assert world.balance() == Money(Decimal("24.98"), "EUR")  # 9.99 + 14.99


def test_given_an_operator_cancellation_now_then_unused_part_is_credited_and_refundable(
    world: World,
):
    world.payments.record(
        subscriber_id=world.subscriber_id,
        amount=Money(Decimal("9.99"), "EUR"),
        reference="VIR-1",
        at=SEP_1,
    )
    outcome = world.lifecycle.cancel(
        subscriber_id=world.subscriber_id,
        timing=Timing.NOW,
        reason=CancelReason.OPERATOR,
        at=datetime(2026, 9, 6, tzinfo=UTC),
    )

    # 25 of 30 days unused: 9.99 x 25/30 = 8.325 -> 8.32
    assert outcome.credited == Money(Decimal("8.32"), "EUR")
    assert outcome.subscription.status is SubscriptionStatus.CANCELLED
    assert world.running() == []
    assert world.balance() == Money(Decimal("-8.32"), "EUR")  # the operator owes 8.32

    before = world.entries()
    with pytest.raises(InvalidInput, match="more than the account holds"):
        world.payments.refund(
            subscriber_id=world.subscriber_id,
            amount=Money(Decimal("8.33"), "EUR"),
            reference="REMB-1",
            at=SEP_16,
        )
    assert world.entries() == before  # nothing half-written

    assert world.payments.refund(
        subscriber_id=world.subscriber_id,
        amount=Money(Decimal("8.32"), "EUR"),
        reference="REMB-1",
        at=SEP_16,
    )
    assert world.balance() == Money(Decimal("0.00"), "EUR")
    with pytest.raises(NotFound, match="no running subscription"):
        world.lifecycle.pause(subscriber_id=world.subscriber_id, at=SEP_16)


def test_given_a_refund_when_nothing_was_paid_then_it_is_refused_and_nothing_written(
    world: World,
):
    world.lifecycle.cancel(
        subscriber_id=world.subscriber_id,
        timing=Timing.NOW,
        reason=CancelReason.OPERATOR,
        at=datetime(2026, 9, 6, tzinfo=UTC),
    )
    before = world.entries()
    # The account holds 8.32 - 9.99 = -1.67: the subscriber still owes; nothing to pay back.
    with pytest.raises(InvalidInput, match="more than"):
        world.payments.refund(
            subscriber_id=world.subscriber_id,
            amount=Money(Decimal("1.00"), "EUR"),
            reference="REMB-2",
            at=SEP_16,
        )
    assert world.entries() == before


def test_given_a_plain_customer_cancellation_then_no_refund_unless_the_policy_gives_one(
    world: World,
):
    outcome = world.lifecycle.cancel(
        subscriber_id=world.subscriber_id,
        timing=Timing.NOW,
        reason=CancelReason.CUSTOMER,
        at=SEP_16,
    )
    assert outcome.credited.amount == 0
    assert outcome.documents == ()
    assert world.balance() == Money(Decimal("9.99"), "EUR")


def test_given_a_cancellation_at_period_end_then_the_run_expires_it_without_renewal(
    world: World,
):
    world.lifecycle.cancel(
        subscriber_id=world.subscriber_id,
        timing=Timing.PERIOD_END,
        reason=CancelReason.CUSTOMER,
        at=SEP_16,
    )
    with pytest.raises(Conflict, match="ends at its period end"):
        world.lifecycle.change_plan(
            subscriber_id=world.subscriber_id, plan_code="maroc-plus", timing=Timing.NOW, at=SEP_16
        )
    world.lifecycle._run.run(at=OCT_1 + timedelta(hours=1))
    assert world.running() == []
    assert world.balance() == Money(Decimal("9.99"), "EUR")  # no renewal charged


def test_given_a_pause_then_resume_moves_the_period_end_by_the_time_paused(world: World):
    world.lifecycle.pause(subscriber_id=world.subscriber_id, at=datetime(2026, 9, 11, tzinfo=UTC))
    (paused,) = world.running()
    assert paused.status is SubscriptionStatus.PAUSED
    with pytest.raises(Conflict, match="only an active subscription can be paused"):
        world.lifecycle.pause(subscriber_id=world.subscriber_id, at=SEP_16)
    with pytest.raises(Conflict, match="only an active subscription changes plan"):
        world.lifecycle.change_plan(
            subscriber_id=world.subscriber_id, plan_code="maroc-plus", timing=Timing.NOW, at=SEP_16
        )
    # Paused on 1 October: no renewal.
    world.lifecycle._run.run(at=OCT_1 + timedelta(hours=1))
    assert world.balance() == Money(Decimal("9.99"), "EUR")

    outcome = world.lifecycle.resume(
        subscriber_id=world.subscriber_id, at=datetime(2026, 10, 2, tzinfo=UTC)
    )

    # Paused 11 Sep -> 2 Oct = 21 days: the period ends 1 Oct + 21 days = 22 Oct.
    assert outcome.subscription.status is SubscriptionStatus.ACTIVE
    assert outcome.subscription.period_end == datetime(2026, 10, 22, tzinfo=UTC)
    with pytest.raises(Conflict, match="is not paused"):
        world.lifecycle.resume(
            subscriber_id=world.subscriber_id, at=datetime(2026, 10, 3, tzinfo=UTC)
        )


def test_given_a_paused_subscription_cancelled_for_an_outage_then_paused_time_is_not_charged(
    world: World,
):
    world.lifecycle.pause(subscriber_id=world.subscriber_id, at=datetime(2026, 9, 11, tzinfo=UTC))
    outcome = world.lifecycle.cancel(
        subscriber_id=world.subscriber_id,
        timing=Timing.NOW,
        reason=CancelReason.OUTAGE,
        at=datetime(2026, 9, 21, tzinfo=UTC),
    )
    # Used 1-11 September; unused from the pause: 9.99 x 20/30 = 6.66
    assert outcome.credited == Money(Decimal("6.66"), "EUR")


def test_given_an_unknown_subscriber_or_plan_then_not_found(world: World):
    with pytest.raises(NotFound):
        world.lifecycle.pause(subscriber_id=999, at=SEP_16)
    with pytest.raises(NotFound, match="no plan"):
        world.lifecycle.change_plan(
            subscriber_id=world.subscriber_id, plan_code="nope", timing=Timing.NOW, at=SEP_16
        )
    with pytest.raises(Conflict, match="already"):
        world.lifecycle.change_plan(
            subscriber_id=world.subscriber_id,
            plan_code="maroc-illimite",
            timing=Timing.NOW,
            at=SEP_16,
        )
    assert isinstance(PLANS["maroc-plus"], Plan)
