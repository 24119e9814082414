"""Notices at scale: queue 50,000 notices (email + SMS for 25,000 subscribers) into the SQL
outbox, then send a bounded sample through a real SMTP server (aiosmtpd) and a real SMPP
server (tests/support/smpp.py) at each channel's configured rate, printing the progress the
CLI shows (`tawasol incidents notices`).

    .venv/bin/python bench/notices.py [--notices 50000] [--send-seconds 10]
        [--email-rate 200] [--sms-rate 100] [--postgres URL]

Prints the queueing time and rows per second, a second queueing of the same notices (the
unique key makes it add nothing), and the achieved sending rate per channel against the
configured one. Wall-clock figures depend on the machine's load: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from aiosmtpd.controller import Controller

from support.smpp import Smsc
from support.stack import free_port
from tawasol.adapters.notify.email import EmailChannel, SmtpRelay
from tawasol.adapters.notify.smpp import SmppAccount, SmppChannel
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.adapters.store.notices_sql import SqlNoticeOutbox
from tawasol.domain.notices import Channel, Notice, NoticeOccasion, RetryPolicy
from tawasol.services.notices import NoticeSender


class Counting:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.count += 1
        return "250 OK"


def notices(count: int) -> list[Notice]:
    subscribers = count // 2
    made = []
    for index in range(1, subscribers + 1):
        for channel, address in (
            (Channel.EMAIL, f"s{index}@example.org"),
            (Channel.SMS, f"+2126{index:08d}"),
        ):
            made.append(
                Notice(
                    incident_id=1,
                    occasion=NoticeOccasion.CUSTOMER_FACING,
                    occasion_seq=1,
                    subscriber_id=index,
                    channel=channel,
                    address=address,
                    locale="ar",
                    subject="اضطراب في المكالمات نحو الهواتف المحمولة (MA)",
                    text="مرحبا، قد تفشل مكالماتك نحو الهواتف المحمولة في المغرب. نعمل على حلها.",
                    html="<p>مرحبا</p>",
                    message_id=f"<incident-1.customer_facing.1.{index}.{channel}@bench>",
                )
            )
    return made


async def send_for(sender: NoticeSender, seconds: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait_for(task, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notices", type=int, default=50_000)
    parser.add_argument("--send-seconds", type=float, default=10.0)
    parser.add_argument("--email-rate", type=float, default=200.0)
    parser.add_argument("--sms-rate", type=float, default=100.0)
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database) instead of SQLite")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        url = arguments.postgres or sqlite_url_for(Path(directory))
        migrate(url)
        store = SqlStore.from_url(url)
        outbox = SqlNoticeOutbox(store.engine)
        batch = notices(arguments.notices)
        started = time.perf_counter()
        added = outbox.enqueue(batch)
        queued_s = time.perf_counter() - started
        started = time.perf_counter()
        again = outbox.enqueue(batch)
        again_s = time.perf_counter() - started
        print(f"database: {'PostgreSQL' if arguments.postgres else 'SQLite'}")
        print(
            f"queued {added:,} notices in {queued_s:.2f} s ({added / queued_s:,.0f}/s); "
            f"queued again: {again} added in {again_s:.2f} s"
        )

        handler = Counting()
        with Smsc() as smsc:
            smtp_port = free_port()
            controller = Controller(handler, hostname="127.0.0.1", port=smtp_port)
            controller.start()
            try:
                sender = NoticeSender(
                    outbox=outbox,
                    channels={
                        Channel.EMAIL: EmailChannel(
                            SmtpRelay(host="127.0.0.1", port=smtp_port, sender="n@bench")
                        ),
                        Channel.SMS: SmppChannel(
                            SmppAccount(
                                host="127.0.0.1", port=smsc.port, system_id="bench", password="x"
                            )
                        ),
                    },
                    clock=lambda: datetime.now(UTC),
                    retry=RetryPolicy(),
                    rate_per_s=arguments.email_rate,
                    channel_rates={Channel.SMS: arguments.sms_rate},
                )
                asyncio.run(send_for(sender, arguments.send_seconds))
            finally:
                controller.stop()
            seconds = arguments.send_seconds
            emails = handler.count
            print(
                f"sent in {seconds:.0f} s: email {emails:,} ({emails / seconds:.0f}/s,"
                f" configured {arguments.email_rate:.0f}/s); SMS {len(smsc.messages):,} "
                f"({len(smsc.messages) / seconds:.0f}/s, configured {arguments.sms_rate:.0f}/s)"
            )
        for channel, counts in sorted(outbox.progress().items()):
            print(f"  {channel.value:6} " + " ".join(f"{s.value}={n:,}" for s, n in counts.items()))
        store.close()


if __name__ == "__main__":
    main()
