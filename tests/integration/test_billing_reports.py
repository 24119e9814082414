"""Revenue per plan, carrier cost and margin per plan and destination, on SQLite and
PostgreSQL, against figures worked out by hand (issue 14, item 6)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from support.stores import a_new_subscriber, a_plan, postgres_schema
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.adapters.store.billing_memory import InMemoryOutageHistory
from tawasol.adapters.store.billing_reports_sql import SqlReportQueries
from tawasol.adapters.store.billing_sql import SqlBillingStore
from tawasol.adapters.store.models import CallRow, CarrierRow
from tawasol.domain.billing.documents import IssuingEntity
from tawasol.domain.billing.lifecycle import CancelReason, RefundPolicy
from tawasol.domain.billing.margins import MarginRow, flat_fee_share
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.errors import InvalidConfiguration, InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.billing.lifecycle import SubscriptionLifecycle, Timing
from tawasol.services.billing.reports import BillingReports
from tawasol.services.billing.run import BillingRun, BillingSettings

ENTITY = IssuingEntity(
    "FR1", "Tawasol SAS", "1 rue de la Paix, 75002 Paris", "123456789", "FR12123456789"
)
VAT = VatTable.parse("FR=20")
SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
OCT_1 = datetime(2026, 10, 1, tzinfo=UTC)
PLANS = {
    "maroc-illimite": a_plan(time_windows=()),
    "maroc-plus": a_plan("maroc-plus", time_windows=(), price=Money(Decimal("14.99"), "EUR")),
}


def _call(number: int, subscription_id: int, country: str, carrier: str, minutes: int, cost):
    started = SEP_1 + timedelta(days=2, hours=number)
    return CallRow(
        call_id=f"call-{number}",
        started_at=started,
        sip_username="x",
        dialled="0",
        subscription_id=subscription_id,
        destination="+0",
        country=country,
        kind="mobile",
        answered_at=started,
        ended_at=started + timedelta(minutes=minutes),
        duration_ms=minutes * 60_000,
        carrier=carrier,
        cost_amount=cost,
        cost_currency="EUR" if cost is not None else None,
    )


def _billed_from_september_1(
    url: str, who: tuple[tuple[str, str], ...]
) -> tuple[SqlStore, SubscriptionLifecycle, list[tuple[int, int]]]:
    """Subscribers (FR) on their plans from 1 September, billed that day: the store, the
    lifecycle commands and each one's (subscriber id, subscription id)."""
    migrate(url)
    store = SqlStore.from_url(url)
    for plan in PLANS.values():
        store.save_plan(plan)
    ids = []
    for name, plan in who:
        subscriber = store.add_subscriber(a_new_subscriber(name))
        subscription = store.add_subscription(
            subscriber_id=subscriber.id,
            plan_code=plan,
            status=SubscriptionStatus.ACTIVE,
            period_start=SEP_1,
            period_end=OCT_1,
        )
        ids.append((subscriber.id, subscription.id))
    billing = SqlBillingStore(store.engine)
    run = BillingRun(
        store=billing,
        plans=lambda: PLANS,
        outages=InMemoryOutageHistory([]),
        settings=BillingSettings(ENTITY, VAT),
    )
    run.run(at=SEP_1)
    return store, SubscriptionLifecycle(store=billing, run=run, refund_policy=RefundPolicy()), ids


def _seeded(url: str) -> Iterator[SqlReportQueries]:
    """Amina (FR) on maroc-illimite, cancelled by the operator on 16 September; Karim (FR) on
    maroc-plus; a per-minute carrier `atlas` and a flat-rate one `forfait` at 300 EUR/month."""
    store, lifecycle, ids = _billed_from_september_1(
        url, (("amina", "maroc-illimite"), ("karim", "maroc-plus"))
    )
    lifecycle.cancel(
        subscriber_id=ids[0][0],
        timing=Timing.NOW,
        reason=CancelReason.OPERATOR,
        at=datetime(2026, 9, 16, tzinfo=UTC),
    )
    amina, karim = ids[0][1], ids[1][1]
    with Session(store.engine) as session, session.begin():
        for code, fee in (("atlas", None), ("forfait", Decimal("300.00"))):
            session.add(
                CarrierRow(
                    code=code,
                    name=code,
                    number_format="e164",
                    enabled=True,
                    flat_rate_channels=10 if fee else None,
                    flat_rate_fee_amount=fee,
                    flat_rate_fee_currency="EUR" if fee else None,
                )
            )
        session.add_all(
            [
                _call(1, karim, "MA", "atlas", 30, Decimal("0.60")),
                _call(2, karim, "MA", "forfait", 90, None),
                _call(3, karim, "TN", "atlas", 30, Decimal("0.45")),
                _call(4, amina, "MA", "forfait", 30, None),
            ]
        )
    try:
        yield SqlReportQueries(store.engine)
    finally:
        store.close()


