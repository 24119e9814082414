"""Notices of an incident through the real brain, a real SMTP server (aiosmtpd) and SQLite:
only the affected subscribers are told, once, in their language; the resolution likewise;
a relay that refuses or is down gets retries or a failure with its reason, nothing twice."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from aiosmtpd.controller import Controller
from edge_support import decide, edge_client
from sample_brain import AUTH, MovableClock, add_callers, sample_brain
from test_incidents_api import MAROC_TELECOM_MOBILE, ORANGE_MOBILE, START, place_call

from support.smpp import smsc  # noqa: F401 - the fixture
from tawasol.domain.notices import Channel, NoticeStatus


class Mailbox:
    """An aiosmtpd handler keeping every message; `refuse` answers every RCPT with it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        )
        return "250 Message accepted"


def plain_text(message: Message) -> str:
    body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    return str(body.get_content())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def build(tmp_path, clock, smtp_port: int, **extra: object):
    """The sample brain with an SMTP relay; consumers are told at once unless `extra` sets
    `notice_consumer_min_outage_s` (the business rule's own test does)."""
    brain = sample_brain(
        tmp_path,
        clock=clock,
        incident_recovery_hold_s=60,
        notice_smtp_host="127.0.0.1",
        notice_smtp_port=smtp_port,
        notice_smtp_sender="incidents@operator.example",
        notice_smtp_timeout_s=2,
        notice_rate_per_s=1000,
        **{"notice_consumer_min_outage_s": 0, **extra},
    )
    add_callers(brain, 4, now=clock.now, locales=("fr", "ar", "en", "fr"))
    # a Moroccan-plan subscriber who never called Morocco, and a Maghreb-plan one who only
    # called Orange numbers: neither is affected by a Maroc Telecom outage
    others = (("quiet", "maroc-illimite-mois", 1), ("orange", "maroc-illimite-semaine", 2))
    for name, plan, number in others:
        brain.catalog.add_subscriber(
            name=name,
            email=f"{name}@example.org",
            phone=f"+3361299999{number}",
            locale="fr",
            time_zone="Europe/Paris",
            sip_username=name,
            password=f"{name}-pass-long-enough",
            plan_code=plan,
            start=clock.now - timedelta(days=1),
        )
    return brain


def morocco_telecom_fails(client, clock) -> None:
    """30 calls to a Maroc Telecom mobile, each failing on every route: an incident is due."""
    for index in range(30):
        place_call(client, clock, f"mt-{index}", MAROC_TELECOM_MOBILE, fails=True)


def send(brain) -> int:
    return asyncio.run(brain.notices.sender.send_due())


def test_affected_subscribers_get_one_email_each_in_their_language_then_one_at_resolution(
    tmp_path, mailbox
):
    handler, port = mailbox
    clock = MovableClock(START)
    brain = build(tmp_path, clock, port)
    with edge_client(brain) as client:
        decide(client, user="orange", dialled=ORANGE_MOBILE, call_id="orange-own-1")
        morocco_telecom_fails(client, clock)
        (incident,) = brain.incidents.tick()
        assert incident.customer_facing

        assert send(brain) == 4
        assert send(brain) == 0  # nothing twice
        recipients = sorted(message["To"] for message in handler.messages)
        assert recipients == [f"caller{index}@example.org" for index in range(4)]
        by_recipient = {message["To"]: message for message in handler.messages}
        arabic = by_recipient["caller1@example.org"]
        assert arabic["Content-Language"] == "ar"
        html = next(p for p in arabic.walk() if p.get_content_type() == "text/html")
        assert 'dir="rtl"' in html.get_payload(decode=True).decode()
        assert "Maroc Telecom" in str(
            email.header.make_header(
                email.header.decode_header(by_recipient["caller0@example.org"]["Subject"])
            )
        )
        assert len({message["Message-ID"] for message in handler.messages}) == 4

        # queueing the same occasion again adds nothing
        from tawasol.domain.notices import NoticeOccasion

        assert brain.notices.service.queue(incident, NoticeOccasion.CUSTOMER_FACING, 1) == 0

        # recovery held: resolved, one resolution notice each
        for index in range(30, 55):
            place_call(client, clock, f"mt-{index}", MAROC_TELECOM_MOBILE, fails=False)
        clock.now += timedelta(seconds=61)
        place_call(client, clock, "mt-99", MAROC_TELECOM_MOBILE, fails=False)
        brain.incidents.tick()
        assert not brain.incidents.get(incident.id).open
        assert send(brain) == 4
        assert len(handler.messages) == 8
        counts = brain.notices.outbox.counts(incident_id=incident.id)
        assert counts == {NoticeStatus.SENT: 8}
    brain.close()


