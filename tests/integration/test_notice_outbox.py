"""One contract for the notices outbox: in memory, SQLite, PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support.operator import a_notice as notice
from support.stores import BACKENDS, on_backend
from tawasol.adapters.store.notices_sql import SqlNoticeOutbox
from tawasol.domain.notices import Channel, DeliveryReceipt, NoticeStatus
from tawasol.services.notice_ports import InMemoryNoticeOutbox, NoticeOutbox

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


@pytest.fixture(params=BACKENDS)
def outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NoticeOutbox]:
    yield from on_backend(
        request.param,
        tmp_path,
        memory=InMemoryNoticeOutbox,
        sql=SqlNoticeOutbox,
    )


def test_queueing_the_same_notices_twice_keeps_one_each(outbox: NoticeOutbox) -> None:
    assert outbox.enqueue([notice(1), notice(2), notice(1, Channel.SMS)]) == 3
    assert outbox.enqueue([notice(1), notice(2), notice(3)]) == 1
    assert outbox.counts() == {NoticeStatus.QUEUED: 4}


def test_a_claimed_notice_is_nobody_elses_until_its_lease_ends(outbox: NoticeOutbox) -> None:
    outbox.enqueue([notice(index) for index in range(1, 6)])
    first = outbox.claim(now=T0, lease=LEASE, limit=3)
    second = outbox.claim(now=T0, lease=LEASE, limit=10)
    assert {n.subscriber_id for n in first} == {1, 2, 3}
    assert {n.subscriber_id for n in second} == {4, 5}
    assert all(n.status is NoticeStatus.SENDING and n.attempts == 1 for n in first + second)
    assert outbox.claim(now=T0 + LEASE - timedelta(seconds=1), lease=LEASE, limit=10) == []
    outbox.mark_sent(first[0].id, at=T0)
    # the sender that held the others died: after the lease they are taken again, same id
    again = outbox.claim(now=T0 + LEASE, lease=LEASE, limit=10)
    assert sorted(n.id for n in again) == sorted(n.id for n in first[1:] + second)
    assert {n.message_id for n in again} == {n.message_id for n in first[1:] + second}
    assert all(n.attempts == 2 for n in again)


def test_retry_waits_for_its_time_and_failure_keeps_the_reason(outbox: NoticeOutbox) -> None:
    outbox.enqueue([notice(1), notice(2)])
    one, two = outbox.claim(now=T0, lease=LEASE, limit=10)
    outbox.mark_retry(one.id, error="421 try later", next_attempt_at=T0 + timedelta(minutes=1))
    outbox.mark_failed(two.id, error="550 no such mailbox")
    assert outbox.claim(now=T0 + timedelta(seconds=59), lease=LEASE, limit=10) == []
    (retried,) = outbox.claim(now=T0 + timedelta(minutes=1), lease=LEASE, limit=10)
    assert retried.id == one.id and retried.last_error == "421 try later"
    failed = next(n for n in outbox.list_notices(incident_id=1) if n.id == two.id)
    assert failed.status is NoticeStatus.FAILED and failed.last_error == "550 no such mailbox"
    assert outbox.counts(incident_id=1) == {NoticeStatus.SENDING: 1, NoticeStatus.FAILED: 1}


def test_concurrent_senders_never_claim_the_same_notice(outbox: NoticeOutbox) -> None:
    outbox.enqueue([notice(index) for index in range(1, 201)])
    claimed: list[list[int]] = [[] for _ in range(4)]

    def sender(slot: int) -> None:
        for _ in range(100):
            batch = outbox.claim(now=T0, lease=LEASE, limit=7)
            if not batch:
                return
            claimed[slot].extend(n.id for n in batch)

    threads = [threading.Thread(target=sender, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [notice_id for batch in claimed for notice_id in batch]
    assert len(every) == 200 and len(set(every)) == 200


def test_a_sender_of_one_channel_claims_only_that_channels_notices(outbox: NoticeOutbox) -> None:
    outbox.enqueue([notice(1), notice(1, Channel.SMS), notice(2, Channel.SMS)])
    sms = outbox.claim(now=T0, lease=LEASE, limit=10, channels=[Channel.SMS])
    assert sorted((n.subscriber_id, n.channel) for n in sms) == [
        (1, Channel.SMS),
        (2, Channel.SMS),
    ]
    (email,) = outbox.claim(now=T0, lease=LEASE, limit=10, channels=[Channel.EMAIL])
    assert email.channel is Channel.EMAIL
    assert outbox.progress() == {
        Channel.EMAIL: {NoticeStatus.SENDING: 1},
        Channel.SMS: {NoticeStatus.SENDING: 2},
    }


def test_receipts_make_a_notice_delivered_once_every_part_is_and_failed_if_one_fails(
    outbox: NoticeOutbox,
) -> None:
    outbox.enqueue([notice(1, Channel.SMS), notice(2, Channel.SMS)])
    one, two = outbox.claim(now=T0, lease=LEASE, limit=10)
    outbox.mark_sent(one.id, at=T0, references=("a1", "a2"))
    outbox.mark_sent(two.id, at=T0, references=("b1",))
    later = T0 + timedelta(seconds=5)

    assert outbox.record_receipt(DeliveryReceipt("a1", delivered=True), at=later) == one.id
    assert outbox.progress()[Channel.SMS] == {NoticeStatus.SENT: 2}  # a2 not yet
    assert outbox.record_receipt(DeliveryReceipt("a2", delivered=True), at=later) == one.id
    assert outbox.record_receipt(DeliveryReceipt("b1", False, "UNDELIV err:001"), at=later) == (
        two.id
    )
    assert outbox.record_receipt(DeliveryReceipt("zz", delivered=True), at=later) is None

    states = {n.id: (n.status, n.last_error) for n in outbox.list_notices(incident_id=1)}
    assert states == {
        one.id: (NoticeStatus.DELIVERED, None),
        two.id: (NoticeStatus.FAILED, "UNDELIV err:001"),
    }
