"""The world of the incident stories (issue 13's must-show 1 and 2), with real components only:
the brain (`tawasol serve`, its own SQLite) with timers shortened by settings, the Kamailio
edge, carriers played by SIPp, subscribers' calls placed by SIPp, a real SMTP server (aiosmtpd)
and a real HTTP server for the operator's webhook. Everything listens on 127.0.0.1, on ports
picked free at run time.

Where notices arrive: `World.inboxes`, one `Inbox` per channel, each able to say what one
subscriber received: email at aiosmtpd (`EmailInbox`), SMS at the test SMSC of
tests/support/smpp.py (`SmsInbox`, a real SMPP 3.4 server the brain binds to as an ESME).
The stories assert "exactly one per subscriber and occasion" for every inbox.

An SMS carries no language tag and no Message-ID: `SmsInbox` reads each one back against the
email the same subscriber received for the same occasion (the SMS is that email's subject and
message paragraph, character for character); its language and occasion are that email's, and
none when no email's text matches it exactly.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import httpx
from aiosmtpd.controller import Controller
from conftest import Brain, edge_settings

from support.sipp import (
    SCENARIOS,
    CallerRun,
    SippGateway,
    callers_command,
    read_trace,
    wait_callers,
    write_injection_file,
)
from support.smpp import Smsc
from support.stack import free_port, wait_for
from tawasol.adapters.sip import EdgeProcess, start_edge

WEBHOOK_SECRET = "incident-e2e-webhook-secret-0123456789"
ON_CALL = "oncall@operator.example"
SENDER = "incidents@operator.example"
RECOVERY_HOLD_S = 5
AGREEMENT_WINDOW_S = 20
CALLS_PER_SECOND = 20
HOLD_MS = 1000  # each answered call: the callee hangs up after 1 s

# What the brain runs with beyond the session's e2e settings: probes every second (300 ms to
# answer, down after 3 misses, up after 2), incidents evaluated 4 times a second, recovery
# held 5 s (300 s in production), carriers compared over 20 s (600 s), a learned capacity
# tried back at the contract after 4 s without congestion (120 s, one channel at a time),
# consumers told once an incident has been customer-facing 2 s (300 s).
INCIDENT_SETTINGS = {
    "TAWASOL_PROBE_INTERVAL_S": "1",
    "TAWASOL_PROBE_TIMEOUT_MS": "300",
    "TAWASOL_PROBE_DOWN_AFTER": "3",
    "TAWASOL_PROBE_UP_AFTER": "2",
    "TAWASOL_INCIDENT_TICK_INTERVAL_MS": "250",
    "TAWASOL_INCIDENT_RECOVERY_HOLD_S": str(RECOVERY_HOLD_S),
    "TAWASOL_INCIDENT_AGREEMENT_WINDOW_S": str(AGREEMENT_WINDOW_S),
    "TAWASOL_CAPACITY_RAISE_AFTER_S": "4",
    "TAWASOL_CAPACITY_RAISE_STEP": "1000",
    "TAWASOL_NOTICE_SMTP_HOST": "127.0.0.1",
    "TAWASOL_NOTICE_SMTP_SENDER": SENDER,
    "TAWASOL_NOTICE_SMTP_TIMEOUT_S": "5",
    "TAWASOL_NOTICE_RATE_PER_S": "200",
    "TAWASOL_NOTICE_CONSUMER_MIN_OUTAGE_S": "2",
    "TAWASOL_NOTICE_SMPP_SYSTEM_ID": "tawasol",
    "TAWASOL_NOTICE_SMS_SENDER": "Tawasol",
    "TAWASOL_NOTICE_SMS_RATE_PER_S": "200",
    "TAWASOL_ALERT_EMAIL": ON_CALL,
    "TAWASOL_ALERT_WEBHOOK_SECRET": WEBHOOK_SECRET,
}

# Moroccan mobiles by original range holder (libphonenumber), as subscribers dial them.
MAROC_TELECOM = ("00212661234567", "00212662345678", "00212670123456")
ORANGE = ("00212663456789", "00212664567890")
INWI = ("00212600123456", "00212700123456")
TUNISIAN_MOBILE = "0021620123456"
# The Maroc Telecom numbers above, as a carrier receives them (E.164 or 00 prefix).
MAROC_TELECOM_PATTERN = r"sip:(00)?212(661|662|670)"


@dataclass
class IncidentBrain(Brain):
    """The e2e brain with the incident timers shortened, its SMTP relay, SMSC and webhook."""

    smtp_port: int = 0
    smpp_port: int = 0
    webhook_url: str = ""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(INCIDENT_SETTINGS)
        env.update(
            TAWASOL_NOTICE_SMTP_PORT=str(self.smtp_port),
            TAWASOL_NOTICE_SMPP_HOST="127.0.0.1",
            TAWASOL_NOTICE_SMPP_PORT=str(self.smpp_port),
            TAWASOL_ALERT_WEBHOOK_URL=self.webhook_url,
        )
        return env


# -- where things arrive ----------------------------------------------------------------------
@dataclass(frozen=True)
class Received:
    """One notice as it arrived: to whom, in which language, for which occasion of which
    incident (`occasion`: customer_facing, update, resolved), its text, and when (wall clock).
    `data_coding` is an SMS's (0 GSM 7-bit, 8 UCS-2; None for email)."""

    address: str
    language: str
    occasion: str
    subject: str
    text: str
    message_id: str
    at: float
    data_coding: int | None = None


