"""Record call events from the SIP edge into exactly one call detail record per call.

Events arrive in batches, possibly replayed (the edge's spool after a brain outage) or
reordered. The store serialises writers per call id; the domain's `apply_event` makes every
event idempotent. New records are filed against the subscriber and subscription that were
current when the call started, and the destination is classified once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from tawasol.domain.calls import CallAttempt, CallEvent, CallRecord, apply_event, new_record
from tawasol.domain.direct_numbers import InboundTrunk, rate_inbound
from tawasol.domain.errors import InvalidNumber
from tawasol.domain.numbering import classify, region_of
from tawasol.domain.rating import rate_call
from tawasol.domain.subscribers import Subscription
from tawasol.services.ports import CallStore, CatalogSnapshot

log = logging.getLogger(__name__)


class CallTracker(Protocol):
    """What the recorder needs of the decider (`CallAuthorizer`): the catalog (to file and
    rate calls), the order calls took their channels, and to be told of records written."""

    @property
    def default_region(self) -> str: ...

    def snapshot(self) -> CatalogSnapshot: ...

    def current_subscription(self, subscriber_id: int, now: datetime) -> Subscription | None: ...

    def routing_order(self, call_id: str) -> int: ...

    def observe(
        self, before: dict[str, CallRecord | None], after: Iterable[CallRecord]
    ) -> None: ...


class CallListener(Protocol):
    """Told of every attempt that just got its final answer, and of every call that ended."""

    def on_attempt(self, *, record: CallRecord, attempt: CallAttempt) -> object: ...

    def on_call_finished(self, record: CallRecord) -> object: ...


class CallEventRecorder:
    """Writes call events to the store, rates finished calls, and tells the authorizer (usage,
    channels) and the carrier monitor (congestion, quality) what happened."""

    def __init__(
        self,
        *,
        store: CallStore,
        authorizer: CallTracker,
        listeners: Sequence[CallListener] = (),
        inbound_trunks: Callable[[], Mapping[str, InboundTrunk]] | None = None,
    ) -> None:
        """`inbound_trunks`: the inbound trunks by code, to cost calls to direct numbers."""
        self._store = store
        self._inbound_trunks = inbound_trunks
        self._authorizer = authorizer
        self._listeners = list(listeners)

    def add_listener(self, listener: CallListener) -> None:
        self._listeners.append(listener)

    def record(self, events: Sequence[CallEvent]) -> list[CallRecord]:
        if not events:
            return []
        before: dict[str, CallRecord | None] = {}
        carriers = {carrier.code: carrier for carrier in self._authorizer.snapshot().carriers}
        trunks: Mapping[str, InboundTrunk] | None = None

        def rate_access(record: CallRecord) -> CallRecord:
            nonlocal trunks
            if record.inbound_trunk is None or self._inbound_trunks is None:
                return record
            if record.duration_ms is None or record.inbound_cost is not None:
                return record
            if trunks is None:
                trunks = self._inbound_trunks()
            return rate_inbound(record, trunks)

        def fold(existing: CallRecord | None, call_events: Sequence[CallEvent]) -> CallRecord:
            before[call_events[0].call_id] = existing
            record = existing or self._file(new_record(min(call_events, key=lambda e: e.at)))
            for event in call_events:
                record = apply_event(record, event)
            if record.subscriber_id is None:
                record = self._file(record)
            return rate_access(rate_call(record, carriers))

        records = self._store.apply_call_events(events, fold)
        # Attempts in the order their calls were routed: when a burst of refusals comes back
        # in one batch, the earliest routed call is the one that tells what the carrier carries.
        new_attempts: list[tuple[CallRecord, CallAttempt]] = []
        for record in records:
            previous = before.get(record.call_id)
            known = (
                {a.attempt for a in previous.attempts if a.sip_code is not None}
                if previous
                else set()
            )
            new_attempts.extend(
                (record, attempt)
                for attempt in record.attempts
                if attempt.sip_code is not None and attempt.attempt not in known
            )
        new_attempts.sort(key=lambda item: self._authorizer.routing_order(item[0].call_id))
        for record, attempt in new_attempts:
            for listener in self._listeners:
                listener.on_attempt(record=record, attempt=attempt)
        for record in records:
            previous = before.get(record.call_id)
            if record.finished and not (previous is not None and previous.finished):
                for listener in self._listeners:
                    listener.on_call_finished(record)
        self._authorizer.observe(before, records)
        return records

    def _file(self, record: CallRecord) -> CallRecord:
        """Attach subscriber, subscription and classified destination to a new record."""
        snapshot = self._authorizer.snapshot()
        subscriber = snapshot.subscribers.get(record.sip_username)
        if subscriber is None:
            return record
        subscription = self._authorizer.current_subscription(subscriber.id, record.started_at)
        updated = replace(
            record,
            subscriber_id=subscriber.id,
            subscription_id=subscription.id if subscription else None,
        )
        if record.dialled and not record.destination:
            try:
                destination = classify(
                    record.dialled,
                    calling_region=region_of(subscriber.phone) or self._authorizer.default_region,
                )
            except InvalidNumber:
                log.warning("call %s: dialled %r is not a number", record.call_id, record.dialled)
            else:
                updated = replace(
                    updated,
                    destination=destination.e164,
                    country=destination.country,
                    kind=destination.kind.value,
                )
        return updated
