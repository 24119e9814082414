"""Personal notices: what each affected subscriber is told about an incident, and how a notice
goes from queued to sent (or failed) with retries.

A *notice* is one message to one subscriber on one channel (email, SMS; webhook for alerts) about
one occasion of one incident: it became customer-facing, a significant update, or it was
resolved. Its `key` (incident, occasion, subscriber, channel) is unique: queueing the same
notice twice keeps one, so a restart that queues again sends nothing twice. Its `message_id`
(RFC 5322 §3.6.4) is fixed when queued, so a retry after a crash is recognisable as the same
message by the recipient's mail system.

States: queued -> sending (claimed by a sender, with a lease) -> sent (the relay accepted it)
-> delivered (where the channel reports it); a failed try goes back to queued with a later
`next_attempt_at` (exponential backoff) until `RetryPolicy.max_attempts`, then failed with the
reason. A sender killed while sending leaves the notice claimed; when the lease expires another
sender takes it again, with the same Message-ID.
"""

from __future__ import annotations

import enum
import html as html_text
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tawasol.domain.errors import InvalidInput
from tawasol.domain.incidents import Incident, IncidentState
from tawasol.domain.outages import OutageScope

__all__ = [
    "Channel",
    "DeliveryReceipt",
    "Notice",
    "NoticeOccasion",
    "NoticePolicy",
    "NoticeStatus",
    "Recipient",
    "RetryPolicy",
    "customer_facing_time",
    "html_document",
    "render",
    "sms_text",
    "status_from_parts",
]


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"  # operator alerts only: a signed JSON POST


class NoticeOccasion(enum.StrEnum):
    OPENED = "opened"  # operator alerts only: every incident, customer-facing or not
    CUSTOMER_FACING = "customer_facing"
    UPDATE = "update"
    RESOLVED = "resolved"
    # Payments (tawasol.domain.payments.notices): `incident_id` is 0, `occasion_seq` the
    # payment's id (action, failed) or the dunning case's (suspended, resumed).
    PAYMENT_ACTION = "payment_action"  # the bank asks the subscriber to authenticate
    PAYMENT_FAILED = "payment_failed"  # a renewal was refused: update the payment method
    PAYMENT_SUSPENDED = "payment_suspended"  # grace period over: calls suspended
    PAYMENT_RESUMED = "payment_resumed"  # paid after suspension: calls work again
    # Not about an incident (incident_id 0): a SEPA debit's amount and date, told in advance
    # (EPC SDD Core Rulebook PT-04.03); occasion_seq is the pre-notification's id.
    SEPA_PRENOTIFICATION = "sepa_prenotification"


class NoticeStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Recipient:
    """An affected subscriber, as notices need them: where to write, in which language, and
    whether a business customer (told of short outages too: `NoticePolicy`)."""

    subscriber_id: int
    name: str
    email: str
    phone: str
    locale: str
    business: bool = False


