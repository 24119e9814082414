"""Operator alerts to a webhook: the notice's JSON body POSTed, signed with HMAC-SHA256.

`X-Tawasol-Signature: sha256=<hex>` is HMAC-SHA256 (RFC 2104, FIPS 180-4) of the exact body
bytes under the shared secret (the scheme GitHub's and Stripe's webhooks made familiar): the
receiver recomputes it and compares in constant time. `X-Tawasol-Delivery` carries the notice's
stable id, so a retried delivery is recognisable. 2xx is delivered; 408, 429 and 5xx or no
answer are retried; other 4xx are permanent failures.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx

from tawasol.adapters.notify.delivery import DeliveryError
from tawasol.domain.notices import Notice

SIGNATURE_HEADER = "X-Tawasol-Signature"
DELIVERY_HEADER = "X-Tawasol-Delivery"


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, *, secret: bytes, timeout_s: float = 10.0) -> None:
        self._secret = secret
        self._timeout_s = timeout_s

    async def send(self, notice: Notice) -> tuple[str, ...]:
        body = notice.text.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, body),
            DELIVERY_HEADER: notice.message_id,
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s) as client:
                response = await client.post(notice.address, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"webhook unreachable: {error!r}", permanent=False) from error
        if response.is_success:
            return ()
        retry = response.status_code in (408, 429) or response.status_code >= 500
        raise DeliveryError(f"webhook answered {response.status_code}", permanent=not retry)
