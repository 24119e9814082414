"""Email notices through the operator's SMTP relay with aiosmtplib.

Each notice becomes one MIME message with a plain-text and an HTML part (RFC 2046
multipart/alternative), its own stable `Message-ID` (RFC 5322 §3.6.4; a retry carries the same
one, so mail systems and people can tell it is the same message) and `Content-Language`
(RFC 3282). Answers are sorted into permanent failures (5xx: the relay refuses this message, do
not retry) and transient ones (4xx, connection refused, timeouts: retry later), RFC 5321 §4.2.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

import aiosmtplib

from tawasol.adapters.notify.delivery import DeliveryError
from tawasol.domain.notices import Notice

__all__ = ["DeliveryError", "EmailChannel", "SmtpRelay", "email_message"]


@dataclass(frozen=True)
class SmtpRelay:
    """Where and as whom email notices are sent. `timeout_s` bounds each SMTP exchange."""

    host: str
    port: int
    sender: str
    sender_name: str = "tawasol"
    username: str | None = None
    password: str | None = None
    start_tls: bool = False
    timeout_s: float = 10.0


def email_message(notice: Notice, relay: SmtpRelay) -> EmailMessage:
    message = EmailMessage()
    message["From"] = formataddr((relay.sender_name, relay.sender))
    message["To"] = notice.address
    message["Subject"] = notice.subject
    message["Message-ID"] = notice.message_id
    message["Date"] = formatdate(usegmt=True)
    message.set_content(notice.text)
    message.add_alternative(notice.html, subtype="html")
    # after the parts: set_content() drops every Content-* header set before it
    message["Content-Language"] = notice.locale.split("_")[0]
    return message


class EmailChannel:
    """Sends email notices to one SMTP relay."""

    def __init__(self, relay: SmtpRelay) -> None:
        self._relay = relay

    async def send(self, notice: Notice) -> tuple[str, ...]:
        """Raises DeliveryError (permanent for a 5xx answer, transient otherwise). SMTP gives
        no reference to follow delivery with: returns ()."""
        relay = self._relay
        try:
            await aiosmtplib.send(
                email_message(notice, relay),
                hostname=relay.host,
                port=relay.port,
                username=relay.username,
                password=relay.password,
                start_tls=relay.start_tls,
                use_tls=False,
                timeout=relay.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [response.code for response in error.recipients]
            first = error.recipients[0]
            raise DeliveryError(
                f"relay refused the recipient: {first.code} {first.message}",
                permanent=all(500 <= code < 600 for code in codes),
            ) from error
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryError(
                f"relay answered {error.code} {error.message}", permanent=500 <= error.code < 600
            ) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryError(f"relay unreachable: {error}", permanent=False) from error
        return ()
