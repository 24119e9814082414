"""Cards through Stripe, with the official `stripe` SDK: the `PaymentProvider` for cards.

- **Saving a card** (`set_up`): the portal collects the card with Stripe.js (the card number
  never reaches the platform: PCI DSS SAQ A) and hands over its PaymentMethod id (`pm_...`).
  The adapter creates the subscriber's Customer once, then a SetupIntent for `off_session` use,
  confirmed with the card: `succeeded` gives an active method; `requires_action` (the bank
  wants 3-D Secure, PSD2 strong customer authentication) a pending one, with the SetupIntent's
  client secret for Stripe.js and the portal's page to finish on; the `setup_intent.succeeded`
  event activates it afterwards.
- **Renewals** (`charge`): an off-session PaymentIntent, confirmed at once, with the renewal's
  idempotency key as Stripe's `Idempotency-Key` (a retry after a timeout is answered, not
  charged again) and in the metadata (events name the payment by it). When the bank asks for
  authentication (`requires_action`, or Stripe's `authentication_required` refusal of an
  off-session payment), the subscriber is sent the portal's page for that PaymentIntent
  (`return_url?payment_intent=pi_...`), where Stripe.js runs 3-D Secure on-session (Stripe's
  "bring the customer back" flow); `payment_intent.succeeded` settles it.
- **Refunds** (`refund`): a Refund on the PaymentIntent, full or partial, to the same card.
- **Events** (`verify_event`): `stripe.Webhook.construct_event` checks the `Stripe-Signature`
  (HMAC-SHA256 of "<t>.<body>" with the endpoint's secret, `t` within 5 minutes) before the
  body is parsed; the event is then read into a `ProviderEvent`.

Stripe's decline codes map to the platform's `FailureCode` in one table (`DECLINES`). Network
failures and Stripe's own errors are `Unavailable` (nothing known: the same key is sent again).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, cast

import stripe

from tawasol.domain.billing.amounts import from_minor_units, to_minor_units
from tawasol.domain.errors import (
    InvalidConfiguration,
    InvalidInput,
    InvalidSignature,
    PaymentDeclined,
    Unavailable,
)
from tawasol.domain.money import Money
from tawasol.domain.payments.events import EventKind, ProviderEvent
from tawasol.domain.payments.methods import (
    Payer,
    PaymentMethod,
    PaymentMethodKind,
    PaymentMethodStatus,
    card_expiry,
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
from tawasol.services.payments.ports import MethodSetup

STRIPE = "stripe"
# Stripe's webhook signatures: a timestamp older than this is refused (replay protection;
# Stripe's own libraries default to 300 s).
SIGNATURE_TOLERANCE_S = 300

# Stripe's `code` / `decline_code` (docs.stripe.com/declines/codes) -> the platform's reason.
DECLINES: dict[str, FailureCode] = {
    "insufficient_funds": FailureCode.INSUFFICIENT_FUNDS,
    "card_velocity_exceeded": FailureCode.INSUFFICIENT_FUNDS,
    "withdrawal_count_limit_exceeded": FailureCode.INSUFFICIENT_FUNDS,
    "expired_card": FailureCode.EXPIRED_CARD,
    "incorrect_number": FailureCode.INCORRECT_DETAILS,
    "invalid_number": FailureCode.INCORRECT_DETAILS,
    "incorrect_cvc": FailureCode.INCORRECT_DETAILS,
    "invalid_cvc": FailureCode.INCORRECT_DETAILS,
    "invalid_expiry_month": FailureCode.INCORRECT_DETAILS,
    "invalid_expiry_year": FailureCode.INCORRECT_DETAILS,
    "lost_card": FailureCode.ACCOUNT_CLOSED,
    "stolen_card": FailureCode.ACCOUNT_CLOSED,
    "pickup_card": FailureCode.ACCOUNT_CLOSED,
    "authentication_required": FailureCode.AUTHENTICATION_FAILED,
    "payment_intent_authentication_failure": FailureCode.AUTHENTICATION_FAILED,
    "setup_intent_authentication_failure": FailureCode.AUTHENTICATION_FAILED,
    "processing_error": FailureCode.PROVIDER_ERROR,
    "try_again_later": FailureCode.PROVIDER_ERROR,
    "issuer_not_available": FailureCode.PROVIDER_ERROR,
}


def failure_code(code: str | None, decline_code: str | None = None) -> FailureCode:
    """The platform's reason for a Stripe refusal: the decline code first (more precise),
    then the error code; anything else is a plain decline."""
    for candidate in (decline_code, code):
        if candidate and candidate in DECLINES:
            return DECLINES[candidate]
    return FailureCode.CARD_DECLINED


class StripeCards:
    """`PaymentProvider` for cards (see the module docstring)."""

    name = STRIPE
    kind = PaymentMethodKind.CARD

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        return_url: str,
        api_base: str = "",
        timeout_s: float = 20.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`api_base` empty: Stripe's own API; tests give localstripe's address."""
        if not secret_key:
            raise InvalidConfiguration("card payments need the Stripe secret key")
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else {},
            http_client=stripe.RequestsClient(timeout=timeout_s),
            max_network_retries=2,  # safe: every request that moves money carries its key
        )
        self._webhook_secret = webhook_secret
        self._return_url = return_url
        self._clock = clock

    # -- saving a card ----------------------------------------------------------------------
    def set_up(
        self, *, payer: Payer, details: Mapping[str, str], idempotency_key: str
    ) -> MethodSetup:
        payment_method = details.get("payment_method", "").strip()
        if not payment_method.startswith("pm_") or len(payment_method) > 200:
            raise InvalidInput(
                "a card is saved from its Stripe PaymentMethod id (payment_method=pm_..., "
                "collected by Stripe.js)",
                payment_method=payment_method[:40],
            )
        with _translated("saving the card"):
            card = self._client.v1.payment_methods.retrieve(payment_method)
            label, expires = _card_label(card)
            if expires is not None and expires < self._clock().date():
                raise PaymentDeclined(
                    f"{label} has expired: give a card that is still valid",
                    code=FailureCode.EXPIRED_CARD.value,
                )
            customer = details.get("customer", "").strip()
            if not customer:
                created = self._client.v1.customers.create(
                    params={
                        "name": payer.name,
                        "email": payer.email,
                        "metadata": {"subscriber_id": str(payer.subscriber_id)},
                    },
                    options={"idempotency_key": f"{idempotency_key}:customer"},
                )
                customer = created.id
            setup: dict[str, Any] = {
                "customer": customer,
                "payment_method_types": ["card"],
                "usage": "off_session",
                "metadata": {"subscriber_id": str(payer.subscriber_id)},
            }
            intent = self._client.v1.setup_intents.create(
                params=cast(Any, setup),
                options={"idempotency_key": f"{idempotency_key}:setup"},
            )
            intent = self._client.v1.setup_intents.confirm(
                intent.id,
                params={"payment_method": payment_method},
                options={"idempotency_key": f"{idempotency_key}:confirm"},
            )
        method = PaymentMethod(
            subscriber_id=payer.subscriber_id,
            kind=PaymentMethodKind.CARD,
            provider=STRIPE,
            customer_reference=customer,
            method_reference=payment_method,
            status=PaymentMethodStatus.PENDING,
            label=label,
            expires=expires,
            details={"setup_intent": intent.id},
        )
        if intent.status == "succeeded":
            return MethodSetup(_with_status(method, PaymentMethodStatus.ACTIVE))
        if intent.status in ("requires_action", "requires_confirmation", "processing"):
            return MethodSetup(
                method,
                action_url=_redirect_url(intent) or self._page("setup_intent", intent.id),
                client_secret=str(intent.client_secret or ""),
            )
        error = _get(intent, "last_setup_error") or {}
        raise PaymentDeclined(
            f"the card was refused: {_get(error, 'message') or intent.status}",
            code=failure_code(_get(error, "code"), _get(error, "decline_code")).value,
        )

    # -- renewals ---------------------------------------------------------------------------
    def charge(
        self, *, method: PaymentMethod, amount: Money, idempotency_key: str, description: str
    ) -> ChargeOutcome:
        params: dict[str, Any] = {
            "amount": to_minor_units(amount),
            "currency": amount.currency.lower(),
            "customer": method.customer_reference,
            "payment_method": method.method_reference,
            "payment_method_types": ["card"],
            "off_session": True,
            "confirm": True,
            "metadata": {"idempotency_key": idempotency_key, "reference": description[:500]},
        }
        try:
            with _translated("charging the card", cards=False):
                intent = self._client.v1.payment_intents.create(
                    params=cast(Any, params), options={"idempotency_key": idempotency_key}
                )
        except stripe.CardError as error:
            return self._refused(error, idempotency_key)
        return self._outcome(intent)

    def _refused(self, error: stripe.CardError, idempotency_key: str) -> ChargeOutcome:
        details = error.error
        intent = _get(details, "payment_intent") if details is not None else None
        reference = str(_get(intent, "id") or "")
        if error.code == "authentication_required" and reference:
            # Off-session, the bank wants the cardholder: they finish on-session.
            return RequiresAction(reference, self._page("payment_intent", reference))
        return Failed(
            failure_code(error.code, _get(details, "decline_code") if details else None),
            str(error.user_message or _get(details, "message") or "refused"),
            reference,
        )

    def _outcome(self, intent: Any) -> ChargeOutcome:
        status = intent.status
        if status == "succeeded":
            return Paid(intent.id)
        if status == "requires_action":
            return RequiresAction(
                intent.id, _redirect_url(intent) or self._page("payment_intent", intent.id)
            )
        if status in ("processing", "requires_capture", "requires_confirmation"):
            return Pending(intent.id)
        error = _get(intent, "last_payment_error") or {}
        return Failed(
            failure_code(_get(error, "code"), _get(error, "decline_code")),
            str(_get(error, "message") or f"payment {status}"),
            intent.id,
        )

    def _page(self, name: str, reference: str) -> str:
        """The portal's page where the subscriber finishes 3-D Secure for `reference`."""
        separator = "&" if "?" in self._return_url else "?"
        return f"{self._return_url}{separator}{name}={reference}"

    # -- refunds ----------------------------------------------------------------------------
    def refund(self, *, payment: Payment, amount: Money, idempotency_key: str) -> RefundOutcome:
        if not payment.provider_reference:
            raise InvalidInput("this payment has no Stripe PaymentIntent to refund")
        with _translated("refunding"):
            refund = self._client.v1.refunds.create(
                params={
                    "payment_intent": payment.provider_reference,
                    "amount": to_minor_units(amount),
                    "metadata": {"idempotency_key": idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        status = {
            "succeeded": RefundStatus.SUCCEEDED,
            "failed": RefundStatus.FAILED,
            "canceled": RefundStatus.FAILED,
        }.get(str(refund.status), RefundStatus.PENDING)
        return RefundOutcome(status, refund.id, str(_get(refund, "failure_reason") or ""))

    # -- events -----------------------------------------------------------------------------
    def verify_event(self, *, body: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        signature = headers.get("stripe-signature", "")
        if not signature:
            raise InvalidSignature("a Stripe event needs its Stripe-Signature header")
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSignature("a Stripe event's body is UTF-8 JSON") from None
        try:
            stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret, tolerance=SIGNATURE_TOLERANCE_S
            )
        except stripe.SignatureVerificationError:
            raise InvalidSignature(
                "the Stripe-Signature does not match this endpoint's secret, or is older "
                f"than {SIGNATURE_TOLERANCE_S} s"
            ) from None
        except ValueError:
            raise InvalidInput("a Stripe event is a JSON object") from None
        return event_from_json(payload)


def event_from_json(payload: str) -> ProviderEvent:
    """A verified Stripe event in the platform's terms (InvalidInput when it is not one)."""
    try:
        event = json.loads(payload)
        event_id, event_type = str(event["id"]), str(event["type"])
        item = event["data"]["object"]
        occurred_at = datetime.fromtimestamp(int(event["created"]), UTC)
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("a Stripe event has an id, a type, a time and a data object") from None
    common: dict[str, Any] = {
        "provider": STRIPE,
        "event_id": event_id,
        "type": event_type,
        "occurred_at": occurred_at,
        "payload": payload,
    }
    metadata = item.get("metadata") or {}
    if event_type.startswith("payment_intent."):
        kind = {
            "payment_intent.succeeded": EventKind.PAYMENT_SUCCEEDED,
            "payment_intent.payment_failed": EventKind.PAYMENT_FAILED,
            "payment_intent.requires_action": EventKind.PAYMENT_REQUIRES_ACTION,
        }.get(event_type, EventKind.IGNORED)
        error = item.get("last_payment_error") or {}
        return ProviderEvent(
            **common,
            kind=kind,
            payment_reference=str(item.get("id", "")),
            idempotency_key=str(metadata.get("idempotency_key", "")),
            amount=_money(item.get("amount_received") or item.get("amount"), item),
            failure_code=(
                failure_code(error.get("code"), error.get("decline_code"))
                if kind is EventKind.PAYMENT_FAILED
                else None
            ),
            failure_message=str(error.get("message") or "")[:1000],
        )
    if event_type in ("setup_intent.succeeded", "setup_intent.setup_failed"):
        method = item.get("payment_method") or _get(item.get("last_setup_error"), "payment_method")
        return ProviderEvent(
            **common,
            kind=(
                EventKind.METHOD_ACTIVE
                if event_type == "setup_intent.succeeded"
                else EventKind.METHOD_FAILED
            ),
            method_reference=str(method.get("id") if isinstance(method, dict) else method or ""),
        )
    if event_type == "payment_method.detached":
        return ProviderEvent(
            **common, kind=EventKind.METHOD_REVOKED, method_reference=str(item.get("id", ""))
        )
    if event_type in ("refund.created", "refund.updated", "charge.refund.updated"):
        status = item.get("status")
        kind = {
            "succeeded": EventKind.REFUND_SUCCEEDED,
            "failed": EventKind.REFUND_FAILED,
            "canceled": EventKind.REFUND_FAILED,
        }.get(str(status), EventKind.IGNORED)
        return ProviderEvent(
            **common,
            kind=kind,
            refund_reference=str(item.get("id", "")),
            payment_reference=str(item.get("payment_intent") or ""),
            amount=_money(item.get("amount"), item),
        )
    if event_type == "charge.dispute.funds_withdrawn":
        return ProviderEvent(
            **common,
            kind=EventKind.CHARGEBACK,
            payment_reference=str(item.get("payment_intent") or ""),
            amount=_money(item.get("amount"), item),
        )
    return ProviderEvent(**common, kind=EventKind.IGNORED)


# -- helpers ------------------------------------------------------------------------------------
def _get(value: Any, name: str) -> Any:
    """A field of a Stripe object or of a plain dict, None when absent."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value.get(name)
    try:
        return value[name]
    except (KeyError, TypeError, AttributeError):
        return getattr(value, name, None)


def _money(units: Any, item: Mapping[str, Any]) -> Money | None:
    currency = item.get("currency")
    if units is None or not currency:
        return None
    try:
        return from_minor_units(int(units), str(currency))
    except (ValueError, InvalidInput):
        return None


def _redirect_url(intent: Any) -> str:
    action = _get(intent, "next_action")
    redirect = _get(action, "redirect_to_url")
    return str(_get(redirect, "url") or "")


def _card_label(payment_method: Any) -> tuple[str, date | None]:
    card = _get(payment_method, "card")
    if card is None:
        raise InvalidInput("this Stripe PaymentMethod is not a card")
    brand = str(_get(card, "brand") or "card").title()
    last4 = str(_get(card, "last4") or "????")
    month, year = _get(card, "exp_month"), _get(card, "exp_year")
    expires = card_expiry(int(year), int(month)) if month and year else None
    suffix = f" {int(month):02d}/{int(year)}" if expires else ""
    return f"{brand} •••• {last4}{suffix}", expires


def _with_status(method: PaymentMethod, status: PaymentMethodStatus) -> PaymentMethod:
    return method.changed_to(status)


@contextmanager
def _translated(doing: str, *, cards: bool = True) -> Iterator[None]:
    """Stripe's errors as the platform's: a refused card is PaymentDeclined (or, `cards`
    False, left to the caller), a refused request InvalidInput, a wrong key
    InvalidConfiguration, anything else (network, Stripe down, rate limit) Unavailable."""
    try:
        yield
    except stripe.CardError as error:
        if not cards:
            raise
        raise PaymentDeclined(
            f"{doing}: the card was refused ({error.user_message or error.code})",
            code=failure_code(error.code, _get(error.error, "decline_code")).value,
        ) from error
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        raise InvalidConfiguration(
            f"{doing}: Stripe refused the platform's key ({error.user_message})"
        ) from error
    except stripe.InvalidRequestError as error:
        raise InvalidInput(
            f"{doing}: Stripe refused the request: {error.user_message}",
            param=str(error.param or ""),
        ) from error
    except stripe.StripeError as error:
        raise Unavailable(f"{doing}: Stripe cannot be reached now ({error})") from error
