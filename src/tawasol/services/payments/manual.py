"""The manual way of paying behind the `PaymentProvider` port: nothing is collected by the
platform, the operator records the bank transfer or the cash when it arrives
(`tawasol.services.billing.payments.ManualPayments.record`) and pays refunds back by transfer.
"""

from __future__ import annotations

from collections.abc import Mapping

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.events import ProviderEvent
from tawasol.domain.payments.methods import (
    Payer,
    PaymentMethod,
    PaymentMethodKind,
    PaymentMethodStatus,
)
from tawasol.domain.payments.outcomes import ChargeOutcome, Pending, RefundOutcome, RefundStatus
from tawasol.domain.payments.payments import Payment
from tawasol.services.payments.ports import MethodSetup

MANUAL = "manual"


class ManualProvider:
    """`PaymentProvider` for bank transfers and cash: charges and refunds stay pending until
    the operator records them."""

    name = MANUAL
    kind = PaymentMethodKind.MANUAL

    def set_up(
        self, *, payer: Payer, details: Mapping[str, str], idempotency_key: str
    ) -> MethodSetup:
        label = details.get("label", "bank transfer")
        return MethodSetup(
            PaymentMethod(
                subscriber_id=payer.subscriber_id,
                kind=PaymentMethodKind.MANUAL,
                provider=MANUAL,
                customer_reference="",
                method_reference=f"manual:{payer.subscriber_id}:{idempotency_key}",
                status=PaymentMethodStatus.ACTIVE,
                label=label,
            )
        )

    def charge(
        self, *, method: PaymentMethod, amount: Money, idempotency_key: str, description: str
    ) -> ChargeOutcome:
        return Pending()  # the operator records the transfer when it arrives

    def refund(self, *, payment: Payment, amount: Money, idempotency_key: str) -> RefundOutcome:
        return RefundOutcome(RefundStatus.PENDING, message="to pay back by bank transfer")

    def verify_event(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        raise InvalidInput("manual payments have no provider events")