def _on_each_database(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    seed: Callable[[str], Iterator[SqlReportQueries]],
) -> Iterator[SqlReportQueries]:
    if request.param == "sqlite":
        yield from seed(sqlite_url_for(tmp_path))
    else:
        with postgres_schema() as url:
            yield from seed(url)


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def queries(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlReportQueries]:
    yield from _on_each_database(request, tmp_path, _seeded)


def test_given_september_then_revenue_per_plan_is_invoiced_less_credited_net_of_vat(
    queries: SqlReportQueries,
):
    report = BillingReports(queries=queries, vat=VAT).period(start=SEP_1, end=OCT_1)

    rows = {row.plan_code: row for row in report.revenue}
    # maroc-illimite: 9.99 charged, 4.99 credited (15 of 30 days unused) = 5.00 gross;
    # VAT 5.00 x 0.2 / 1.2 = 0.8333 -> 0.83; net 4.17.
    illimite = rows["maroc-illimite"]
    assert (illimite.charged, illimite.credited) == (Decimal("9.99"), Decimal("4.99"))
    assert (illimite.vat, illimite.net) == (Decimal("0.83"), Decimal("4.17"))
    # maroc-plus: 14.99; VAT 14.99 / 6 = 2.4983 -> 2.50; net 12.49.
    assert (rows["maroc-plus"].vat, rows["maroc-plus"].net) == (Decimal("2.50"), Decimal("12.49"))


def test_given_september_then_margin_per_plan_and_destination_spreads_revenue_and_fees(
    queries: SqlReportQueries,
):
    report = BillingReports(queries=queries, vat=VAT).period(start=SEP_1, end=OCT_1)

    rows = {(row.plan_code, row.destination): row for row in report.margins}
    assert set(rows) == {("maroc-illimite", "MA"), ("maroc-plus", "MA"), ("maroc-plus", "TN")}
    # The flat-rate fee, whole month: 300; its 120 minutes: Karim 90 (MA), Amina 30 (MA).
    assert report.flat_fees == {"forfait": Money(Decimal("300.00"), "EUR")}
    amina = rows[("maroc-illimite", "MA")]
    assert (amina.minutes, amina.revenue, amina.cdr_cost) == (30, Decimal("4.17"), 0)
    assert amina.flat_rate_cost == Decimal("75")  # 300 x 30/120
    assert amina.margin == Decimal("-70.83")
    # maroc-plus: 150 minutes, 120 to MA and 30 to TN: revenue 12.49 x 120/150 = 9.992 and
    # 12.49 x 30/150 = 2.498; MA costs 0.60 (CDR) + 225 (300 x 90/120); TN 0.45 (CDR).
    morocco, tunisia = rows[("maroc-plus", "MA")], rows[("maroc-plus", "TN")]
    assert (morocco.minutes, morocco.revenue) == (120, Decimal("9.992"))
    assert (morocco.cdr_cost, morocco.flat_rate_cost) == (Decimal("0.60"), Decimal("225"))
    assert morocco.margin == Decimal("-215.608")
    assert (tunisia.revenue, tunisia.cost, tunisia.margin) == (
        Decimal("2.498"),
        Decimal("0.45"),
        Decimal("2.048"),
    )
    total_revenue = sum((row.revenue for row in report.margins), Decimal(0))
    assert total_revenue == sum((row.net for row in report.revenue), Decimal(0))


def test_given_a_ten_day_period_then_the_flat_fee_is_spread_and_calls_outside_left_out(
    queries: SqlReportQueries,
):
    report = BillingReports(queries=queries, vat=VAT).period(
        start=SEP_1, end=datetime(2026, 9, 11, tzinfo=UTC)
    )
    assert report.flat_fees["forfait"] == Money(Decimal(100), "EUR")  # 300 x 10/30
    # The credit of 16 September is outside: maroc-illimite is 9.99 charged, nothing credited.
    illimite = next(row for row in report.revenue if row.plan_code == "maroc-illimite")
    assert illimite.credited == 0


def test_flat_fee_share_across_months_counts_each_months_own_length():
    fee = Money(Decimal("310"), "EUR")
    # 31 January (1/31 of January) + 1 February (1/28 of February in 2026)
    share = flat_fee_share(fee, datetime(2026, 1, 31, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC))
    assert share.amount == Decimal("310") / 31 + Decimal("310") * 1 / 28


