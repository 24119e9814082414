"""Dunning: what happens after a renewal could not be collected.

A *dunning case* opens for one billing charge (its ledger key, `reference`) when its first
collection fails, or when the collection is held back because the subscriber's destination is in
a customer-facing outage. It follows the operator's schedule (`DunningSchedule`, a setting):

- the same payment method is tried again on the days of `retry_days` after the case opened
  (e.g. 1, 3, 5, 7 for cards; SEPA allows one re-presentation), as long as the last refusal's
  reason can succeed on a retry (`FailureCode.retryable`: insufficient funds yes, an expired
  card no);
- after each failure the subscriber is told, with a link to update their payment method;
- once `grace_days` have passed unpaid, calls are suspended (the subscription becomes
  `suspended`, the decision refuses calls with `subscription_suspended`) and an SMS says so;
- as soon as a payment succeeds (a retry, a new method, a bank transfer recorded), the case is
  `recovered` and a suspended subscription is active again.

While the subscriber's destination is in a customer-facing outage there is no debit and no
dunning at all: the case is *held*, and every date of its schedule moves on by the time held
(`held_for`), so an outage never shortens the subscriber's grace period.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.outcomes import FailureCode


@dataclass(frozen=True)
class DunningSchedule:
    """Retry days after the case opened (strictly increasing, each >= 1) and the grace period
    in days after which calls are suspended (>= 0; 0 suspends at the first failure)."""

    retry_days: tuple[int, ...] = (1, 3, 5, 7)
    grace_days: int = 7

    def __post_init__(self) -> None:
        days = self.retry_days
        if any(day < 1 for day in days) or any(b <= a for a, b in itertools.pairwise(days)):
            raise InvalidInput(
                "dunning retry days are increasing whole days, each at least 1",
                retry_days=list(days),
            )
        if self.grace_days < 0:
            raise InvalidInput("the dunning grace period is 0 days or more")

    @classmethod
    def parse(cls, retry_days: str, grace_days: int) -> DunningSchedule:
        """From the settings' text ("1,3,5,7"); InvalidInput when it is not whole days."""
        try:
            days = tuple(int(part) for part in retry_days.split(",") if part.strip())
        except ValueError as error:
            raise InvalidInput(
                "dunning retry days are whole days separated by commas (1,3,5,7)",
                retry_days=retry_days,
            ) from error
        return cls(days, grace_days)


class DunningStatus(enum.StrEnum):
    OPEN = "open"  # unpaid, within the grace period or retrying
    SUSPENDED = "suspended"  # grace period over: calls suspended until paid
    RECOVERED = "recovered"  # paid: closed
    CLOSED = "closed"  # given up by the operator (cancelled, written off): closed

    @property
    def closed(self) -> bool:
        return self in (DunningStatus.RECOVERED, DunningStatus.CLOSED)


class DunningAction(enum.StrEnum):
    """What the dunning job must do now for a case."""

    NONE = "none"  # nothing due yet
    HOLD = "hold"  # the destination is in an outage: nothing, the schedule waits
    CHARGE = "charge"  # try the subscriber's active method (first collection or a retry)
    SUSPEND = "suspend"  # grace period over: suspend calls and tell by SMS


@dataclass(frozen=True)
class DunningCase:
    """One unpaid billing charge and where its dunning stands (see the module docstring).

    `attempts` counts the charges tried (0: held back before the first), `last_failure` the
    last refusal's reason, `held_since` when the current outage hold began, `held_for` the
    time held before it. `id` is 0 until stored.
    """

    reference: str
    subscriber_id: int
    subscription_id: int | None
    amount: Money
    opened_at: datetime
    status: DunningStatus = DunningStatus.OPEN
    attempts: int = 0
    last_failure: FailureCode | None = None
    last_attempt_at: datetime | None = None
    held_since: datetime | None = None
    held_for: timedelta = timedelta(0)
    suspended_at: datetime | None = None
    closed_at: datetime | None = None
    id: int = 0

    def __post_init__(self) -> None:
        if self.opened_at.tzinfo is None:
            raise InvalidInput("dunning times must be time-zone aware")

    # -- the schedule ------------------------------------------------------------------------
    def _shifted(self, days: int) -> datetime:
        return self.opened_at + timedelta(days=days) + self.held_for

    def next_charge_at(self, schedule: DunningSchedule) -> datetime | None:
        """When the next charge is due: at once for a case held back before any attempt,
        then the retry days; None when no retry is left or the last refusal cannot succeed on
        a retry (an expired card: only a new payment method helps)."""
        if self.status.closed:
            return None
        if self.attempts == 0:
            return self.opened_at + self.held_for
        if self.last_failure is not None and not self.last_failure.retryable:
            return None
        if self.attempts > len(schedule.retry_days):
            return None
        return self._shifted(schedule.retry_days[self.attempts - 1])

    def suspend_at(self, schedule: DunningSchedule) -> datetime:
        return self._shifted(schedule.grace_days)

    def action(self, schedule: DunningSchedule, *, at: datetime, held: bool) -> DunningAction:
        """What is due at `at`; `held` whether the subscriber's destination is in a
        customer-facing outage now (then nothing is: no debit, no dunning)."""
        if self.status.closed:
            return DunningAction.NONE
        if held:
            return DunningAction.HOLD
        case = self.released(at)
        if (
            case.status is DunningStatus.OPEN
            and case.attempts > 0
            and at >= case.suspend_at(schedule)
        ):
            return DunningAction.SUSPEND
        due = case.next_charge_at(schedule)
        if due is not None and at >= due:
            return DunningAction.CHARGE
        return DunningAction.NONE

    # -- changes -----------------------------------------------------------------------------
    def held(self, at: datetime) -> DunningCase:
        """Held from `at` (unchanged when already held)."""
        return self if self.held_since is not None else replace(self, held_since=at)

    def released(self, at: datetime) -> DunningCase:
        """No longer held at `at`: the time held moves the schedule on."""
        if self.held_since is None:
            return self
        return replace(
            self, held_since=None, held_for=self.held_for + max(at - self.held_since, timedelta(0))
        )

    def failed(self, code: FailureCode, *, at: datetime) -> DunningCase:
        return replace(
            self.released(at), attempts=self.attempts + 1, last_failure=code, last_attempt_at=at
        )

    def charged(self, *, at: datetime) -> DunningCase:
        """A charge was sent and is not refused (pending or awaiting authentication)."""
        return replace(self.released(at), attempts=self.attempts + 1, last_attempt_at=at)

    def suspended(self, *, at: datetime) -> DunningCase:
        return replace(self, status=DunningStatus.SUSPENDED, suspended_at=at)

    def recovered(self, *, at: datetime) -> DunningCase:
        return replace(self, status=DunningStatus.RECOVERED, closed_at=at, held_since=None)

    def closed(self, *, at: datetime) -> DunningCase:
        return replace(self, status=DunningStatus.CLOSED, closed_at=at, held_since=None)
