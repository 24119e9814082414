"""SMS notices over SMPP 3.4 against a real SMPP server (tests/support/smpp.py) and the SQL
outbox on SQLite and PostgreSQL: Arabic arrives as UCS-2 parts that reassemble exactly, the
delivery receipts make notices delivered or failed with the reason, and an SMSC that is down,
refuses binds or refuses messages gets retries or a failure with its reason, nothing lost and
nothing sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.smpp import BindRefusingSmsc, Smsc, smsc  # noqa: F401 - the fixture
from support.stores import migrated_backend
from tawasol.adapters.notify.delivery import DeliveryError
from tawasol.adapters.notify.smpp import SmppAccount, SmppChannel
from tawasol.adapters.notify.sms_parts import DATA_CODING_GSM7, DATA_CODING_UCS2
from tawasol.adapters.store import migrate
from tawasol.adapters.store.notices_sql import SqlNoticeOutbox
from tawasol.composition import build_brain
from tawasol.config import Settings
from tawasol.domain.notices import Channel, Notice, NoticeOccasion, NoticeStatus, RetryPolicy
from tawasol.services.notices import NoticeSender

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ARABIC_300 = ("مرحبا، قد تفشل مكالماتك نحو الهواتف المحمولة في المغرب. " * 6)[:300]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlNoticeOutbox]:
    with migrated_backend(request.param, tmp_path) as store:
        yield SqlNoticeOutbox(store.engine)


def sms(subscriber_id: int, text: str, number: str | None = None) -> Notice:
    return Notice(
        incident_id=1,
        occasion=NoticeOccasion.CUSTOMER_FACING,
        occasion_seq=1,
        subscriber_id=subscriber_id,
        channel=Channel.SMS,
        address=number or f"+2126000000{subscriber_id:02d}",
        locale="ar",
        subject="",
        text=text,
        html="",
        message_id=f"<incident-1.customer_facing.1.{subscriber_id}.sms@example.org>",
    )


def account(port: int, timeout_s: float = 2.0) -> SmppAccount:
    return SmppAccount(
        host="127.0.0.1", port=port, system_id="tawasol", password="secret", timeout_s=timeout_s
    )


def sender_for(
    outbox: SqlNoticeOutbox, port: int, clock: Clock
) -> tuple[NoticeSender, SmppChannel]:
    holder: list[NoticeSender] = []

    async def on_receipt(receipt):  # type: ignore[no-untyped-def]
        await holder[0].on_receipt(receipt)

    channel = SmppChannel(account(port), on_receipt=on_receipt)
    sender = NoticeSender(
        outbox=outbox,
        channels={Channel.SMS: channel},
        clock=clock,
        retry=RetryPolicy(first_delay=timedelta(seconds=30), max_attempts=3),
        channel_rates={Channel.SMS: 1000},
    )
    holder.append(sender)
    return sender, channel


async def send_and_settle(
    sender: NoticeSender, channel: SmppChannel, outbox: SqlNoticeOutbox, *, settled: int
) -> None:
    """One sending round, then wait (bounded) for `settled` notices to be delivered or failed."""
    await sender.send_due()
    for _ in range(250):
        counts = outbox.counts()
        if counts.get(NoticeStatus.DELIVERED, 0) + counts.get(NoticeStatus.FAILED, 0) >= settled:
            break
        await asyncio.sleep(0.02)
    await channel.close()


def test_given_an_arabic_sms_of_300_characters_then_ucs2_parts_reassemble_to_the_exact_text(
    outbox: SqlNoticeOutbox,
    smsc: Smsc,  # noqa: F811
) -> None:
    clock = Clock()
    outbox.enqueue([sms(1, ARABIC_300)])
    sender, channel = sender_for(outbox, smsc.port, clock)
    asyncio.run(send_and_settle(sender, channel, outbox, settled=1))

    (message,) = smsc.messages
    assert message.destination == "212600000001"
    assert message.data_coding == DATA_CODING_UCS2
    assert len(message.parts) == 5  # 67 + 67 + 67 + 67 + 32 characters
    assert all(part[:3] == b"\x05\x00\x03" for part in message.parts)
    assert message.text == ARABIC_300
    (notice,) = outbox.list_notices(incident_id=1)
    assert message.user_reference == notice.id
    assert notice.status is NoticeStatus.DELIVERED  # every part's receipt came back
    assert outbox.progress() == {Channel.SMS: {NoticeStatus.DELIVERED: 1}}


def test_given_french_text_then_gsm7_and_an_undeliverable_number_fails_with_the_reason(
    outbox: SqlNoticeOutbox,
    smsc: Smsc,  # noqa: F811
) -> None:
    clock = Clock()
    text = "Bonjour Zoé, vos appels vers le Maroc peuvent échouer. Crédit : 0 €."
    smsc.undeliverable.add("212600000002")
    outbox.enqueue([sms(1, text), sms(2, text)])
    sender, channel = sender_for(outbox, smsc.port, clock)
    asyncio.run(send_and_settle(sender, channel, outbox, settled=2))

    assert [m.text for m in smsc.messages] == [text, text]
    assert {m.data_coding for m in smsc.messages} == {DATA_CODING_GSM7}
    by_subscriber = {n.subscriber_id: n for n in outbox.list_notices(incident_id=1)}
    assert by_subscriber[1].status is NoticeStatus.DELIVERED
    assert by_subscriber[2].status is NoticeStatus.FAILED
    assert by_subscriber[2].last_error == "UNDELIV err:001"


def test_given_the_smsc_down_then_retried_with_the_reason_and_sent_once_when_it_is_back(
    outbox: SqlNoticeOutbox,
) -> None:
    clock = Clock()
    server = Smsc()  # its port is chosen; nothing listens on it yet
    outbox.enqueue([sms(1, "Vos appels vers le Maroc peuvent échouer.")])
    sender, channel = sender_for(outbox, server.port, clock)
    asyncio.run(send_and_settle(sender, channel, outbox, settled=0))
    (notice,) = outbox.list_notices(incident_id=1)
    assert notice.status is NoticeStatus.QUEUED
    assert notice.last_error is not None and "SMSC unreachable" in notice.last_error
    assert notice.next_attempt_at == T0 + timedelta(seconds=30)

    with server:
        clock.now = T0 + timedelta(seconds=29)
        asyncio.run(send_and_settle(sender, channel, outbox, settled=0))
        assert server.messages == []  # not before its backoff
        clock.now = T0 + timedelta(seconds=30)
        asyncio.run(send_and_settle(sender, channel, outbox, settled=1))
        clock.now = T0 + timedelta(hours=1)
        asyncio.run(send_and_settle(sender, channel, outbox, settled=1))
    assert [m.destination for m in server.messages] == ["212600000001"]
    (notice,) = outbox.list_notices(incident_id=1)
    assert notice.status is NoticeStatus.DELIVERED and notice.attempts == 2


def test_given_an_smsc_refusing_binds_then_retries_then_fails_with_the_reason(
    outbox: SqlNoticeOutbox,
) -> None:
    clock = Clock()
    outbox.enqueue([sms(1, "Vos appels vers le Maroc peuvent échouer.")])
    with BindRefusingSmsc() as refusing:
        sender, channel = sender_for(outbox, refusing.port, clock)
        for attempt in range(3):  # max_attempts=3: queued, queued, failed
            clock.now = T0 + timedelta(hours=attempt)
            asyncio.run(send_and_settle(sender, channel, outbox, settled=0))
        assert refusing.binds == 3
    (notice,) = outbox.list_notices(incident_id=1)
    assert notice.status is NoticeStatus.FAILED and notice.attempts == 3
    # smpp34 reports a refused bind as a bind that never completed
    assert notice.last_error is not None
    assert notice.last_error.startswith("SMSC unreachable or refused the bind: ")
    assert "bind timed out" in notice.last_error or "TimeoutError" in notice.last_error


@pytest.mark.parametrize(
    ("status", "expected", "reason"),
    [
        (0x0000000B, NoticeStatus.FAILED, "command_status 0x0000000B"),  # ESME_RINVDSTADR
        (0x00000058, NoticeStatus.QUEUED, "ESME_RTHROTTLED"),
    ],
)
def test_given_the_smsc_refusing_a_message_then_permanent_or_retried_by_its_status(
    outbox: SqlNoticeOutbox,
    smsc: Smsc,  # noqa: F811
    status: int,
    expected: NoticeStatus,
    reason: str,
) -> None:
    smsc.refuse_status = status
    outbox.enqueue([sms(1, "Vos appels vers le Maroc peuvent échouer.")])
    sender, channel = sender_for(outbox, smsc.port, Clock())
    asyncio.run(send_and_settle(sender, channel, outbox, settled=0))
    (notice,) = outbox.list_notices(incident_id=1)
    assert notice.status is expected
    assert notice.last_error == f"SMSC refused the message: {reason}"
    assert smsc.messages == []


def test_send_text_refuses_what_is_not_a_phone_number(smsc: Smsc) -> None:  # noqa: F811
    channel = SmppChannel(account(smsc.port))

    async def attempt(number: str) -> None:
        await channel.send_text(number, "code 123456", reference=1)

    for number in ("", "+33", "0612 34", "+2126000000000000001", "abc"):
        with pytest.raises(DeliveryError) as refused:
            asyncio.run(attempt(number))
        assert refused.value.permanent
    assert smsc.messages == []


def test_the_brain_sends_any_text_to_any_number_through_its_smsc(tmp_path, smsc):  # noqa: F811
    settings = Settings(
        data_dir=tmp_path,
        notice_smpp_host="127.0.0.1",
        notice_smpp_port=smsc.port,
        notice_smpp_system_id="tawasol",
        notice_sms_sender="Tawasol",
    )
    migrate(settings.resolved_database_url)
    brain = build_brain(settings)
    assert build_brain(Settings(data_dir=tmp_path / "none")).notices.sms is None
    provider = brain.notices.sms
    assert provider is not None

    async def send() -> tuple[str, ...]:
        try:
            return await provider.send_text("+33612345678", "Votre code : 123456", reference=9)
        finally:
            close = getattr(provider, "close", None)
            if close is not None:
                await close()

    (reference,) = asyncio.run(send())
    brain.close()
    (message,) = smsc.messages
    assert (message.destination, message.source, message.text) == (
        "33612345678",
        "Tawasol",
        "Votre code : 123456",
    )
    assert message.message_ids == [reference]
