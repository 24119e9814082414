"""PayPal behind the `PaymentProvider` port, with PayPal's official `paypal-server-sdk`.

- **Set up** (vault without purchase, Payment Method Tokens API v3): a *setup token* for the
  PayPal wallet (`usage_type` MERCHANT: the operator charges later without the subscriber),
  whose `approve` link the subscriber opens; once they approved, the setup token becomes a
  *payment token* (`vault_id`) that renewals are charged to. `set_up` without `setup_token` in
  `details` starts (a `pending` method and the link); with it, it completes (`active`).
- **Charge** (Orders API v2): an order with `intent` CAPTURE paid from the vaulted token, the
  merchant initiating (`stored_credential`: MERCHANT, SUBSEQUENT); PayPal completes and
  captures it in the same call. The platform's idempotency key goes as `PayPal-Request-Id`,
  so a repeated request is answered with the first order, never a second capture.
- **Refund** (Payments API v2): a full or partial refund of the capture, keyed likewise.
- **Webhooks**: checked by PayPal itself (`POST /v1/notifications/verify-webhook-signature`
  with the transmission headers and the body as received; the SDK has no call for it, so it
  goes through httpx with the SDK's OAuth token), then translated into `ProviderEvent`s.

`base_url` points the SDK at PayPal's sandbox, its live API or (tests) a local server that
answers with the shapes of PayPal's published API reference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from paypalserversdk.configuration import Configuration, Environment, Server
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.exceptions.error_exception import ErrorException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown
from paypalserversdk.models.checkout_payment_intent import CheckoutPaymentIntent
from paypalserversdk.models.money import Money as PayPalMoney
from paypalserversdk.models.order_request import OrderRequest
from paypalserversdk.models.payment_source import PaymentSource
from paypalserversdk.models.payment_token_request import PaymentTokenRequest
from paypalserversdk.models.payment_token_request_payment_source import (
    PaymentTokenRequestPaymentSource,
)
from paypalserversdk.models.paypal_wallet import PaypalWallet
from paypalserversdk.models.paypal_wallet_stored_credential import PaypalWalletStoredCredential
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.models.setup_token_request import SetupTokenRequest
from paypalserversdk.models.setup_token_request_payment_source import (
    SetupTokenRequestPaymentSource,
)
from paypalserversdk.models.vault_experience_context import VaultExperienceContext
from paypalserversdk.models.vault_paypal_wallet_request import VaultPaypalWalletRequest
from paypalserversdk.models.vault_token_request import VaultTokenRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient
from requests.exceptions import RequestException

from tawasol.domain.errors import InvalidInput, InvalidSignature, PaymentDeclined, Unavailable
from tawasol.domain.money import Money
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
    Pending,
    RefundOutcome,
    RefundStatus,
    RequiresAction,
)
from tawasol.domain.payments.payments import Payment
from tawasol.services.payments.ports import MethodSetup, PaymentProvider

PAYPAL = "paypal"
SANDBOX_URL = "https://api-m.sandbox.paypal.com"
LIVE_URL = "https://api-m.paypal.com"

# The transmission headers PayPal signs a webhook with (names are case-insensitive).
_WEBHOOK_HEADERS = {
    "auth_algo": "paypal-auth-algo",
    "cert_url": "paypal-cert-url",
    "transmission_id": "paypal-transmission-id",
    "transmission_sig": "paypal-transmission-sig",
    "transmission_time": "paypal-transmission-time",
}

# Orders v2 / Payments v2 issues (PayPal's error reference) in the platform's terms.
_DECLINES = {
    "INSTRUMENT_DECLINED": FailureCode.CARD_DECLINED,
    "PAYER_CANNOT_PAY": FailureCode.CARD_DECLINED,
    "TRANSACTION_REFUSED": FailureCode.CARD_DECLINED,
    "PAYEE_BLOCKED_TRANSACTION": FailureCode.CARD_DECLINED,
    "PAYER_ACCOUNT_RESTRICTED": FailureCode.ACCOUNT_CLOSED,
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED": FailureCode.ACCOUNT_CLOSED,
    "INVALID_RESOURCE_ID": FailureCode.METHOD_REVOKED,  # the vault token was deleted
    "PAYMENT_SOURCE_INFO_CANNOT_BE_VERIFIED": FailureCode.INCORRECT_DETAILS,
}


@dataclass(frozen=True)
class PayPalSettings:
    """The operator's PayPal REST app (client id and secret), the webhook's id (as the
    developer dashboard shows it: PayPal signs for it), where PayPal sends the subscriber
    back after approving, and the API's base URL (sandbox, live, or a test server)."""

    client_id: str
    client_secret: str
    webhook_id: str
    return_url: str
    cancel_url: str
    base_url: str = SANDBOX_URL
    brand_name: str = "tawasol"
    timeout_s: float = 20.0


