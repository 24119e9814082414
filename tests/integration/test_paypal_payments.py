"""PayPal through the official SDK against a local server that answers as PayPal's API
reference documents (no PayPal sandbox is reachable from here): a vaulted wallet, a renewal
charged to it, a partial refund, webhooks verified by PayPal's verify call (issue 15,
must-show 4, and must-show 5's refund above what was paid and wrong signature)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from test_sepa_payments import BILLING

from support.operator import a_new_subscriber, a_plan
from support.paypal import PayPalServer
from tawasol.adapters.payments.paypal import PayPalProvider, PayPalSettings
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.composition import build_billing
from tawasol.config import Settings
from tawasol.domain.errors import InvalidInput, InvalidSignature
from tawasol.domain.money import Money
from tawasol.domain.payments.methods import Payer
from tawasol.domain.payments.outcomes import Failed, FailureCode, Paid, PaymentStatus, RefundStatus
from tawasol.domain.subscribers import SubscriptionStatus

CLIENT = {"client_id": "AZtawasol-test-client", "client_secret": "EL-test-secret"}
WEBHOOK_ID = "1JE4291016473214C"


@pytest.fixture
def paypal() -> Iterator[PayPalServer]:
    with PayPalServer(webhook_id=WEBHOOK_ID, **CLIENT) as server:
        yield server


def settings_for(tmp_path: Path, paypal: PayPalServer) -> Settings:
    return Settings(
        data_dir=tmp_path,
        **BILLING,
        payments_paypal_client_id=CLIENT["client_id"],
        payments_paypal_client_secret=CLIENT["client_secret"],
        payments_paypal_webhook_id=WEBHOOK_ID,
        payments_paypal_base_url=paypal.url,
        payments_paypal_return_url="https://portal.example.org/paypal/return",
        payments_paypal_cancel_url="https://portal.example.org/paypal/cancel",
    )


def test_given_a_vaulted_wallet_then_a_renewal_and_a_partial_refund_reach_paypal_and_ledger(
    tmp_path: Path, paypal: PayPalServer
):
    url = sqlite_url_for(tmp_path)
    migrate(url)
    store = SqlStore.from_url(url)
    try:
        store.save_plan(a_plan(time_windows=()))
        subscriber = store.add_subscriber(a_new_subscriber("karim", locale="fr"))
        store.add_subscription(
            subscriber_id=subscriber.id,
            plan_code="maroc-illimite",
            status=SubscriptionStatus.ACTIVE,
            period_start=datetime(2026, 12, 1, tzinfo=UTC),
            period_end=datetime(2027, 1, 1, tzinfo=UTC),
        )
        billing = build_billing(settings_for(tmp_path, paypal), store=store)
        payments = billing.payment_service

        started = payments.set_up_method(subscriber_id=subscriber.id, provider="paypal", details={})
        assert started.method.status.value == "pending"
        assert started.action_url.startswith("https://www.sandbox.paypal.com/agreements/approve")
        setup_token = started.method.method_reference
        paypal.approve(setup_token, email="karim@example.org")
        done = payments.set_up_method(
            subscriber_id=subscriber.id, provider="paypal", details={"setup_token": setup_token}
        )
        assert done.method.status.value == "active"
        assert done.method.label == "PayPal karim@example.org"
        assert done.method.method_reference in paypal.state.payment_tokens

        summary = billing.run.run(at=datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
        assert summary.errors == []
        (payment,) = payments.store.payments(subscriber_id=subscriber.id)
        assert payment.status is PaymentStatus.PAID
        capture = paypal.state.captures[payment.provider_reference]
        assert capture["amount"] == {"currency_code": "EUR", "value": "9.99"}
        assert capture["custom_id"] == payment.idempotency_key
        account = billing.store.account(subscriber_id=subscriber.id, currency="EUR")
        assert account.balance == Money(Decimal("0.00"), "EUR")

        refund = payments.refund(
            payment_id=payment.id, amount=Money(Decimal("4.00"), "EUR"), reference="outage"
        )
        assert refund.status is RefundStatus.SUCCEEDED
        assert paypal.state.refunds[refund.provider_reference]["amount"]["value"] == "4.00"
        with pytest.raises(InvalidInput, match="more than"):
            payments.refund(
                payment_id=payment.id, amount=Money(Decimal("6.00"), "EUR"), reference="again"
            )
        assert len(paypal.state.refunds) == 1
        account = billing.store.account(subscriber_id=subscriber.id, currency="EUR")
        assert account.total(*_kinds("refund")) == Money(Decimal("4.00"), "EUR")
        assert capture["refunded"] == "4.00"  # PayPal's own record agrees with the ledger

        # PayPal's webhook for that refund, delivered three times: kept once, applied once.
        body, headers = paypal.webhook(
            "PAYMENT.CAPTURE.REFUNDED",
            {
                **{
                    k: v
                    for k, v in paypal.state.refunds[refund.provider_reference].items()
                    if k != "capture_id"
                },
            },
        )
        for _ in range(3):
            payments.receive(provider="paypal", body=body, headers=headers)
        (kept,) = payments.events.events(provider="paypal")
        assert kept.deliveries == 3
        account = billing.store.account(subscriber_id=subscriber.id, currency="EUR")
        assert account.total(*_kinds("refund")) == Money(Decimal("4.00"), "EUR")

        forged, forged_headers = paypal.webhook(
            "PAYMENT.CAPTURE.COMPLETED",
            {"id": "FORGED", "amount": {"currency_code": "EUR", "value": "9.99"}},
            sign=False,
        )
        with pytest.raises(InvalidSignature):
            payments.receive(provider="paypal", body=forged, headers=forged_headers)
        assert len(payments.events.events(provider="paypal")) == 1
    finally:
        store.close()


def _kinds(*names: str):  # type: ignore[no-untyped-def]
    from tawasol.domain.billing.ledger import EntryKind

    return tuple(EntryKind(name) for name in names)


def test_given_the_adapter_alone_then_paypal_idempotency_declines_and_refund_limits_hold(
    paypal: PayPalServer,
):
    provider = PayPalProvider(
        PayPalSettings(
            webhook_id=WEBHOOK_ID,
            return_url="https://portal.example.org/r",
            cancel_url="https://portal.example.org/c",
            base_url=paypal.url,
            **CLIENT,
        )
    )
    payer = Payer(subscriber_id=7, name="Karim", email="k@example.org", phone="", locale="ar")
    started = provider.set_up(payer=payer, details={}, idempotency_key="setup-7")
    paypal.approve(started.method.method_reference, email="k@example.org")
    method = provider.set_up(
        payer=payer,
        details={"setup_token": started.method.method_reference},
        idempotency_key="token-7",
    ).method
    amount = Money(Decimal("19.99"), "EUR")
    first = provider.charge(
        method=method, amount=amount, idempotency_key="charge:a:1", description="a"
    )
    repeated = provider.charge(
        method=method, amount=amount, idempotency_key="charge:a:1", description="a"
    )
    assert isinstance(first, Paid) and repeated == first  # PayPal-Request-Id: one capture
    assert len(paypal.state.captures) == 1

    paypal.state.declining.add(method.method_reference)
    declined = provider.charge(
        method=method, amount=amount, idempotency_key="charge:b:1", description="b"
    )
    assert isinstance(declined, Failed) and declined.code is FailureCode.CARD_DECLINED
    assert len(paypal.state.captures) == 1