def test_a_relay_that_refuses_fails_the_notice_with_its_reason_and_one_that_is_down_retries(
    tmp_path, mailbox
):
    handler, port = mailbox
    clock = MovableClock(START)
    brain = build(tmp_path, clock, port)
    with edge_client(brain) as client:
        morocco_telecom_fails(client, clock)
        (incident,) = brain.incidents.tick()
        handler.refuse = "550 5.1.1 mailbox unavailable"
        assert send(brain) == 4
        notices = brain.notices.outbox.list_notices(incident_id=incident.id)
        assert {n.status for n in notices} == {NoticeStatus.FAILED}
        assert all("550" in (n.last_error or "") for n in notices)
    brain.close()

    # a relay that does not answer at all: queued again with backoff, the reason kept
    clock = MovableClock(START)
    (tmp_path / "down").mkdir()
    down = build(tmp_path / "down", clock, free_port())
    with edge_client(down) as client:
        morocco_telecom_fails(client, clock)
        (incident,) = down.incidents.tick()
        assert send(down) == 4
        notices = down.notices.outbox.list_notices(incident_id=incident.id)
        assert {n.status for n in notices} == {NoticeStatus.QUEUED}
        assert all(n.last_error and n.next_attempt_at > clock.now for n in notices)
        assert send(down) == 0  # not before their time
        clock.now += timedelta(seconds=31)
        assert send(down) == 4  # tried again
        assert {n.attempts for n in down.notices.outbox.list_notices(incident_id=incident.id)} == {
            2
        }
    down.close()


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_a_carrier_cut_alerts_the_operator_by_email_and_signed_webhook_and_tells_no_subscriber(
    tmp_path, mailbox
):
    handler, port = mailbox
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Hook.received.clear()
    clock = MovableClock(START)
    secret = "webhook-secret-for-tests"
    brain = build(
        tmp_path,
        clock,
        port,
        alert_email="oncall@operator.example",
        alert_webhook_url=f"http://127.0.0.1:{server.server_port}/hooks/tawasol",
        alert_webhook_secret=secret,
    )
    try:
        with edge_client(brain, raise_server_exceptions=True) as client:
            for index in range(4):  # everybody calls Morocco: nobody is affected by a cut
                place_call(client, clock, f"ok-{index}", MAROC_TELECOM_MOBILE, fails=False)
            for _ in range(3):
                brain.monitor.on_probe("ma-flat", answered=False, detail="timeout")
            (incident,) = brain.incidents.tick()
            assert incident.carrier == "ma-flat" and not incident.customer_facing
            assert send(brain) == 2

        (alert,) = handler.messages
        assert alert["To"] == "oncall@operator.example" and "ma-flat" in alert["Subject"]
        ((headers, body),) = Hook.received
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Tawasol-Signature"] == expected
        event = json.loads(body)
        assert event["event"] == "incident.opened"
        assert event["incident"]["carrier"] == "ma-flat"
        assert not event["incident"]["customer_facing"]
        counts = brain.notices.outbox.counts(incident_id=incident.id)
        assert counts == {NoticeStatus.SENT: 2}  # the two alerts, no subscriber notice
    finally:
        brain.close()
        server.shutdown()
        server.server_close()


def test_significant_updates_reach_subscribers_at_most_once_per_window(tmp_path, mailbox):
    handler, port = mailbox
    clock = MovableClock(START)
    brain = build(tmp_path, clock, port)
    with edge_client(brain) as client:
        morocco_telecom_fails(client, clock)
        (incident,) = brain.incidents.tick()
        assert send(brain) == 4

        def operator_update(text: str) -> None:
            response = client.post(
                f"/admin/v1/incidents/{incident.id}/updates",
                headers=AUTH,
                json={
                    "author": "amina",
                    "message": {"fr": f"FR {text}", "ar": f"AR {text}", "en": f"EN {text}"},
                    "notify_customers": True,
                },
            )
            assert response.status_code == 200, response.text

        operator_update("repair crew on site")
        assert send(brain) == 4
        clock.now += timedelta(hours=1)
        operator_update("still on it")  # same 6-hour window: nobody is written to again
        assert send(brain) == 0
        clock.now += timedelta(hours=6)
        operator_update("half the sites back")
        assert send(brain) == 4

    updates = [m for m in handler.messages if "repair crew" in plain_text(m)]
    assert len(updates) == 4
    arabic = next(m for m in updates if m["To"] == "caller1@example.org")
    assert "AR repair crew on site" in plain_text(arabic)
    assert not any("still on it" in plain_text(m) for m in handler.messages)
    brain.close()


