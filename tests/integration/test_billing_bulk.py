"""The bulk billing path (set-based SQL on PostgreSQL) against the one-by-one path of
`BillingRun`: the same random subscribers billed both ways must end with the same ledger, the
same documents (numbered without gap in both), the same periods and terms.

Subscribers are drawn at random (seeded) across time zones with DST changes, anchors on month
ends, 29 February and inside DST transitions, weekly, monthly and yearly plans for Morocco,
Tunisia or both, some still pending payment, a third of them business customers (Factur-X
documents), with a long full Morocco outage (renewals deferred), a partial one, and a second
incident on Tunisia; the first run invoices every subscription's first period, the run is then
missed for months (catch-up) and re-run.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from support.stores import a_new_subscriber, postgres_schema
from tawasol.adapters.store import SqlStore, migrate
from tawasol.adapters.store.billing_bulk import PostgresBulkBilling
from tawasol.adapters.store.billing_memory import InMemoryOutageHistory
from tawasol.adapters.store.billing_sql import SqlBillingStore
from tawasol.domain.billing.documents import IssuingEntity, check_gap_free
from tawasol.domain.billing.outage_credits import (
    CreditPolicy,
    renewal_deferral_windows,
    renewal_deferred_until,
)
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import DestinationRule, Period, Plan
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.billing.ports import BulkOutcome
from tawasol.services.billing.run import BillingRun, BillingSettings, RunSummary

pytestmark = pytest.mark.postgres

ENTITY = IssuingEntity("FR1", "Tawasol SAS", "1 rue de la Paix, Paris", "123456789", "FR1212")
SETTINGS = BillingSettings(ENTITY, VatTable.parse("FR=20,MA=20,TN=19,SN=18"))
MA = frozenset({DestinationRule("MA", NumberKind.FIXED), DestinationRule("MA", NumberKind.MOBILE)})
TN = frozenset({DestinationRule("TN", NumberKind.FIXED_OR_MOBILE)})


def _plan(code: str, period: Period, price: str, rules: frozenset[DestinationRule]) -> Plan:
    names = {"fr": f"{code} (fr)", "en": f"{code} (en)", "ar": f"{code} (ar)"}
    return Plan(code, names, period, Money(Decimal(price), "EUR"), rules)


PLANS = {
    plan.code: plan
    for plan in (
        _plan("ma-week", Period.WEEK, "2.99", MA),
        _plan("ma-month", Period.MONTH, "9.99", MA),
        _plan("ma-year", Period.YEAR, "99.00", MA),
        _plan("tn-month", Period.MONTH, "7.49", TN),
        _plan("maghreb-month", Period.MONTH, "14.99", MA | TN),
    )
}
ZONES = ("Africa/Casablanca", "Europe/Paris", "America/New_York", "Africa/Tunis", "Africa/Dakar")
# (phone, country of residence): VAT follows the country, never the phone. The last ones live
# in Belgium (no VAT rate here) or somewhere unknown: errors of both paths.
PHONES = (
    ("+2126{:08d}", "MA"),
    ("+2165{:07d}", "TN"),
    ("+336{:08d}", "FR"),
    ("+2217{:08d}", "SN"),
    ("+1999{:07d}", "BE"),
)
# Subscribers per world: the one-by-one path costs a few transactions per step (BB_COUNT to try
# more or fewer locally).
COUNT = int(os.environ.get("BB_COUNT", "300"))
SEP_7 = datetime(2026, 9, 7, 17, tzinfo=UTC)
OUTAGES = (
    OutagePeriod(
        1, OutageScope("MA"), SEP_7, datetime(2026, 9, 18, tzinfo=UTC), OutageImpact.MAJOR
    ),
    OutagePeriod(
        1,
        OutageScope("MA"),
        datetime(2026, 9, 18, tzinfo=UTC),
        datetime(2026, 9, 25, tzinfo=UTC),
        OutageImpact.PARTIAL,
    ),
    OutagePeriod(
        2,
        OutageScope("TN", NumberKind.MOBILE),
        datetime(2026, 9, 20, 8, 30, 15, tzinfo=UTC),
        datetime(2026, 9, 22, 2, tzinfo=UTC),
        OutageImpact.MAJOR,
    ),
    OutagePeriod(
        3,
        OutageScope("MA", NumberKind.FIXED, "Maroc Telecom"),
        datetime(2026, 10, 3, tzinfo=UTC),
        datetime(2026, 10, 4, 12, tzinfo=UTC),
        OutageImpact.PARTIAL,
    ),
)


def _anchor(rng: random.Random, zone: str) -> datetime:
    """A first period start in August 2026, often on an awkward day or hour."""
    local = ZoneInfo(zone)
    choice = rng.random()
    if choice < 0.2:  # a month end
        wall = datetime(2026, rng.choice((1, 3, 5, 7, 8)), 31, rng.randrange(24), rng.randrange(60))
        wall = wall.replace(year=2026)
    elif choice < 0.3:  # 29 February (yearly plans renew on the 28th)
        wall = datetime(2024, 2, 29, rng.randrange(24))
    elif choice < 0.45:  # inside a DST change (Paris, New York)
        wall = rng.choice(
            (
                datetime(2026, 3, 29, 2, 30),
                datetime(2025, 10, 26, 2, 30),
                datetime(2026, 3, 8, 2, 15),
            )
        )
    else:
        wall = datetime(2026, 8, 1) + timedelta(seconds=rng.randrange(31 * 86400))
    return wall.replace(tzinfo=local).astimezone(UTC)


def _world(url: str, seed: int, count: int) -> None:
    migrate(url)
    store = SqlStore.from_url(url)
    try:
        for plan in PLANS.values():
            store.save_plan(plan)
        rng = random.Random(seed)
        for number in range(count):
            zone = rng.choice(ZONES)
            pattern, country = rng.choice(PHONES)
            phone = pattern.format(rng.randrange(10**7))
            if country == "BE" and number % 2:
                country = None
            subscriber = store.add_subscriber(
                a_new_subscriber(
                    f"u{number}",
                    phone=phone,
                    country=country,
                    time_zone=zone,
                    locale=rng.choice(("fr", "ar", "en")),
                    email="" if number % 11 == 0 else f"u{number}@example.org",
                    business=number % 3 == 0,  # Factur-X documents on both paths
                )
            )
            code = rng.choice(list(PLANS))
            start = _anchor(rng, zone)
            first_end = start + {"ma-week": timedelta(days=7)}.get(code, timedelta(days=28))
            store.add_subscription(
                subscriber_id=subscriber.id,
                plan_code=code,
                # Some wait for their first payment: invoiced, never renewed.
                status=(
                    SubscriptionStatus.PENDING_PAYMENT
                    if number % 13 == 5
                    else SubscriptionStatus.ACTIVE
                ),
                period_start=start,
                period_end=first_end,
            )
    finally:
        store.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class RecordingStore(SqlBillingStore):
    """The SQL store, keeping what each bulk renewal pass did (to tell it from the one-by-one
    path, whose summary is the same)."""

    outcomes: list[BulkOutcome]

    def bulk_billing(self) -> PostgresBulkBilling | None:
        bulk = super().bulk_billing()
        if bulk is None:
            return None
        renew = bulk.renew_in_bulk

        def recorded(**arguments: Any) -> BulkOutcome:
            outcome = renew(**arguments)
            self.outcomes.append(outcome)
            return outcome

        bulk.renew_in_bulk = recorded  # type: ignore[method-assign]
        return bulk


def _bill(url: str, *, bulk: bool, moments: list[datetime]) -> list[RunSummary]:
    clock = Clock(moments[0])
    store = RecordingStore.from_url(url)
    store.outcomes = []
    try:
        run = BillingRun(
            store=store,
            plans=lambda: PLANS,
            outages=InMemoryOutageHistory(OUTAGES, clock=clock),
            settings=SETTINGS,
            bulk=bulk,
        )
        summaries = []
        for moment in moments:
            clock.now = moment
            summaries.append(run.run(at=moment))
            if bulk:  # the bulk path wrote every first invoice and renewal it could
                outcome = store.outcomes[-1]
                assert (outcome.first_invoices, outcome.applied) == (
                    summaries[-1].first_invoices,
                    summaries[-1].renewals,
                )
        return summaries
    finally:
        store.close()


def _state(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:

            def rows(query: str) -> list[tuple[Any, ...]]:
                return [tuple(row) for row in connection.execute(text(query))]

            documents = rows(
                "SELECT idempotency_key, kind, subscriber_id, issued_at, content::text "
                "FROM billing_documents ORDER BY idempotency_key"
            )
            return {
                "entries": rows(
                    "SELECT a.subscriber_id, a.currency, e.kind, e.amount, e.idempotency_key, "
                    "e.recorded_at, e.reference, e.description FROM ledger_entries e "
                    "JOIN billing_accounts a ON a.id = e.account_id ORDER BY e.idempotency_key"
                ),
                "documents": [
                    (key, kind, subscriber, issued, _content(content))
                    for key, kind, subscriber, issued, content in documents
                ],
                "sequences": rows("SELECT sequence FROM billing_documents ORDER BY sequence"),
                "numbers": rows("SELECT last_sequence FROM document_sequences"),
                "outbox": rows(
                    "SELECT d.idempotency_key, o.recipient FROM billing_outbox o "
                    "JOIN billing_documents d ON d.number = o.number ORDER BY 1"
                ),
                "steps": rows("SELECT idempotency_key FROM billing_steps ORDER BY 1"),
                "subscriptions": rows(
                    "SELECT id, plan_code, status, period_start, period_end FROM subscriptions "
                    "ORDER BY id"
                ),
                "terms": rows(
                    "SELECT subscription_id, anchor, period_index, price_paid, currency, "
                    "next_plan_code, cancel_at_period_end FROM billing_terms ORDER BY 1"
                ),
                "paid": rows(
                    'SELECT subscription_id, plan_code, period_index, start, "end", price_paid, '
                    "charge_key FROM billing_paid_periods ORDER BY charge_key"
                ),
            }
    finally:
        engine.dispose()


def _content(content: str) -> dict[str, Any]:
    import json

    value = json.loads(content)
    value.pop("account_id")  # accounts are numbered in the order each path creates them
    return value


@pytest.fixture
def two_worlds() -> Iterator[tuple[str, str]]:
    with postgres_schema() as one, postgres_schema() as other:
        yield one, other


def test_bulk_billing_equals_billing_one_by_one_on_random_subscribers(
    two_worlds: tuple[str, str],
) -> None:
    one_by_one, bulk = two_worlds
    moments = [
        datetime(2026, 8, 2, tzinfo=UTC),  # first invoices
        datetime(2026, 9, 10, tzinfo=UTC),  # during the full outage: renewals deferred
        datetime(2026, 12, 20, 13, tzinfo=UTC),  # months missed: catch up, credit incidents
        datetime(2026, 12, 20, 13, tzinfo=UTC),  # re-run: nothing new
    ]
    for url in two_worlds:
        _world(url, seed=20261130, count=COUNT)
    expected = _bill(one_by_one, bulk=False, moments=moments)
    got = _bill(bulk, bulk=True, moments=moments)
    reference, state = _state(one_by_one), _state(bulk)
    assert state["sequences"] == [(n,) for n in range(1, len(state["sequences"]) + 1)]
    check_gap_free([s for (s,) in reference["sequences"]])
    for part in reference:
        differences = [
            (have, want)
            for have, want in zip(state[part], reference[part], strict=False)
            if have != want
        ]
        for have, want in differences[:1]:
            print(f"{part}:\n bulk       {have}\n one by one {want}")
        assert differences == [], part
        assert len(state[part]) == len(reference[part]), part
    for want, have in zip(expected, got, strict=True):
        assert (
            have.first_invoices,
            have.renewals,
            have.deferred,
            have.credit_notes,
            have.errors,
        ) == (
            want.first_invoices,
            want.renewals,
            want.deferred,
            want.credit_notes,
            want.errors,
        )
        assert dict(have.charged) == dict(want.charged)
        assert dict(have.credited) == dict(want.credited)
    # Every subscription but those of Belgium (no VAT rate) or of an unknown country got its
    # first invoice in the first run.
    billable = [s for s in reference["subscriptions"] if s[2] in ("active", "pending_payment")]
    assert COUNT * 2 // 3 < got[0].first_invoices < len(billable)
    assert got[1].deferred > 0 and got[2].renewals > COUNT and got[2].credit_notes > COUNT // 6
    assert any("no VAT rate is configured for BE" in message for _, message in got[2].errors)
    assert any("country of residence is unknown" in message for _, message in got[2].errors)
    assert got[3].renewals == got[3].credit_notes == 0
    # business customers' renewals and credit notes are Factur-X on the bulk path too
    kinds = {(content["business"], kind) for _, kind, _, _, content in state["documents"]}
    assert {(True, "invoice"), (True, "credit_note"), (False, "invoice")} <= kinds


def test_deferral_windows_answer_as_renewal_deferred_until() -> None:
    policy = CreditPolicy()
    rng = random.Random(7)
    open_outage = (
        *OUTAGES,
        OutagePeriod(
            4, OutageScope("MA"), datetime(2026, 11, 1, tzinfo=UTC), None, OutageImpact.MAJOR
        ),
    )
    for plan in PLANS.values():
        windows = renewal_deferral_windows(
            periods=open_outage, plan_rules=plan.destinations, policy=policy
        )
        for _ in range(3000):
            due = datetime(2026, 9, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(100 * 86400))
            expected = renewal_deferred_until(
                due_at=due,
                periods=[p for p in open_outage if p.start <= due],
                plan_rules=plan.destinations,
                policy=policy,
            )
            found = [w for w in windows if w.start <= due and (w.end is None or due < w.end)]
            got = None if not found else (found[0].resume or due)
            assert got == expected, (plan.code, due)
