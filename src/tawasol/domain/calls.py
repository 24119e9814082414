"""Calls as they happen, and the call detail record (CDR) that sums one up.

The SIP edge reports *events* for each call: every attempt on a carrier (with the SIP code it
ended with and the post-dial delay, PDD: the time to the first ringing), the answer, a failure,
the end. Events can arrive twice (the edge replays its spool after an outage) or out of order;
`apply_event` folds them into exactly one `CallRecord` per call id, so that a replayed or
reordered event never creates a second record nor changes a duration already recorded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from tawasol.domain.money import Money


class CallEventType(enum.StrEnum):
    ATTEMPT = "attempt"
    ANSWER = "answer"
    FAILURE = "failure"
    END = "end"


class CallStatus(enum.StrEnum):
    """Where a call stands: ringing somewhere, talking, finished, never connected, or refused
    by the brain's decision (the reason code is in `CallRecord.refusal_reason`)."""

    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"
    COMPLETED = "completed"
    FAILED = "failed"
    REFUSED = "refused"


@dataclass(frozen=True)
class CallEvent:
    """One thing the SIP edge saw happen to a call.

    - attempt: `attempt` (1, 2, ...), `carrier`, `gateway`, `sip_code` it ended with (200 if it
      was answered), `pdd_ms` (None if it never rang).
    - answer: `carrier` that answered.
    - failure: `sip_code` sent back to the caller.
    - end: `duration_ms` as the edge measured it (None: computed from answer to end).
    `sip_username` and `dialled` let the brain file a record for a call it has not seen yet
    (it was restarted between the decision and the event).
    """

    call_id: str
    type: CallEventType
    at: datetime
    sip_username: str = ""
    dialled: str = ""
    attempt: int | None = None
    carrier: str | None = None
    gateway: str | None = None
    sip_code: int | None = None
    pdd_ms: int | None = None
    duration_ms: int | None = None
    hangup_cause: str | None = None
    q850_cause: int | None = None
    billing: str | None = None
    retry_after_s: int | None = None
    # How the call came in (`AccessPath`: "softphone", "direct_number"), and for a call to a
    # direct number the inbound trunk that brought it and the caller's verified number.
    access: str | None = None
    inbound_trunk: str | None = None
    caller_id: str | None = None


@dataclass(frozen=True)
class CallAttempt:
    """One try of a call on one carrier's gateway. `retry_after_s`: the pause the carrier
    asked for with its 503 (news for the carrier monitor, not kept in the record's store)."""

    attempt: int
    carrier: str
    gateway: str
    sip_code: int | None
    pdd_ms: int | None
    at: datetime
    q850_cause: int | None = None
    billing: str | None = None
    retry_after_s: int | None = None


@dataclass(frozen=True)
class CallRecord:
    """The call detail record: one per call id, the basis of quality figures and billing."""

    call_id: str
    started_at: datetime
    sip_username: str = ""
    dialled: str = ""
    subscriber_id: int | None = None
    subscription_id: int | None = None
    destination: str = ""
    country: str = ""
    kind: str = ""
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    carrier: str | None = None
    final_sip_code: int | None = None
    hangup_cause: str | None = None
    attempts: tuple[CallAttempt, ...] = ()
    billing: str | None = None
    rate_per_minute: Money | None = None
    increment: str | None = None
    cost: Money | None = None
    # The decision's reason code (`no_route`, `concurrent_limit`, ...) when the brain refused
    # the call: it never reached a carrier, `final_sip_code` is what the caller was told.
    refusal_reason: str | None = None
    # How the call came in: "softphone" (SIP account) or "direct_number" (a registered phone
    # calling a pool number through `inbound_trunk`, from `caller_id`). `inbound_cost` is what
    # that trunk charges for bringing the call (its rate deck), apart from `cost` (the carrier).
    access: str = "softphone"
    inbound_trunk: str | None = None
    caller_id: str | None = None
    inbound_cost: Money | None = None

    @property
    def status(self) -> CallStatus:
        if self.refusal_reason is not None:
            return CallStatus.REFUSED
        if self.answered_at is not None:
            return CallStatus.COMPLETED if self.ended_at is not None else CallStatus.ANSWERED
        if self.final_sip_code is not None or self.ended_at is not None:
            return CallStatus.FAILED
        return CallStatus.IN_PROGRESS

    @property
    def finished(self) -> bool:
        return self.status in (CallStatus.COMPLETED, CallStatus.FAILED, CallStatus.REFUSED)

    @property
    def pdd_ms(self) -> int | None:
        """Post-dial delay of the attempt that rang first (None: nothing rang)."""
        delays = [attempt.pdd_ms for attempt in self.attempts if attempt.pdd_ms is not None]
        return delays[0] if delays else None


