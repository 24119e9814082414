"""The payments ports' contract (`PaymentStore`, `ProviderEventLog`, `DunningStore`), on memory,
SQLite and PostgreSQL alike: keys make every write idempotent, events are kept once and count
their deliveries, cases are found by their charge."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from support.operator import a_new_subscriber
from support.stores import migrated_store, postgres_schema
from tawasol.adapters.memory.payments import MemoryPaymentStore
from tawasol.adapters.store import sqlite_url_for
from tawasol.adapters.store.payments_sql import SqlPaymentStore
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.money import Money
from tawasol.domain.payments.dunning import DunningCase, DunningStatus
from tawasol.domain.payments.events import EventKind, ProviderEvent
from tawasol.domain.payments.methods import PaymentMethod, PaymentMethodKind, PaymentMethodStatus
from tawasol.domain.payments.outcomes import FailureCode, PaymentStatus, RefundStatus
from tawasol.domain.payments.payments import Payment, Refund

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@dataclass
class World:
    store: MemoryPaymentStore | SqlPaymentStore
    subscriber_id: int


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "memory":
        yield World(MemoryPaymentStore(), 1)
        return
    if request.param == "sqlite":
        with migrated_store(sqlite_url_for(tmp_path)) as sql_store:
            subscriber = sql_store.add_subscriber(a_new_subscriber("amina"))
            yield World(SqlPaymentStore(sql_store.engine), subscriber.id)
        return
    with postgres_schema() as url, migrated_store(url) as sql_store:
        subscriber = sql_store.add_subscriber(a_new_subscriber("amina"))
        yield World(SqlPaymentStore(sql_store.engine), subscriber.id)


def a_card(subscriber_id: int, reference: str = "pm_1") -> PaymentMethod:
    return PaymentMethod(
        subscriber_id=subscriber_id,
        kind=PaymentMethodKind.CARD,
        provider="stripe",
        customer_reference="cus_1",
        method_reference=reference,
        status=PaymentMethodStatus.PENDING,
        label="Visa •••• 3184 12/2030",
        expires=date(2030, 12, 31),
        details={"setup_intent": "seti_1"},
        created_at=NOW,
    )


def a_payment(subscriber_id: int, method_id: int, key: str = "charge:renew:1:1") -> Payment:
    return Payment(
        idempotency_key=key,
        subscriber_id=subscriber_id,
        method_id=method_id,
        provider="stripe",
        amount=Money(Decimal("9.99"), "EUR"),
        reference="renew:1:2026-10-01",
        status=PaymentStatus.PENDING,
        created_at=NOW,
    )


def test_a_method_is_stored_whole_and_its_status_changes(world: World) -> None:
    store = world.store
    card = store.add_method(a_card(world.subscriber_id))
    assert card.id > 0
    assert store.method(card.id) == card
    assert replace(card, id=0) == a_card(world.subscriber_id)
    active = store.save_method(card.changed_to(PaymentMethodStatus.ACTIVE))
    assert store.find_method(provider="stripe", method_reference="pm_1") == active
    assert store.methods(subscriber_id=world.subscriber_id) == [active]
    assert store.find_method(provider="stripe", method_reference="pm_2") is None
    with pytest.raises(Conflict):
        store.add_method(a_card(world.subscriber_id))
    with pytest.raises(NotFound):
        store.method(999)


def test_a_payment_is_started_once_per_idempotency_key(world: World) -> None:
    store = world.store
    method = store.add_method(a_card(world.subscriber_id))
    first, new = store.start_payment(a_payment(world.subscriber_id, method.id))
    assert new and first.id > 0
    again, new = store.start_payment(a_payment(world.subscriber_id, method.id))
    assert (again, new) == (first, False)
    paid = store.save_payment(replace(first, status=PaymentStatus.PAID, provider_reference="pi_9"))
    assert store.find_payment(idempotency_key=first.idempotency_key) == paid
    assert store.find_payment(provider="stripe", provider_reference="pi_9") == paid
    assert store.find_payment(provider="paypal", provider_reference="pi_9") is None
    assert store.payments(reference="renew:1:2026-10-01") == [paid]
    assert store.payments(subscriber_id=world.subscriber_id + 1) == []
    failed = replace(paid, status=PaymentStatus.FAILED, failure_code=FailureCode.INSUFFICIENT_FUNDS)
    assert store.save_payment(failed).failure_code is FailureCode.INSUFFICIENT_FUNDS


def test_a_refund_is_started_once_per_key_and_found_by_its_provider_reference(
    world: World,
) -> None:
    store = world.store
    method = store.add_method(a_card(world.subscriber_id))
    payment, _ = store.start_payment(a_payment(world.subscriber_id, method.id))
    refund = Refund(
        "refund:1:r1", payment.id, Money(Decimal("4.00"), "EUR"), RefundStatus.PENDING, NOW
    )
    stored, new = store.start_refund(refund)
    assert new
    assert store.start_refund(refund) == (stored, False)
    done = store.save_refund(
        replace(stored, status=RefundStatus.SUCCEEDED, provider_reference="re_1")
    )
    assert store.refunds(payment_id=payment.id) == [done]
    assert store.find_refund(provider_reference="re_1") == done
    assert store.find_refund(provider_reference="") is None
    with pytest.raises(NotFound):
        store.start_refund(replace(refund, idempotency_key="refund:x", payment_id=999))


def an_event(event_id: str = "evt_1") -> ProviderEvent:
    return ProviderEvent(
        provider="stripe",
        event_id=event_id,
        type="payment_intent.succeeded",
        kind=EventKind.PAYMENT_SUCCEEDED,
        occurred_at=NOW,
        payload='{"id": "evt_1"}',
        payment_reference="pi_1",
        idempotency_key="charge:renew:1:1",
        amount=Money(Decimal("9.99"), "EUR"),
    )


def test_an_event_is_kept_once_counts_its_deliveries_and_is_applied_once(world: World) -> None:
    log = world.store
    first = log.keep(an_event(), at=NOW)
    assert (first.deliveries, first.applied_at, first.event) == (1, None, an_event())
    assert [e.event.event_id for e in log.unapplied()] == ["evt_1"]
    log.mark_applied(provider="stripe", event_id="evt_1", at=NOW, outcome="payment 1 paid")
    log.mark_applied(provider="stripe", event_id="evt_1", at=NOW + timedelta(1), outcome="x")
    again = log.keep(an_event(), at=NOW + timedelta(minutes=1))
    assert (again.deliveries, again.applied_at, again.outcome) == (2, NOW, "payment 1 paid")
    assert log.unapplied() == []
    log.keep(an_event("evt_2"), at=NOW)
    assert [e.event.event_id for e in log.events()] == ["evt_2", "evt_1"]
    assert log.events(provider="paypal") == []
    with pytest.raises(NotFound):
        log.mark_applied(provider="stripe", event_id="evt_9", at=NOW, outcome="")


def test_a_dunning_case_opens_once_per_charge_and_keeps_its_schedule(world: World) -> None:
    cases = world.store
    case = DunningCase(
        "renew:1:2026-10-01", world.subscriber_id, None, Money(Decimal("9.99"), "EUR"), NOW
    )
    opened, new = cases.open_case(case)
    assert new and opened.id > 0
    assert cases.open_case(case) == (opened, False)
    changed = cases.save_case(
        replace(
            opened.failed(FailureCode.INSUFFICIENT_FUNDS, at=NOW).held(NOW + timedelta(hours=1)),
            held_for=timedelta(hours=5, milliseconds=250),
            subscription_id=3,
        )
    )
    assert cases.case("renew:1:2026-10-01") == changed
    assert cases.cases(subscriber_id=world.subscriber_id) == [changed]
    recovered = cases.save_case(changed.recovered(at=NOW + timedelta(days=1)))
    assert recovered.status is DunningStatus.RECOVERED
    assert cases.cases() == []
    assert cases.cases(open_only=False) == [recovered]
    assert cases.case("renew:9") is None
    with pytest.raises(NotFound):
        cases.save_case(replace(case, reference="renew:9", id=99))