def test_affected_subscribers_get_one_sms_each_in_their_language_with_delivery_receipts(
    tmp_path,
    mailbox,
    smsc,  # noqa: F811
):
    _handler, port = mailbox
    clock = MovableClock(START)
    brain = build(
        tmp_path,
        clock,
        port,
        notice_smpp_host="127.0.0.1",
        notice_smpp_port=smsc.port,
        notice_smpp_system_id="tawasol",
        notice_sms_sender="Tawasol",
        notice_sms_rate_per_s=1000,
    )
    with edge_client(brain) as client:
        decide(client, user="orange", dialled=ORANGE_MOBILE, call_id="orange-own-1")
        morocco_telecom_fails(client, clock)
        (incident,) = brain.incidents.tick()

        async def send_and_wait_for_receipts() -> None:
            await brain.notices.sender.send_due()
            for _ in range(250):
                progress = brain.notices.outbox.progress(incident_id=incident.id)
                if progress.get(Channel.SMS, {}).get(NoticeStatus.DELIVERED) == 4:
                    break
                await asyncio.sleep(0.02)

        asyncio.run(send_and_wait_for_receipts())
        assert asyncio.run(brain.notices.sender.send_due()) == 0  # nothing twice
    brain.close()

    numbers = [f"336120000{index:02d}" for index in range(4)]  # the affected callers
    assert sorted(smsc.per_destination()) == numbers
    assert all(count == 1 for count in smsc.per_destination().values())
    (french,) = smsc.texts_to(numbers[0])
    (arabic,) = smsc.texts_to(numbers[1])
    (english,) = smsc.texts_to(numbers[2])
    assert french.startswith("Appels vers les mobiles Maroc Telecom (MA) perturbés: ")
    assert arabic.startswith("اضطراب في المكالمات نحو الهواتف المحمولة")
    assert english.startswith("Calls to mobiles Maroc Telecom (MA) disrupted: ")
    assert {message.source for message in smsc.messages} == {"Tawasol"}
    progress = brain.notices.outbox.progress(incident_id=incident.id)
    assert progress[Channel.SMS] == {NoticeStatus.DELIVERED: 4}
    assert progress[Channel.EMAIL] == {NoticeStatus.SENT: 4}


def recovers(client, clock, brain) -> None:
    """Calls to the Maroc Telecom mobile succeed again and recovery holds (60 s here)."""
    for index in range(30, 55):
        place_call(client, clock, f"mt-{index}", MAROC_TELECOM_MOBILE, fails=False)
    clock.now += timedelta(seconds=61)
    place_call(client, clock, "mt-99", MAROC_TELECOM_MOBILE, fails=False)
    brain.incidents.tick()


def test_a_business_is_told_of_a_short_outage_consumers_only_once_it_lasted_five_minutes(
    tmp_path, mailbox
):
    handler, port = mailbox
    for world in ("long", "short"):
        (tmp_path / world).mkdir()
    # -- an outage of more than 5 minutes: the business at once, the consumers at 5 minutes --
    clock = MovableClock(START)
    brain = build(tmp_path / "long", clock, port, notice_consumer_min_outage_s=300)
    business = "caller2@example.org"
    with edge_client(brain) as client:
        subscriber = brain.catalog.find_subscriber("caller2")
        marked = client.put(
            f"/admin/v1/subscribers/{subscriber.id}/business",
            headers=AUTH,
            json={"business": True},
        )
        assert marked.status_code == 200 and marked.json()["business"] is True, marked.text
        morocco_telecom_fails(client, clock)
        (incident,) = brain.incidents.tick()
        assert incident.customer_facing
        assert send(brain) == 1
        assert [m["To"] for m in handler.messages] == [business]
        clock.now += timedelta(seconds=240)
        brain.incidents.tick()
        assert send(brain) == 0  # 4 minutes: consumers not told yet
        clock.now += timedelta(seconds=61)
        brain.incidents.tick()
        assert send(brain) == 3  # 5 minutes: every affected consumer
        assert sorted(m["To"] for m in handler.messages) == [
            f"caller{index}@example.org" for index in range(4)
        ]
        recovers(client, clock, brain)
        assert not brain.incidents.get(incident.id).open
        assert send(brain) == 4  # everyone told it is over
    brain.close()

    # -- a short outage: the business hears of it and of its end; consumers of neither -------
    handler.messages.clear()
    clock = MovableClock(START)
    short = build(tmp_path / "short", clock, port, notice_consumer_min_outage_s=300)
    with edge_client(short) as client:
        short.catalog.set_business(short.catalog.find_subscriber("caller2").id, True)
        morocco_telecom_fails(client, clock)
        (incident,) = short.incidents.tick()
        recovers(client, clock, short)
        assert not short.incidents.get(incident.id).open
        assert send(short) == 2
        assert send(short) == 0
    short.close()
    assert [m["To"] for m in handler.messages] == [business, business]
    subjects = sorted(str(m["Subject"]) for m in handler.messages)
    assert "disrupted" in subjects[0] and "restored" in subjects[1], subjects  # caller2: en
