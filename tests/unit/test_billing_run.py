"""The billing run over the seed's September, in memory (must-show 1 and 2 of issue 14).

A full Morocco outage from 7 September 17:00 UTC to the 18th 00:00, then half capacity
(partial) to the 25th. Three subscribers' amounts are worked out by hand below; the rest of the
population checks the rules that hold for everyone.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from tawasol.adapters.store.billing_memory import InMemoryBillingStore, InMemoryOutageHistory
from tawasol.domain.billing.documents import DocumentKind, IssuingEntity, check_gap_free
from tawasol.domain.billing.ledger import EntryKind
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import DestinationRule, Period, Plan
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope
from tawasol.domain.subscribers import Subscription, SubscriptionStatus
from tawasol.services.billing.ports import BillingCustomer
from tawasol.services.billing.reports import credits_per_incident
from tawasol.services.billing.run import BillingRun, BillingSettings

PARIS = ZoneInfo("Europe/Paris")
MOROCCO = frozenset(
    {DestinationRule("MA", NumberKind.FIXED), DestinationRule("MA", NumberKind.MOBILE)}
)
TUNISIA = frozenset(
    {DestinationRule("TN", NumberKind.FIXED), DestinationRule("TN", NumberKind.MOBILE)}
)


def plan(code: str, period: Period, price: str, destinations: frozenset[DestinationRule]) -> Plan:
    return Plan(code, {"fr": code, "en": code}, period, Money(Decimal(price), "EUR"), destinations)


PLANS = {
    p.code: p
    for p in (
        plan("maroc-semaine", Period.WEEK, "2.99", MOROCCO),
        plan("maroc-mois", Period.MONTH, "9.99", MOROCCO),
        plan("maroc-annee", Period.YEAR, "99.00", MOROCCO),
        plan("tunisie-mois", Period.MONTH, "4.99", TUNISIA),
    )
}
ENTITY = IssuingEntity(
    "FR1", "Tawasol SAS", "1 rue de la Paix, 75002 Paris", "123456789", "FR12123456789"
)
SETTINGS = BillingSettings(ENTITY, VatTable.parse("FR=20,MA=20,CA=5,BE=21"))
MAJOR_START = datetime(2026, 9, 7, 17, tzinfo=UTC)
MAJOR_END = datetime(2026, 9, 18, tzinfo=UTC)
PARTIAL_END = datetime(2026, 9, 25, tzinfo=UTC)
SEPTEMBER_OUTAGE = (
    OutagePeriod(1, OutageScope("MA"), MAJOR_START, MAJOR_END, OutageImpact.MAJOR),
    OutagePeriod(1, OutageScope("MA"), MAJOR_END, PARTIAL_END, OutageImpact.PARTIAL),
)
WEEKLY, MONTHLY, YEARLY, TUNISIAN = 1, 2, 3, 4


def subscription(number: int, plan_code: str, start: datetime) -> Subscription:
    plan_ = PLANS[plan_code]
    from tawasol.domain.billing.calendar import boundary

    end = boundary(start, plan_.period, 1, "Europe/Paris")
    return Subscription(number, number, plan_code, SubscriptionStatus.ACTIVE, start, end)


def customer(number: int, country: str = "FR", zone: str = "Europe/Paris") -> BillingCustomer:
    return BillingCustomer(
        number, f"Client {number}", f"c{number}@example.org", country, zone, "fr"
    )


def populate(store: InMemoryBillingStore, size: int) -> None:
    """The three worked subscribers, a Tunisian one, then `size` others (over 90 % Morocco)."""
    store.add(
        customer(WEEKLY), subscription(WEEKLY, "maroc-semaine", datetime(2026, 9, 1, tzinfo=PARIS))
    )
    store.add(
        customer(MONTHLY), subscription(MONTHLY, "maroc-mois", datetime(2026, 9, 1, tzinfo=PARIS))
    )
    store.add(
        customer(YEARLY), subscription(YEARLY, "maroc-annee", datetime(2025, 9, 10, tzinfo=PARIS))
    )
    store.add(
        customer(TUNISIAN),
        subscription(TUNISIAN, "tunisie-mois", datetime(2026, 9, 1, tzinfo=PARIS)),
    )
    draw = random.Random(14)
    codes = (
        ["maroc-semaine"] * 20 + ["maroc-mois"] * 64 + ["maroc-annee"] * 8 + ["tunisie-mois"] * 8
    )
    spans = {"maroc-semaine": 7, "maroc-mois": 30, "maroc-annee": 365, "tunisie-mois": 30}
    for number in range(5, size + 5):
        code = draw.choice(codes)
        start = datetime(2026, 8, 25, tzinfo=UTC) - timedelta(
            hours=draw.randrange(spans[code] * 24 - 24)
        )
        store.add(customer(number), subscription(number, code, start))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 8, 25, 6, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def replay(store: InMemoryBillingStore, clock: Clock, *, until: datetime) -> BillingRun:
    """A run every day at 06:00 UTC from the clock's time to `until`."""
    billing = BillingRun(
        store=store,
        plans=lambda: PLANS,
        outages=InMemoryOutageHistory(SEPTEMBER_OUTAGE, clock=clock),
        settings=SETTINGS,
    )
    while clock.now <= until:
        summary = billing.run(at=clock.now)
        assert summary.errors == []
        clock.now += timedelta(days=1)
    return billing


