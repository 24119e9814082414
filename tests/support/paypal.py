"""A local PayPal REST server for tests: the endpoints the PayPal adapter calls, answering with
the shapes of PayPal's published API reference (OAuth 2 token, Payment Method Tokens v3 setup
and payment tokens, Orders v2 with a vaulted PayPal wallet, Payments v2 capture refunds,
Notifications v1 verify-webhook-signature), and the state behind them (tokens approved,
captures, what each capture has left to refund, `PayPal-Request-Id` replays).

It is not PayPal: it keeps no sandbox account's balance rules beyond "a wallet can be marked
to decline", and it "signs" the webhooks it delivers with an HMAC over PayPal's signed string
(transmission id | time | webhook id | CRC32 of the body) where PayPal uses its certificate;
`verify-webhook-signature` checks that, as PayPal checks its own.

    with PayPalServer(client_id="id", client_secret="secret", webhook_id="WH-1") as paypal:
        paypal.url  # http://127.0.0.1:PORT, a free port
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(length: int = 17) -> str:
    return secrets.token_hex(length)[:length].upper()


def _error(status: int, name: str, issue: str, description: str) -> tuple[int, dict[str, Any]]:
    return status, {
        "name": name,
        "message": "The requested action could not be performed, semantically incorrect, or "
        "failed business validation."
        if status == 422
        else name,
        "debug_id": _id(13).lower(),
        "details": [{"issue": issue, "description": description}],
        "links": [
            {
                "href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}",
                "rel": "information_link",
                "method": "GET",
            }
        ],
    }


@dataclass
class PayPalState:
    """What the server holds; tests read it to compare with the platform's ledger."""

    setup_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    captures: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    declining: set[str] = field(default_factory=set)  # payment token ids
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)


