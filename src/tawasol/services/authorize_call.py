"""Authorise a call: the decision with state held in memory, refreshed when the catalog changes.

A brain answers every new INVITE, so reading the database per call is not an option. The
`CallAuthorizer` keeps the catalog (plans, subscribers, subscriptions, carriers) as an immutable
snapshot, checks the store's catalog revision at most every `refresh_interval` and reloads when
it moved. Fair-use usage (answered minutes, distinct numbers, calls in progress) is loaded once
and then kept up to date from the call events this brain records and the calls it authorises.

Live counters heal (docs/security.md, "Live counters that heal"): a call slot, its carrier
channel and its minutes reservation, taken when a call is allowed, are held until the longest
time the call can ring (its routes x the edge's ring timeout, at most `ring_hold_max`) unless an
answer event arrives; once answered, until its end event or its granted maximum duration plus
`hold_margin`. A brain that starts reloads the calls the store still has open, and drops, at
start and then periodically, those the edge's dialog list does not have (`reconcile`).
Explaining a call reads copies of these counters and never changes them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tawasol.domain.calls import CallRecord
from tawasol.domain.carriers import CarrierState
from tawasol.domain.decision import (
    SIP_REPLY,
    CallRequest,
    Decision,
    DecisionState,
    Reason,
    Usage,
    authorize_call,
)
from tawasol.domain.routing import RoutingStrategy
from tawasol.domain.routing.committed_capacity_first import committed_capacity_first
from tawasol.domain.subscribers import Subscriber, Subscription
from tawasol.services.live_counters import InProcessLiveCounters
from tawasol.services.ports import CallStore, CatalogSnapshot, CatalogStore
from tawasol.services.ports.live_counters import LiveCounters, OpenCall

log = logging.getLogger(__name__)


# Told of every call `authorize` refuses (to record it); must be cheap and never raise.
RefusalHook = Callable[[CallRequest, Decision, datetime], None]


@dataclass(frozen=True)
class Authorization:
    """A decision plus what the SIP edge needs to check the caller's credentials."""

    decision: Decision
    ha1: str
    subscriber: Subscriber | None


# Call events reach the brain through the edge's spool (a 100 ms timer): a call answered in the
# last moment of its ring time is still held until its answer event can have arrived.
_EVENT_SLACK = timedelta(seconds=5)


class _UsageView(Mapping[int, Usage]):
    """Usage per subscription with calls in progress merged in, read from the live counters
    one subscription at a time (a decision reads one; copying 50,000 would cost more). Each
    subscription is read once per view, with its version: the call is opened only if that
    version still holds (several brains share the counters)."""

    def __init__(self, counters: LiveCounters) -> None:
        self._counters = counters
        self._read: dict[int, tuple[Usage | None, int]] = {}

    def version(self, subscription_id: int) -> int | None:
        """The version read with the subscription's use (None: not read)."""
        read = self._read.get(subscription_id)
        return read[1] if read is not None else None

    def __getitem__(self, subscription_id: int) -> Usage:
        read = self._read.get(subscription_id)
        if read is None:
            read = self._read[subscription_id] = self._counters.decision_usage(subscription_id)
        if read[0] is None:
            raise KeyError(subscription_id)
        return read[0]

    def __iter__(self) -> Iterator[int]:
        open_calls = self._counters.open_calls().values()
        return iter({call.subscription_id for call in open_calls})

    def __len__(self) -> int:
        return sum(1 for _ in self)


# Decisions taken again when another brain changed the subscription's counters in between;
# past this many the call is refused as over its limit (only a subscriber whose calls keep
# arriving at several brains within the same milliseconds can get there).
DECISION_ATTEMPTS = 8


def _contended(decision: Decision) -> Decision:
    """The refusal of a call whose subscription's counters never held still long enough to
    open it: as over its simultaneous calls (it is placing many at once)."""
    sip_code, sip_reason = SIP_REPLY[Reason.CONCURRENT_LIMIT]
    return replace(
        decision,
        allowed=False,
        reason=Reason.CONCURRENT_LIMIT,
        sip_code=sip_code,
        sip_reason=sip_reason,
        max_duration=timedelta(0),
        routes=(),
    )