def new_record(event: CallEvent) -> CallRecord:
    return CallRecord(
        call_id=event.call_id,
        started_at=event.at,
        sip_username=event.sip_username,
        dialled=event.dialled,
        access=event.access or "softphone",
        inbound_trunk=event.inbound_trunk,
        caller_id=event.caller_id,
    )


def apply_event(record: CallRecord, event: CallEvent) -> CallRecord:
    """Fold one event into the record. Applying the same event again changes nothing."""
    if event.call_id != record.call_id:
        raise ValueError("event belongs to another call")
    updated = record
    if event.at < updated.started_at:
        updated = replace(updated, started_at=event.at)
    if not updated.sip_username and event.sip_username:
        updated = replace(updated, sip_username=event.sip_username)
    if not updated.dialled and event.dialled:
        updated = replace(updated, dialled=event.dialled)
    if event.access and updated.inbound_trunk is None and event.inbound_trunk:
        updated = replace(
            updated,
            access=event.access,
            inbound_trunk=event.inbound_trunk,
            caller_id=updated.caller_id or event.caller_id,
        )

    if updated.refusal_reason is not None and event.type in (
        CallEventType.ATTEMPT,
        CallEventType.ANSWER,
    ):
        # A call filed as refused that then reached a carrier (its INVITE asked again and
        # allowed) was not refused in the end: it continues as an ordinary call.
        updated = replace(updated, refusal_reason=None, final_sip_code=None, ended_at=None)
    if event.type is CallEventType.ATTEMPT:
        updated = _apply_attempt(updated, event)
    elif event.type is CallEventType.ANSWER:
        if updated.answered_at is None or event.at < updated.answered_at:
            updated = replace(
                updated,
                answered_at=event.at,
                carrier=updated.carrier or event.carrier,
                final_sip_code=200,
            )
    elif event.type is CallEventType.FAILURE:
        if updated.answered_at is None and updated.final_sip_code is None:
            updated = replace(updated, final_sip_code=event.sip_code)
        # The earliest of failure and end is when the call ended, whichever arrives first.
        if updated.answered_at is None and (
            updated.ended_at is None or event.at < updated.ended_at
        ):
            updated = replace(updated, ended_at=event.at)
    elif event.type is CallEventType.END and updated.duration_ms is None:
        updated = replace(
            updated,
            ended_at=min(updated.ended_at, event.at) if updated.ended_at else event.at,
            hangup_cause=updated.hangup_cause or event.hangup_cause,
        )
        if event.duration_ms is not None:
            updated = replace(updated, duration_ms=max(0, event.duration_ms))

    # A duration is recorded once both ends are known and then never changes.
    if (
        updated.duration_ms is None
        and updated.answered_at is not None
        and updated.ended_at is not None
    ):
        elapsed = updated.ended_at - updated.answered_at
        updated = replace(updated, duration_ms=max(0, int(elapsed.total_seconds() * 1000)))
    return updated


def _apply_attempt(record: CallRecord, event: CallEvent) -> CallRecord:
    number = event.attempt or len(record.attempts) + 1
    existing = {attempt.attempt: attempt for attempt in record.attempts}
    known = existing.get(number)
    if known is not None and known.sip_code is not None:
        return record
    existing[number] = CallAttempt(
        attempt=number,
        carrier=event.carrier or (known.carrier if known else ""),
        gateway=event.gateway or (known.gateway if known else ""),
        sip_code=event.sip_code,
        pdd_ms=event.pdd_ms if event.pdd_ms is not None else (known.pdd_ms if known else None),
        at=known.at if known else event.at,
        q850_cause=event.q850_cause
        if event.q850_cause is not None
        else (known.q850_cause if known else None),
        billing=event.billing or (known.billing if known else None),
        retry_after_s=event.retry_after_s,
    )
    attempts = tuple(existing[key] for key in sorted(existing))
    updated = replace(record, attempts=attempts)
    if event.sip_code == 200 and updated.carrier is None:
        updated = replace(updated, carrier=event.carrier)
    return updated
