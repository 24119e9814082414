"""Payment notices through the notices outbox: one email and one SMS per occasion (the
channels the operator configured), queued idempotently (the notice key names the payment or
the dunning case) and sent by the notices' sender like incident notices."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from tawasol.domain.money import Money
from tawasol.domain.notices import Channel, Notice, NoticeOccasion, sms_text
from tawasol.domain.payments.methods import Payer
from tawasol.domain.payments.notices import render_payment_notice
from tawasol.domain.payments.outcomes import FailureCode
from tawasol.services.notice_ports import NoticeOutbox


class OutboxPaymentNotices:
    """Queues payment notices in the `NoticeOutbox` (see the module docstring)."""

    def __init__(
        self,
        *,
        outbox: NoticeOutbox,
        channels: Collection[Channel],
        mail_domain: str = "tawasol.local",
    ) -> None:
        self._outbox = outbox
        self._channels = [c for c in channels if c in (Channel.EMAIL, Channel.SMS)]
        self._mail_domain = mail_domain

    def tell(
        self,
        *,
        payer: Payer,
        occasion: NoticeOccasion,
        sequence: int,
        amount: Money,
        link: str,
        failure: FailureCode | None = None,
        next_try: datetime | None = None,
    ) -> int:
        """Queue `occasion`'s notice on every channel the payer has an address for; returns
        how many were new (0 when told already)."""
        language, subject, text, html = render_payment_notice(
            occasion=occasion,
            name=payer.name,
            locale=payer.locale,
            amount=amount,
            link=link,
            failure=failure,
            next_try=next_try,
        )
        return self.queue(
            payer=payer,
            occasion=occasion,
            sequence=sequence,
            written=(language, subject, text, html),
        )

    def queue(
        self,
        *,
        payer: Payer,
        occasion: NoticeOccasion,
        sequence: int,
        written: tuple[str, str, str, str],
    ) -> int:
        """Queue a notice already written (language, subject, plain text, HTML) on every
        channel the payer has an address for, once per (occasion, sequence); returns how many
        were new."""
        language, subject, text, html = written
        notices = []
        for channel in self._channels:
            address = payer.email if channel is Channel.EMAIL else payer.phone
            if not address:
                continue
            notices.append(
                Notice(
                    incident_id=0,
                    occasion=occasion,
                    occasion_seq=sequence,
                    subscriber_id=payer.subscriber_id,
                    channel=channel,
                    address=address,
                    locale=language,
                    subject=subject,
                    text=sms_text(subject, text) if channel is Channel.SMS else text,
                    html="" if channel is Channel.SMS else html,
                    message_id=(
                        f"<{occasion.value}.{sequence}.{payer.subscriber_id}.{channel.value}"
                        f"@{self._mail_domain}>"
                    ),
                )
            )
        return self._outbox.enqueue(notices)