@dataclass(frozen=True)
class Notice:
    """One message to one subscriber on one channel (see the module docstring).

    `occasion_seq` tells apart two occasions of the same kind (an incident reopened becomes
    customer-facing a second time). `id` is 0 until the outbox stores it.
    """

    incident_id: int
    occasion: NoticeOccasion
    occasion_seq: int
    subscriber_id: int
    channel: Channel
    address: str
    locale: str
    subject: str
    text: str
    html: str
    message_id: str
    status: NoticeStatus = NoticeStatus.QUEUED
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    id: int = 0

    @property
    def key(self) -> str:
        return (
            f"{self.incident_id}:{self.occasion.value}:{self.occasion_seq}:"
            f"{self.subscriber_id}:{self.channel.value}"
        )


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the network reports later about one message it took: `reference` is the id the
    channel gave when it took it (an SMSC's message id, SMPP 3.4 §4.4.2), `delivered` whether
    it reached the handset, `reason` why not (e.g. "UNDELIV err:001")."""

    reference: str
    delivered: bool
    reason: str | None = None


def status_from_parts(part_states: Sequence[str]) -> NoticeStatus | None:
    """A sent notice's state from its parts' receipts (a long SMS is several messages):
    failed as soon as one part failed, delivered once every part was, else unchanged (None)."""
    if NoticeStatus.FAILED.value in part_states:
        return NoticeStatus.FAILED
    if part_states and all(state == NoticeStatus.DELIVERED.value for state in part_states):
        return NoticeStatus.DELIVERED
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between tries: `first_delay` doubling up to `max_delay`, at most `max_attempts`
    tries; a claimed notice whose sender died is taken again after `lease`."""

    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    lease: timedelta = timedelta(minutes=2)

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.first_delay <= timedelta(0):
            raise InvalidInput("a retry policy needs at least one try and a positive delay")
        if self.max_delay < self.first_delay:
            raise InvalidInput("the longest retry delay cannot be shorter than the first one")

    def delay_after(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed try (1 -> first_delay)."""
        delay: timedelta = self.first_delay * (2 ** max(attempts - 1, 0))
        return min(delay, self.max_delay)


def customer_facing_time(incident: Incident, *, life: int, now: datetime) -> timedelta:
    """How long `incident` was customer-facing during its `life`-th life (1: from its opening
    to its first resolution; 2: from its first reopening to its second resolution...), up to
    `now` for the life still going: the sum of its impact stretches inside that life."""
    resolutions = [u.at for u in incident.updates if u.state is IncidentState.RESOLVED]
    begins = resolutions[life - 2] if life >= 2 and len(resolutions) >= life - 1 else None
    ends = resolutions[life - 1] if len(resolutions) >= life else now
    total = timedelta(0)
    for stretch in incident.impact:
        start = stretch.start if begins is None else max(stretch.start, begins)
        end = min(stretch.end or now, ends)
        if end > start:
            total += end - start
    return total


@dataclass(frozen=True)
class NoticePolicy:
    """Who is told of a customer-facing incident, and how often.

    Consumers are told once the incident has been customer-facing for `consumer_min_outage`
    in its current life (`customer_facing_time`): calls failing for a minute and then working
    again are not worth a message to every caller, and whoever was not told of an outage is
    not told it is over either. Business subscribers are told at once, of short outages too
    (issue 13: a business customer expects a personal message for every outage that touches
    it). An update reaches each subscriber at most once per window: windows of
    `update_interval_first_day` during the incident's first day, then of
    `update_interval_later` (`update_slot`). Raises InvalidInput for a negative minimum or an
    interval that is not positive.
    """

    consumer_min_outage: timedelta = timedelta(minutes=5)
    update_interval_first_day: timedelta = timedelta(hours=6)
    update_interval_later: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if self.consumer_min_outage < timedelta(0):
            raise InvalidInput("the consumers' minimum outage cannot be negative")
        if self.update_interval_first_day <= timedelta(0) or self.update_interval_later <= (
            timedelta(0)
        ):
            raise InvalidInput("update notice intervals must be positive")
        if self.update_interval_first_day > timedelta(days=1):
            raise InvalidInput("the first day's update interval is at most a day")

    def consumers_told(self, incident: Incident, *, life: int, now: datetime) -> bool:
        """Whether consumers are told of `incident`'s `life`-th life by `now`."""
        return customer_facing_time(incident, life=life, now=now) >= self.consumer_min_outage

    def update_slot(self, started_at: datetime, at: datetime) -> int:
        """The window an update written at `at` falls in (see the class docstring); update
        notices are keyed by it, so subscribers get at most one per window however often the
        operator writes."""
        return update_slot(
            started_at,
            at,
            first_day_interval=self.update_interval_first_day,
            later_interval=self.update_interval_later,
        )


def update_slot(
    started_at: datetime,
    at: datetime,
    *,
    first_day_interval: timedelta = timedelta(hours=6),
    later_interval: timedelta = timedelta(days=1),
) -> int:
    """The window an update falls in: windows of `first_day_interval` during the incident's
    first day, then of `later_interval`. Update notices are keyed by it, so subscribers get
    at most one per window however often the operator writes."""
    elapsed = max(at - started_at, timedelta(0))
    first_day = timedelta(days=1)
    if elapsed < first_day:
        return elapsed // first_day_interval
    return -(-first_day // first_day_interval) + (elapsed - first_day) // later_interval


_WHERE = {
    "fr": {"mobile": "les mobiles", "fixed": "les fixes", None: "les numéros"},
    "ar": {"mobile": "الهواتف المحمولة", "fixed": "الهواتف الثابتة", None: "الأرقام"},
    "en": {"mobile": "mobiles", "fixed": "landlines", None: "numbers"},
}

_TEXTS = {
    NoticeOccasion.CUSTOMER_FACING: {
        "fr": (
            "Appels vers {where} perturbés",
            "Bonjour {name},\n\nVos appels vers {where} peuvent échouer en ce moment. Nous "
            "connaissons le problème et y travaillons. Nous vous écrirons dès qu'il sera "
            "résolu.\n\nIncident n° {incident}",
        ),
        "ar": (
            "اضطراب في المكالمات نحو {where}",
            "مرحبا {name}،\n\nقد تفشل مكالماتك نحو {where} في الوقت الحالي. نحن على علم "
            "بالمشكلة ونعمل على حلها، وسنراسلك فور حلها.\n\nالحادث رقم {incident}",
        ),
        "en": (
            "Calls to {where} disrupted",
            "Hello {name},\n\nYour calls to {where} may fail at the moment. We know about the "
            "problem and are working on it. We will write again once it is solved.\n\n"
            "Incident {incident}",
        ),
    },
    NoticeOccasion.UPDATE: {
        "fr": ("Appels vers {where} : point de situation", "Bonjour {name},\n\n{update}"),
        "ar": ("المكالمات نحو {where}: مستجدات", "مرحبا {name}،\n\n{update}"),
        "en": ("Calls to {where}: update", "Hello {name},\n\n{update}"),
    },
    NoticeOccasion.RESOLVED: {
        "fr": (
            "Appels vers {where} rétablis",
            "Bonjour {name},\n\nVos appels vers {where} fonctionnent de nouveau. Si votre "
            "forfait a été touché, un avoir vous sera accordé sur votre prochaine facture."
            "\n\nIncident n° {incident}",
        ),
        "ar": (
            "عودة المكالمات نحو {where}",
            "مرحبا {name}،\n\nعادت مكالماتك نحو {where} تعمل. إذا تأثرت باقتك، سيُمنح لك "
            "رصيد في فاتورتك القادمة.\n\nالحادث رقم {incident}",
        ),
        "en": (
            "Calls to {where} restored",
            "Hello {name},\n\nYour calls to {where} work again. If your plan was affected, a "
            "credit will come with your next invoice.\n\nIncident {incident}",
        ),
    },
}


def sms_text(subject: str, text: str) -> str:
    """The SMS version of a notice: its subject and its message paragraph (the body without
    the greeting and the sign-off), so it fits in one to three SMS parts rather than the
    email's five or more."""
    paragraphs = [paragraph for paragraph in text.split("\n\n") if paragraph.strip()]
    message = paragraphs[1] if len(paragraphs) > 1 else (paragraphs[0] if paragraphs else "")
    return f"{subject}: {message}" if message else subject


def _language(locale: str) -> str:
    language = locale.split("_", maxsplit=1)[0].split("-", maxsplit=1)[0].lower()
    return language if language in _TEXTS[NoticeOccasion.RESOLVED] else "en"


def _where(scope: OutageScope, language: str) -> str:
    kind = scope.number_kind.value if scope.number_kind else None
    words = _WHERE[language].get(kind, _WHERE[language][None])
    holder = f" {scope.range_holder}" if scope.range_holder else ""
    return f"{words}{holder} ({scope.country})"


def render(
    *,
    occasion: NoticeOccasion,
    recipient: Recipient,
    scope: OutageScope,
    incident_id: int,
    update: str = "",
) -> tuple[str, str, str, str]:
    """(language, subject, plain text, HTML) in the recipient's language (fr, ar, en; other
    locales get English). Arabic HTML is marked right-to-left (`dir="rtl"`)."""
    language = _language(recipient.locale)
    subject_template, body_template = _TEXTS[occasion][language]
    values = {
        "where": _where(scope, language),
        "name": recipient.name,
        "incident": incident_id,
        "update": update,
    }
    subject = subject_template.format(**values)
    text = body_template.format(**values)
    return language, subject, text, html_document(language, subject, text)


def html_document(language: str, subject: str, text: str) -> str:
    """The HTML version of a notice's plain text: one paragraph per blank-line-separated
    block, line breaks kept, the whole marked right to left in Arabic (`dir="rtl"`)."""
    direction = "rtl" if language == "ar" else "ltr"
    paragraphs = "".join(
        f"<p>{html_text.escape(paragraph).replace(chr(10), '<br>')}</p>"
        for paragraph in text.split("\n\n")
    )
    return (
        f'<!DOCTYPE html><html lang="{language}" dir="{direction}"><head><meta charset="utf-8">'
        f"<title>{html_text.escape(subject)}</title></head><body>{paragraphs}</body></html>"
    )
