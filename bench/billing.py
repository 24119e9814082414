"""The billing run on PostgreSQL at scale: 1,000,000 generated subscribers, three incidents.

Builds a schema of its own in the PostgreSQL database (dropped afterwards, even on failure),
generates the operator with COPY (timed apart), then runs `BillingRun` once at the end of
September 2026 over:

- subscribers living in France, Belgium, Morocco, Tunisia and Senegal (their country of
  residence, which VAT follows), time zones of each; 90% on Morocco plans (weekly 30%, monthly
  60%, yearly 10%), the rest on Tunisia or Senegal plans; 97% with their current period paid
  (billing terms, a paid period, its account and charge), period ends spread over September
  (weekly ones in its last week, yearly ones over the year, so about one in twelve is due);
  3% signed up in September and not billed yet (their first invoice, then their renewals when
  due);
- three incidents: the full Morocco outage from the 7th at 17:00 to the 18th, then half
  capacity to the 25th (renewals due during it are deferred, then credited); Tunisian mobiles
  down on the 20th-22nd; Senegal down for three hours on the 14th (under the credit threshold).

Prints, in Markdown: generation time, the run's wall-clock and CPU time (this process, and every
PostgreSQL backend on the machine: other sessions' work counts too), steps per second, and the
baseline: the same run one subscription per transaction (`BillingRun(bulk=False)`) on a smaller
generated operator, extrapolated per subscriber. The machine is shared: wall-clock figures move
with the other users' load (printed); CPU times move less.

    .venv/bin/python bench/billing.py [--subscribers 1000000] [--baseline 2000] [--keep]
        [--profile FILE]

`--profile FILE` writes where the bulk run's time goes: each statement's count and wall time,
and the plan PostgreSQL ran for each slow write (`EXPLAIN (ANALYZE, BUFFERS)`, which executes
it: the writes happen as without it, a little slower).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import resource
import signal
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from tawasol.adapters.store import SqlStore, migrate
from tawasol.adapters.store.billing_memory import InMemoryOutageHistory
from tawasol.adapters.store.billing_sql import SqlBillingStore
from tawasol.domain.billing.documents import IssuingEntity
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import DestinationRule, Period, Plan
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope
from tawasol.services.billing.run import BillingRun, BillingSettings, RunSummary

POSTGRES_URL = os.environ.get(
    "TAWASOL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
ENTITY = IssuingEntity("FR1", "Tawasol SAS", "1 rue de la Paix, Paris", "123456789", "FR12")
SETTINGS = BillingSettings(ENTITY, VatTable.parse("FR=20,BE=21,MA=20,TN=19,SN=18"))
SEP_1 = datetime(2026, 9, 1, tzinfo=UTC)
RUN_AT = datetime(2026, 10, 1, 6, tzinfo=UTC)

MA = frozenset({DestinationRule("MA", NumberKind.FIXED), DestinationRule("MA", NumberKind.MOBILE)})
TN = frozenset({DestinationRule("TN", NumberKind.FIXED_OR_MOBILE)})
SN = frozenset({DestinationRule("SN", NumberKind.FIXED), DestinationRule("SN", NumberKind.MOBILE)})


def _plan(code: str, period: Period, price: str, rules: frozenset[DestinationRule]) -> Plan:
    names = {"fr": f"{code} (fr)", "en": f"{code} (en)", "ar": f"{code} (ar)"}
    return Plan(code, names, period, Money(Decimal(price), "EUR"), rules)


PLANS = {
    plan.code: plan
    for plan in (
        _plan("maroc-semaine", Period.WEEK, "2.99", MA),
        _plan("maroc-mois", Period.MONTH, "9.99", MA),
        _plan("maroc-an", Period.YEAR, "99.00", MA),
        _plan("tunisie-mois", Period.MONTH, "7.49", TN),
        _plan("senegal-mois", Period.MONTH, "8.99", SN),
    )
}
OUTAGES = (
    OutagePeriod(
        1,
        OutageScope("MA"),
        datetime(2026, 9, 7, 17, tzinfo=UTC),
        datetime(2026, 9, 18, tzinfo=UTC),
        OutageImpact.MAJOR,
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
        datetime(2026, 9, 20, 8, tzinfo=UTC),
        datetime(2026, 9, 22, 2, tzinfo=UTC),
        OutageImpact.MAJOR,
    ),
    OutagePeriod(
        3,
        OutageScope("SN"),
        datetime(2026, 9, 14, 9, tzinfo=UTC),
        datetime(2026, 9, 14, 12, tzinfo=UTC),
        OutageImpact.MAJOR,
    ),
)
# (phone pattern, time zone, country of residence, share): where subscribers live.
HOMES = (
    ("+336{:08d}", "Europe/Paris", "FR", 0.70),
    ("+324{:08d}", "Europe/Brussels", "BE", 0.10),
    ("+2126{:08d}", "Africa/Casablanca", "MA", 0.10),
    ("+2165{:07d}", "Africa/Tunis", "TN", 0.05),
    ("+2217{:08d}", "Africa/Dakar", "SN", 0.05),
)
NEW_SHARE = 0.03  # signed up in September, not billed yet


@contextmanager
def bench_schema(keep: bool) -> Iterator[str]:
    """A schema of its own (tests and other engineers use the same database)."""
    schema = f"bench_billing_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        try:
            url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
            yield url.render_as_string(hide_password=False)
        finally:
            if not keep:
                with admin.begin() as connection:
                    connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            else:
                print(f"kept schema {schema}", file=sys.stderr)
    finally:
        admin.dispose()


def _choose(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    point, total = rng.random(), 0.0
    for value, share in weighted:
        total += share
        if point < total:
            return value
    return weighted[-1][0]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def generate(url: str, count: int, *, seed: int = 14, new_share: float = NEW_SHARE) -> None:
    """The operator: plans through the store, subscribers and their billing state by COPY."""
    migrate(url)
    store = SqlStore.from_url(url)
    try:
        for plan in PLANS.values():
            store.save_plan(plan)
    finally:
        store.close()
    rng = random.Random(seed)
    plan_shares = (
        ("maroc-semaine", 0.27),
        ("maroc-mois", 0.54),
        ("maroc-an", 0.09),
        ("tunisie-mois", 0.06),
        ("senegal-mois", 0.04),
    )
    homes = tuple((f"{phone}|{zone}|{country}", share) for phone, zone, country, share in HOMES)
    subscribers, subscriptions, terms, paid, accounts, entries = (io.StringIO() for _ in range(6))
    for number in range(1, count + 1):
        phone_pattern, zone, country = _choose(rng, homes).split("|")
        phone = phone_pattern.format(number % 10**7)
        locale = rng.choice(("fr", "fr", "ar", "en"))
        email = f"s{number}@example.org" if number % 20 else ""
        subscribers.write(
            f"{number}\tSubscriber {number}\t{email}\t{phone}\t{locale}\t{zone}\tsip{number}\t"
            f"{'0' * 32}\t[]\t{country}\n"
        )
        code = _choose(rng, plan_shares)
        plan = PLANS[code]
        if plan.period is Period.WEEK:
            end = SEP_1 + timedelta(days=23, seconds=rng.randrange(7 * 86400))
            start = end - timedelta(days=7)
        elif plan.period is Period.MONTH:
            end = SEP_1 + timedelta(seconds=rng.randrange(30 * 86400))
            start = end - timedelta(days=31)
        else:
            end = SEP_1 + timedelta(seconds=rng.randrange(365 * 86400))
            start = end - timedelta(days=365)
        subscriptions.write(
            f"{number}\t{number}\t{code}\tactive\t{_iso(start)}\t{_iso(end)}\t{_iso(start)}\n"
        )
        if rng.random() < new_share:
            continue  # billing has not met it yet
        price = plan.price.amount
        terms.write(f"{number}\t{_iso(start)}\t0\t{price}\tEUR\t\\N\tf\t\\N\n")
        paid.write(
            f"{number}\t{number}\t{code}\t0\t{_iso(start)}\t{_iso(end)}\t{price}\tEUR\t"
            f"first:{number}\n"
        )
        # The account and the charge of that first period, as billing wrote them.
        accounts.write(f"{number}\t{number}\tEUR\n")
        entries.write(
            f"{number}\tcharge\t{price}\tfirst:{number}\t{_iso(start)}\tfirst:{number}\t\n"
        )
    engine = create_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            # The rows are consistent by construction: foreign-key triggers (one check per
            # row) would only slow the COPY down; ANALYZE below sees the data as it is.
            cursor.execute("SET session_replication_role = replica")
            for table, columns, buffer in (
                (
                    "subscribers",
                    "id, name, email, phone, locale, time_zone, sip_username, ha1, caller_ids, "
                    "country",
                    subscribers,
                ),
                (
                    "subscriptions",
                    "id, subscriber_id, plan_code, status, period_start, period_end, created_at",
                    subscriptions,
                ),
                (
                    "billing_terms",
                    "subscription_id, anchor, period_index, price_paid, currency, "
                    "next_plan_code, cancel_at_period_end, paused_at",
                    terms,
                ),
                ("billing_accounts", "id, subscriber_id, currency", accounts),
                (
                    "ledger_entries",
                    "account_id, kind, amount, idempotency_key, recorded_at, reference, "
                    "description",
                    entries,
                ),
                (
                    "billing_paid_periods",
                    'subscription_id, subscriber_id, plan_code, period_index, start, "end", '
                    "price_paid, currency, charge_key",
                    paid,
                ),
            ):
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    copy.write(buffer.getvalue())
            for table in ("subscribers", "subscriptions", "billing_accounts"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {count})")
            cursor.execute("SET session_replication_role = DEFAULT")
            cursor.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()


def backend_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) used so far by every PostgreSQL backend on this machine
    (from /proc; the bench's share is the difference around its run)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as comm:
                if not comm.read().startswith("postgres"):
                    continue
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# Writes whose plan is worth reading (EXPLAIN ANALYZE executes them: nothing is lost).
_EXPLAINABLE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|CREATE TEMP TABLE \w+ (ON COMMIT DROP )?AS)")


class StatementProfile:
    """Wall time per statement on an engine and the plans of slow writes."""

    def __init__(self, engine: Engine) -> None:
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.plans: list[tuple[float, str, str]] = []
        event.listen(engine, "before_cursor_execute", self._before, retval=True)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, connection, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        explain = (
            not executemany
            and _EXPLAINABLE.match(statement) is not None
            and "RETURNING" not in statement.upper()
        )
        connection.info["bench_explain"] = explain
        connection.info["bench_started"] = time.perf_counter()
        if explain:
            statement = "EXPLAIN (ANALYZE, BUFFERS) " + statement
        return statement, parameters

    def _after(self, connection, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        elapsed = time.perf_counter() - connection.info.pop("bench_started")
        text = " ".join(statement.split())
        total = self.totals[text[:160]]
        total[0] += 1
        total[1] += elapsed
        if connection.info.pop("bench_explain", False):
            plan = "\n".join(row[0] for row in cursor.fetchall())
            if elapsed >= 0.5:
                self.plans.append((elapsed, text, plan))

    def write(self, path: str) -> None:
        with open(path, "w") as out:
            out.write("| seconds | count | statement |\n|---:|---:|---|\n")
            for text, (count, seconds) in sorted(self.totals.items(), key=lambda i: -i[1][1])[:40]:
                out.write(f"| {seconds:.2f} | {count:.0f} | `{text}` |\n")
            for elapsed, text, plan in sorted(self.plans, key=lambda i: -i[0])[:25]:
                out.write(f"\n## {elapsed:.2f} s\n\n{text}\n\n{plan}\n")


def bill(
    url: str, *, bulk: bool, profile: str | None = None
) -> tuple[RunSummary, float, float, float]:
    """One run at RUN_AT: (summary, wall s, this process's CPU s, PostgreSQL CPU s)."""
    store = SqlBillingStore.from_url(url)
    statements = StatementProfile(store.engine) if profile else None
    try:
        run = BillingRun(
            store=store,
            plans=lambda: PLANS,
            outages=InMemoryOutageHistory(OUTAGES),
            settings=SETTINGS,
            bulk=bulk,
        )
        wall, cpu, pg = time.perf_counter(), process_cpu_seconds(), backend_cpu_seconds(url)
        summary = run.run(at=RUN_AT)
        if statements is not None and profile:
            statements.write(profile)
        return (
            summary,
            time.perf_counter() - wall,
            process_cpu_seconds() - cpu,
            backend_cpu_seconds(url) - pg,
        )
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--keep", action="store_true", help="keep the schemas (to look at)")
    parser.add_argument("--profile", help="write the bulk run's statements and plans here")
    parser.add_argument(
        "--new-share",
        type=float,
        default=NEW_SHARE,
        help="share of subscriptions not billed yet (first invoices)",
    )
    options = parser.parse_args()
    # A timeout's SIGTERM unwinds like Ctrl-C, so the bench's schema is dropped all the same.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not 1 <= options.subscribers <= 10_000_000 or not 0 <= options.baseline <= 100_000:
        parser.error("--subscribers 1..10,000,000 and --baseline 0..100,000")
    load = os.getloadavg()
    rows = []
    for label, count, bulk in (
        ("one by one (baseline)", options.baseline, False),
        ("bulk", options.subscribers, True),
    ):
        if not count:
            continue
        with bench_schema(options.keep) as url:
            started = time.perf_counter()
            generate(url, count, new_share=options.new_share)
            generated = time.perf_counter() - started
            print(f"{label}: generated {count:,} in {generated:.1f} s", file=sys.stderr)
            summary, wall, cpu, pg_cpu = bill(
                url, bulk=bulk, profile=options.profile if bulk else None
            )
            print(f"{label}: billed in {wall:.1f} s", file=sys.stderr)
        steps = summary.first_invoices + summary.renewals + summary.credit_notes
        rows.append((label, count, generated, summary, wall, cpu, pg_cpu, steps))
    print(
        f"\n## Billing run on PostgreSQL (load average before: {load[0]:.1f}, "
        f"{os.cpu_count()} cores)\n"
    )
    print(
        "| path | subscribers | generate (COPY) s | run wall s | run CPU s (Python + "
        "PostgreSQL) | first invoices | renewals | deferred | credit notes | errors "
        "| steps/s (wall) "
        "| wall s per 1M subscribers |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, count, generated, summary, wall, cpu, pg_cpu, steps in rows:
        print(
            f"| {label} | {count:,} | {generated:.1f} | {wall:.1f} | {cpu:.1f} + {pg_cpu:.1f} "
            f"| {summary.first_invoices:,} | {summary.renewals:,} | {summary.deferred:,} "
            f"| {summary.credit_notes:,} "
            f"| {len(summary.errors)} | {steps / wall:,.0f} | {wall / count * 1e6:,.0f} |"
        )
    if len(rows) == 2:
        base, fast = rows
        print(
            f"\nPer subscriber, the bulk run is {base[4] / base[1] / (fast[4] / fast[1]):.0f}x "
            "faster in wall-clock time than one transaction per step (the baseline, extrapolated "
            "linearly to the same count)."
        )
    print(f"\nLoad average after: {os.getloadavg()[0]:.1f}. Target: 1,000,000 in under 60 s.")


if __name__ == "__main__":
    main()