def test_given_bad_periods_or_a_missing_vat_rate_then_clear_errors(queries: SqlReportQueries):
    reports = BillingReports(queries=queries, vat=VAT)
    with pytest.raises(InvalidInput, match="ends after it starts"):
        reports.period(start=OCT_1, end=SEP_1)
    with pytest.raises(InvalidInput, match="time zone"):
        reports.period(start=datetime(2026, 9, 1), end=datetime(2026, 10, 1))
    with pytest.raises(InvalidConfiguration, match="no VAT rate is configured for FR"):
        BillingReports(queries=queries, vat=VatTable.parse("BE=21")).period(start=SEP_1, end=OCT_1)
    assert isinstance(MarginRow, type)


def _plan_changed_mid_september(url: str) -> Iterator[SqlReportQueries]:
    """Nadia (FR) on maroc-illimite from 1 September, moved to maroc-plus on the 16th at
    00:00 (plan change now, the subscription kept); three answered calls on `atlas`: to
    Morocco on the 3rd (old plan), to Morocco and Tunisia on the 20th (new plan)."""
    store, lifecycle, [(subscriber_id, subscription_id)] = _billed_from_september_1(
        url, (("nadia", "maroc-illimite"),)
    )
    lifecycle.change_plan(
        subscriber_id=subscriber_id,
        plan_code="maroc-plus",
        timing=Timing.NOW,
        at=datetime(2026, 9, 16, tzinfo=UTC),
    )
    with Session(store.engine) as session, session.begin():
        session.add(CarrierRow(code="atlas", name="atlas", number_format="e164", enabled=True))
        # _call(n, ...) starts on 3 September at n o'clock (n < 24) or n hours later.
        session.add_all(
            [
                _call(1, subscription_id, "MA", "atlas", 30, Decimal("0.60")),
                _call(17 * 24 + 1, subscription_id, "MA", "atlas", 60, Decimal("1.20")),
                _call(17 * 24 + 3, subscription_id, "TN", "atlas", 30, Decimal("0.45")),
            ]
        )
    try:
        yield SqlReportQueries(store.engine)
    finally:
        store.close()


@pytest.fixture(params=DATABASES)
def plan_change_queries(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[SqlReportQueries]:
    yield from _on_each_database(request, tmp_path, _plan_changed_mid_september)


def test_given_a_plan_change_mid_period_then_each_call_counts_for_the_plan_of_its_start(
    plan_change_queries: SqlReportQueries,
):
    report = BillingReports(queries=plan_change_queries, vat=VAT).period(start=SEP_1, end=OCT_1)

    revenue = {row.plan_code: row for row in report.revenue}
    # maroc-illimite: 9.99 charged, 4.99 credited (15 of 30 days unused: 4.995 rounded down),
    # 5.00 gross: VAT 0.83, net 4.17. maroc-plus: 14.99 from the 16th: VAT 2.50, net 12.49.
    assert (revenue["maroc-illimite"].credited, revenue["maroc-illimite"].net) == (
        Decimal("4.99"),
        Decimal("4.17"),
    )
    assert revenue["maroc-plus"].net == Decimal("12.49")
    rows = {(row.plan_code, row.destination): row for row in report.margins}
    # The call of the 3rd was made on maroc-illimite: its 30 minutes carry that plan's whole
    # revenue, and its cost; nothing of maroc-illimite is left unallocated.
    assert set(rows) == {("maroc-illimite", "MA"), ("maroc-plus", "MA"), ("maroc-plus", "TN")}
    old = rows[("maroc-illimite", "MA")]
    assert (old.minutes, old.revenue, old.cdr_cost) == (30, Decimal("4.17"), Decimal("0.60"))
    assert old.margin == Decimal("3.57")
    # maroc-plus: 90 minutes from the 20th, 60 to Morocco and 30 to Tunisia.
    morocco, tunisia = rows[("maroc-plus", "MA")], rows[("maroc-plus", "TN")]
    assert (morocco.minutes, tunisia.minutes) == (60, 30)
    assert morocco.revenue.quantize(Decimal("0.000001")) == Decimal("8.326667")  # 12.49 x 2/3
    assert tunisia.revenue.quantize(Decimal("0.000001")) == Decimal("4.163333")  # 12.49 x 1/3
    assert (morocco.cdr_cost, tunisia.cdr_cost) == (Decimal("1.20"), Decimal("0.45"))
    assert morocco.margin.quantize(Decimal("0.01")) == Decimal("7.13")
    assert tunisia.margin.quantize(Decimal("0.01")) == Decimal("3.71")
