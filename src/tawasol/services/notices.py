"""Notices to affected subscribers: queued when an incident changes, sent by `NoticeSender`.

`NoticeService.on_incident_change(before, after)` (the incidents service calls it after every
stored change) queues, for every affected subscriber (`AffectedSubscribers`) and every channel
configured:

- a *customer-facing* notice when the incident's customer impact starts: once per life of
  the incident (a reopening is a new occasion; impact that stops and starts again is not);
- an *update* notice when the operator asks for one (at most one per window);
- a *resolved* notice when an incident that was customer-facing is resolved, saying what
  happens next (the credit comes with billing).

Who among the affected is told follows `NoticePolicy`: business subscribers at once, consumers
once the incident has been customer-facing for the policy's minimum. `NoticeService.on_tick`
(after every detection tick) reads the open incidents and queues the consumers' customer-facing
notices of those that reached it since, whichever process changed them.

Queueing goes through the outbox in one transaction per occasion; the unique notice key makes
it idempotent, so a brain that restarts and queues again adds nothing. `NoticeSender.run` takes
due notices from the outbox, sends them at `rate_per_s` at most, and marks them sent, queued
again with backoff (transient failure), or failed with the reason (permanent failure, or tries
used up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from tawasol.domain.incidents import Incident, IncidentState
from tawasol.domain.notices import (
    Channel,
    DeliveryReceipt,
    Notice,
    NoticeOccasion,
    NoticePolicy,
    Recipient,
    RetryPolicy,
    customer_facing_time,
    render,
    sms_text,
)
from tawasol.services.notice_ports import AffectedSubscribers, NoticeOutbox

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class NoticeChannel(Protocol):
    """Carries one notice; returns the references the channel gave its messages (an SMSC's
    message id per SMS part; () when the channel gives none, as SMTP). Raises an error with
    `permanent` (bool) and `reason` when it cannot."""

    async def send(self, notice: Notice) -> Sequence[str]: ...


def occasions(
    before: Incident | None, after: Incident, policy: NoticePolicy | None = None
) -> list[tuple[NoticeOccasion, int]]:
    """What the change from `before` to `after` tells customers: (occasion, its number: the
    incident's life for customer-facing and resolved, the update's window for an update)."""
    policy = policy or NoticePolicy()
    found: list[tuple[NoticeOccasion, int]] = []
    was_facing = before is not None and before.customer_facing
    resolutions = sum(1 for update in after.updates if update.state is IncidentState.RESOLVED)
    if after.customer_facing and not was_facing:
        # Once per life of the incident (its first opening, then each reopening): calls that
        # fail, succeed a while, then fail again within one outage are one outage to the
        # subscriber, told once; the resolution notice follows.
        found.append((NoticeOccasion.CUSTOMER_FACING, resolutions + 1))
    new_updates = after.updates[len(before.updates) :] if before is not None else ()
    if after.customer_facing and any(update.notify for update in new_updates):
        last = new_updates[-1]
        found.append((NoticeOccasion.UPDATE, policy.update_slot(after.started_at, last.at)))
    was_resolved = before is not None and not before.open
    if not after.open and not was_resolved and after.impact and after.merged_into is None:
        found.append((NoticeOccasion.RESOLVED, resolutions))
    return found


def current_life(incident: Incident) -> int:
    """Which life of the incident is going on (or just ended, once resolved): 1 until its first
    resolution, 2 after a reopening..."""
    resolutions = sum(1 for update in incident.updates if update.state is IncidentState.RESOLVED)
    return resolutions if not incident.open else resolutions + 1


def _in_language(message: Mapping[str, str], locale: str) -> str:
    """The message in the recipient's language, else English, else whatever was written."""
    language = locale.split("_", maxsplit=1)[0].split("-", maxsplit=1)[0].lower()
    return message.get(language) or message.get("en") or next(iter(message.values()), "")


