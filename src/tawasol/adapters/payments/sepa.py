"""SEPA Direct Debit behind the `PaymentProvider` port.

Setting up the method records the signed mandate; a charge schedules a pre-notified collection
and stays `Pending` until the pain.008 batch of its date (the SEPA service then reports it paid,
or the bank's returns report it taken back); a refund queues a credit transfer to the account
debited (pain.001). The bank does not call back: its answers come in files the operator
imports (`tawasol payments sepa returns FILE`), so there is no webhook to verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.events import ProviderEvent
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
    Pending,
    RefundOutcome,
    RefundStatus,
)
from tawasol.domain.payments.payments import Payment
from tawasol.services.payments.ports import MethodSetup, PaymentProvider
from tawasol.services.payments.sepa import (
    SEPA,
    PresentationsUsed,
    SepaDirectDebit,
    collection_id_of,
    payment_reference,
)


class SepaProvider:
    """`PaymentProvider` for SEPA Direct Debit, over the `SepaDirectDebit` service."""

    name = SEPA
    kind = PaymentMethodKind.SEPA

    def __init__(self, service: SepaDirectDebit) -> None:
        self._service = service

    @property
    def service(self) -> SepaDirectDebit:
        return self._service

    def set_up(
        self, *, payer: Payer, details: Mapping[str, str], idempotency_key: str
    ) -> MethodSetup:
        """`details`: `iban`, `holder` (the account holder's name), `signed_on` (ISO date),
        optionally `bic`, `mandate_reference` (the paper mandate's; else one is made) and
        `prenotification_days` (a shorter period agreed in the mandate)."""
        missing = [key for key in ("iban", "holder", "signed_on") if not details.get(key)]
        if missing:
            raise InvalidInput(
                f"a SEPA mandate needs {', '.join(missing)}", missing=",".join(missing)
            )
        try:
            signed_on = date.fromisoformat(details["signed_on"])
        except ValueError as error:
            raise InvalidInput(
                "a mandate's signature date is YYYY-MM-DD", signed_on=details["signed_on"]
            ) from error
        days = details.get("prenotification_days", "")
        if days and not days.isdigit():
            raise InvalidInput("the pre-notification period is a number of days", days=days)
        mandate = self._service.add_mandate(
            subscriber_id=payer.subscriber_id,
            iban=details["iban"],
            holder=details["holder"],
            bic=details.get("bic", ""),
            signed_on=signed_on,
            reference=details.get("mandate_reference", ""),
            prenotification_days=int(days) if days else None,
        )
        return MethodSetup(
            PaymentMethod(
                subscriber_id=payer.subscriber_id,
                kind=PaymentMethodKind.SEPA,
                provider=SEPA,
                customer_reference="",
                method_reference=mandate.reference,
                status=PaymentMethodStatus.ACTIVE,
                label=f"SEPA {mandate.account.masked_iban}",
                details={
                    "mandate_reference": mandate.reference,
                    "signed_on": mandate.signed_on.isoformat(),
                    "iban": mandate.account.masked_iban,
                    "prenotification_days": str(mandate.prenotification_days),
                },
            )
        )

    def charge(
        self, *, method: PaymentMethod, amount: Money, idempotency_key: str, description: str
    ) -> ChargeOutcome:
        """A collection pre-notified today and collected at the earliest date that allows:
        `Pending` with that date; `Failed` (method revoked) when the mandate cannot be used."""
        try:
            collection = self._service.schedule(
                mandate_reference=method.method_reference,
                amount=amount,
                reference=idempotency_key,
                charge=description,  # the payments service describes a charge by its key
                description=description,
            )
        except PresentationsUsed as error:
            return Failed(FailureCode.INSUFFICIENT_FUNDS, error.message)
        except Conflict as error:
            return Failed(FailureCode.METHOD_REVOKED, error.message)
        return Pending(payment_reference(collection.id), expected_on=collection.due_on)

    def refund(self, *, payment: Payment, amount: Money, idempotency_key: str) -> RefundOutcome:
        """A credit transfer to the account the collection debited, paid with the next
        pain.001 file (`tawasol payments sepa transfers`): `pending` until then."""
        transfer = self._service.refund(
            collection_id=collection_id_of(payment.provider_reference),
            amount=amount,
            idempotency_key=idempotency_key,
        )
        return RefundOutcome(
            RefundStatus.PENDING,
            provider_reference=transfer.end_to_end_id,
            message="paid back by credit transfer with the next pain.001 file",
        )

    def verify_event(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        raise InvalidInput(
            "SEPA has no webhooks: the bank's returns come as a file "
            "(tawasol payments sepa returns FILE)"
        )


def _implements_the_port(provider: SepaProvider) -> PaymentProvider:
    return provider
