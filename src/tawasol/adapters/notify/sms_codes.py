"""Caller-ID verification codes by SMS: the `VerificationCodeSender` port over SMPP.

`DirectNumberService.register_caller_id` is synchronous (the admin API runs it in a worker
thread, the CLI in its main thread), while SMPP is asyncio. Rather than reach into the
runtime's event loop and share the notices' long-lived session, each code is a bounded
one-shot send: a thread of its own runs a fresh event loop that binds a transceiver session
(SMPP 3.4 §4.1.5), submits the one-part text, unbinds (§4.2) and closes. Verification codes
are few (one per number registered), so one bind per code costs nothing worth sharing a
session for; the delivery receipt is not waited for.

The caller waits at most about three times the account's `timeout_s` (the bind, the
submit_sm and the unbind, each bounded by it); usually well under a second. An SMSC that is
down, refuses the bind or the message, or does not answer in time makes `send_code` return
False: the service then hands the code to the operator (CLI, admin API) to pass on, as with
no SMS channel at all. No exception reaches the caller; the reason is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading

from tawasol.adapters.notify.delivery import DeliveryError
from tawasol.adapters.notify.smpp import SmppAccount, SmppChannel
from tawasol.domain.direct_numbers import verification_code_text
from tawasol.domain.subscribers import Subscriber
from tawasol.services.direct_numbers import CODE_LIFETIME

__all__ = ["SmsCodeSender"]

log = logging.getLogger(__name__)


class SmsCodeSender:
    """Sends a caller ID's verification code by SMS, in the subscriber's language (fr, ar in
    UCS-2, en), to the number being verified, from `account.source_addr`."""

    def __init__(self, account: SmppAccount) -> None:
        self._account = account

    def send_code(self, *, number: str, code: str, subscriber: Subscriber) -> bool:
        """True when the SMSC accepted the SMS (submit_sm answered ESME_ROK), False otherwise
        (see the module docstring). `number`: E.164, with or without "+"."""
        text = verification_code_text(
            code,
            locale=subscriber.locale,
            valid_minutes=int(CODE_LIFETIME.total_seconds() // 60),
        )
        accepted: list[bool] = []
        worker = threading.Thread(
            target=lambda: accepted.append(asyncio.run(self._send(number, text))),
            name="sms-verification-code",
            daemon=True,
        )
        worker.start()
        # the bind, then the submit and the unbind, are each bounded by timeout_s
        worker.join(3 * self._account.timeout_s + 1)
        if not accepted:
            log.warning("verification code SMS to %s: the SMSC did not answer in time", number)
        return bool(accepted and accepted[0])

    async def _send(self, number: str, text: str) -> bool:
        channel = SmppChannel(self._account)
        try:
            await asyncio.wait_for(
                channel.send_text(number, text, reference=secrets.randbelow(65536)),
                2 * self._account.timeout_s,
            )
            return True
        except (DeliveryError, TimeoutError) as error:
            log.warning("verification code SMS to %s not sent: %s", number, error)
            return False
        except Exception:  # the operator relays the code instead: never fail the request
            log.exception("verification code SMS to %s not sent", number)
            return False
        finally:
            await channel.close()