class NoticeService:
    """Queues the notices an incident change calls for, to whom `policy` says (see the module
    docstring). `open_incidents` lists the open incidents (read each tick; without it, the
    incidents this service saw change)."""

    def __init__(
        self,
        *,
        outbox: NoticeOutbox,
        affected: AffectedSubscribers,
        channels: Mapping[Channel, NoticeChannel],
        clock: Callable[[], datetime],
        lookback: timedelta = timedelta(days=30),
        mail_domain: str = "tawasol.local",
        policy: NoticePolicy | None = None,
        open_incidents: Callable[[], Iterable[Incident]] | None = None,
    ) -> None:
        self._outbox = outbox
        self._affected = affected
        self._channels = dict(channels)
        self._clock = clock
        self._lookback = lookback
        self._mail_domain = mail_domain
        self._policy = policy or NoticePolicy()
        self._open_incidents = open_incidents
        # Without `open_incidents`: the incidents this service saw change, by id.
        self._known: dict[int, Incident] = {}
        # (incident id, life) whose consumers were told: not queued again each tick.
        self._told: set[tuple[int, int]] = set()
        self._lock = threading.Lock()

    @property
    def policy(self) -> NoticePolicy:
        return self._policy

    def on_incident_change(self, before: Incident | None, after: Incident) -> int:
        """Queue what the change calls for; returns how many notices were new."""
        if after.scope is None or not self._channels:
            return 0
        found = occasions(before, after, self._policy)
        life, now = current_life(after), self._clock()
        with self._lock:
            if after.open:
                self._known[after.id] = after
            else:
                self._known.pop(after.id, None)
            due = (
                after.open
                and self._facing_in_current_life(after, now)
                and self._policy.consumers_told(after, life=life, now=now)
            )
            behind = due and (after.id, life) not in self._told
        queued = 0
        if behind and not any(o is NoticeOccasion.CUSTOMER_FACING for o, _ in found):
            # the minimum was reached since the last tick: the consumers are told now (before
            # an update this change may carry)
            queued += self.queue(after, NoticeOccasion.CUSTOMER_FACING, life)
        for occasion, sequence in found:
            queued += self.queue(after, occasion, sequence)
        if due:
            with self._lock:
                self._told.add((after.id, life))
        return queued

    def on_tick(self, now: datetime) -> int:
        """Tell the consumers of the open incidents customer-facing for the policy's minimum
        by `now` (their business subscribers were told already); returns the notices queued.

        The open incidents are read from `open_incidents` every tick: an operator's change
        may have been made by another process (the CLI, another brain's API). What was told
        is remembered per incident and life, so each is queued once (and once more after a
        restart, which the outbox's unique keys turn into nothing)."""
        if not self._channels:
            return 0
        if self._open_incidents is not None:
            candidates = list(self._open_incidents())
        else:
            with self._lock:
                candidates = list(self._known.values())
        due: list[tuple[Incident, int]] = []
        with self._lock:
            lives = {(incident.id, current_life(incident)) for incident in candidates}
            self._told &= lives  # forget incidents resolved since
            for incident in candidates:
                life = current_life(incident)
                if (
                    (incident.id, life) not in self._told
                    and incident.open
                    and self._facing_in_current_life(incident, now)
                    and self._policy.consumers_told(incident, life=life, now=now)
                ):
                    due.append((incident, life))
        queued = 0
        for incident, life in due:
            queued += self.queue(incident, NoticeOccasion.CUSTOMER_FACING, life)
            with self._lock:
                self._told.add((incident.id, life))
        return queued

    @staticmethod
    def _facing_in_current_life(incident: Incident, now: datetime) -> bool:
        return incident.scope is not None and (
            incident.customer_facing
            or customer_facing_time(incident, life=current_life(incident), now=now) > timedelta(0)
        )

    def queue(self, incident: Incident, occasion: NoticeOccasion, sequence: int) -> int:
        """Queue one occasion's notices for every affected subscriber it is due to
        (idempotent): business subscribers always, consumers when the policy says they are
        told of this life of the incident."""
        assert incident.scope is not None
        now = self._clock()
        life = sequence if occasion is not NoticeOccasion.UPDATE else current_life(incident)
        consumers = self._policy.consumers_told(incident, life=life, now=now)
        recipients = [
            recipient
            for recipient in self._affected.affected(
                incident.scope, since=now - self._lookback, now=now
            )
            if consumers or recipient.business
        ]
        notices = [
            notice
            for recipient in recipients
            for notice in self._notices(incident, occasion, sequence, recipient)
        ]
        added = self._outbox.enqueue(notices)
        log.info(
            "incident %d: %d %s notice(s) queued for %d subscriber(s)",
            incident.id,
            added,
            occasion.value,
            len(recipients),
        )
        return added

    def _notices(
        self, incident: Incident, occasion: NoticeOccasion, sequence: int, recipient: Recipient
    ) -> list[Notice]:
        assert incident.scope is not None
        update = next((u for u in reversed(incident.updates) if u.notify), None)
        language, subject, text, html = render(
            occasion=occasion,
            recipient=recipient,
            scope=incident.scope,
            incident_id=incident.id,
            update=_in_language(update.message, recipient.locale) if update else "",
        )
        notices = []
        for channel in self._channels:
            address = recipient.email if channel is Channel.EMAIL else recipient.phone
            if not address:
                continue
            notices.append(
                Notice(
                    incident_id=incident.id,
                    occasion=occasion,
                    occasion_seq=sequence,
                    subscriber_id=recipient.subscriber_id,
                    channel=channel,
                    address=address,
                    locale=language,
                    subject=subject,
                    text=sms_text(subject, text) if channel is Channel.SMS else text,
                    html="" if channel is Channel.SMS else html,
                    message_id=(
                        f"<incident-{incident.id}.{occasion.value}.{sequence}."
                        f"{recipient.subscriber_id}.{channel.value}@{self._mail_domain}>"
                    ),
                )
            )
        return notices