def credit_notes(store: InMemoryBillingStore, subscriber_id: int):
    return [
        d
        for d in store.documents(entity_code="FR1")
        if d.kind is DocumentKind.CREDIT_NOTE and d.subscriber_id == subscriber_id
    ]


def eur(amount: str) -> Decimal:
    return Decimal(amount)


@pytest.fixture(scope="module")
def september() -> InMemoryBillingStore:
    store = InMemoryBillingStore()
    populate(store, 50_000)
    replay(store, Clock(), until=datetime(2026, 10, 2, tzinfo=UTC))
    return store


def test_weekly_subscriber_credit_worked_by_hand(september):
    # Periods (UTC): 31 Aug 22:00 -> 7 Sep 22:00: 5 h of major -> 1 day -> 2.99 x 1/7 = 0.42;
    # 7 Sep 22:00 -> 14 Sep 22:00: all major -> 7 days -> 2.99;
    # renewal due 14 Sep 22:00 deferred (major for 173 h) to 18 Sep 00:00;
    # 18 Sep -> 25 Sep: partial 168 h x 0.5 = 84 h -> 4 days -> 2.99 x 4/7 = 1.70.
    (note,) = credit_notes(september, WEEKLY)
    assert [line.split.gross.amount for line in note.lines] == [
        eur("0.42"),
        eur("2.99"),
        eur("1.70"),
    ]
    assert note.total_gross.amount == eur("5.11")
    assert note.total_vat.amount == sum(
        (
            (line.split.gross.amount * Decimal("0.2") / Decimal("1.2")).quantize(Decimal("0.01"))
            for line in note.lines
        ),
        Decimal(0),
    )


def test_monthly_subscriber_credit_worked_by_hand(september):
    # 1 Sep -> 1 Oct Paris (30 days): 247 h major + 168 h x 0.5 = 331 h -> 14 days;
    # 9.99 x 14 / 30 = 4.662 -> 4.66.
    (note,) = credit_notes(september, MONTHLY)
    assert note.total_gross.amount == eur("4.66")


def test_yearly_subscriber_renewing_mid_outage_worked_by_hand(september):
    # Period 9 Sep 2025 22:00 -> 9 Sep 2026 22:00 UTC (365 d): 53 h major -> 3 days ->
    # 99 x 3/365 = 0.81; renewal due 9 Sep 22:00 deferred (53 h of major) to 18 Sep 00:00;
    # new period 18 Sep 2026 -> 18 Sep 2027 (365 d): 84 h -> 4 days -> 99 x 4/365 = 1.08.
    (note,) = credit_notes(september, YEARLY)
    assert [line.split.gross.amount for line in note.lines] == [eur("0.81"), eur("1.08")]
    invoices = [
        d
        for d in september.documents(entity_code="FR1")
        if d.kind is DocumentKind.INVOICE and d.subscriber_id == YEARLY
    ]
    assert [d.lines[0].period_start for d in invoices] == [
        datetime(2025, 9, 9, 22, tzinfo=UTC),
        MAJOR_END,
    ]
    assert september.subscription(YEARLY).period_end == datetime(2027, 9, 18, tzinfo=UTC)


def test_every_affected_subscriber_has_exactly_one_credit_note_and_tunisians_none(september):
    documents = september.documents(entity_code="FR1")
    notes = [d for d in documents if d.kind is DocumentKind.CREDIT_NOTE]
    per_subscriber = {}
    for note in notes:
        per_subscriber[note.subscriber_id] = per_subscriber.get(note.subscriber_id, 0) + 1
    assert set(per_subscriber.values()) == {1}
    moroccan = {
        s for s in range(1, 50_005) if september.subscription(s).plan_code != "tunisie-mois"
    }
    tunisian = set(range(1, 50_005)) - moroccan
    assert set(per_subscriber) == moroccan
    assert not tunisian & set(per_subscriber)
    assert len(moroccan) > 0.9 * 50_004
    # The credits report's total is the sum of the credit notes.
    assert credits_per_incident(documents) == {
        (1, "EUR"): sum((n.total_gross.amount for n in notes), Decimal(0))
    }