class CallAuthorizer:
    """Decides calls from an in-memory snapshot of the store; thread-safe."""

    def __init__(
        self,
        *,
        catalog: CatalogStore,
        calls: CallStore,
        clock: Callable[[], datetime],
        realm: str,
        fake_ha1_secret: bytes,
        refresh_interval: timedelta = timedelta(seconds=1),
        route_timeout_ms: int = 3000,
        platform_max_call_duration: timedelta = timedelta(hours=4),
        default_region: str = "FR",
        ring_timeout_ms: int = 120_000,
        ring_hold_max: timedelta = timedelta(minutes=6),
        hold_margin: timedelta = timedelta(minutes=1),
        unlisted_number_countries: frozenset[str] = frozenset(),
        on_refused: RefusalHook | None = None,
        counters: LiveCounters | None = None,
    ) -> None:
        """`counters`: the live counters (default: in this process, for one brain)."""
        self._catalog = catalog
        self._calls = calls
        self._on_refused = on_refused
        self._clock = clock
        self._realm = realm
        self._fake_ha1_secret = fake_ha1_secret
        self._refresh_interval = refresh_interval
        self._route_timeout_ms = route_timeout_ms
        self._platform_max = platform_max_call_duration
        self._default_region = default_region
        self._ring_timeout = timedelta(milliseconds=ring_timeout_ms)
        self._ring_hold_max = ring_hold_max
        self._hold_margin = hold_margin
        self._unlisted_number_countries = unlisted_number_countries
        self._lock = threading.RLock()
        self._snapshot: CatalogSnapshot | None = None
        self._checked_at: datetime | None = None
        self._counters: LiveCounters = counters or InProcessLiveCounters()
        self._unlisted_allowed = 0
        self._expired_at: datetime | None = None
        self._strategy: RoutingStrategy = committed_capacity_first

    # -- state ------------------------------------------------------------------------------
    @property
    def realm(self) -> str:
        return self._realm

    @property
    def default_region(self) -> str:
        return self._default_region

    def invalidate(self) -> None:
        """Reload the catalog at the next decision (called after an admin write here)."""
        with self._lock:
            self._checked_at = None

    def snapshot(self) -> CatalogSnapshot:
        now = self._clock()
        with self._lock:
            due = self._checked_at is None or now - self._checked_at >= self._refresh_interval
            if self._snapshot is None or due:
                revision = self._catalog.catalog_revision()
                if self._snapshot is None or revision != self._snapshot.revision:
                    self._load(now)
                self._checked_at = now
            assert self._snapshot is not None
            return self._snapshot

    def _load(self, now: datetime) -> None:
        snapshot = self._catalog.load_catalog()
        current = [
            subscription
            for subscriptions in snapshot.subscriptions.values()
            for subscription in subscriptions
            if subscription.usable_at(now)
        ]
        usage = self._calls.usage(current, now=now, open_call_horizon=self._platform_max)
        first_load = self._snapshot is None
        self._snapshot = snapshot
        self._counters.reset_usage(usage)
        if first_load:
            # Calls in progress when this brain started: those the store knows as open. Later
            # reloads keep the live view (a call that expired or that the edge's dialog list
            # did not have must not come back with every catalog change).
            for record in self._calls.open_calls(started_after=now - self._platform_max):
                if record.subscription_id is not None:
                    self._counters.open(record.call_id, self._restored_call(record))
        log.info("catalog revision %s loaded", snapshot.revision)

    def set_strategy(self, strategy: RoutingStrategy) -> None:
        with self._lock:
            self._strategy = strategy

    def set_carrier_state(self, carrier: str, condition: CarrierState) -> None:
        """Apply what the carrier monitor learned (probing, capacity, quality): kept in the
        live counters, so every brain sharing them routes on it."""
        with self._lock:
            self._counters.set_carrier_condition(carrier, condition)

    def set_carrier_up(self, carrier: str, up: bool) -> None:
        with self._lock:
            current = self._counters.carrier_conditions().get(carrier, CarrierState())
            self._counters.set_carrier_condition(carrier, replace(current, up=up))

    def channels_in_use(self, carrier: str) -> int:
        """Calls on the carrier now (ringing or talking)."""
        with self._lock:  # never half-way through another call's observe or authorize
            return self._counters.channels_in_use().get(carrier, 0)

    def routing_order(self, call_id: str) -> int:
        """When the call took its current channel, as a sequence number (0: unknown)."""
        with self._lock:
            return self._counters.routing_order(call_id)

    def channels_held_before(self, carrier: str, call_id: str) -> int:
        """Calls on the carrier that were sent there before this one.

        When a carrier refuses a call for lack of channels, these are the calls it was
        carrying: calls routed after it (a burst whose refusals have not come back yet) do not
        count, or a carrier carrying 15 calls would be taken for one carrying 24."""
        with self._lock:
            return self._counters.channels_held_before(carrier, call_id)

    def carrier_states(self) -> dict[str, CarrierState]:
        """Reachability, capacity and calls in progress per carrier (channels in use)."""
        with self._lock:
            in_use = self._counters.channels_in_use()
            conditions = self._counters.carrier_conditions()
            codes = set(conditions) | {code for code, count in in_use.items() if count}
            nominal = CarrierState()
            states = {}
            for code in codes:
                # built directly, not with dataclasses.replace: this runs on every decision
                condition = conditions.get(code, nominal)
                states[code] = CarrierState(
                    up=condition.up,
                    channels_in_use=in_use.get(code, 0),
                    effective_channels=condition.effective_channels,
                    de_preferred=condition.de_preferred,
                )
            return states

    # -- deciding ---------------------------------------------------------------------------
    def fake_ha1(self, sip_username: str) -> str:
        """A stable HA1 for a username nobody has: the edge challenges and fails it exactly as
        it would a wrong password, so probing cannot tell which usernames exist."""
        return hmac.new(self._fake_ha1_secret, sip_username.encode(), hashlib.md5).hexdigest()

    def decision_state(
        self, now: datetime, snapshot: CatalogSnapshot | None = None
    ) -> DecisionState:
        """What the decision reads at `now`, from copies of the live counters: building it
        changes nothing (explain uses it as is; `authorize` heals the counters first)."""
        snapshot = snapshot or self.snapshot()
        with self._lock:
            usage = _UsageView(self._counters)
            live = self.carrier_states()
        return self._state(snapshot, usage, live)

    def _state(
        self,
        snapshot: CatalogSnapshot,
        usage: Mapping[int, Usage],
        live: Mapping[str, CarrierState],
    ) -> DecisionState:
        return DecisionState(
            subscribers=snapshot.subscribers,
            subscriptions=snapshot.subscriptions,
            plans=snapshot.plans,
            carriers=snapshot.carriers,
            usage=usage,
            live=live,
            route_timeout_ms=self._route_timeout_ms,
            platform_max_call_duration=self._platform_max,
            default_region=self._default_region,
            unlisted_number_countries=self._unlisted_number_countries,
        )

    def authorize(self, request: CallRequest, *, now: datetime | None = None) -> Authorization:
        """Decide a new call and, when allowed, count it as in progress until it ends."""
        now = now or self._clock()
        snapshot = self.snapshot()
        with self._lock:
            # The same call asked again (a retransmitted INVITE) must not count against itself.
            self._release(request.call_id)
            self._heal(now)
            for _ in range(DECISION_ATTEMPTS):
                # The live counters themselves, not copies: a decision reads one
                # subscription's entry, and copying 50,000 per call would cost more than it.
                usage = _UsageView(self._counters)
                state = self._state(snapshot, usage, self.carrier_states())
                decision = authorize_call(
                    request, state, now, strategy=self._strategy, explain=False
                )
                if not (
                    decision.allowed and decision.subscription_id is not None and request.call_id
                ):
                    break
                version = usage.version(decision.subscription_id)
                if self._track(request.call_id, decision, now, if_version=version):
                    if decision.unlisted_number:
                        self._unlisted_allowed += 1
                    break
                # another brain changed this subscription's counters since they were read
            else:
                log.warning(
                    "call %s: refused, the subscription's counters kept changing under %d "
                    "decisions in a row",
                    request.call_id,
                    DECISION_ATTEMPTS,
                )
                decision = _contended(decision)
            subscriber = snapshot.subscribers.get(request.sip_username)
        if not decision.allowed and self._on_refused is not None:
            self._on_refused(request, decision, now)
        ha1 = subscriber.ha1 if subscriber else self.fake_ha1(request.sip_username)
        return Authorization(decision=decision, ha1=ha1, subscriber=subscriber)

    def explain(self, request: CallRequest, *, now: datetime) -> Decision:
        """The decision at `now` (past or future), without counting the call: what support
        desks look at. Read-only: it decides on copies of the live counters as they are now
        (calls in progress, minutes used and held) and never expires, frees or counts a call."""
        return authorize_call(request, self.decision_state(now), now, strategy=self._strategy)

    def _track(
        self, call_id: str, decision: Decision, now: datetime, *, if_version: int | None
    ) -> bool:
        """Count the allowed call as in progress; False when the subscription's counters
        changed since `if_version` was read (decide again)."""
        assert decision.subscription_id is not None and decision.destination is not None
        carriers = tuple(dict.fromkeys(route.carrier for route in decision.routes))
        opened = self._counters.open(
            call_id,
            OpenCall(
                subscription_id=decision.subscription_id,
                destination=decision.destination.e164,
                expires_at=now + self._ring_hold(len(decision.routes)),
                carriers=carriers,
                max_duration=decision.max_duration,
                # Minutes are held for the whole grant: simultaneous calls share what is left.
                reserved_seconds=decision.max_duration_seconds,
                opened_at=now,
            ),
            if_version=if_version,
        )
        if opened and carriers:
            # The channel is taken now, not when the carrier answers: forty calls arriving in
            # the same second must not all be sent to the same thirty flat-rate channels.
            self._counters.hold_channel(call_id, carriers[0])
        return opened

    def _next_carrier(self, call_id: str, failed: str) -> str | None:
        call = self._counters.get(call_id)
        if call is None or failed not in call.carriers:
            return None
        index = call.carriers.index(failed) + 1
        return call.carriers[index] if index < len(call.carriers) else None

    # -- live counters: slots, channels and minutes held by calls in progress -------------------
    def _ring_hold(self, routes: int) -> timedelta:
        """The longest an allowed call can ring before it is answered or fails: each route may
        ring for the edge's ring timeout (RFC 3261 Timer C, `fr_inv_timer`), at most
        `ring_hold_max` in all."""
        return min(self._ring_timeout * max(1, routes), self._ring_hold_max) + _EVENT_SLACK

    def _restored_call(self, record: CallRecord) -> OpenCall:
        """A call in progress this brain did not decide (before a restart, or another brain):
        what it was granted is unknown, so it holds the platform's maximum until it ends."""
        assert record.subscription_id is not None
        if record.answered_at is not None:
            expires_at = record.answered_at + self._platform_max + self._hold_margin
        else:
            expires_at = record.started_at + self._ring_hold_max + _EVENT_SLACK
        return OpenCall(
            subscription_id=record.subscription_id,
            destination=record.destination,
            expires_at=expires_at,
            max_duration=self._platform_max,
            reserved_seconds=int(self._platform_max.total_seconds()),
            answered=record.answered_at is not None,
            opened_at=record.started_at,
        )

    def _note_answer(self, call_id: str, answered_at: datetime) -> None:
        """Answered: the call now holds its slot until its end event, or its granted maximum
        duration plus a margin if that event never comes (the edge cuts it at the maximum)."""
        call = self._counters.get(call_id)
        if call is not None and not call.answered:
            self._counters.note_answer(
                call_id, expires_at=answered_at + call.max_duration + self._hold_margin
            )

    def _heal(self, now: datetime) -> None:
        """Free what calls whose events never came still hold (at most once per refresh)."""
        if self._expired_at is None or now - self._expired_at >= self._refresh_interval:
            self._expire_pending(now)
            self._expired_at = now

    def _expire_pending(self, now: datetime) -> None:
        for call_id in self._counters.expire(now):
            log.info("call %s: no event in time, its slot and channel are freed", call_id)

    def _release(self, call_id: str) -> None:
        self._counters.release(call_id)

    def reconcile(
        self, live_call_ids: Iterable[str], *, grace: timedelta = timedelta(seconds=10)
    ) -> list[str]:
        """Stop counting the calls the edge no longer has (its dialog list, `dlg.list`, just
        taken): after a brain or Kamailio restart, calls whose end event never came. Calls
        opened less than `grace` ago are left alone (their dialog may not exist yet). Returns
        the call ids dropped."""
        live = set(live_call_ids)
        self.snapshot()  # the calls the store has open are loaded first
        with self._lock:
            cutoff = self._clock() - grace
            gone = [
                call_id
                for call_id, call in self._counters.open_calls().items()
                if call_id not in live and (call.opened_at is None or call.opened_at < cutoff)
            ]
            for call_id in gone:
                log.info("call %s: not in the edge's dialog list, no longer counted", call_id)
                self._release(call_id)
        return gone

    def forget_call(self, call_id: str) -> None:
        """Stop counting a call as in progress (it ended without an event reaching us)."""
        with self._lock:
            self._release(call_id)

    def unlisted_numbers_allowed(self) -> int:
        """Calls this brain allowed to numbers in no listed range (countries the operator
        marked as having incomplete metadata), since it started."""
        with self._lock:
            return self._unlisted_allowed

    def active_calls(self) -> int:
        return self._counters.calls_in_progress()

    # -- learning from call records ---------------------------------------------------------
    def observe(self, before: dict[str, CallRecord | None], after: Iterable[CallRecord]) -> None:
        """Update usage from call records just written: a call that finished frees its slot,
        and its answered seconds count once, when its duration is first recorded."""
        with self._lock:
            for record in after:
                if record.subscription_id is None:
                    continue
                previous = before.get(record.call_id)
                if record.finished:
                    self._release(record.call_id)
                else:
                    # Unknown here: authorised by another replica, or before a restart.
                    self._counters.open(record.call_id, self._restored_call(record))
                if not record.finished:
                    if record.answered_at is not None:
                        self._note_answer(record.call_id, record.answered_at)
                    self._follow_channel(record)
                had_duration = previous is not None and previous.duration_ms is not None
                # Only answered calls count as distinct numbers: the edge asks for the decision
                # before it has checked the caller's password.
                self._counters.add_usage(
                    record.subscription_id,
                    answered_seconds=(
                        record.duration_ms // 1000
                        if record.duration_ms is not None and not had_duration
                        else 0
                    ),
                    destination=record.destination if record.answered_at is not None else None,
                )

    def _follow_channel(self, record: CallRecord) -> None:
        """Keep the call's channel on the carrier it is on: the one that answered, or the next
        one after a carrier that failed."""
        if record.answered_at is not None and record.carrier:
            self._counters.hold_channel(record.call_id, record.carrier)
            return
        held = self._counters.held_carrier(record.call_id)
        if held is None and self._counters.get(record.call_id) is not None:
            return
        failed = {
            a.carrier for a in record.attempts if a.sip_code is not None and a.sip_code >= 300
        }
        while held is not None and held in failed:
            held = self._next_carrier(record.call_id, held)
        self._counters.hold_channel(record.call_id, held)

    def current_subscription(self, subscriber_id: int, now: datetime) -> Subscription | None:
        snapshot = self.snapshot()
        usable = [s for s in snapshot.subscriptions.get(subscriber_id, ()) if s.usable_at(now)]
        return max(usable, key=lambda s: s.period_start) if usable else None