class NoticeSender:
    """Sends due notices from the outbox until stopped (a job of the brain's runtime): one
    loop per channel, each at its own rate (`rate_per_s`, overridden per channel by
    `channel_rates`: the relay's or SMSC's agreed throughput), so a slow SMSC never holds
    email back."""

    name = "notice-sender"

    def __init__(
        self,
        *,
        outbox: NoticeOutbox,
        channels: Mapping[Channel, NoticeChannel],
        clock: Callable[[], datetime],
        retry: RetryPolicy | None = None,
        rate_per_s: float = 20.0,
        channel_rates: Mapping[Channel, float] | None = None,
        batch: int = 100,
        idle_s: float = 1.0,
    ) -> None:
        self._outbox = outbox
        self._channels = dict(channels)
        self._clock = clock
        self._retry = retry or RetryPolicy()
        rates = dict(channel_rates or {})
        self._intervals_s = {
            channel: 1.0 / rates.get(channel, rate_per_s) for channel in self._channels
        }
        self._batch = batch
        self._idle_s = idle_s
        self._next_slot: dict[Channel, float] = {}
        # A receipt can overtake the "sent" write of its own notice (an SMSC answers the last
        # part's submit_sm and reports the first part delivered at once): such receipts wait
        # here until their references are stored. Both maps are touched only on the event
        # loop, with no await between a look and a change, and are bounded.
        self._early_receipts: dict[str, DeliveryReceipt] = {}
        self._stored_references: dict[str, None] = {}

    @property
    def retry(self) -> RetryPolicy:
        """The backoff and lease notices are sent with."""
        return self._retry

    async def run(self, stop: asyncio.Event) -> None:
        if not self._channels:
            return  # nothing configured to send with: notices stay queued
        await asyncio.gather(*(self._run_channel(channel, stop) for channel in self._channels))

    async def _run_channel(self, channel: Channel, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.send_due(stop, channels=(channel,))
            except Exception:
                log.exception("notice sender (%s): a round failed; trying again", channel)
                sent = 0
            if not sent:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._idle_s)
        close = getattr(self._channels[channel], "close", None)
        if close is not None:
            await close()

    async def send_due(
        self, stop: asyncio.Event | None = None, *, channels: Sequence[Channel] | None = None
    ) -> int:
        """One round: claim due notices (of `channels`, default all) and try each once;
        returns how many were tried."""
        claimed = await asyncio.to_thread(
            self._outbox.claim,
            now=self._clock(),
            lease=self._retry.lease,
            limit=self._batch,
            channels=channels,
        )
        for notice in claimed:
            if stop is not None and stop.is_set():
                break  # the rest stay claimed and are taken again when the lease ends
            await self._pace(notice.channel)
            await self._send_one(notice)
        return len(claimed)

    async def _pace(self, channel: Channel) -> None:
        """Wait for `channel`'s next sending slot: slots are 1/rate apart whatever a send
        takes, so the configured rate is the rate reached (never above it, no burst after an
        idle spell). The event loop's own monotonic time paces, as asyncio.sleep does."""
        loop = asyncio.get_running_loop()
        slot = max(self._next_slot.get(channel, 0.0), loop.time())
        if slot > loop.time():
            await asyncio.sleep(slot - loop.time())
        self._next_slot[channel] = slot + self._intervals_s.get(channel, 0.0)

    async def on_receipt(self, receipt: DeliveryReceipt) -> None:
        """A channel's delivery receipt: the notice becomes delivered or failed."""
        notice_id = await asyncio.to_thread(self._outbox.record_receipt, receipt, at=self._clock())
        if notice_id is not None:
            return
        if receipt.reference in self._stored_references:  # stored while we looked
            await asyncio.to_thread(self._outbox.record_receipt, receipt, at=self._clock())
            return
        _bounded_put(self._early_receipts, receipt.reference, receipt)

    async def _send_one(self, notice: Notice) -> None:
        channel = self._channels.get(notice.channel)
        if channel is None:
            await asyncio.to_thread(
                self._outbox.mark_failed, notice.id, error=f"no {notice.channel} channel"
            )
            return
        try:
            references = await channel.send(notice)
        except Exception as error:
            reason = str(getattr(error, "reason", error)) or type(error).__name__
            permanent = bool(getattr(error, "permanent", False))
            if permanent or notice.attempts >= self._retry.max_attempts:
                log.warning("notice %d failed for good: %s", notice.id, reason)
                await asyncio.to_thread(self._outbox.mark_failed, notice.id, error=reason)
            else:
                next_at = self._clock() + self._retry.delay_after(notice.attempts)
                await asyncio.to_thread(
                    self._outbox.mark_retry, notice.id, error=reason, next_attempt_at=next_at
                )
            return
        await asyncio.to_thread(
            self._outbox.mark_sent, notice.id, at=self._clock(), references=tuple(references)
        )
        for reference in references:
            _bounded_put(self._stored_references, reference, None)
        early = [self._early_receipts.pop(r) for r in references if r in self._early_receipts]
        for receipt in early:
            await asyncio.to_thread(self._outbox.record_receipt, receipt, at=self._clock())


_REMEMBERED = 10_000


def _bounded_put(table: dict[str, _T], key: str, value: _T) -> None:
    """Insert, dropping the oldest entries past `_REMEMBERED` (a receipt for a message sent
    long ago by another process is simply not matched: the notice stays "sent")."""
    table[key] = value
    while len(table) > _REMEMBERED:
        del table[next(iter(table))]
