"""The per-call decision: may this subscriber call this number now, and through which carriers?

`authorize_call(request, state, now)` is pure: everything it needs is in `state`, and it returns a
frozen `Decision`. The SIP adapter turns a Decision into JSON for Kamailio or a SIP reply; the
support desk's `tawasol explain` prints its `explanation`, one line per rule checked.

The checks run in this order, and the first that fails names the reason:
unknown_subscriber, no_active_subscription (subscription_suspended when it is suspended: by
dunning for an unpaid renewal, or by the operator), invalid_number, destination_not_sold,
destination_not_in_plan, outside_time_window, fair_use_exceeded, concurrent_limit, no_route.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tawasol.domain.carriers import Carrier, CarrierState
from tawasol.domain.catalog import Plan
from tawasol.domain.errors import InvalidNumber
from tawasol.domain.numbering import (
    NON_GEOGRAPHIC,
    Destination,
    NumberKind,
    classify,
    region_of,
)
from tawasol.domain.routing import Route, RoutingStrategy
from tawasol.domain.routing.committed_capacity_first import committed_capacity_first
from tawasol.domain.sip_semantics import FAILOVER_CODES
from tawasol.domain.subscribers import Subscriber, Subscription, SubscriptionStatus


class Reason(enum.StrEnum):
    """Stable reason codes: clients, logs and support scripts match on these strings."""

    ALLOWED = "allowed"
    UNKNOWN_SUBSCRIBER = "unknown_subscriber"
    NO_ACTIVE_SUBSCRIPTION = "no_active_subscription"
    # suspended by dunning (docs/payments.md) or by the operator
    SUBSCRIPTION_SUSPENDED = "subscription_suspended"
    INVALID_NUMBER = "invalid_number"
    DESTINATION_NOT_SOLD = "destination_not_sold"
    DESTINATION_NOT_IN_PLAN = "destination_not_in_plan"
    OUTSIDE_TIME_WINDOW = "outside_time_window"
    FAIR_USE_EXCEEDED = "fair_use_exceeded"
    CONCURRENT_LIMIT = "concurrent_limit"
    NO_ROUTE = "no_route"


# What the caller's phone is told when a call is refused. RFC 3261 §21.4.3: 403 means the
# request was understood and refused, retrying will not help; §21.4.22: 484 means the number is
# incomplete or wrong; §21.5.4: 503 is temporary, so only "no route" uses it.
SIP_REPLY: dict[Reason, tuple[int, str]] = {
    Reason.UNKNOWN_SUBSCRIBER: (403, "Forbidden"),
    Reason.NO_ACTIVE_SUBSCRIPTION: (403, "No Active Subscription"),
    # Not 402 Payment Required: RFC 3261 §21.4.3 reserves it "for future use", and a
    # subscription is also suspended by the operator; phones show 403's reason phrase.
    Reason.SUBSCRIPTION_SUSPENDED: (403, "Subscription Suspended"),
    Reason.INVALID_NUMBER: (484, "Address Incomplete"),
    Reason.DESTINATION_NOT_SOLD: (403, "Destination Not Sold"),
    Reason.DESTINATION_NOT_IN_PLAN: (403, "Destination Not In Plan"),
    Reason.OUTSIDE_TIME_WINDOW: (403, "Outside Plan Hours"),
    Reason.FAIR_USE_EXCEEDED: (403, "Fair Use Limit Reached"),
    Reason.CONCURRENT_LIMIT: (403, "Too Many Simultaneous Calls"),
    Reason.NO_ROUTE: (503, "No Route Available"),
}

# Which carriers' answers move the hunt on is `sip_semantics`' table (RFC 3261 §21, RFC 3398,
# Q.850): the edge reads that table itself, causes included; the decision lists the codes that
# fail over when no cause says otherwise, for clients of the decision API.


@dataclass(frozen=True)
class CallRequest:
    """A new call as the SIP edge saw it: who (SIP username) dialled what."""

    sip_username: str
    dialled: str
    call_id: str = ""
    # A call to a direct number (`direct_numbers.AccessPath`): decided like any other, and
    # recorded with how it came in, the inbound trunk and the caller's number.
    access: str = "softphone"
    inbound_trunk: str | None = None
    caller_id: str | None = None


@dataclass(frozen=True)
class Usage:
    """A subscription's use in its current period, and its calls in progress now.

    `reserved_seconds` are the period's seconds held by calls in progress (each holds what its
    decision granted until it ends): simultaneous calls share what is left of a minutes quota,
    so a 10-minute plan never gives two simultaneous 10-minute calls.
    """

    answered_seconds: int = 0
    distinct_numbers: frozenset[str] = frozenset()
    active_calls: int = 0
    reserved_seconds: int = 0


@dataclass(frozen=True)
class DecisionState:
    """Everything the decision reads, loaded by the service layer (from memory, not per call).

    `subscriptions` maps a subscriber id to their subscriptions (any status);
    `usage` maps a subscription id to its use; `live` maps a carrier code to its live state.
    """

    subscribers: Mapping[str, Subscriber]
    subscriptions: Mapping[int, Sequence[Subscription]]
    plans: Mapping[str, Plan]
    carriers: Sequence[Carrier]
    usage: Mapping[int, Usage] = field(default_factory=dict)
    live: Mapping[str, CarrierState] = field(default_factory=dict)
    route_timeout_ms: int = 3000
    platform_max_call_duration: timedelta = timedelta(hours=4)
    default_region: str = "FR"
    unlisted_number_countries: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    """The answer for one call: allow or deny, why, for how long, and where to send it.

    A denied decision has no routes and carries the SIP code and reason phrase to send back.
    An allowed one has at least one route and a maximum duration after which the edge hangs up.
    """

    allowed: bool
    reason: Reason
    sip_code: int
    sip_reason: str
    max_duration: timedelta
    routes: tuple[Route, ...]
    explanation: tuple[str, ...]
    destination: Destination | None = None
    subscriber_id: int | None = None
    subscription_id: int | None = None
    plan_code: str | None = None
    failover_codes: tuple[int, ...] = FAILOVER_CODES

    @property
    def max_duration_seconds(self) -> int:
        return int(self.max_duration.total_seconds())

    @property
    def unlisted_number(self) -> bool:
        """The dialled number is in no range libphonenumber lists (allowed only for countries
        the operator marked as having incomplete metadata): counted and shown in reports."""
        return self.destination is not None and self.destination.unlisted


def _deny(reason: Reason, explanation: list[str], **context: object) -> Decision:
    sip_code, sip_reason = SIP_REPLY[reason]
    explanation.append(f"DENIED {reason.value}: SIP {sip_code} {sip_reason}")
    return Decision(
        allowed=False,
        reason=reason,
        sip_code=sip_code,
        sip_reason=sip_reason,
        max_duration=timedelta(0),
        routes=(),
        explanation=tuple(explanation),
        **context,  # type: ignore[arg-type]
    )


def _current_subscription(
    subscriptions: Sequence[Subscription], now: datetime
) -> Subscription | None:
    usable = [subscription for subscription in subscriptions if subscription.usable_at(now)]
    return max(usable, key=lambda subscription: subscription.period_start) if usable else None


def _why_not_usable(subscription: Subscription, now: datetime) -> str:
    """Why a subscription does not place calls at `now`, in words a support desk can repeat:
    an `active` status alone does not make it usable (its paid period may be over)."""
    name = f"subscription {subscription.id} to {subscription.plan_code}"
    start, end = subscription.period_start.isoformat(), subscription.period_end.isoformat()
    if subscription.status is not SubscriptionStatus.ACTIVE:
        return f"{name} is {subscription.status.value}, period {start} to {end}"
    if now >= subscription.period_end:
        return f"{name} is not usable: its paid period ended {end} and was not renewed"
    return f"{name} is not usable yet: its paid period starts {start}"


def authorize_call(
    request: CallRequest,
    state: DecisionState,
    now: datetime,
    *,
    strategy: RoutingStrategy = committed_capacity_first,
    explain: bool = True,
) -> Decision:
    """Decide one call. Never raises on bad input: a malformed number is a denial.

    With `explain=False` the explanation holds only a denial's last line: the SIP path decides
    every call and nobody reads its reasons, which cost more to format than to check (~40% of
    a decision in bench/decision.py). `tawasol explain` and the admin API explain in full.
    """
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    why: list[str] = []

    subscriber = state.subscribers.get(request.sip_username)
    if subscriber is None:
        if explain:
            why.append(f"no subscriber has SIP username {request.sip_username!r}")
        return _deny(Reason.UNKNOWN_SUBSCRIBER, why)
    if explain:
        why.append(f"subscriber {subscriber.sip_username} (id {subscriber.id}, {subscriber.name})")
    context: dict[str, object] = {"subscriber_id": subscriber.id}

    subscriptions = state.subscriptions.get(subscriber.id, ())
    subscription = _current_subscription(subscriptions, now)
    if subscription is None:
        if explain and not subscriptions:
            why.append("no subscription at all")
        for other in subscriptions if explain else ():
            why.append(_why_not_usable(other, now))
        if any(s.status is SubscriptionStatus.SUSPENDED for s in subscriptions):
            # dunning suspends calls once an unpaid renewal's grace period is over; so may the
            # operator: the phone says suspended, the notice sent said why
            return _deny(Reason.SUBSCRIPTION_SUSPENDED, why, **context)
        return _deny(Reason.NO_ACTIVE_SUBSCRIPTION, why, **context)
    plan = state.plans.get(subscription.plan_code)
    if plan is None:
        if explain:
            why.append(
                f"subscription {subscription.id} names unknown plan {subscription.plan_code}"
            )
        return _deny(Reason.NO_ACTIVE_SUBSCRIPTION, why, **context)
    context.update(subscription_id=subscription.id, plan_code=plan.code)
    if explain:
        why.append(
            f"subscription {subscription.id} to {plan.code} is active until "
            f"{subscription.period_end.isoformat()}"
        )

    calling_region = region_of(subscriber.phone) or state.default_region
    try:
        destination = classify(request.dialled, calling_region=calling_region)
    except InvalidNumber as error:
        if explain:
            why.append(f"dialled {request.dialled[:40]!r}: {error.message}")
        return _deny(Reason.INVALID_NUMBER, why, **context)
    context["destination"] = destination
    if explain:
        holder = f", range of {destination.range_holder}" if destination.range_holder else ""
        why.append(
            f"dialled {request.dialled[:40]!r} is {destination.e164}: {destination.country} "
            f"{destination.kind.value}{holder}"
        )
    if destination.kind is NumberKind.UNLISTED:
        if destination.country not in state.unlisted_number_countries:
            if explain:
                why.append(
                    f"number in no range libphonenumber lists for {destination.country}: not "
                    "sold (countries with incomplete metadata: TAWASOL_UNLISTED_NUMBER_COUNTRIES)"
                )
            return _deny(Reason.DESTINATION_NOT_SOLD, why, **context)
        # The operator knows this country's metadata misses real ranges (some Côte d'Ivoire
        # fixed ranges): authorise on a fixed or mobile length, flagged; the carrier rejects
        # a number that does not exist.
        destination = _with_kind(destination, NumberKind.FIXED_OR_MOBILE)
        context["destination"] = destination
        if explain:
            why.append(
                f"number in no range libphonenumber lists, but {destination.country}'s metadata "
                "is marked incomplete: treated as fixed-or-mobile (unlisted)"
            )

    if not destination.routable:
        if explain:
            what = "global-service numbers" if destination.country == NON_GEOGRAPHIC else "numbers"
            why.append(f"{destination.kind.value} {what} are never sold")
        return _deny(Reason.DESTINATION_NOT_SOLD, why, **context)
    if not plan.covers(destination):
        if explain:
            covered = ", ".join(sorted(str(rule) for rule in plan.destinations))
            why.append(f"plan {plan.code} covers {covered}")
        return _deny(Reason.DESTINATION_NOT_IN_PLAN, why, **context)
    if explain:
        why.append(f"plan {plan.code} covers {destination.country} {destination.kind.value}")

    if not plan.in_window(now, subscriber.time_zone):
        if explain:
            windows = "; ".join(window.describe() for window in plan.time_windows)
            local = now.astimezone(ZoneInfo(subscriber.time_zone))
            why.append(
                f"it is {local:%a %H:%M} in {subscriber.time_zone}; plan hours are {windows}"
            )
        return _deny(Reason.OUTSIDE_TIME_WINDOW, why, **context)

    usage = state.usage.get(subscription.id, Usage())
    fair_use = plan.fair_use
    committed_seconds = usage.answered_seconds + usage.reserved_seconds
    if fair_use.minutes_per_period is not None:
        limit_seconds = fair_use.minutes_per_period * 60
        if explain:
            held = (
                f", {usage.reserved_seconds // 60} more held by calls in progress"
                if usage.reserved_seconds
                else ""
            )
            why.append(
                f"used {usage.answered_seconds // 60} of {fair_use.minutes_per_period} minutes "
                f"this period{held}"
            )
        if committed_seconds >= limit_seconds:
            return _deny(Reason.FAIR_USE_EXCEEDED, why, **context)
    if (
        fair_use.distinct_numbers_per_period is not None
        and destination.e164 not in usage.distinct_numbers
    ):
        if explain:
            why.append(
                f"called {len(usage.distinct_numbers)} of {fair_use.distinct_numbers_per_period} "
                "distinct numbers this period"
            )
        if len(usage.distinct_numbers) >= fair_use.distinct_numbers_per_period:
            return _deny(Reason.FAIR_USE_EXCEEDED, why, **context)
    if fair_use.concurrent_calls is not None:
        if explain:
            why.append(
                f"{usage.active_calls} of {fair_use.concurrent_calls} simultaneous calls in use"
            )
        if usage.active_calls >= fair_use.concurrent_calls:
            return _deny(Reason.CONCURRENT_LIMIT, why, **context)

    ceiling = plan.cost_ceiling_for(destination)
    if ceiling is not None and explain:
        why.append(
            f"plan {plan.code} pays carriers at most {ceiling}/min for {destination.country}"
        )
    routes, notes = strategy(
        destination=destination,
        carriers=state.carriers,
        live=state.live,
        now=now,
        route_timeout_ms=state.route_timeout_ms,
        max_cost_per_minute=ceiling,
        explain=explain,
    )
    if explain:
        why.extend(notes)
    if not routes:
        if explain:
            why.append(f"no carrier can take a call to {destination.country} now")
        return _deny(Reason.NO_ROUTE, why, **context)

    max_duration = state.platform_max_call_duration
    if fair_use.max_call_duration is not None:
        max_duration = min(max_duration, fair_use.max_call_duration)
    if fair_use.minutes_per_period is not None:
        remaining = timedelta(seconds=fair_use.minutes_per_period * 60 - committed_seconds)
        max_duration = min(max_duration, remaining)
    window_end = plan.window_end(now, subscriber.time_zone)
    if window_end is not None:
        # The plan's hours end during the call: cut it then, or after the plan's grace (a call
        # started at 07:59 in a 20:00-08:00 plan must not last the plan's full hour).
        max_duration = min(max_duration, window_end + plan.window_grace - now)
        if explain:
            local_end = window_end.astimezone(ZoneInfo(subscriber.time_zone))
            grace_minutes = int(plan.window_grace.total_seconds() // 60)
            after = (
                f"calls are cut {grace_minutes} min after it (plan's grace)"
                if grace_minutes
                else "calls are cut then (no grace in the plan)"
            )
            why.append(f"plan hours end at {local_end:%a %H:%M} in {subscriber.time_zone}: {after}")
    if explain:
        why.append(f"ALLOWED: {len(routes)} route(s), call cut after {max_duration}")
    return Decision(
        allowed=True,
        reason=Reason.ALLOWED,
        sip_code=200,
        sip_reason="OK",
        max_duration=max_duration,
        routes=tuple(routes),
        explanation=tuple(why),
        **context,  # type: ignore[arg-type]
    )


def _with_kind(destination: Destination, kind: NumberKind) -> Destination:
    return Destination(
        e164=destination.e164,
        country=destination.country,
        country_code=destination.country_code,
        kind=kind,
        range_holder=destination.range_holder,
        validated=destination.validated,
    )


__all__ = [
    "FAILOVER_CODES",
    "SIP_REPLY",
    "CallRequest",
    "Carrier",
    "Decision",
    "DecisionState",
    "Reason",
    "Usage",
    "authorize_call",
]
