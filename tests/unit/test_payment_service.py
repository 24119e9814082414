"""The payments service over the in-memory ports and a scripted provider: what billing hands
it is charged once, a refusal opens dunning (retries, notices with the update link, suspension
after the grace period, resumption when paid), an outage holds everything, a provider event is
applied once whatever the deliveries and their order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tawasol.adapters.memory.payments import MemoryPaymentStore
from tawasol.adapters.store.billing_memory import InMemoryBillingStore
from tawasol.domain.billing.ledger import EntryKind
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.notices import Channel
from tawasol.domain.payments.dunning import DunningSchedule, DunningStatus
from tawasol.domain.payments.events import EventKind, ProviderEvent
from tawasol.domain.payments.methods import (
    Payer,
    PaymentMethod,
    PaymentMethodKind,
    PaymentMethodStatus,
)
from tawasol.domain.payments.outcomes import (
    ChargeOutcome,
    Failed,
    FailureCode,
    Paid,
    PaymentStatus,
    RefundOutcome,
    RefundStatus,
)
from tawasol.domain.payments.payments import Payment
from tawasol.domain.subscribers import Subscription, SubscriptionStatus
from tawasol.services.billing.ports import BillingCustomer
from tawasol.services.notice_ports import InMemoryNoticeOutbox
from tawasol.services.payments.notices import OutboxPaymentNotices
from tawasol.services.payments.ports import MethodSetup
from tawasol.services.payments.service import PaymentService, PaymentSettings

T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
PRICE = Money(Decimal("9.99"), "EUR")
REFERENCE = "renew:1:2026-10-01T00:00:00+00:00"


@dataclass
class ScriptedProvider:
    """A provider that answers charges from a script and records what it was asked."""

    outcomes: list[ChargeOutcome] = field(default_factory=list)
    charges: list[tuple[str, Money]] = field(default_factory=list)
    refunds: list[tuple[str, Money]] = field(default_factory=list)
    name: str = "scripted"
    kind: PaymentMethodKind = PaymentMethodKind.CARD

    def set_up(
        self, *, payer: Payer, details: Mapping[str, str], idempotency_key: str
    ) -> MethodSetup:
        return MethodSetup(
            PaymentMethod(
                payer.subscriber_id,
                PaymentMethodKind.CARD,
                self.name,
                "cus_1",
                details["card"],
                PaymentMethodStatus.ACTIVE,
                label=details["card"],
            )
        )

    def charge(
        self, *, method: PaymentMethod, amount: Money, idempotency_key: str, description: str
    ) -> ChargeOutcome:
        self.charges.append((idempotency_key, amount))
        return self.outcomes.pop(0)

    def refund(self, *, payment: Payment, amount: Money, idempotency_key: str) -> RefundOutcome:
        self.refunds.append((idempotency_key, amount))
        return RefundOutcome(RefundStatus.SUCCEEDED, f"re_{len(self.refunds)}")

    def verify_event(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        raise InvalidInput("not used")


@dataclass
class World:
    service: PaymentService
    provider: ScriptedProvider
    billing: InMemoryBillingStore
    outbox: InMemoryNoticeOutbox
    now: list[datetime]
    outage: list[bool]

    def ledger(self) -> list[tuple[str, str, str]]:
        account = self.billing.account(subscriber_id=1, currency="EUR")
        return [(e.kind.value, str(e.amount.amount), e.idempotency_key) for e in account.entries]

    def told(self) -> list[tuple[str, str]]:
        return sorted(
            (n.occasion.value, n.channel.value)
            for n in self.outbox.list_notices(incident_id=0, limit=100)
        )

    def status(self) -> SubscriptionStatus:
        return self.billing.subscription(1).status


@pytest.fixture
def world() -> World:
    billing = InMemoryBillingStore()
    billing.add(
        BillingCustomer(1, "Amina Benali", "amina@example.org", "FR", "Europe/Paris", "fr"),
        Subscription(1, 1, "maroc-illimite", SubscriptionStatus.ACTIVE, T0, T0 + timedelta(30)),
    )
    store = MemoryPaymentStore()
    outbox = InMemoryNoticeOutbox()
    provider = ScriptedProvider()
    now = [T0]
    outage = [False]
    service = PaymentService(
        providers={"scripted": provider},
        store=store,
        events=store,
        dunning=store,
        billing=billing,
        payers=lambda i: Payer(i, "Amina Benali", "amina@example.org", "+33612345678", "fr"),
        held=lambda _i: outage[0],
        notices=OutboxPaymentNotices(outbox=outbox, channels=(Channel.EMAIL, Channel.SMS)),
        clock=lambda: now[0],
        settings=PaymentSettings(
            DunningSchedule((1, 3, 5, 7), 7), update_url="https://my.example/pay/{subscriber}"
        ),
    )
    service.set_up_method(subscriber_id=1, provider="scripted", details={"card": "pm_a"})
    return World(service, provider, billing, outbox, now, outage)


def test_given_a_card_that_pays_then_one_charge_and_one_payment_entry_however_often_collected(
    world: World,
) -> None:
    world.provider.outcomes = [Paid("pi_1")]
    assert world.service.collect(subscriber_id=1, amount=PRICE, reference=REFERENCE) == (
        PaymentStatus.PAID
    )
    assert world.service.collect(subscriber_id=1, amount=PRICE, reference=REFERENCE) == (
        PaymentStatus.PAID
    )
    assert world.provider.charges == [(f"charge:{REFERENCE}:1", PRICE)]
    assert world.ledger() == [("payment", "9.99", "payment:scripted:pi_1")]
    assert world.told() == []


def test_given_insufficient_funds_then_retries_notices_suspension_and_resumption(
    world: World,
) -> None:
    nsf = Failed(FailureCode.INSUFFICIENT_FUNDS, "insufficient funds", "pi_x")
    world.provider.outcomes = [nsf, nsf, nsf, nsf, Paid("pi_5")]
    assert world.service.collect(subscriber_id=1, amount=PRICE, reference=REFERENCE) == (
        PaymentStatus.FAILED
    )
    [notice] = [n for n in world.outbox.list_notices(incident_id=0) if n.channel is Channel.EMAIL]
    assert "https://my.example/pay/1" in notice.text
    assert "provision insuffisante" in notice.text and "2026-10-02" in notice.text
    for day in (1, 3, 5):
        world.now[0] = T0 + timedelta(days=day)
        summary = world.service.run_dunning()
        assert (summary.charged, summary.failed) == (1, 1)
    assert len(world.provider.charges) == 4
    assert world.status() is SubscriptionStatus.ACTIVE
    world.now[0] = T0 + timedelta(days=7)
    summary = world.service.run_dunning()
    assert (summary.suspended, summary.paid) == (1, 1)
    assert world.status() is SubscriptionStatus.ACTIVE  # suspended, then paid at once: resumed
    assert world.told() == sorted(
        [("payment_failed", c) for c in ("email", "sms") for _ in range(4)]
        + [("payment_suspended", "email"), ("payment_suspended", "sms")]
        + [("payment_resumed", "email"), ("payment_resumed", "sms")]
    )
    assert [k for _, _, k in world.ledger()] == ["payment:scripted:pi_5"]
    assert world.service.case(REFERENCE).status is DunningStatus.RECOVERED
    # nothing more to do, ever
    world.now[0] = T0 + timedelta(days=20)
    assert world.service.run_dunning().charged == 0


def test_given_the_grace_period_over_then_suspended_until_a_new_card_pays(world: World) -> None:
    world.provider.outcomes = [Failed(FailureCode.EXPIRED_CARD, "expired", "pi_1")]
    world.service.collect(subscriber_id=1, amount=PRICE, reference=REFERENCE)
    world.now[0] = T0 + timedelta(days=3)
    assert world.service.run_dunning().charged == 0  # an expired card is not tried again
    world.now[0] = T0 + timedelta(days=7, hours=1)
    assert world.service.run_dunning().suspended == 1
    assert world.status() is SubscriptionStatus.SUSPENDED
    world.provider.outcomes = [Paid("pi_2")]
    world.service.set_up_method(subscriber_id=1, provider="scripted", details={"card": "pm_b"})
    assert world.status() is SubscriptionStatus.ACTIVE
    methods = {m.method_reference: m.status for m in world.service.methods(1)}
    assert methods == {"pm_a": PaymentMethodStatus.REPLACED, "pm_b": PaymentMethodStatus.ACTIVE}
    assert world.ledger() == [("payment", "9.99", "payment:scripted:pi_2")]


def test_given_an_outage_then_no_debit_and_no_dunning_until_it_ends(world: World) -> None:
    world.outage[0] = True
    assert world.service.collect(subscriber_id=1, amount=PRICE, reference=REFERENCE) == (
        PaymentStatus.PENDING
    )
    world.now[0] = T0 + timedelta(days=10)
    summary = world.service.run_dunning()
    assert (summary.held, summary.charged, summary.suspended) == (1, 0, 0)
    assert world.provider.charges == []
    assert world.told() == []
    world.outage[0] = False
    world.now[0] = T0 + timedelta(days=12)
    world.provider.outcomes = [Failed(FailureCode.INSUFFICIENT_FUNDS, "nsf", "pi_1")]
    assert world.service.run_dunning().charged == 1
    case = world.service.case(REFERENCE)
    # held from the first round (day 10) to day 12, on top of the 10 days before it was seen
    assert case.suspend_at(DunningSchedule()) == T0 + timedelta(days=7) + case.held_for
    assert world.status() is SubscriptionStatus.ACTIVE


def an_event(event_id: str, kind: EventKind, **fields: object) -> ProviderEvent:
    return ProviderEvent(
        provider="scripted",
        event_id=event_id,
        type=kind.value,
        kind=kind,
        occurred_at=T0,
        payload="{}",
        **fields,  # type: ignore[arg-type]
    )


def test_an_event_delivered_three_times_and_out_of_order_is_applied_once(world: World) -> None:
    from tawasol.domain.payments.outcomes import Pending

    world.provider.outcomes = [Pending("pi_1")]
    world.service.collect(subscriber_id=1, amount=PRICE, reference=REFERENCE)
    succeeded = an_event("evt_ok", EventKind.PAYMENT_SUCCEEDED, payment_reference="pi_1")
    failed = an_event(
        "evt_ko",
        EventKind.PAYMENT_FAILED,
        payment_reference="pi_1",
        failure_code=FailureCode.INSUFFICIENT_FUNDS,
    )
    for event in (succeeded, succeeded, failed, succeeded):
        world.service.take_event(event)
    assert world.ledger() == [("payment", "9.99", "payment:scripted:pi_1")]
    [payment] = world.service.store.payments(subscriber_id=1)
    assert payment.status is PaymentStatus.PAID
    assert [(e.event.event_id, e.deliveries) for e in world.service.events.events()] == [
        ("evt_ko", 1),
        ("evt_ok", 3),
    ]
    assert world.told() == []


def test_a_refund_goes_back_on_the_payment_once_and_never_beyond_it(world: World) -> None:
    world.provider.outcomes = [Paid("pi_1")]
    world.service.collect(subscriber_id=1, amount=PRICE, reference=REFERENCE)
    [payment] = world.service.store.payments(subscriber_id=1)
    half = Money(Decimal("4.99"), "EUR")
    first = world.service.refund(payment_id=payment.id, amount=half, reference="r1")
    assert world.service.refund(payment_id=payment.id, amount=half, reference="r1") == first
    with pytest.raises(InvalidInput, match="more than payment"):
        world.service.refund(
            payment_id=payment.id, amount=Money(Decimal("5.01"), "EUR"), reference="r2"
        )
    assert world.provider.refunds == [(f"refund:{payment.id}:r1", half)]
    assert [(k, a) for k, a, _ in world.ledger()] == [("payment", "9.99"), ("refund", "4.99")]
    assert EntryKind.REFUND.value == "refund"
