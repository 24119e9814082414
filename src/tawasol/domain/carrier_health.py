"""Carrier health: is a carrier reachable, and how many calls does it really carry now?

Two things go wrong with carriers, and both must be seen in seconds, not from complaints:

- **It dies.** Its gateways stop answering. The platform sends SIP OPTIONS to every gateway
  every few seconds (probing); after `down_after` failures in a row the carrier is marked down
  and skipped, after `up_after` successes in a row it is back in rotation.
- **It shrinks.** After a cut, a carrier may restore only part of its capacity and answer the
  rest with congestion (503, or `Reason: Q.850;cause=34` "no circuit/channel available" on any
  code: what is congestion is `sip_semantics`' table). One such answer proves little (a
  momentary glitch, a carrier with no call at all that is simply out of service); when
  `CapacityPolicy.evidence` of them come within `evidence_window` while we use fewer channels
  than the contract says, its *effective capacity* is lowered to the fewest calls it carried
  when it refused one. Later the platform probes upward again, a step at a time, until the
  contract is reached; every new congestion restarts that wait. An operator who sets a capacity
  (or "as contracted") replaces what was learned at once.
- **It asks for a pause.** A 503 with `Retry-After` (RFC 3261 §21.5.4): the edge leaves the
  carrier alone that long (capped by a setting); the brain shows it and records it.

Every change is a `CarrierEvent` with its time and reason: incidents and compensation are
built on them.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tawasol.domain.errors import InvalidInput
from tawasol.domain.sip_semantics import meaning_of


class CarrierEventKind(enum.StrEnum):
    DOWN = "down"
    UP = "up"
    CAPACITY_LEARNED = "capacity_learned"
    CAPACITY_RAISED = "capacity_raised"
    CAPACITY_RESTORED = "capacity_restored"
    CAPACITY_SET = "capacity_set"
    HELD_OFF = "held_off"  # a 503 with Retry-After: the edge leaves the carrier alone a while


@dataclass(frozen=True)
class CarrierEvent:
    """Something that changed about a carrier, when, and why."""

    carrier: str
    at: datetime
    kind: CarrierEventKind
    detail: str
    effective_channels: int | None = None


@dataclass(frozen=True)
class ProbeThresholds:
    """Failures in a row before a carrier is marked down; successes in a row to be up again."""

    down_after: int = 3
    up_after: int = 2


@dataclass(frozen=True)
class ProbeState:
    """The run of probe results for one carrier."""

    up: bool = True
    failures_in_a_row: int = 0
    successes_in_a_row: int = 0


def observe_probe(
    state: ProbeState,
    *,
    carrier: str,
    answered: bool,
    now: datetime,
    thresholds: ProbeThresholds,
    detail: str = "",
) -> tuple[ProbeState, CarrierEvent | None]:
    """Fold one probe result in; return the new state and the event if it changed up/down."""
    if answered:
        state = replace(state, failures_in_a_row=0, successes_in_a_row=state.successes_in_a_row + 1)
        if not state.up and state.successes_in_a_row >= thresholds.up_after:
            return replace(state, up=True), CarrierEvent(
                carrier,
                now,
                CarrierEventKind.UP,
                f"answered {state.successes_in_a_row} probes in a row",
            )
        return state, None
    state = replace(state, successes_in_a_row=0, failures_in_a_row=state.failures_in_a_row + 1)
    if state.up and state.failures_in_a_row >= thresholds.down_after:
        reason = f"{state.failures_in_a_row} probes in a row unanswered"
        return replace(state, up=False), CarrierEvent(
            carrier, now, CarrierEventKind.DOWN, f"{reason}{': ' + detail if detail else ''}"
        )
    return state, None


def is_congestion(sip_code: int | None, q850_cause: int | None) -> bool:
    """The carrier says it has no channel for this call (`sip_semantics`' congestion column)."""
    if sip_code is None or not 300 <= sip_code <= 699:
        return False
    return meaning_of(sip_code, q850_cause).congestion


@dataclass(frozen=True)
class CapacityState:
    """A carrier's learned capacity (None while it carries what the contract says), since
    when (the raise timer runs from `changed_at`), and the recent congestion answers not yet
    acted on: (when, other calls up on the carrier then)."""

    effective_channels: int | None = None
    changed_at: datetime | None = None
    evidence: tuple[tuple[datetime, int], ...] = ()


@dataclass(frozen=True)
class CapacityPolicy:
    """How much congestion lowers a capacity (`evidence` answers within `evidence_window`),
    and how to probe upward again: every `raise_after` without congestion, `step` more
    channels."""

    raise_after: timedelta = timedelta(minutes=2)
    step: int = 1
    evidence: int = 3
    evidence_window: timedelta = timedelta(seconds=30)


def learn_from_congestion(
    state: CapacityState,
    *,
    carrier: str,
    other_calls: int,
    contracted: int,
    now: datetime,
    policy: CapacityPolicy | None = None,
) -> tuple[CapacityState, CarrierEvent | None]:
    """A call was refused for congestion while `other_calls` other calls were on the carrier.

    With the contract full it is an honest refusal: nothing to learn. Below it, the answer is
    kept as evidence; once `policy.evidence` answers came within `policy.evidence_window`, the
    carrier is taken to carry only what it carried at the emptiest of those refusals (a refusal
    with N other calls up proves it takes no more than N now; at least 1, so it is still tried
    and can show it recovered). Congestion at or above a learned capacity does not
    lower it further but restarts the wait before the next raise.
    """
    policy = policy or CapacityPolicy()
    if other_calls >= contracted:
        return state, None  # the contract is full: an honest 503, nothing to learn
    recent = tuple((at, calls) for at, calls in state.evidence if now - at < policy.evidence_window)
    evidence = (*recent, (now, other_calls))[-policy.evidence :]
    if state.effective_channels is not None:
        # Congestion again: the learned capacity is no time to raise yet.
        state = replace(state, changed_at=now)
    if len(evidence) < policy.evidence:
        return replace(state, evidence=evidence), None
    carried = max(1, min(calls for _, calls in evidence))
    if state.effective_channels is not None and carried >= state.effective_channels:
        return replace(state, evidence=evidence), None
    return CapacityState(carried, now), CarrierEvent(
        carrier,
        now,
        CarrierEventKind.CAPACITY_LEARNED,
        f"{len(evidence)} congestion answers within {_seconds(policy.evidence_window)}, "
        f"one with only {min(calls for _, calls in evidence)} other call(s) up of "
        f"{contracted} contracted: effective capacity lowered to {carried}",
        carried,
    )


def probe_upward(
    state: CapacityState,
    *,
    carrier: str,
    contracted: int,
    now: datetime,
    policy: CapacityPolicy,
) -> tuple[CapacityState, CarrierEvent | None]:
    """Time passed without new congestion: allow a few more channels, up to the contract."""
    if state.effective_channels is None or state.changed_at is None:
        return state, None
    if now - state.changed_at < policy.raise_after:
        return state, None
    raised = state.effective_channels + policy.step
    wait = _seconds(policy.raise_after)
    if raised >= contracted:
        return CapacityState(None, now), CarrierEvent(
            carrier,
            now,
            CarrierEventKind.CAPACITY_RESTORED,
            f"no congestion for {wait}: back to the {contracted} contracted",
            None,
        )
    return CapacityState(raised, now), CarrierEvent(
        carrier,
        now,
        CarrierEventKind.CAPACITY_RAISED,
        f"no congestion for {wait}: trying {raised} channels",
        raised,
    )


def restored_states(
    events_newest_first: Sequence[CarrierEvent],
) -> tuple[ProbeState, CapacityState]:
    """A carrier's last known probe and capacity state, from its recorded events (newest
    first), for a brain that starts: a carrier down when the last brain stopped stays down
    until its probes answer again; a learned capacity stays learned."""
    probe: ProbeState | None = None
    capacity: CapacityState | None = None
    for event in events_newest_first:
        if probe is None and event.kind in (CarrierEventKind.UP, CarrierEventKind.DOWN):
            probe = ProbeState(up=event.kind is CarrierEventKind.UP)
        if capacity is None and event.kind in _CAPACITY_KINDS:
            learned = event.kind in (
                CarrierEventKind.CAPACITY_LEARNED,
                CarrierEventKind.CAPACITY_RAISED,
            )
            capacity = CapacityState(event.effective_channels if learned else None, event.at)
        if probe is not None and capacity is not None:
            break
    return probe or ProbeState(), capacity or CapacityState()


_CAPACITY_KINDS = frozenset(
    {
        CarrierEventKind.CAPACITY_LEARNED,
        CarrierEventKind.CAPACITY_RAISED,
        CarrierEventKind.CAPACITY_RESTORED,
        CarrierEventKind.CAPACITY_SET,
    }
)


def _seconds(duration: timedelta) -> str:
    return f"{int(duration.total_seconds())} s"


def check_operator_cap(code: str, effective_channels: int | None) -> None:
    """An operator's cap on a carrier's simultaneous calls is a whole number, 0 or more (0
    keeps the carrier configured but sends it no call), or None (as contracted).
    Raises InvalidInput otherwise."""
    if effective_channels is not None and (
        isinstance(effective_channels, bool)
        or not isinstance(effective_channels, int)
        or effective_channels < 0
    ):
        raise InvalidInput(
            "a carrier's effective channels are a whole number, 0 or more",
            code=code,
            effective_channels=str(effective_channels),
        )
