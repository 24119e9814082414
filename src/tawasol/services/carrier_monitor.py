"""Watch carriers: probe results, congestion answers, capacity, and what routing should know.

The `CarrierMonitor` folds three kinds of news into each carrier's condition and pushes it to
the authorizer at once (no restart, no reload):

- probe results (SIP OPTIONS to every gateway, `adapters/probing.py`): up / down;
- attempts reported by the SIP edge: repeated congestion (what `sip_semantics` calls
  congestion) below the contracted channels lowers the carrier's effective capacity (partial
  restoration), and a timer probes it upward again; a 503 with Retry-After holds it off;
- an operator's capacity cap (CLI, admin API), kept in the store so every brain applies it;
  setting one (or "as contracted") also forgets what was learned.

Every change is stored as a `CarrierEvent` with its time, and logged. A brain that starts
takes each carrier's last known state from those events (`restore`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tawasol.domain.calls import CallAttempt, CallRecord
from tawasol.domain.carrier_health import (
    CapacityPolicy,
    CapacityState,
    CarrierEvent,
    CarrierEventKind,
    ProbeState,
    ProbeThresholds,
    is_congestion,
    learn_from_congestion,
    observe_probe,
    probe_upward,
    restored_states,
)
from tawasol.domain.carriers import Carrier, CarrierState
from tawasol.domain.quality import (
    AttemptOutcome,
    QualityFigures,
    QualityWindow,
    ner_table,
    should_de_prefer,
)
from tawasol.domain.routing import RoutingStrategy
from tawasol.domain.routing.quality_weighted import QualityWeighted
from tawasol.services.ports import CarrierRuntimeStore, CatalogSnapshot

log = logging.getLogger(__name__)

# The windows quality is shown over: 5 minutes (what routing reacts to) and 1 hour.
QUALITY_WINDOWS = (timedelta(minutes=5), timedelta(hours=1))
QUALITY_CHECK_EVERY = timedelta(seconds=5)


class CarrierStateSink(Protocol):
    """What the monitor needs of the decider (`CallAuthorizer`): the carriers it decides with,
    their live state, and where to put what the monitor learned."""

    def snapshot(self) -> CatalogSnapshot: ...

    def invalidate(self) -> None: ...

    def carrier_states(self) -> Mapping[str, CarrierState]: ...

    def set_carrier_state(self, carrier: str, condition: CarrierState) -> None: ...

    def channels_held_before(self, carrier: str, call_id: str) -> int: ...

    def set_strategy(self, strategy: RoutingStrategy) -> None: ...


@dataclass(frozen=True)
class CarrierOverview:
    """One carrier as an operator's status board shows it: its state (`CarrierState`) and
    where its capacity comes from (an operator's cap, what its answers taught)."""

    carrier: Carrier
    state: CarrierState
    operator_cap: int | None
    learned_capacity: int | None
    held_off_until: datetime | None = None


def contracted_channels(carrier: Carrier) -> int | None:
    """Channels the contract promises: the flat-rate channels, else the trunk's maximum."""
    if carrier.flat_rate is not None:
        return carrier.flat_rate.channels
    return carrier.max_channels


class CarrierMonitor:
    """Keeps each carrier's condition and tells the authorizer; thread-safe."""

    def __init__(
        self,
        *,
        store: CarrierRuntimeStore,
        authorizer: CarrierStateSink,
        clock: Callable[[], datetime],
        thresholds: ProbeThresholds | None = None,
        capacity_policy: CapacityPolicy | None = None,
        ner_threshold: float = 0.6,
        min_attempts: int = 20,
        quality_weighted_routing: bool = False,
        on_event: Callable[[CarrierEvent], object] | None = None,
    ) -> None:
        self._store = store
        self._on_event = on_event
        self._authorizer = authorizer
        self._clock = clock
        self._thresholds = thresholds or ProbeThresholds()
        self._policy = capacity_policy or CapacityPolicy()
        self._lock = threading.RLock()
        self._probes: dict[str, ProbeState] = {}
        self._capacity: dict[str, CapacityState] = {}
        self._caps: dict[str, int] = {}
        self._de_preferred: set[str] = set()
        self._held_off: dict[str, datetime] = {}
        self._caps_revision: int | None = None
        self._quality = QualityWindow(longest_window=QUALITY_WINDOWS[-1])
        self._quality_checked: datetime | None = None
        self._ner_threshold = ner_threshold
        self._min_attempts = min_attempts
        self._strategy: QualityWeighted | None = None
        if quality_weighted_routing:
            self._strategy = QualityWeighted({})
            authorizer.set_strategy(self._strategy)

    # -- news -----------------------------------------------------------------------------------
    def on_probe(self, carrier: str, *, answered: bool, detail: str = "") -> CarrierEvent | None:
        now = self._clock()
        with self._lock:
            state, event = observe_probe(
                self._probes.get(carrier, ProbeState()),
                carrier=carrier,
                answered=answered,
                now=now,
                thresholds=self._thresholds,
                detail=detail,
            )
            self._probes[carrier] = state
            if event is not None:
                self._publish(carrier)
        if event is not None:
            self._record(event)
        return event

    def on_attempt(self, *, record: CallRecord, attempt: CallAttempt) -> CarrierEvent | None:
        """An attempt got its final answer: count it for quality (answered ones when the call
        ends, with their duration), and learn capacity from congestion."""
        if not (attempt.sip_code is not None and 200 <= attempt.sip_code < 300):
            self._record_quality(record, attempt, duration_ms=None)
        if attempt.retry_after_s:
            self._note_hold_off(attempt)
        return self._learn(record.call_id, attempt.carrier, attempt.sip_code, attempt.q850_cause)

    def _note_hold_off(self, attempt: CallAttempt) -> None:
        """The edge held the carrier off after its 503 with Retry-After: show it, record it."""
        seconds = attempt.retry_after_s or 0
        until = self._clock() + timedelta(seconds=seconds)
        with self._lock:
            self._held_off[attempt.carrier] = until
        self._record(
            CarrierEvent(
                attempt.carrier,
                self._clock(),
                CarrierEventKind.HELD_OFF,
                f"answered {attempt.sip_code} with Retry-After: not sent calls for {seconds} s, "
                f"until {until.isoformat(timespec='seconds')} (RFC 3261 §21.5.4)",
            )
        )

    def restore(self) -> None:
        """Take each carrier's last known state (up/down, learned capacity) from its recorded
        events: a brain that starts neither believes a dead carrier up nor forgets what it
        learned. The probes then confirm or change it within their thresholds."""
        for carrier in self._authorizer.snapshot().carriers:
            events = self._store.list_carrier_events(carrier=carrier.code, limit=50)
            probe, capacity = restored_states(events)
            with self._lock:
                self._probes[carrier.code] = probe
                if capacity.effective_channels is not None:
                    self._capacity[carrier.code] = capacity
                self._publish(carrier.code)

    def on_call_finished(self, record: CallRecord) -> None:
        for attempt in record.attempts:
            if attempt.sip_code is not None and 200 <= attempt.sip_code < 300:
                duration = record.duration_ms if attempt.carrier == record.carrier else None
                self._record_quality(record, attempt, duration_ms=duration)

    def _record_quality(
        self, record: CallRecord, attempt: CallAttempt, *, duration_ms: int | None
    ) -> None:
        if len(record.country) != 2 or not attempt.carrier:
            return
        answered = attempt.sip_code is not None and 200 <= attempt.sip_code < 300
        try:
            outcome = AttemptOutcome(
                carrier=attempt.carrier,
                country=record.country,
                at=attempt.at,
                sip_code=attempt.sip_code,
                q850_cause=attempt.q850_cause,
                answered=answered,
                pdd_ms=attempt.pdd_ms,
                duration_ms=duration_ms if answered else None,
            )
        except ValueError as error:
            log.warning("call %s: attempt not counted for quality: %s", record.call_id, error)
            return
        with self._lock:
            self._quality.record(outcome)

    def _learn(
        self, call_id: str, carrier: str, sip_code: int | None, q850_cause: int | None
    ) -> CarrierEvent | None:
        if not is_congestion(sip_code, q850_cause):
            return None
        now = self._clock()
        definition = self._carrier(carrier)
        contracted = contracted_channels(definition) if definition else None
        if contracted is None:
            return None
        other_calls = self._authorizer.channels_held_before(carrier, call_id)
        with self._lock:
            state, event = learn_from_congestion(
                self._capacity.get(carrier, CapacityState()),
                carrier=carrier,
                other_calls=other_calls,
                contracted=contracted,
                now=now,
                policy=self._policy,
            )
            self._capacity[carrier] = state
            if event is not None:
                self._publish(carrier)
        if event is not None:
            log.warning("carrier %s: %s", carrier, event.detail)
            self._record(event)
        return event

    def set_de_preferred(self, carrier: str, de_preferred: bool) -> None:
        with self._lock:
            if (carrier in self._de_preferred) == de_preferred:
                return
            if de_preferred:
                self._de_preferred.add(carrier)
            else:
                self._de_preferred.discard(carrier)
            self._publish(carrier)

    def set_capacity(self, carrier: str, effective_channels: int | None) -> CarrierEvent:
        """An operator caps (or uncaps) a carrier's simultaneous calls, at run time. The
        operator's word replaces what congestion taught: the learned capacity is forgotten."""
        self._store.set_carrier_capacity(carrier, effective_channels)
        now = self._clock()
        what = "as contracted" if effective_channels is None else f"{effective_channels} channels"
        with self._lock:
            learned = self._capacity.pop(carrier, CapacityState()).effective_channels
        forgotten = f" (learned capacity {learned} forgotten)" if learned is not None else ""
        event = CarrierEvent(
            carrier,
            now,
            CarrierEventKind.CAPACITY_SET,
            f"set by an operator: {what}{forgotten}",
            effective_channels,
        )
        with self._lock:
            if effective_channels is None:
                self._caps.pop(carrier, None)
            else:
                self._caps[carrier] = effective_channels
            self._publish(carrier)
        self._record(event)
        self._authorizer.invalidate()
        return event

    def tick(self) -> list[CarrierEvent]:
        """Periodic work: probe learned capacities upward, pick up operators' caps."""
        now = self._clock()
        events: list[CarrierEvent] = []
        self._refresh_caps()
        with self._lock:
            for code, state in list(self._capacity.items()):
                definition = self._carrier(code)
                contracted = contracted_channels(definition) if definition else None
                if contracted is None:
                    continue
                new_state, event = probe_upward(
                    state, carrier=code, contracted=contracted, now=now, policy=self._policy
                )
                self._capacity[code] = new_state
                if event is not None:
                    events.append(event)
                    self._publish(code)
        self._apply_quality(now)
        for event in events:
            log.info("carrier %s: %s", event.carrier, event.detail)
            self._record(event)
        return events

    def _apply_quality(self, now: datetime) -> None:
        """De-prefer carriers whose NER over 5 minutes fell below the threshold; feed the
        quality-weighted strategy its NER table.

        Summarising a window walks every outcome in it (100,000 outcomes: ~50 ms of CPU, and
        the GIL, that decisions wait for), so it is done once per check for both uses, and at
        most every QUALITY_CHECK_EVERY: a 5-minute NER moves slowly; outages are the probes'
        business, seen within seconds.
        """
        if self._quality_checked is not None and now - self._quality_checked < (
            QUALITY_CHECK_EVERY
        ):
            return
        self._quality_checked = now
        window = QUALITY_WINDOWS[0]
        with self._lock:
            figures = self._quality.all_figures(window=window, now=now)
            verdicts = {
                item.carrier: should_de_prefer(
                    item, threshold_ner=self._ner_threshold, min_attempts=self._min_attempts
                )
                for item in figures
                if item.country is None
            }
            table = ner_table(figures, min_attempts=self._min_attempts)
        for carrier in set(verdicts) | set(self._de_preferred):
            self.set_de_preferred(carrier, verdicts.get(carrier, False))
        if self._strategy is not None:
            self._strategy.update(table)

    def quality(self, *, window: timedelta, now: datetime | None = None) -> list[QualityFigures]:
        """Quality per carrier (country None) and per carrier x country over the window."""
        with self._lock:
            return self._quality.all_figures(window=window, now=now or self._clock())

    def warm_up(self, records: Sequence[CallRecord]) -> None:
        """Feed the quality windows with calls from before this brain started."""
        for record in records:
            for attempt in record.attempts:
                answered = attempt.sip_code is not None and 200 <= attempt.sip_code < 300
                if attempt.sip_code is None and not record.finished:
                    continue
                duration = (
                    record.duration_ms if answered and attempt.carrier == record.carrier else None
                )
                if answered and not record.finished:
                    continue
                self._record_quality(record, attempt, duration_ms=duration)

    # -- reading ----------------------------------------------------------------------------------
    def statuses(self) -> list[CarrierOverview]:
        self._refresh_caps()
        live = self._authorizer.carrier_states()
        result = []
        with self._lock:
            for carrier in self._authorizer.snapshot().carriers:
                state = live.get(carrier.code)
                learned = self._capacity.get(carrier.code, CapacityState()).effective_channels
                result.append(
                    CarrierOverview(
                        carrier=carrier,
                        state=CarrierState(
                            up=self._probes.get(carrier.code, ProbeState()).up,
                            channels_in_use=state.channels_in_use if state else 0,
                            effective_channels=self._effective(carrier.code),
                            de_preferred=carrier.code in self._de_preferred,
                        ),
                        operator_cap=self._caps.get(carrier.code),
                        learned_capacity=learned,
                        held_off_until=self._held_off_until(carrier.code),
                    )
                )
        return result

    # -- inside -----------------------------------------------------------------------------------
    def _held_off_until(self, code: str) -> datetime | None:
        until = self._held_off.get(code)
        if until is not None and until <= self._clock():
            del self._held_off[code]
            return None
        return until

    def _effective(self, code: str) -> int | None:
        limits = [
            limit
            for limit in (
                self._caps.get(code),
                self._capacity.get(code, CapacityState()).effective_channels,
            )
            if limit is not None
        ]
        return min(limits) if limits else None

    def _publish(self, code: str) -> None:
        self._authorizer.set_carrier_state(
            code,
            CarrierState(
                up=self._probes.get(code, ProbeState()).up,
                effective_channels=self._effective(code),
                de_preferred=code in self._de_preferred,
            ),
        )

    def _refresh_caps(self) -> None:
        revision = self._authorizer.snapshot().revision
        if revision == self._caps_revision:
            return
        caps = self._store.carrier_capacities()
        with self._lock:
            changed = set(caps.items()) ^ set(self._caps.items())
            self._caps = caps
            self._caps_revision = revision
            for code in {code for code, _ in changed}:
                self._publish(code)

    def _carrier(self, code: str) -> Carrier | None:
        for carrier in self._authorizer.snapshot().carriers:
            if carrier.code == code:
                return carrier
        return None

    def _record(self, event: CarrierEvent) -> None:
        try:
            self._store.record_carrier_event(event)
        except Exception:  # the event is logged; routing already applied it
            log.exception("could not store carrier event %s", event)
        if self._on_event is not None:
            try:  # incident detection learns carriers marked down or capacities learned
                self._on_event(event)
            except Exception:
                log.exception("carrier event listener failed on %s", event)