class PayPalServer:
    """The server, started on a free loopback port for the duration of a `with` block."""

    def __init__(self, *, client_id: str, client_secret: str, webhook_id: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.webhook_id = webhook_id
        self.state = PayPalState()
        self._signing_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._tokens: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> PayPalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # -- what the payer and PayPal do outside the API -------------------------------------------
    def approve(self, setup_token: str, *, email: str) -> None:
        """The payer logs in at the approval link and agrees (PayPal's hosted page)."""
        with self._lock:
            token = self.state.setup_tokens[setup_token]
            token["status"] = "APPROVED"
            token["payment_source"]["paypal"]["email_address"] = email

    def webhook(
        self, event_type: str, resource: dict[str, Any], *, sign: bool = True
    ) -> tuple[bytes, dict[str, str]]:
        """A webhook PayPal would deliver: (body, headers). With `sign` False the signature is
        made with another key (a forged or corrupted delivery)."""
        event = {
            "id": f"WH-{_id(8)}-{_id(17)}",
            "create_time": _now(),
            "resource_type": "capture" if event_type.startswith("PAYMENT.CAPTURE") else "refund",
            "event_type": event_type,
            "summary": event_type,
            "resource": resource,
            "event_version": "1.0",
            "resource_version": "2.0",
        }
        body = json.dumps(event).encode()
        transmission_id = secrets.token_hex(16)
        when = _now()
        key = self._signing_key if sign else secrets.token_bytes(32)
        signature = self._sign(key, transmission_id, when, body)
        return body, {
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
            "PAYPAL-CERT-URL": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-TRANSMISSION-TIME": when,
        }

    def _sign(self, key: bytes, transmission_id: str, when: str, body: bytes) -> str:
        signed = f"{transmission_id}|{when}|{self.webhook_id}|{zlib.crc32(body)}"
        return base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()

    # -- the API ---------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status, answer = server._answer(self.path, dict(self.headers), raw)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.state.requests.append(("POST", path))
            lowered = {k.lower(): v for k, v in headers.items()}
            if path == "/v1/oauth2/token":
                return self._token(lowered)
            if lowered.get("authorization", "").removeprefix("Bearer ") not in self._tokens:
                return 401, {
                    "error": "invalid_token",
                    "error_description": "Token signature verification failed",
                }
            request_id = lowered.get("paypal-request-id", "")
            replay_key = f"{path}|{request_id}"
            if request_id and replay_key in self.state.replies:
                return self.state.replies[replay_key]
            body = json.loads(raw or b"{}")
            if path == "/v3/vault/setup-tokens":
                reply = self._setup_token(body)
            elif path == "/v3/vault/payment-tokens":
                reply = self._payment_token(body)
            elif path == "/v2/checkout/orders":
                reply = self._order(body)
            elif path.startswith("/v2/payments/captures/") and path.endswith("/refund"):
                reply = self._refund(path.split("/")[4], body)
            elif path == "/v1/notifications/verify-webhook-signature":
                return self._verify(raw)
            else:
                return 404, {"name": "RESOURCE_NOT_FOUND", "message": path, "details": []}
            if request_id and reply[0] < 500:
                self.state.replies[replay_key] = reply
            return reply

    def _token(self, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("authorization") != f"Basic {expected}":
            return 401, {
                "error": "invalid_client",
                "error_description": "Client Authentication failed",
            }
        token = f"A21AA{secrets.token_urlsafe(40)}"
        self._tokens.add(token)
        return 200, {
            "scope": "https://uri.paypal.com/services/payments/payment https://uri.paypal.com/services/vault/payment-tokens/readwrite",
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-80W284485P519543T",
            "expires_in": 32400,
            "nonce": f"{_now()}{_id(20)}",
        }

    def _setup_token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        paypal = (body.get("payment_source") or {}).get("paypal")
        if not isinstance(paypal, dict):
            return _error(
                400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "payment_source.paypal"
            )
        token_id = _id(17)
        customer = f"customer_{secrets.randbelow(10**10):010d}"
        token = {
            "id": token_id,
            "customer": {"id": customer},
            "status": "PAYER_ACTION_REQUIRED",
            "payment_source": {
                "paypal": {
                    "description": paypal.get("description", ""),
                    "usage_pattern": paypal.get("usage_pattern", "IMMEDIATE"),
                    "shipping": {},
                    "permit_multiple_payment_tokens": False,
                    "usage_type": paypal.get("usage_type", "MERCHANT"),
                    "customer_type": "CONSUMER",
                }
            },
            "links": [
                {
                    "href": f"https://www.sandbox.paypal.com/agreements/approve?approval_session_id={token_id}",
                    "rel": "approve",
                    "method": "GET",
                },
                {
                    "href": f"{self.url}/v3/vault/setup-tokens/{token_id}",
                    "rel": "self",
                    "method": "GET",
                },
            ],
        }
        self.state.setup_tokens[token_id] = token
        return 200, token

    def _payment_token(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        source = (body.get("payment_source") or {}).get("token") or {}
        setup = self.state.setup_tokens.get(str(source.get("id", "")))
        if source.get("type") != "SETUP_TOKEN" or setup is None:
            return _error(
                404,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
                "Specified resource ID does not exist.",
            )
        if setup["status"] != "APPROVED":
            return _error(
                422,
                "UNPROCESSABLE_ENTITY",
                "SETUP_ERROR_FOR_BANK",
                "The setup token was not approved by the payer.",
            )
        token_id = _id(7).lower()
        token = {
            "id": token_id,
            "customer": setup["customer"],
            "payment_source": {
                "paypal": {**setup["payment_source"]["paypal"], "payer_id": _id(13)}
            },
            "links": [
                {
                    "href": f"{self.url}/v3/vault/payment-tokens/{token_id}",
                    "rel": "self",
                    "method": "GET",
                }
            ],
        }
        self.state.payment_tokens[token_id] = token
        return 200, token

    def _order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        vault_id = ((body.get("payment_source") or {}).get("paypal") or {}).get("vault_id")
        units = body.get("purchase_units") or []
        if body.get("intent") != "CAPTURE" or len(units) != 1 or not vault_id:
            return _error(
                400,
                "INVALID_REQUEST",
                "INVALID_PARAMETER_VALUE",
                "intent, purchase_units or vault_id",
            )
        if vault_id not in self.state.payment_tokens:
            return _error(
                422,
                "UNPROCESSABLE_ENTITY",
                "INVALID_RESOURCE_ID",
                "Specified resource ID does not exist.",
            )
        if vault_id in self.state.declining:
            return _error(
                422,
                "UNPROCESSABLE_ENTITY",
                "INSTRUMENT_DECLINED",
                "The instrument presented was either declined by the processor or bank, or it "
                "can't be used for this payment.",
            )
        unit = units[0]
        amount = unit["amount"]
        order_id = _id(17)
        capture_id = _id(17)
        capture = {
            "id": capture_id,
            "status": "COMPLETED",
            "amount": {"currency_code": amount["currency_code"], "value": amount["value"]},
            "final_capture": True,
            "seller_protection": {
                "status": "ELIGIBLE",
                "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
            },
            "custom_id": unit.get("custom_id", ""),
            "invoice_id": unit.get("invoice_id", ""),
            "create_time": _now(),
            "update_time": _now(),
            "links": [
                {
                    "href": f"{self.url}/v2/payments/captures/{capture_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"{self.url}/v2/payments/captures/{capture_id}/refund",
                    "rel": "refund",
                    "method": "POST",
                },
                {"href": f"{self.url}/v2/checkout/orders/{order_id}", "rel": "up", "method": "GET"},
            ],
        }
        self.state.captures[capture_id] = {**capture, "refunded": "0"}
        wallet = self.state.payment_tokens[vault_id]["payment_source"]["paypal"]
        return 201, {
            "id": order_id,
            "status": "COMPLETED",
            "intent": "CAPTURE",
            "payment_source": {
                "paypal": {
                    "email_address": wallet.get("email_address", ""),
                    "account_id": wallet.get("payer_id", ""),
                    "account_status": "VERIFIED",
                    "attributes": {"vault": {"id": vault_id, "status": "VAULTED"}},
                }
            },
            "purchase_units": [
                {
                    "reference_id": unit.get("reference_id", "default"),
                    "payments": {"captures": [capture]},
                }
            ],
            "create_time": _now(),
            "update_time": _now(),
            "links": [
                {
                    "href": f"{self.url}/v2/checkout/orders/{order_id}",
                    "rel": "self",
                    "method": "GET",
                }
            ],
        }

    def _refund(self, capture_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        capture = self.state.captures.get(capture_id)
        if capture is None:
            return _error(
                404,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
                "Specified resource ID does not exist.",
            )
        total = Decimal(capture["amount"]["value"])
        left = total - Decimal(capture["refunded"])
        amount = body.get("amount") or {
            "currency_code": capture["amount"]["currency_code"],
            "value": str(left),
        }
        if amount["currency_code"] != capture["amount"]["currency_code"]:
            return _error(
                422,
                "UNPROCESSABLE_ENTITY",
                "REFUND_CURRENCY_MISMATCH",
                "Refund must be in the same currency as the capture.",
            )
        value = Decimal(amount["value"])
        if value > left:
            return _error(
                422,
                "UNPROCESSABLE_ENTITY",
                "REFUND_AMOUNT_EXCEEDED",
                "The refund amount must be less than or equal to the capture amount that has not "
                "yet been refunded.",
            )
        capture["refunded"] = str(Decimal(capture["refunded"]) + value)
        capture["status"] = "REFUNDED" if value == left else "PARTIALLY_REFUNDED"
        refund_id = _id(17)
        refund = {
            "id": refund_id,
            "amount": {"currency_code": amount["currency_code"], "value": format(value, "f")},
            "seller_payable_breakdown": {
                "gross_amount": {
                    "currency_code": amount["currency_code"],
                    "value": format(value, "f"),
                },
                "total_refunded_amount": {
                    "currency_code": amount["currency_code"],
                    "value": capture["refunded"],
                },
            },
            "invoice_id": capture.get("invoice_id", ""),
            "status": "COMPLETED",
            "create_time": _now(),
            "update_time": _now(),
            "links": [
                {
                    "href": f"{self.url}/v2/payments/refunds/{refund_id}",
                    "rel": "self",
                    "method": "GET",
                },
                {
                    "href": f"{self.url}/v2/payments/captures/{capture_id}",
                    "rel": "up",
                    "method": "GET",
                },
            ],
        }
        self.state.refunds[refund_id] = {**refund, "capture_id": capture_id}
        return 201, refund

    def _verify(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        request = json.loads(raw)
        if request.get("webhook_id") != self.webhook_id:
            return 200, {"verification_status": "FAILURE"}
        # PayPal checks the event it signed: the body exactly as delivered.
        event = json.dumps(request["webhook_event"]).encode()
        expected = self._sign(
            self._signing_key, request["transmission_id"], request["transmission_time"], event
        )
        good = hmac.compare_digest(expected, str(request.get("transmission_sig", "")))
        return 200, {"verification_status": "SUCCESS" if good else "FAILURE"}
