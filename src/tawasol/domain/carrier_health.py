"""Carrier health: is a carrier reachable, and how many calls does it really carry now?

Two things go wrong with carriers, and both must be seen in seconds, not from complaints:

- **It dies.** Its gateways stop answering. The platform sends SIP OPTIONS to every gateway
  every few seconds (probing); after `down_after` failures in a row the carrier is marked down
  and skipped, after `up_after` successes in a row it is back in rotation.
- **It shrinks.** After a cut, a carrier may restore only part of its capacity and answer the
  rest with 503 (or `Reason: Q.850;cause=34`, "no circuit/channel available"). When that happens
  while we use fewer channels than the contract says, its *effective capacity* is lowered to
  what it carried at that moment, an alert is recorded, and later the platform probes upward
  again, a step at a time, until the contract is reached.

Every change is a `CarrierEvent` with its time: incidents and compensation are built on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

# RFC 3398 §7.2.4.1 / ITU-T Q.850: cause 34 "no circuit/channel available", 42 "switching
# equipment congestion", 44 "requested circuit/channel not available", 47 "resource unavailable".
CONGESTION_CAUSES = frozenset({34, 42, 44, 47})


class CarrierEventKind(enum.StrEnum):
    DOWN = "down"
    UP = "up"
    CAPACITY_LEARNED = "capacity_learned"
    CAPACITY_RAISED = "capacity_raised"
    CAPACITY_RESTORED = "capacity_restored"
    CAPACITY_SET = "capacity_set"


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
    """The carrier says it has no channel for this call (as opposed to a callee's answer)."""
    if q850_cause is not None:
        return q850_cause in CONGESTION_CAUSES
    return sip_code == 503


@dataclass(frozen=True)
class CapacityState:
    """A carrier's learned capacity: None while it carries what the contract says."""

    effective_channels: int | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True)
class CapacityPolicy:
    """How to probe upward again: every `raise_after`, allow `step` more channels."""

    raise_after: timedelta = timedelta(minutes=2)
    step: int = 1


def learn_from_congestion(
    state: CapacityState,
    *,
    carrier: str,
    other_calls: int,
    contracted: int,
    now: datetime,
) -> tuple[CapacityState, CarrierEvent | None]:
    """A call was refused for congestion while `other_calls` other calls were on the carrier.

    Below the contract, that means the carrier carries only `other_calls` now (at least 1, so it
    is still tried and can show it recovered)."""
    if other_calls >= contracted:
        return state, None  # the contract is full: an honest 503, nothing to learn
    carried = max(1, other_calls)
    if state.effective_channels is not None and carried >= state.effective_channels:
        return state, None
    return CapacityState(carried, now), CarrierEvent(
        carrier,
        now,
        CarrierEventKind.CAPACITY_LEARNED,
        f"congestion with {other_calls} call(s) up of {contracted} contracted: "
        f"effective capacity lowered to {carried}",
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
    if raised >= contracted:
        return CapacityState(None, now), CarrierEvent(
            carrier,
            now,
            CarrierEventKind.CAPACITY_RESTORED,
            f"no congestion for {policy.raise_after}: back to the {contracted} contracted",
            None,
        )
    return CapacityState(raised, now), CarrierEvent(
        carrier,
        now,
        CarrierEventKind.CAPACITY_RAISED,
        f"no congestion for {policy.raise_after}: trying {raised} channels",
        raised,
    )