def test_no_renewal_was_charged_during_the_full_outage(september):
    deferral_starts = MAJOR_START + SETTINGS.credit_policy.renewal_deferral_after
    starts = [
        line.period_start
        for d in september.documents(entity_code="FR1")
        if d.kind is DocumentKind.INVOICE
        for line in d.lines
        if line.description.startswith("maroc")
    ]
    assert not [s for s in starts if deferral_starts < s < MAJOR_END]
    tunisian = [
        line.period_start
        for d in september.documents(entity_code="FR1")
        if d.kind is DocumentKind.INVOICE
        for line in d.lines
        if line.description.startswith("tunisie")
    ]
    assert [s for s in tunisian if deferral_starts < s < MAJOR_END]  # Tunisia worked
    assert MAJOR_END in starts  # the deferred renewals were charged when service came back


def test_credit_never_exceeds_the_price_paid_and_numbering_has_no_gap(september):
    documents = september.documents(entity_code="FR1")
    check_gap_free([d.sequence for d in documents])
    for note in (d for d in documents if d.kind is DocumentKind.CREDIT_NOTE):
        for line in note.lines:
            assert line.split.gross.amount <= PLANS_BY_NAME[line.description.split(":")[0]]


PLANS_BY_NAME = {p.code: p.price.amount for p in PLANS.values()}


def test_re_running_three_times_changes_nothing():
    store = InMemoryBillingStore()
    populate(store, 300)
    clock = Clock()
    billing = replay(store, clock, until=datetime(2026, 10, 2, tzinfo=UTC))
    before = (
        list(store.documents(entity_code="FR1")),
        [store.account(subscriber_id=s, currency="EUR").entries for s in range(1, 305)],
    )
    for _ in range(3):
        summary = billing.run(at=clock.now - timedelta(days=1))
        assert (summary.renewals, summary.credit_notes, summary.first_invoices) == (0, 0, 0)
    after = (
        list(store.documents(entity_code="FR1")),
        [store.account(subscriber_id=s, currency="EUR").entries for s in range(1, 305)],
    )
    assert after == before
    dry = billing.run(at=clock.now + timedelta(days=40), dry_run=True)
    assert dry.renewals > 0
    assert list(store.documents(entity_code="FR1")) == before[0]


def test_ledger_balance_is_charges_less_credits(september):
    account = september.account(subscriber_id=WEEKLY, currency="EUR")
    charges = account.total(EntryKind.CHARGE).amount
    assert charges == eur("2.99") * 4  # 31 Aug, 7 Sep, 18 Sep, 25 Sep; nothing on 14 Sep
    assert account.balance.amount == charges - eur("5.11")


def test_the_billing_job_runs_billing_until_stopped():
    import asyncio

    from tawasol.services.billing.schedule import BillingJob

    store = InMemoryBillingStore()
    populate(store, 10)
    clock = Clock()
    billing = BillingRun(
        store=store,
        plans=lambda: PLANS,
        outages=InMemoryOutageHistory((), clock=clock),
        settings=SETTINGS,
    )
    summaries = []
    job = BillingJob(
        billing_run=lambda: billing, clock=clock, interval_s=0.02, on_summary=summaries.append
    )

    async def three_rounds() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(job.run(stop))
        for _ in range(3000):  # bounded: 30 s at most
            if job.runs >= 3:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 30)

    asyncio.run(three_rounds())
    runs = job.runs
    assert runs >= 3
    assert summaries[0].first_invoices == 14
    assert all(s.first_invoices == 0 for s in summaries[1:])
    time.sleep(0.1)
    assert job.runs == runs  # stopped for good


def test_credits_of_two_incidents_never_exceed_what_was_paid_for_the_period():
    # Two incidents, each a major outage of Morocco for most of September: each alone would
    # credit 9.99 x 28/30 = 9.32 (28 days of a 30-day period); together at most the 9.99
    # paid, so the second gets the 0.67 left.
    store = InMemoryBillingStore()
    store.add(
        customer(MONTHLY), subscription(MONTHLY, "maroc-mois", datetime(2026, 9, 1, tzinfo=PARIS))
    )
    periods = [
        OutagePeriod(
            number,
            OutageScope("MA"),
            datetime(2026, 9, 1, 12, tzinfo=UTC),
            datetime(2026, 9, 29, 12, tzinfo=UTC),
            OutageImpact.MAJOR,
        )
        for number in (5, 6)
    ]
    clock = Clock()
    clock.now = datetime(2026, 9, 1, 6, tzinfo=UTC)
    billing = BillingRun(
        store=store,
        plans=lambda: PLANS,
        outages=InMemoryOutageHistory(periods, clock=clock),
        settings=SETTINGS,
    )
    billing.run(at=clock.now)
    clock.now = datetime(2026, 9, 30, 6, tzinfo=UTC)
    summary = billing.run(at=clock.now)
    assert summary.credit_notes == 2
    notes = credit_notes(store, MONTHLY)
    assert [n.total_gross.amount for n in notes] == [eur("9.32"), eur("0.67")]
    account = store.account(subscriber_id=MONTHLY, currency="EUR")
    assert account.total(EntryKind.CREDIT) <= account.total(EntryKind.CHARGE)
    assert billing.run(at=clock.now).credit_notes == 0
