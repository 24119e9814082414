"""The live counters of one brain process, in its memory (`LiveCounters` port).

The default (the embedded mode): one brain decides every call. Several brains sharing counters
use `adapters.redis.RedisLiveCounters` (the scaled mode), which passes the same contract tests.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from tawasol.domain.carriers import CarrierState
from tawasol.domain.decision import Usage
from tawasol.services.ports.live_counters import OpenCall


class InProcessLiveCounters:
    """Thread-safe counters in process memory; nothing survives a restart (the authorizer
    restores open calls from the store when it starts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, OpenCall] = {}
        self._active: Counter[int] = Counter()
        self._reserved: Counter[int] = Counter()
        self._carrier_calls: dict[str, str] = {}
        self._carrier_in_use: Counter[str] = Counter()
        self._held_since: dict[str, int] = {}
        self._hold_sequence = 0
        self._usage: dict[int, Usage] = {}
        # Versions: one rising stamp for every change; a subscription's version is the stamp
        # of its last change, or of the last reset when that came later.
        self._stamp = 0
        self._changed: dict[int, int] = {}
        self._reset_stamp = 0
        self._conditions: dict[str, CarrierState] = {}

    # -- calls in progress ------------------------------------------------------------------
    def open(self, call_id: str, call: OpenCall, *, if_version: int | None = None) -> bool:
        with self._lock:
            if call_id in self._open:
                return False
            if if_version is not None and self._version(call.subscription_id) != if_version:
                return False
            self._open[call_id] = call
            self._active[call.subscription_id] += 1
            self._reserved[call.subscription_id] += call.reserved_seconds
            self._touch(call.subscription_id)
            return True

    def get(self, call_id: str) -> OpenCall | None:
        with self._lock:
            return self._open.get(call_id)

    def open_calls(self) -> Mapping[str, OpenCall]:
        with self._lock:
            return dict(self._open)

    def note_answer(self, call_id: str, *, expires_at: datetime) -> None:
        with self._lock:
            call = self._open.get(call_id)
            if call is not None and not call.answered:
                self._open[call_id] = replace(call, answered=True, expires_at=expires_at)

    def release(self, call_id: str) -> None:
        with self._lock:
            self._release(call_id)

    def expire(self, now: datetime) -> list[str]:
        with self._lock:
            expired = [key for key, value in self._open.items() if value.expires_at <= now]
            for call_id in expired:
                self._release(call_id)
            return expired

    def calls_in_progress(self, subscription_id: int | None = None) -> int:
        with self._lock:
            if subscription_id is None:
                return len(self._open)
            return self._active.get(subscription_id, 0)

    def reserved_seconds(self, subscription_id: int) -> int:
        with self._lock:
            return self._reserved.get(subscription_id, 0)

    # -- carriers' channels -----------------------------------------------------------------
    def hold_channel(self, call_id: str, carrier: str | None) -> None:
        with self._lock:
            self._hold_channel(call_id, carrier)

    def held_carrier(self, call_id: str) -> str | None:
        with self._lock:
            return self._carrier_calls.get(call_id)

    def channels_in_use(self) -> Mapping[str, int]:
        with self._lock:
            return {code: count for code, count in self._carrier_in_use.items() if count}

    def routing_order(self, call_id: str) -> int:
        with self._lock:
            return self._held_since.get(call_id, 0)

    def channels_held_before(self, carrier: str, call_id: str) -> int:
        with self._lock:
            own = self._held_since.get(call_id)
            if own is None or self._carrier_calls.get(call_id) != carrier:
                return self._carrier_in_use.get(carrier, 0)
            return sum(
                1
                for other, held in self._carrier_calls.items()
                if held == carrier and self._held_since.get(other, 0) < own
            )

    # -- the period's use -------------------------------------------------------------------
    def reset_usage(self, usage: Mapping[int, Usage]) -> None:
        with self._lock:
            self._usage = {
                key: replace(used, active_calls=0, reserved_seconds=0)
                for key, used in usage.items()
            }
            self._stamp += 1
            self._reset_stamp = self._stamp

    def usage(self, subscription_id: int) -> Usage | None:
        with self._lock:
            return self._usage.get(subscription_id)

    def current_usage(self, subscription_id: int) -> Usage | None:
        return self.decision_usage(subscription_id)[0]

    def decision_usage(self, subscription_id: int) -> tuple[Usage | None, int]:
        with self._lock:
            active = self._active.get(subscription_id, 0)
            reserved = self._reserved.get(subscription_id, 0)
            used = self._usage.get(subscription_id)
            version = self._version(subscription_id)
        return merged_usage(used, active, reserved), version

    def add_usage(
        self, subscription_id: int, *, answered_seconds: int = 0, destination: str | None = None
    ) -> None:
        with self._lock:
            used = self._usage.get(subscription_id, Usage())
            if answered_seconds:
                used = replace(used, answered_seconds=used.answered_seconds + answered_seconds)
            if destination and destination not in used.distinct_numbers:
                used = replace(used, distinct_numbers=used.distinct_numbers | {destination})
            self._usage[subscription_id] = used
            self._touch(subscription_id)

    # -- carriers' states -------------------------------------------------------------------
    def set_carrier_condition(self, carrier: str, state: CarrierState) -> None:
        with self._lock:
            self._conditions[carrier] = replace(state, channels_in_use=0)

    def carrier_conditions(self) -> Mapping[str, CarrierState]:
        with self._lock:
            return dict(self._conditions)

    def close(self) -> None:
        """Nothing to let go of (the counters die with the process)."""

    # -- inside, the lock held ----------------------------------------------------------------
    def _version(self, subscription_id: int) -> int:
        return max(self._changed.get(subscription_id, 0), self._reset_stamp)

    def _touch(self, subscription_id: int) -> None:
        self._stamp += 1
        self._changed[subscription_id] = self._stamp

    def _release(self, call_id: str) -> None:
        call = self._open.pop(call_id, None)
        if call is not None:
            subscription = call.subscription_id
            self._active[subscription] = max(0, self._active[subscription] - 1)
            self._reserved[subscription] = max(
                0, self._reserved[subscription] - call.reserved_seconds
            )
            self._touch(subscription)
        self._hold_channel(call_id, None)

    def _hold_channel(self, call_id: str, carrier: str | None) -> None:
        previous = self._carrier_calls.get(call_id)
        if previous == carrier:
            return  # re-confirmed (e.g. answered where it was sent): keeps its place in line
        if previous is not None:
            del self._carrier_calls[call_id]
            self._held_since.pop(call_id, None)
            self._carrier_in_use[previous] = max(0, self._carrier_in_use[previous] - 1)
        if carrier:
            self._hold_sequence += 1
            self._carrier_calls[call_id] = carrier
            self._held_since[call_id] = self._hold_sequence
            self._carrier_in_use[carrier] += 1


def merged_usage(used: Usage | None, active: int, reserved: int) -> Usage | None:
    """The period's use with the calls in progress merged in (None: neither)."""
    if used is None:
        if not active and not reserved:
            return None
        return Usage(active_calls=active, reserved_seconds=reserved)
    if active == used.active_calls and reserved == used.reserved_seconds:
        return used
    return replace(used, active_calls=active, reserved_seconds=reserved)
