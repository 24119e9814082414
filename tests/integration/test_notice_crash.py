"""kill -9 of a brain sending 1,000 notices by email and 1,000 by SMS: after a restart every
notice was sent, none was lost, and the one message per channel the relay or SMSC took just
before the kill (if any) is sent again with the same Message-ID, or the same SMS reference
(at-least-once, recognisable duplicates: docs/incidents.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

from test_incident_notices import free_port, mailbox  # noqa: F401 - the fixture

from support.operator import a_notice as notice
from support.smpp import Smsc, smsc  # noqa: F401 - the fixture
from support.stack import wait_until
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.adapters.store.notices_sql import SqlNoticeOutbox
from tawasol.domain.notices import Channel, NoticeStatus

NOTICES = 1000

SENDER = """
import asyncio, sys
from tawasol.composition import build_brain
from tawasol.config import Settings
settings = Settings(
    data_dir=sys.argv[1], notice_smtp_host="127.0.0.1", notice_smtp_port=int(sys.argv[2]),
    notice_rate_per_s=400, notice_lease_s=5, notice_smpp_host="127.0.0.1",
    notice_smpp_port=int(sys.argv[3]), notice_smpp_system_id="tawasol",
    notice_sms_rate_per_s=400,
)
brain = build_brain(settings)
asyncio.run(brain.notices.sender.run(asyncio.Event()))
"""


def start_sender(data_dir, port: int, smpp_port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, str(data_dir), str(port), str(smpp_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_9_while_sending_1000_notices_loses_none(tmp_path, mailbox, smsc):  # noqa: F811
    handler, port = mailbox
    url = sqlite_url_for(tmp_path)
    migrate(url)
    store = SqlStore.from_url(url)
    outbox = SqlNoticeOutbox(store.engine)
    outbox.enqueue(
        [
            notice(index, channel)
            for channel in (Channel.EMAIL, Channel.SMS)
            for index in range(1, NOTICES + 1)
        ]
    )
    sender = start_sender(tmp_path, port, smsc.port)
    try:
        assert wait_until(
            lambda: len(handler.messages) >= 300 and len(smsc.messages) >= 300, timeout_s=180
        )
        os.kill(sender.pid, signal.SIGKILL)
        sender.wait(timeout=10)
        assert len(handler.messages) < NOTICES, "the kill came after the last email"
        assert len(smsc.messages) < NOTICES, "the kill came after the last SMS"

        sender = start_sender(tmp_path, port, smsc.port)

        def all_done() -> bool:
            progress = outbox.progress(incident_id=1)
            return all(
                progress.get(channel, {}).get(NoticeStatus.SENT, 0)
                + progress.get(channel, {}).get(NoticeStatus.DELIVERED, 0)
                == NOTICES
                for channel in (Channel.EMAIL, Channel.SMS)
            )

        assert wait_until(all_done, timeout_s=300), outbox.progress(incident_id=1)
    finally:
        sender.kill()
        sender.wait(timeout=10)
        store.close()

    by_id = Counter(message["Message-ID"] for message in handler.messages)
    recipients = {message["To"] for message in handler.messages}
    assert recipients == {f"s{index}@example.org" for index in range(1, NOTICES + 1)}
    assert len(by_id) == NOTICES  # every notice arrived
    # at most the one message in flight at the kill came twice, and with the same Message-ID
    assert sum(count - 1 for count in by_id.values()) <= 1

    per_number = smsc.per_destination()
    assert set(per_number) == {f"2126{index:08d}" for index in range(1, NOTICES + 1)}
    assert sum(count - 1 for count in per_number.values()) <= 1  # the one in flight, if any
    for number, count in per_number.items():
        if count > 1:  # sent again as the same message: same reference, same text
            copies = [m for m in smsc.messages if m.destination == number]
            assert len({(m.user_reference, m.text) for m in copies}) == 1
