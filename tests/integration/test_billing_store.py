"""The billing store's contract, run on the in-memory store, SQLite and PostgreSQL alike; and
the billing run on SQL giving the very documents it gives in memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from support.operator import a_new_subscriber, a_plan
from support.stores import postgres_schema
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.adapters.store.billing_memory import InMemoryBillingStore, InMemoryOutageHistory
from tawasol.adapters.store.billing_sql import SqlBillingStore
from tawasol.domain.billing.documents import DocumentKind, IssuingEntity, check_gap_free
from tawasol.domain.billing.ledger import EntryKind, LedgerEntry
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import Period
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope
from tawasol.domain.subscribers import Subscription, SubscriptionStatus
from tawasol.services.billing.ports import BillingCustomer, BillingStep
from tawasol.services.billing.run import BillingRun, BillingSettings

ENTITY = IssuingEntity(
    "FR1", "Tawasol SAS", "1 rue de la Paix, 75002 Paris", "123456789", "FR12123456789"
)
SETTINGS = BillingSettings(ENTITY, VatTable.parse("FR=20"))
SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
PLANS = {
    "maroc-illimite": a_plan(time_windows=()),
    "maroc-semaine": a_plan(
        "maroc-semaine", period=Period.WEEK, time_windows=(), price=Money(Decimal("2.99"), "EUR")
    ),
}


@dataclass
class World:
    """A billing store with `count` subscribers, each with one running subscription."""

    billing: InMemoryBillingStore | SqlBillingStore
    subscriptions: list[Subscription]


def _sql_world(url: str, count: int) -> Iterator[World]:
    migrate(url)
    store = SqlStore.from_url(url)
    for plan in PLANS.values():
        store.save_plan(plan)
    subscriptions = []
    for number in range(count):
        subscriber = store.add_subscriber(a_new_subscriber(f"user{number}"))
        subscriptions.append(
            store.add_subscription(
                subscriber_id=subscriber.id,
                plan_code="maroc-semaine" if number % 2 else "maroc-illimite",
                status=SubscriptionStatus.ACTIVE,
                period_start=SEP_1,
                period_end=(SEP_1 + timedelta(days=7))
                if number % 2
                else datetime(2026, 10, 1, tzinfo=UTC),
            )
        )
    billing = SqlBillingStore.from_url(url)
    try:
        yield World(billing, subscriptions)
    finally:
        billing.close()
        store.close()


def _memory_world(count: int) -> World:
    billing = InMemoryBillingStore()
    subscriptions = []
    for number in range(count):
        subscriber = a_new_subscriber(f"user{number}")
        weekly = number % 2
        subscription = Subscription(
            number + 1,
            number + 1,
            "maroc-semaine" if weekly else "maroc-illimite",
            SubscriptionStatus.ACTIVE,
            SEP_1,
            SEP_1 + timedelta(days=7) if weekly else datetime(2026, 10, 1, tzinfo=UTC),
        )
        billing.add(
            BillingCustomer(
                number + 1,
                subscriber.name,
                subscriber.email,
                "FR",
                subscriber.time_zone,
                subscriber.locale,
            ),
            subscription,
        )
        subscriptions.append(subscription)
    return World(billing, subscriptions)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    count = getattr(request, "param_count", 4)
    if request.param == "memory":
        yield _memory_world(count)
    elif request.param == "sqlite":
        yield from _sql_world(sqlite_url_for(tmp_path), count)
    else:
        with postgres_schema() as url:
            yield from _sql_world(url, count)


def charge_step(world: World, key: str, amount: str = "9.99") -> BillingStep:
    subscription = world.subscriptions[0]
    account = world.billing.account(subscriber_id=subscription.subscriber_id, currency="EUR")
    entry = LedgerEntry(account.id, EntryKind.CHARGE, Money(Decimal(amount), "EUR"), key, SEP_1)
    return BillingStep(key, entries=(entry,))


def test_given_a_step_applied_when_applied_again_then_nothing_changes(world: World):
    assert world.billing.apply(charge_step(world, "k1"), entity_code="FR1", number_prefix="F")
    assert not world.billing.apply(charge_step(world, "k1"), entity_code="FR1", number_prefix="F")
    assert world.billing.applied("k1")
    account = world.billing.account(
        subscriber_id=world.subscriptions[0].subscriber_id, currency="EUR"
    )
    assert account.balance == Money(Decimal("9.99"), "EUR")


def test_given_a_refund_larger_than_paid_when_applied_then_nothing_is_written(world: World):
    subscriber_id = world.subscriptions[0].subscriber_id
    account = world.billing.account(subscriber_id=subscriber_id, currency="EUR")
    refund = LedgerEntry(account.id, EntryKind.REFUND, Money(Decimal("5"), "EUR"), "r", SEP_1)
    with pytest.raises(InvalidInput, match="more than was paid"):
        world.billing.apply(
            BillingStep("r", entries=(refund,)), entity_code="FR1", number_prefix="F"
        )
    assert not world.billing.applied("r")
    assert world.billing.account(subscriber_id=subscriber_id, currency="EUR").entries == ()


def test_given_a_billing_run_then_documents_are_numbered_without_gap_and_queued(world: World):
    billing = BillingRun(
        store=world.billing,
        plans=lambda: PLANS,
        outages=InMemoryOutageHistory(()),
        settings=SETTINGS,
    )
    first = billing.run(at=SEP_1 + timedelta(days=15))
    again = billing.run(at=SEP_1 + timedelta(days=15))
    assert (first.first_invoices, first.renewals) == (4, 4)  # 2 weekly x 2 renewals
    assert (again.first_invoices, again.renewals, again.already_done) == (0, 0, 0)
    documents = world.billing.documents(entity_code="FR1")
    check_gap_free([d.sequence for d in documents])
    assert [d.number for d in documents][:2] == ["F-FR1-00000001", "F-FR1-00000002"]
    assert len(world.billing.pending(limit=100)) == 8
    world.billing.mark_sent(documents[0].number)
    assert documents[0].number not in [n for n, _ in world.billing.pending(limit=100)]
    # Nothing is due until the next weekly period ends.
    assert [
        i.subscription.id for i in world.billing.items_due(before=SEP_1 + timedelta(days=15))
    ] == []


def test_given_an_outage_then_sql_and_memory_issue_the_same_credit_notes(tmp_path: Path):
    outage = InMemoryOutageHistory(
        (
            OutagePeriod(
                7,
                OutageScope("MA"),
                SEP_1 + timedelta(days=2),
                SEP_1 + timedelta(days=4, hours=3),
                OutageImpact.MAJOR,
            ),
        )
    )
    results = []
    for world in (_memory_world(4), next(_sql_world(sqlite_url_for(tmp_path), 4))):
        billing = BillingRun(
            store=world.billing, plans=lambda: PLANS, outages=outage, settings=SETTINGS
        )
        billing.run(at=SEP_1 + timedelta(hours=1))
        summary = billing.run(at=SEP_1 + timedelta(days=6))
        assert summary.credit_notes == 4
        notes = [
            d
            for d in world.billing.documents(entity_code="FR1")
            if d.kind is DocumentKind.CREDIT_NOTE
        ]
        results.append(
            [
                (replace(n, account_id=0, subscriber_id=0, customer_name="", issued_at=SEP_1))
                for n in notes
            ]
        )
    memory, sql = results
    # 51 h -> 3 days: monthly 9.99 x 3/30 = 0.99; weekly 2.99 x 3/7 = 1.28
    assert (
        sorted(n.total_gross.amount for n in sql) == [Decimal("0.99")] * 2 + [Decimal("1.28")] * 2
    )
    assert [n.lines for n in sql] == [n.lines for n in memory]