def _value(money: Money) -> str:
    return format(money.amount.quantize(Decimal("0.01")), "f")


def _issue(error: ErrorException) -> str:
    details = getattr(error, "details", None) or []
    return (
        str(getattr(details[0], "issue", "") or getattr(error, "name", "") or "")
        if details
        else str(getattr(error, "name", "") or "")
    )


def _link(links: Any, rel: str) -> str:
    for link in links or ():
        if getattr(link, "rel", "") == rel:
            return str(link.href)
    return ""


class PayPalProvider:
    """`PaymentProvider` for PayPal (see the module docstring)."""

    name = PAYPAL
    kind = PaymentMethodKind.PAYPAL

    def __init__(self, settings: PayPalSettings) -> None:
        self._settings = settings
        config = Configuration(
            environment=Environment.SANDBOX,
            timeout=settings.timeout_s,
            client_credentials_auth_credentials=ClientCredentialsAuthCredentials(
                o_auth_client_id=settings.client_id,
                o_auth_client_secret=settings.client_secret,
            ),
        )
        # The SDK knows two hosts (sandbox, live); the base URL chosen replaces them.
        config.environments = {Environment.SANDBOX: {Server.DEFAULT: settings.base_url}}
        self._client = PaypalServersdkClient(config=config)
        self._token: tuple[str, float] | None = None

    # -- calls through the SDK ---------------------------------------------------------------
    def _call(self, what: str, call: Any, options: dict[str, Any]) -> Any:
        try:
            response = call(options)
        except ErrorException as error:
            raise _Refused(what, error) from error
        except (ApiException, AuthValidationException) as error:
            raise Unavailable(
                f"PayPal refused or failed {what}: {error}", provider=PAYPAL
            ) from error
        except RequestException as error:
            raise Unavailable(
                f"cannot reach PayPal for {what}: {error}", provider=PAYPAL
            ) from error
        return response.body

    # -- PaymentProvider -----------------------------------------------------------------------
    def set_up(
        self, *, payer: Payer, details: Mapping[str, str], idempotency_key: str
    ) -> MethodSetup:
        """Without `setup_token`: a setup token and its approval link (method `pending`, its
        reference the setup token). With `setup_token` (the subscriber approved): the payment
        token (method `active`, its reference the vault id)."""
        setup_token = details.get("setup_token", "")
        try:
            if setup_token:
                return self._complete_setup(payer, setup_token, idempotency_key)
            return self._start_setup(payer, idempotency_key)
        except _Refused as refused:
            raise PaymentDeclined(
                f"PayPal refused the set-up: {refused.issue} {refused.message}".strip(),
                code=FailureCode.INCORRECT_DETAILS.value,
            ) from refused

    def _start_setup(self, payer: Payer, idempotency_key: str) -> MethodSetup:
        context = VaultExperienceContext(
            brand_name=self._settings.brand_name,
            locale=_paypal_locale(payer.locale),
            return_url=self._settings.return_url,
            cancel_url=self._settings.cancel_url,
            shipping_preference="NO_SHIPPING",
        )
        body = SetupTokenRequest(
            payment_source=SetupTokenRequestPaymentSource(
                paypal=VaultPaypalWalletRequest(
                    description="tawasol: renewals of your calling plan",
                    usage_type="MERCHANT",
                    usage_pattern="SUBSCRIPTION_PREPAID",
                    experience_context=context,
                )
            )
        )
        token = self._call(
            "the vault setup",
            self._client.vault.create_setup_token,
            {"body": body, "paypal_request_id": idempotency_key},
        )
        approve = _link(token.links, "approve")
        if not approve:
            raise Unavailable(
                "PayPal gave a setup token without its approval link", provider=PAYPAL
            )
        return MethodSetup(
            PaymentMethod(
                subscriber_id=payer.subscriber_id,
                kind=PaymentMethodKind.PAYPAL,
                provider=PAYPAL,
                customer_reference=str(getattr(token.customer, "id", "") or ""),
                method_reference=str(token.id),
                status=PaymentMethodStatus.PENDING,
                label="PayPal (awaiting approval)",
                details={"setup_token": str(token.id)},
            ),
            action_url=approve,
        )

    def _complete_setup(self, payer: Payer, setup_token: str, idempotency_key: str) -> MethodSetup:
        body = PaymentTokenRequest(
            payment_source=PaymentTokenRequestPaymentSource(
                token=VaultTokenRequest(id=setup_token, mtype="SETUP_TOKEN")
            )
        )
        token = self._call(
            "the payment token",
            self._client.vault.create_payment_token,
            {"body": body, "paypal_request_id": idempotency_key},
        )
        wallet = getattr(getattr(token, "payment_source", None), "paypal", None)
        email = str(getattr(wallet, "email_address", "") or "")
        return MethodSetup(
            PaymentMethod(
                subscriber_id=payer.subscriber_id,
                kind=PaymentMethodKind.PAYPAL,
                provider=PAYPAL,
                customer_reference=str(getattr(token.customer, "id", "") or ""),
                method_reference=str(token.id),
                status=PaymentMethodStatus.ACTIVE,
                label=f"PayPal {email}".strip(),
                details={"setup_token": setup_token, "email": email},
            )
        )

    def charge(
        self, *, method: PaymentMethod, amount: Money, idempotency_key: str, description: str
    ) -> ChargeOutcome:
        """An order paid from the vault token and captured at once: `Paid` (capture id),
        `Pending` (PayPal holds the capture), `Failed` (declined), `RequiresAction` (PayPal
        wants the payer: the `payer-action` link)."""
        body = OrderRequest(
            intent=CheckoutPaymentIntent.CAPTURE,
            purchase_units=[
                PurchaseUnitRequest(
                    amount=AmountWithBreakdown(currency_code=amount.currency, value=_value(amount)),
                    custom_id=idempotency_key[:127],
                    invoice_id=idempotency_key[:127],
                    description=description[:127] or "tawasol",
                )
            ],
            payment_source=PaymentSource(
                paypal=PaypalWallet(
                    vault_id=method.method_reference,
                    stored_credential=PaypalWalletStoredCredential(
                        payment_initiator="MERCHANT",
                        usage="SUBSEQUENT",
                        usage_pattern="SUBSCRIPTION_PREPAID",
                    ),
                )
            ),
        )
        try:
            order = self._call(
                "the renewal",
                self._client.orders.create_order,
                {
                    "body": body,
                    "paypal_request_id": idempotency_key,
                    "prefer": "return=representation",
                },
            )
        except _Refused as refused:
            if refused.issue == "PAYER_ACTION_REQUIRED":
                return RequiresAction("", _link(refused.links, "payer-action"))
            code = _DECLINES.get(refused.issue)
            if code is None:
                if refused.status >= 500:
                    return Failed(FailureCode.PROVIDER_ERROR, refused.describe())
                raise InvalidInput(f"PayPal refused the order: {refused.describe()}") from refused
            return Failed(code, refused.describe())
        capture = _first_capture(order)
        if capture is None:
            if str(order.status) == "PAYER_ACTION_REQUIRED":
                return RequiresAction(str(order.id), _link(order.links, "payer-action"))
            return Pending(str(order.id))
        status = str(capture.status)
        if status == "COMPLETED":
            return Paid(str(capture.id))
        if status in ("DECLINED", "FAILED"):
            return Failed(FailureCode.CARD_DECLINED, f"PayPal capture {status}", str(capture.id))
        return Pending(str(capture.id))

    def refund(self, *, payment: Payment, amount: Money, idempotency_key: str) -> RefundOutcome:
        """A refund of the capture (`payment.provider_reference`). InvalidInput when PayPal
        says it is more than the capture has left."""
        try:
            refund = self._call(
                "the refund",
                self._client.payments.refund_captured_payment,
                {
                    "capture_id": payment.provider_reference,
                    "body": RefundRequest(
                        amount=PayPalMoney(currency_code=amount.currency, value=_value(amount)),
                        note_to_payer="tawasol refund",
                    ),
                    "paypal_request_id": idempotency_key,
                    "prefer": "return=representation",
                },
            )
        except _Refused as refused:
            raise InvalidInput(
                f"PayPal refused the refund: {refused.describe()}",
                payment_id=payment.id,
                issue=refused.issue,
            ) from refused
        status = str(refund.status)
        mapped = {
            "COMPLETED": RefundStatus.SUCCEEDED,
            "FAILED": RefundStatus.FAILED,
            "CANCELLED": RefundStatus.FAILED,
        }.get(status, RefundStatus.PENDING)
        return RefundOutcome(mapped, provider_reference=str(refund.id), message=status)

    # -- webhooks ------------------------------------------------------------------------------
    def verify_event(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """PayPal checks the signature (see the module docstring); InvalidSignature when it
        says FAILURE or a transmission header is missing, InvalidInput for a body that is not
        a PayPal event, Unavailable when PayPal cannot be asked."""
        lowered = {key.lower(): value for key, value in headers.items()}
        values = {field: lowered.get(header, "") for field, header in _WEBHOOK_HEADERS.items()}
        missing = [header for field, header in _WEBHOOK_HEADERS.items() if not values[field]]
        if missing:
            raise InvalidSignature(
                f"a PayPal webhook without {', '.join(missing)}", missing=",".join(missing)
            )
        try:
            event = json.loads(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidInput("a PayPal webhook's body is not JSON") from error
        if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
            raise InvalidInput("a PayPal webhook's body is not an event (id, event_type)")
        head = json.dumps({**values, "webhook_id": self._settings.webhook_id})
        # The event goes as received, byte for byte: PayPal verifies what it signed.
        request = head[:-1] + ', "webhook_event": ' + body.decode("utf-8") + "}"
        try:
            answer = httpx.post(
                f"{self._settings.base_url}/v1/notifications/verify-webhook-signature",
                content=request.encode("utf-8"),
                headers={
                    "Authorization": f"Bearer {self._access_token()}",
                    "Content-Type": "application/json",
                },
                timeout=self._settings.timeout_s,
            )
        except httpx.HTTPError as error:
            raise Unavailable(f"cannot reach PayPal to verify a webhook: {error}") from error
        if answer.status_code >= 500:
            raise Unavailable(f"PayPal could not verify a webhook ({answer.status_code})")
        status = answer.json().get("verification_status") if answer.status_code == 200 else None
        if status != "SUCCESS":
            raise InvalidSignature(
                "PayPal says this webhook's signature does not verify",
                event_id=str(event.get("id"))[:80],
            )
        return translate_event(event, payload=body.decode("utf-8"))

    def _access_token(self) -> str:
        if self._token is None or self._token[1] <= time.time() + 60:
            try:
                token = self._client.oauth_2.fetch_token()
            except (ApiException, RequestException) as error:
                raise Unavailable(f"cannot get a PayPal access token: {error}") from error
            expires = float(getattr(token, "expires_in", 0) or 0)
            self._token = (str(token.access_token), time.time() + expires)
        return self._token[0]


class _Refused(Exception):
    """PayPal answered with an error document (4xx/5xx with name, details, links)."""

    def __init__(self, what: str, error: ErrorException) -> None:
        super().__init__(f"{what}: {error}")
        self.status = int(getattr(error, "response_code", 0) or 0)
        self.issue = _issue(error)
        self.message = str(getattr(error, "message", "") or "")
        self.links = getattr(error, "links", None)

    def describe(self) -> str:
        return f"{self.issue} {self.message}".strip() or f"HTTP {self.status}"


def _first_capture(order: Any) -> Any:
    for unit in getattr(order, "purchase_units", None) or ():
        payments = getattr(unit, "payments", None)
        captures = getattr(payments, "captures", None) or ()
        if captures:
            return captures[0]
    return None


def _paypal_locale(locale: str) -> str:
    """PayPal takes BCP 47 tags it knows (fr-FR, en-GB, ar-EG ...)."""
    language = locale.replace("_", "-").split("-", 1)[0].lower()
    return {"fr": "fr-FR", "ar": "ar-EG"}.get(language, "en-GB")


def _event_money(resource: Mapping[str, Any]) -> Money | None:
    amount = resource.get("amount")
    if not isinstance(amount, dict):
        return None
    try:
        return Money.parse(str(amount.get("value", "")), str(amount.get("currency_code", "")))
    except InvalidInput:
        return None


def _capture_of(resource: Mapping[str, Any]) -> str:
    for link in resource.get("links") or ():
        if (
            isinstance(link, dict)
            and link.get("rel") == "up"
            and "/captures/" in str(link.get("href", ""))
        ):
            return str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    return ""


def translate_event(event: Mapping[str, Any], *, payload: str) -> ProviderEvent:
    """A verified PayPal webhook event in the platform's terms (event types from PayPal's
    webhook event names: PAYMENT.CAPTURE.*, VAULT.PAYMENT-TOKEN.*)."""
    kind_by_type = {
        "PAYMENT.CAPTURE.COMPLETED": EventKind.PAYMENT_SUCCEEDED,
        "PAYMENT.CAPTURE.DENIED": EventKind.PAYMENT_FAILED,
        "PAYMENT.CAPTURE.DECLINED": EventKind.PAYMENT_FAILED,
        "PAYMENT.CAPTURE.REFUNDED": EventKind.REFUND_SUCCEEDED,
        "PAYMENT.CAPTURE.REVERSED": EventKind.CHARGEBACK,
        "VAULT.PAYMENT-TOKEN.CREATED": EventKind.METHOD_ACTIVE,
        "VAULT.PAYMENT-TOKEN.DELETED": EventKind.METHOD_REVOKED,
    }
    event_type = str(event.get("event_type", ""))
    kind = kind_by_type.get(event_type, EventKind.IGNORED)
    resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
    assert isinstance(resource, dict)
    occurred = _parse_time(str(event.get("create_time", "")))
    refund = kind is EventKind.REFUND_SUCCEEDED
    method = kind in (EventKind.METHOD_ACTIVE, EventKind.METHOD_REVOKED)
    return ProviderEvent(
        provider=PAYPAL,
        event_id=str(event["id"])[:200],
        type=event_type,
        kind=kind,
        occurred_at=occurred,
        payload=payload,
        payment_reference=""
        if method
        else (_capture_of(resource) if refund else str(resource.get("id", ""))),
        idempotency_key=str(resource.get("custom_id", "") or ""),
        method_reference=str(resource.get("id", "")) if method else "",
        refund_reference=str(resource.get("id", "")) if refund else "",
        amount=None if method else _event_money(resource),
        failure_code=FailureCode.CARD_DECLINED if kind is EventKind.PAYMENT_FAILED else None,
        failure_message=event_type if kind is EventKind.PAYMENT_FAILED else "",
    )


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _implements_the_port(provider: PayPalProvider) -> PaymentProvider:
    return provider