class Inbox(Protocol):
    """What one channel delivered; `address_of` picks a subscriber's address for it."""

    channel: str

    def address_of(self, subscriber: Subscriber) -> str: ...

    def received(self) -> list[Received]: ...


class Mailbox:
    """An aiosmtpd handler keeping every message with its arrival time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[tuple[float, EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._lock:
            self.messages.append((time.time(), message))  # type: ignore[arg-type]
        return "250 Message accepted"

    def all(self) -> list[tuple[float, EmailMessage]]:
        with self._lock:
            return list(self.messages)


@dataclass
class EmailInbox:
    mailbox: Mailbox
    channel: str = "email"

    def address_of(self, subscriber: Subscriber) -> str:
        return subscriber.email

    def received(self) -> list[Received]:
        found = []
        for at, message in self.mailbox.all():
            body = message.get_body(preferencelist=("plain",))
            message_id = str(message["Message-ID"])
            found.append(
                Received(
                    address=str(message["To"]),
                    language=str(message["Content-Language"] or ""),
                    occasion=occasion_of(message_id),
                    subject=str(message["Subject"]),
                    # SMTP carries CRLF line ends (RFC 5321 §2.3.8): read as the text written
                    text=body.get_content().replace("\r\n", "\n") if body is not None else "",
                    message_id=message_id,
                    at=at,
                )
            )
        return found


def occasion_of(message_id: str) -> str:
    """The occasion in a notice's Message-ID (<incident-ID.OCCASION.SEQ.SUBSCRIBER.CHANNEL@..>);
    "" for another message (an operator's alert)."""
    parts = message_id.split(".")
    return parts[1] if message_id.startswith("<incident-") and len(parts) > 2 else ""


def sms_form(subject: str, text: str) -> str:
    """What the SMS of an email notice says: "SUBJECT: MESSAGE", the message being the email's
    second paragraph (the one after the greeting)."""
    paragraphs = [paragraph for paragraph in text.split("\n\n") if paragraph.strip()]
    return f"{subject}: {paragraphs[1]}" if len(paragraphs) > 1 else subject


@dataclass
class SmsInbox:
    """What the test SMSC received, whole messages (concatenated parts reassembled), each read
    back against the email of the same subscriber (see the module docstring). `subscribers`
    is the world's own table (shared, filled as subscribers are created)."""

    smsc: Smsc
    mail: EmailInbox
    subscribers: dict[str, Subscriber]
    channel: str = "sms"

    def address_of(self, subscriber: Subscriber) -> str:
        return subscriber.phone.lstrip("+")

    def received(self) -> list[Received]:
        email_of = {self.address_of(s): s.email for s in list(self.subscribers.values())}
        emails = {
            (received.address, sms_form(received.subject, received.text)): received
            for received in self.mail.received()
        }
        found = []
        for message in self.smsc.messages:
            twin = emails.get((email_of.get(message.destination, ""), message.text))
            found.append(
                Received(
                    address=message.destination,
                    language=twin.language if twin is not None else "",
                    occasion=twin.occasion if twin is not None else "",
                    subject=message.text.split(": ", maxsplit=1)[0],
                    text=message.text,
                    message_id=f"sms:{message.user_reference}",
                    at=message.at,
                    data_coding=message.data_coding,
                )
            )
        return found


class _Hook(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver: WebhookReceiver = self.server.receiver  # type: ignore[attr-defined]
        receiver.add(dict(self.headers.items()), body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class WebhookReceiver:
    """The operator's webhook endpoint: keeps every POST (headers, body, arrival time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.posts: list[tuple[float, dict[str, str], bytes]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
        self.server.receiver = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/tawasol-alerts"

    def add(self, headers: dict[str, str], body: bytes) -> None:
        with self._lock:
            self.posts.append((time.time(), headers, body))

    def events(self) -> list[tuple[float, dict[str, Any]]]:
        """Every alert whose HMAC-SHA256 signature checks out, with its arrival time."""
        with self._lock:
            posts = list(self.posts)
        checked = []
        for at, headers, body in posts:
            expected = (
                "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
            )
            signature = {k.lower(): v for k, v in headers.items()}.get("x-tawasol-signature")
            if signature is not None and hmac.compare_digest(signature, expected):
                checked.append((at, json.loads(body)))
        return checked

    def start(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the world ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Subscriber:
    name: str
    password: str
    email: str
    phone: str
    locale: str
    plan: str
    id: int = 0


@dataclass
class World:
    brain: IncidentBrain
    edge: EdgeProcess
    smtp: Controller
    mailbox: Mailbox
    smsc: Smsc
    webhook: WebhookReceiver
    workdir: Path
    inboxes: list[Inbox] = field(default_factory=list)
    gateways: dict[str, SippGateway] = field(default_factory=dict)
    carriers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscribers: dict[str, Subscriber] = field(default_factory=dict)

    # -- building it --------------------------------------------------------------------------
    def plan(self, code: str, destinations: list[tuple[str, str]]) -> None:
        self.brain.admin(
            "POST",
            "/plans",
            json={
                "code": code,
                "names": {"fr": code, "en": code},
                "period": "month",
                "price": "9.99",
                "currency": "EUR",
                "destinations": [{"country": c, "kind": k} for c, k in destinations],
                "fair_use": {"max_call_duration_s": 7200, "concurrent_calls": 30},
            },
        )

    def subscriber(self, name: str, *, locale: str, plan: str) -> Subscriber:
        index = len(self.subscribers)
        person = Subscriber(
            name=name,
            password=f"{name}-incident-2026",
            email=f"{name}@subscribers.example",
            phone=f"+3361255{index:04d}",
            locale=locale,
            plan=plan,
        )
        created = self.brain.admin(
            "POST",
            "/subscribers",
            json={
                "name": name.title(),
                "email": person.email,
                "phone": person.phone,
                "locale": locale,
                "time_zone": "Europe/Paris",
                "sip_username": name,
                "password": person.password,
                "plan_code": plan,
            },
        )
        person = Subscriber(**{**person.__dict__, "id": created["id"]})
        self.subscribers[name] = person
        return person

    def gateway(
        self, name: str, scenario: str = "carrier_channels.xml", **options: Any
    ) -> SippGateway:
        gateway = SippGateway(scenario, self.workdir, name, hold_ms=HOLD_MS, **options).start()
        self.gateways[name] = gateway
        return gateway

    def carrier(
        self,
        code: str,
        gateway: SippGateway,
        *,
        destinations: list[tuple[str, str]],
        priority: int,
        **contract: Any,
    ) -> str:
        body = {
            "code": code,
            "name": f"Incident story carrier {code}",
            "gateways": [
                {"name": "gw1", "host": "127.0.0.1", "port": gateway.port, "transport": "udp"}
            ],
            "destinations": [
                {"country": c, "kind": k, "priority": priority} for c, k in destinations
            ],
            "number_format": "e164",
            **contract,
        }
        self.brain.admin("POST", "/carriers", json=body)
        self.carriers[code] = body
        return code

    # -- traffic --------------------------------------------------------------------------------
    def calls(
        self, callers: list[str], numbers: tuple[str, ...], count: int
    ) -> list[tuple[str, str, str]]:
        """`count` calls, the callers and numbers taken in turn."""
        return [
            (
                callers[index % len(callers)],
                self.subscribers[callers[index % len(callers)]].password,
                numbers[index % len(numbers)],
            )
            for index in range(count)
        ]

    def place(
        self, calls: list[tuple[str, str, str]], name: str, *, rate: float = CALLS_PER_SECOND
    ) -> Load:
        """Start SIPp placing `calls` at `rate` a second, in the background."""
        timeout_s = int(len(calls) / rate) + 30
        trace = self.workdir / f"callers-{name}.msg"
        command = callers_command(
            edge_port=self.edge.port,
            injection=write_injection_file(self.workdir / f"callers-{name}.csv", calls),
            calls=len(calls),
            trace=trace,
            rate=rate,
            timeout_s=timeout_s,
            call_id_prefix=name,
        )
        # A call up on a carrier that is cut never gets its callee's BYE: give up on any
        # answer after 8 s instead of holding the run until its timeout.
        command += ["-recv_timeout", "8000"]
        with (self.workdir / f"callers-{name}.out").open("wb") as output:
            process = subprocess.Popen(
                command, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        return Load(process, trace, time.monotonic(), timeout_s + 15)

    # -- reading what happened --------------------------------------------------------------
    def incidents(self) -> list[dict[str, Any]]:
        incidents: list[dict[str, Any]] = self.brain.admin("GET", "/incidents")
        return incidents

    def incident(self, incident_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.brain.admin("GET", f"/incidents/{incident_id}")
        return found

    def status(self) -> dict[str, Any]:
        response = httpx.get(
            f"{self.brain.url}/public/v1/status", params={"lang": "en"}, timeout=10
        )
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        return page

    def carrier_row(self, code: str) -> dict[str, Any]:
        rows: list[dict[str, Any]] = self.brain.admin("GET", "/carriers/status")
        return next(row for row in rows if row["code"] == code)

    def notices_for(self, subscriber: Subscriber) -> dict[str, list[Received]]:
        """What each channel delivered to `subscriber`, by channel."""
        return {
            inbox.channel: [
                r for r in inbox.received() if r.address == inbox.address_of(subscriber)
            ]
            for inbox in self.inboxes
        }

    def operator_emails(self) -> list[Received]:
        return [
            r
            for inbox in self.inboxes
            if inbox.channel == "email"
            for r in inbox.received()
            if r.address == ON_CALL
        ]

    def stop(self) -> None:
        for gateway in self.gateways.values():
            gateway.stop()
        self.edge.stop()
        self.brain.stop()
        self.smtp.stop()
        self.smsc.stop()
        self.webhook.stop()


@dataclass
class Load:
    """Callers placing calls in the background (SIPp), bounded by -m and -timeout."""

    process: Any
    trace: Path
    started: float
    timeout_s: float

    def wait(self) -> CallerRun:
        return wait_callers(self.process, self.trace, self.started, timeout_s=self.timeout_s)

    def outcomes(self) -> list[tuple[float, int]]:
        """Every call placed so far with a final answer: (when its authenticated INVITE left,
        wall clock; the final status)."""
        invited: dict[str, float] = {}
        final: dict[str, int] = {}
        for message in read_trace(self.trace):
            if message.direction == "sent" and message.header("CSeq") == "2 INVITE":
                invited.setdefault(message.call_id, message.at.timestamp())
            elif (
                message.direction == "received"
                and message.cseq_method == "INVITE"
                and message.status is not None
                and message.status >= 200
                and message.status != 407
            ):
                final.setdefault(message.call_id, message.status)
        return sorted((invited[c], status) for c, status in final.items() if c in invited)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)


def scenario_with_down_pattern(workdir: Path, pattern: str) -> Path:
    """`carrier_range_down.xml` with the numbers whose far network is down written in."""
    text = (SCENARIOS / "carrier_range_down.xml").read_text()
    variant = workdir / "carrier_range_down-variant.xml"
    variant.write_text(text.replace("DOWN_PATTERN", pattern))
    return variant


def start_world(workdir: Path) -> World:
    """The brain with its edge, SMTP server, SMSC and webhook; no carrier, plan or subscriber
    yet."""
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    smsc = Smsc()
    smsc.start()
    webhook = WebhookReceiver().start()
    data_dir = workdir / "brain"
    brain = IncidentBrain(
        data_dir=data_dir,
        port=free_port(),
        log=workdir / "brain.log",
        smtp_port=smtp.port,
        smpp_port=smsc.port,
        webhook_url=webhook.url,
    )
    edge: EdgeProcess | None = None
    try:
        brain.init()
        brain.start()
        run_dir = workdir / "edge"
        run_dir.mkdir()
        edge = start_edge(edge_settings(brain, run_dir), run_dir)
    except Exception:
        brain.stop()
        smtp.stop()
        smsc.stop()
        webhook.stop()
        raise
    email_inbox = EmailInbox(mailbox)
    subscribers: dict[str, Subscriber] = {}
    return World(
        brain=brain,
        edge=edge,
        smtp=smtp,
        mailbox=mailbox,
        smsc=smsc,
        webhook=webhook,
        workdir=workdir,
        inboxes=[email_inbox, SmsInbox(smsc, email_inbox, subscribers)],
        subscribers=subscribers,
    )


def wait_until(
    predicate: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.2
) -> Any:
    """Poll `predicate` until it returns something true; fail after `timeout_s`."""
    return wait_for(predicate, timeout_s=timeout_s, what=what, every_s=every_s)
