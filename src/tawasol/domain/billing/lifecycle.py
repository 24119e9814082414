"""What billing does to a subscription: renew, change plan, cancel, pause and resume.

The statuses and which changes are allowed live in `tawasol.domain.subscribers`
(`SubscriptionStatus`, `TRANSITIONS`); this module adds the money and the dates:

- **renewal**: the next period follows the current one (`calendar.boundary` from the anchor, in
  the subscriber's time zone); when the current period was moved (extended for an outage or a
  pause, or deferred renewal), the calendar starts again from its new end (*re-anchoring*);
- **plan change now**: the unused part of the old plan is credited pro rata, the new plan
  charged in full for a period that starts now; **at period end**: the next renewal uses the
  new plan. A plan in another currency is refused (there is no conversion to apply);
- **cancel now** with a pro-rata refund where the law or the operator's policy gives one: within
  the 14-day withdrawal period (Code de la consommation art. L221-18, L221-25: the consumer
  pays for the service given until withdrawal), after a price change (Code des postes et des
  communications électroniques art. L224-33: termination without penalty), after a long outage,
  or by the operator's decision; a plain customer cancellation is not refunded unless the
  operator's policy says so. **At period end**: no renewal, the subscription expires;
- **pause / resume**: a paused subscription places no calls and does not renew; on resume its
  period end moves on by the time it was paused.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tawasol.domain.billing.calendar import BillingPeriod, boundary, period_number, unused_share
from tawasol.domain.catalog import Period, Plan
from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.subscribers import Subscription, SubscriptionStatus

WITHDRAWAL_PERIOD = timedelta(days=14)  # Code de la consommation art. L221-18


@dataclass(frozen=True)
class BillingTerms:
    """What billing keeps about a subscription beyond its status and current period.

    `anchor` and `period_index` place the current period on the subscriber's calendar;
    `price_paid` is what was charged for it (the most any credit or refund gives back);
    `next_plan_code` a plan change at period end; `cancel_at_period_end` a cancellation at
    period end; `paused_at` when a pause began.
    """

    subscription_id: int
    anchor: datetime
    period_index: int
    price_paid: Money
    next_plan_code: str | None = None
    cancel_at_period_end: bool = False
    paused_at: datetime | None = None


def first_terms(subscription: Subscription, plan: Plan) -> BillingTerms:
    """Terms for a subscription billing meets for the first time: its current period is
    period 0 from its own start, paid at the plan's price."""
    return BillingTerms(subscription.id, subscription.period_start, 0, plan.price)


def paid_period(subscription: Subscription, terms: BillingTerms) -> BillingPeriod:
    return BillingPeriod(terms.period_index, subscription.period_start, subscription.period_end)


def next_period(
    subscription: Subscription,
    terms: BillingTerms,
    period: Period,
    time_zone: str,
    *,
    starting: datetime | None = None,
) -> tuple[BillingPeriod, datetime]:
    """The period after the current one and the anchor it is counted from.

    It starts at the current period's end, or at `starting` for a renewal deferred past it;
    when that is not the calendar's next boundary, the calendar is re-anchored there.
    """
    start = starting or subscription.period_end
    index = terms.period_index + 1
    if boundary(terms.anchor, period, index, time_zone) == start:
        return period_number(terms.anchor, period, index, time_zone), terms.anchor
    return period_number(start, period, 0, time_zone), start


class CancelReason(enum.StrEnum):
    """Why a subscription is cancelled now; it decides whether the unused part is refunded."""

    CUSTOMER = "customer"  # the subscriber's choice: no refund unless the policy gives one
    WITHDRAWAL = "withdrawal"  # within 14 days of the start (L221-18)
    PRICE_CHANGE = "price_change"  # after a change of the contract's price (L224-33)
    OUTAGE = "outage"  # after a long outage
    OPERATOR = "operator"  # the operator's decision


@dataclass(frozen=True)
class RefundPolicy:
    """Whether a plain customer cancellation gets the unused part back (operator's choice)."""

    refund_customer_cancellation: bool = False


def cancellation_refund(
    subscription: Subscription,
    terms: BillingTerms,
    *,
    at: datetime,
    reason: CancelReason,
    policy: RefundPolicy,
    first_start: datetime,
) -> Money:
    """What a cancellation at `at` refunds: the unused share of what was paid, or zero.

    `first_start` is when the subscriber's contract began (the withdrawal period runs from
    it). Raises InvalidInput for a withdrawal after the 14 days.
    """
    zero = Money(terms.price_paid.amount * 0, terms.price_paid.currency)
    if reason is CancelReason.WITHDRAWAL and at - first_start > WITHDRAWAL_PERIOD:
        raise InvalidInput(
            "the 14-day withdrawal period is over (Code de la consommation L221-18)",
            started=first_start.isoformat(),
        )
    if reason is CancelReason.CUSTOMER and not policy.refund_customer_cancellation:
        return zero
    return unused_share(terms.price_paid, paid_period(subscription, terms), at)


@dataclass(frozen=True)
class PlanChange:
    """A plan change now: credit for the unused part of the old plan, charge of the new one."""

    credit: Money
    charge: Money
    new_period: BillingPeriod


def plan_change_now(
    subscription: Subscription,
    terms: BillingTerms,
    *,
    new_plan: Plan,
    at: datetime,
    time_zone: str,
) -> PlanChange:
    """Pro-rata credit of the old plan from `at`, the new plan charged for a period from `at`.

    Raises InvalidInput for a plan in another currency.
    """
    if new_plan.price.currency != terms.price_paid.currency:
        raise InvalidInput(
            f"plan {new_plan.code} is sold in {new_plan.price.currency}; this subscription is "
            f"paid in {terms.price_paid.currency}: a change of currency is a new contract",
            plan=new_plan.code,
        )
    return PlanChange(
        credit=unused_share(terms.price_paid, paid_period(subscription, terms), at),
        charge=new_plan.price,
        new_period=period_number(at, new_plan.period, 0, time_zone),
    )


def paused(
    subscription: Subscription, terms: BillingTerms, *, at: datetime
) -> tuple[Subscription, BillingTerms]:
    """Pause at `at` (Conflict unless active: pausing a paused subscription is refused, not
    a second pause that would move its period end twice)."""
    if subscription.status is not SubscriptionStatus.ACTIVE:
        raise Conflict(
            f"subscription {subscription.id} is {subscription.status.value}: only an active "
            "subscription can be paused",
            subscription_id=subscription.id,
            status=subscription.status.value,
        )
    return (
        subscription.changed_to(SubscriptionStatus.PAUSED, now=at),
        replace(terms, paused_at=at),
    )


def resumed(
    subscription: Subscription, terms: BillingTerms, *, at: datetime
) -> tuple[Subscription, BillingTerms]:
    """Resume at `at`: the period end moves on by the time paused (Conflict unless paused)."""
    if subscription.status is not SubscriptionStatus.PAUSED or terms.paused_at is None:
        raise Conflict(
            f"subscription {subscription.id} is not paused", subscription_id=subscription.id
        )
    if at < terms.paused_at:
        raise InvalidInput("a subscription resumes after its pause began")
    moved = replace(subscription, period_end=subscription.period_end + (at - terms.paused_at))
    return moved.changed_to(SubscriptionStatus.ACTIVE, now=at), replace(terms, paused_at=None)
