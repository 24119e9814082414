"""The live counters' port: what calls in progress hold, shared by every brain that decides.

Per subscription: calls in progress and seconds of the period reserved for them, answered
seconds and distinct numbers used in the current period. Per carrier: channels held by calls in
progress, in the order they were taken (RFC 3261 §16.6 serial forking: a call holds one channel
at a time, on the carrier it is being tried on). Every call counted as open has an expiry: when
its events never come, `expire` frees what it holds.

Per carrier, too: its state as the carrier monitor last set it (up, effective channels,
de-preferred), so that every brain routes on what the one monitor of the cluster learned.

Several brains decide at once, so a decision is optimistic: it reads a subscription's use with
its *version* (`decision_usage`), decides, and opens the call only if that version still holds
(`open(..., if_version=...)`); otherwise it decides again on the new figures. That is what
makes "one allowed call gets one call" exact whichever brain decides.

`services.live_counters.InProcessLiveCounters` keeps them in this process (one brain);
`adapters.redis.RedisLiveCounters` lets several brains share them. Both pass
`tests/contract/test_live_counters_contract.py`. Times are timezone-aware UTC datetimes;
durations are whole seconds. An implementation that cannot reach its storage raises
`domain.errors.Unavailable` (the edge then refuses the call with 503: fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tawasol.domain.carriers import CarrierState
from tawasol.domain.decision import Usage


@dataclass(frozen=True)
class OpenCall:
    """A call counted as in progress: its slot, its share of the minutes, and until when."""

    subscription_id: int
    destination: str
    expires_at: datetime
    carriers: tuple[str, ...] = ()  # the decision's carriers, in the order they are tried
    max_duration: timedelta = timedelta(0)  # what the decision granted once answered
    reserved_seconds: int = 0  # of the period's minutes, held until the call ends
    answered: bool = False
    opened_at: datetime | None = None  # decided (here) or started (a call learnt of later)


class LiveCounters(Protocol):
    """Counters of calls in progress; every method is atomic on its own."""

    # -- calls in progress ------------------------------------------------------------------
    def open(self, call_id: str, call: OpenCall, *, if_version: int | None = None) -> bool:
        """Count a call as in progress (its slot and reserved seconds); False, and nothing
        changes, when it is counted already (a retransmitted INVITE is the same call) or, with
        `if_version`, when the subscription's version is no longer that one (another call
        was opened, ended or added to the period since `decision_usage` read it)."""
        ...

    def get(self, call_id: str) -> OpenCall | None: ...

    def open_calls(self) -> Mapping[str, OpenCall]:
        """Every call counted as in progress (a copy)."""
        ...

    def note_answer(self, call_id: str, *, expires_at: datetime) -> None:
        """The call was answered: it is held until `expires_at` (once: a second answer
        changes nothing)."""

    def release(self, call_id: str) -> None:
        """The call ended: free its slot, reserved seconds and channel (unknown: nothing)."""

    def expire(self, now: datetime) -> list[str]:
        """Release every call whose expiry is at or before `now`; their call ids."""
        ...

    def calls_in_progress(self, subscription_id: int | None = None) -> int:
        """Of one subscription, or of all."""
        ...

    def reserved_seconds(self, subscription_id: int) -> int: ...

    # -- carriers' channels -----------------------------------------------------------------
    def hold_channel(self, call_id: str, carrier: str | None) -> None:
        """The call now holds a channel on `carrier` (None: on none). Holding the same carrier
        again keeps its place in line."""

    def held_carrier(self, call_id: str) -> str | None: ...

    def channels_in_use(self) -> Mapping[str, int]:
        """Channels held per carrier (carriers with none may be absent)."""
        ...

    def routing_order(self, call_id: str) -> int:
        """When the call took its current channel, as a rising sequence number (0: none)."""
        ...

    def channels_held_before(self, carrier: str, call_id: str) -> int:
        """Channels on `carrier` taken before this call's (all of them if it holds none
        there)."""
        ...

    # -- the period's use -------------------------------------------------------------------
    def reset_usage(self, usage: Mapping[int, Usage]) -> None:
        """Replace the period figures (answered seconds, distinct numbers) by the store's."""

    def usage(self, subscription_id: int) -> Usage | None:
        """Answered seconds and distinct numbers of the current period (no calls in
        progress: see `calls_in_progress`, `reserved_seconds`)."""
        ...

    def current_usage(self, subscription_id: int) -> Usage | None:
        """`usage` with the calls in progress and their reserved seconds merged in, read at
        once (what a decision reads); None when the subscription has neither."""
        ...

    def decision_usage(self, subscription_id: int) -> tuple[Usage | None, int]:
        """`current_usage` and the subscription's version, read at once: the version changes
        whenever the subscription's calls in progress or period use change (reset included)."""
        ...

    def add_usage(
        self, subscription_id: int, *, answered_seconds: int = 0, destination: str | None = None
    ) -> None:
        """Add a finished call's answered seconds and its answered number to the period."""

    # -- carriers' states -------------------------------------------------------------------
    def set_carrier_condition(self, carrier: str, state: CarrierState) -> None:
        """What the carrier monitor learned of `carrier` (up, effective channels,
        de-preferred); its `channels_in_use` is not kept (see `channels_in_use`)."""

    def carrier_conditions(self) -> Mapping[str, CarrierState]:
        """Every carrier's state as last set (channels_in_use 0: read `channels_in_use`)."""
        ...

    def close(self) -> None:
        """Let go of connections (the brain stops); the counters themselves stay."""
