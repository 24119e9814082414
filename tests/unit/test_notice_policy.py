"""Who is told of an incident, and when (`NoticePolicy`, `NoticeService`): business subscribers at
once, consumers once the incident has been customer-facing for the policy's minimum; a short
outage reaches business subscribers only, its resolution too; nothing is queued twice, and a
restarted service still tells the consumers of an incident already customer-facing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from tawasol.domain.errors import InvalidInput
from tawasol.domain.incidents import (
    Incident,
    IncidentKind,
    new_incident,
    record_impact,
    reopen,
    resolve,
)
from tawasol.domain.notices import (
    Channel,
    Notice,
    NoticeOccasion,
    NoticePolicy,
    Recipient,
    customer_facing_time,
)
from tawasol.domain.outages import OutageImpact, OutageScope
from tawasol.services.notice_ports import InMemoryNoticeOutbox
from tawasol.services.notices import NoticeService

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SCOPE = OutageScope("MA")
MINUTE = timedelta(minutes=1)
RECIPIENTS = (
    Recipient(1, "Amal", "amal@example.org", "+33612000001", "fr"),
    Recipient(2, "Atlas SARL", "compta@atlas.example", "+33612000002", "fr", business=True),
    Recipient(3, "Badr", "badr@example.org", "+33612000003", "ar"),
)


def opened() -> Incident:
    incident = new_incident(
        kind=IncidentKind.DESTINATION,
        title="Calls to MA failing",
        started_at=T0,
        author="detection",
        message={"en": "calls fail"},
        scope=SCOPE,
        automatic=True,
    )
    return Incident(**{**incident.__dict__, "id": 7})


def facing(at: datetime) -> Incident:
    return record_impact(opened(), impact=OutageImpact.PARTIAL, at=at)


# -- the rule -------------------------------------------------------------------------------------
def test_customer_facing_time_sums_the_stretches_of_one_life_only() -> None:
    first = record_impact(facing(T0), impact=None, at=T0 + 3 * MINUTE)  # 3 min
    first = record_impact(first, impact=OutageImpact.MAJOR, at=T0 + 10 * MINUTE)
    now = T0 + 12 * MINUTE  # + 2 min still going
    assert customer_facing_time(first, life=1, now=now) == 5 * MINUTE
    closed = resolve(first, at=now, author="detection", message={"en": "ok"})
    assert customer_facing_time(closed, life=1, now=now + 60 * MINUTE) == 5 * MINUTE
    again = reopen(closed, at=now + MINUTE, author="amina", message={"en": "back"})
    again = record_impact(again, impact=OutageImpact.PARTIAL, at=now + 2 * MINUTE)
    later = now + 6 * MINUTE
    assert customer_facing_time(again, life=2, now=later) == 4 * MINUTE
    assert customer_facing_time(again, life=1, now=later) == 5 * MINUTE


@pytest.mark.parametrize(("minimum", "told"), [(0, True), (4, True), (5, True), (6, False)])
def test_consumers_are_told_once_the_outage_lasted_the_minimum(minimum: int, told: bool) -> None:
    policy = NoticePolicy(consumer_min_outage=timedelta(minutes=minimum))
    assert policy.consumers_told(facing(T0), life=1, now=T0 + 5 * MINUTE) is told


@pytest.mark.parametrize(
    "values",
    [
        {"consumer_min_outage": timedelta(seconds=-1)},
        {"update_interval_first_day": timedelta(0)},
        {"update_interval_later": timedelta(hours=-1)},
        {"update_interval_first_day": timedelta(days=2)},
    ],
)
def test_a_nonsense_policy_is_refused(values: dict[str, timedelta]) -> None:
    with pytest.raises(InvalidInput):
        NoticePolicy(**values)  # type: ignore[arg-type]


def test_update_windows_after_the_first_day_never_share_the_first_days_last_window() -> None:
    policy = NoticePolicy(update_interval_first_day=timedelta(hours=5))  # 24 h is not 5 h * n
    last_first_day = policy.update_slot(T0, T0 + timedelta(hours=23))
    first_later = policy.update_slot(T0, T0 + timedelta(hours=25))
    assert (last_first_day, first_later) == (4, 5)
    assert policy.update_slot(T0, T0 + timedelta(hours=49)) == 6


# -- through the service and the outbox ----------------------------------------------------------
class Affected:
    def __init__(self, recipients: Sequence[Recipient]) -> None:
        self.recipients = list(recipients)
        self.asked = 0

    def affected(self, scope: OutageScope, *, since: datetime, now: datetime) -> list[Recipient]:
        self.asked += 1
        return list(self.recipients)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Accepting:
    async def send(self, notice: Notice) -> Sequence[str]:
        return ()


def service(
    outbox: InMemoryNoticeOutbox,
    clock: Clock,
    *,
    open_incidents: list[Incident] | None = None,
    affected: Affected | None = None,
) -> NoticeService:
    return NoticeService(
        outbox=outbox,
        affected=affected or Affected(RECIPIENTS),
        channels={Channel.EMAIL: Accepting(), Channel.SMS: Accepting()},
        clock=clock,
        policy=NoticePolicy(consumer_min_outage=timedelta(minutes=5)),
        open_incidents=(lambda: list(open_incidents)) if open_incidents is not None else None,
    )


def told(outbox: InMemoryNoticeOutbox, occasion: NoticeOccasion) -> list[tuple[int, Channel]]:
    return sorted(
        (n.subscriber_id, n.channel)
        for n in outbox.list_notices(incident_id=7)
        if n.occasion is occasion
    )


BOTH = (Channel.EMAIL, Channel.SMS)


def test_business_is_told_at_once_consumers_once_the_outage_lasted_five_minutes() -> None:
    outbox, clock = InMemoryNoticeOutbox(), Clock()
    notices = service(outbox, clock)
    before = opened()
    after = facing(T0)
    assert notices.on_incident_change(before, after) == 2
    assert told(outbox, NoticeOccasion.CUSTOMER_FACING) == [(2, c) for c in sorted(BOTH)]
    clock.now = T0 + 4 * MINUTE
    assert notices.on_tick(clock.now) == 0
    clock.now = T0 + 5 * MINUTE
    assert notices.on_tick(clock.now) == 4  # the two consumers, by email and SMS
    assert told(outbox, NoticeOccasion.CUSTOMER_FACING) == sorted(
        (subscriber, channel) for subscriber in (1, 2, 3) for channel in BOTH
    )
    clock.now = T0 + 6 * MINUTE
    assert notices.on_tick(clock.now) == 0  # told once
    closed = resolve(after, at=clock.now, author="detection", message={"en": "ok"})
    assert notices.on_incident_change(after, closed) == 6  # everyone told it is over
    assert len(told(outbox, NoticeOccasion.RESOLVED)) == 6


def test_a_short_outage_reaches_business_subscribers_only_its_resolution_too() -> None:
    outbox, clock = InMemoryNoticeOutbox(), Clock()
    notices = service(outbox, clock)
    after = facing(T0)
    notices.on_incident_change(opened(), after)
    clock.now = T0 + 2 * MINUTE
    healed = record_impact(after, impact=None, at=clock.now)
    notices.on_incident_change(after, healed)
    clock.now = T0 + 30 * MINUTE  # calls worked since: the 2 minutes never grow
    assert notices.on_tick(clock.now) == 0
    closed = resolve(healed, at=clock.now, author="detection", message={"en": "ok"})
    assert notices.on_incident_change(healed, closed) == 2
    assert told(outbox, NoticeOccasion.CUSTOMER_FACING) == [(2, c) for c in sorted(BOTH)]
    assert told(outbox, NoticeOccasion.RESOLVED) == [(2, c) for c in sorted(BOTH)]


def test_a_restarted_service_still_tells_the_consumers_once() -> None:
    outbox, clock = InMemoryNoticeOutbox(), Clock()
    after = facing(T0)
    service(outbox, clock).on_incident_change(opened(), after)  # business told; then a crash
    clock.now = T0 + 10 * MINUTE
    affected = Affected(RECIPIENTS)
    restarted = service(outbox, clock, open_incidents=[after], affected=affected)
    assert restarted.on_tick(clock.now) == 4
    assert restarted.on_tick(clock.now + MINUTE) == 0
    assert affected.asked == 1  # told: the affected subscribers are not looked up again
    assert len(told(outbox, NoticeOccasion.CUSTOMER_FACING)) == 6


def test_an_incident_resolved_elsewhere_while_waiting_tells_no_consumer() -> None:
    outbox, clock = InMemoryNoticeOutbox(), Clock()
    open_now: list[Incident] = []
    notices = service(outbox, clock, open_incidents=open_now)
    after = facing(T0)
    open_now.append(after)
    notices.on_incident_change(opened(), after)
    open_now.clear()  # an operator resolved it through another brain's API
    clock.now = T0 + 10 * MINUTE
    assert notices.on_tick(clock.now) == 0
    assert told(outbox, NoticeOccasion.CUSTOMER_FACING) == [(2, c) for c in sorted(BOTH)]


def test_an_incident_made_customer_facing_by_another_process_is_told_by_the_ticking_one() -> None:
    outbox, clock = InMemoryNoticeOutbox(), Clock()
    # the operator's `tawasol incidents update --impact partial` wrote it; this brain ticks
    ticking = service(outbox, clock, open_incidents=[facing(T0)])
    assert ticking.on_tick(T0 + 4 * MINUTE) == 0
    clock.now = T0 + 5 * MINUTE
    assert ticking.on_tick(clock.now) == 6  # nobody was told yet: business and consumers
    assert ticking.on_tick(clock.now + MINUTE) == 0


def test_a_change_after_the_minimum_and_before_the_next_tick_tells_the_consumers_first() -> None:
    outbox, clock = InMemoryNoticeOutbox(), Clock()
    notices = service(outbox, clock)
    partial = facing(T0)
    notices.on_incident_change(opened(), partial)
    clock.now = T0 + 6 * MINUTE  # no tick since the 5 minutes passed: the impact worsens
    major = record_impact(partial, impact=OutageImpact.MAJOR, at=clock.now)
    assert notices.on_incident_change(partial, major) == 4
    assert notices.on_tick(clock.now) == 0  # told once
    assert len(told(outbox, NoticeOccasion.CUSTOMER_FACING)) == 6
