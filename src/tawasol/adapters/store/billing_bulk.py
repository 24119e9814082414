"""Billing many subscriptions per statement on PostgreSQL: renewals and outage credits.

`BillingRun` bills one subscription per transaction, which is right for a few thousand and far
too slow for a million (a transaction per step). This adapter applies the very same steps, with
the same idempotency keys, amounts, documents and numbering rules, set-based: one transaction
per slice of `SLICE` subscriptions, each slice whole or nothing.

What is computed where:
- the calendar (`tawasol.domain.billing.calendar.boundary`) in SQL: the anchor's wall-clock time
  in the subscriber's zone plus n weeks/months/years (PostgreSQL clamps the day to the month's
  end as the domain does), read back in UTC with the offset before a transition for a time that
  does not exist or exists twice (`fold=0`, RFC 5545 §3.3.5);
- outage weights, deferral windows, VAT splits and plan names by the domain in Python, once per
  plan, per incident or per distinct (amount, country), handed to SQL as small tables;
- the customer's country of residence from `subscribers.country` and whether a business
  (Factur-X documents) from `subscribers.business` (as the one-by-one path);
- document numbers: the entity's sequence row is locked (SELECT ... FOR UPDATE) for the slice's
  transaction and advanced by the number of documents it issues, numbered 1..n in subscription
  order: a crash rolls the slice back with its numbers, so the sequence never has a gap.

The tests compare this path with the one-by-one path of `BillingRun` on random subscribers
(time zones with DST, month ends, 29 February, deferrals, partial outages).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine

from tawasol.domain.billing.amounts import minor_unit
from tawasol.domain.billing.outage_credits import (
    CreditPolicy,
    DeferralWindow,
    outage_weights,
    scope_touches,
)
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.catalog import Period, Plan
from tawasol.domain.money import Money
from tawasol.domain.outages import OutagePeriod
from tawasol.services.billing.ports import BulkOutcome
from tawasol.services.billing.reports import OUTAGE_CREDIT_PREFIX

SLICE = 100_000  # subscriptions per transaction

_STEP = {Period.WEEK: "7 days", Period.MONTH: "1 month", Period.YEAR: "12 months"}

# The instant of a wall-clock time in a zone, as `calendar.boundary` reads it (fold=0): where the
# time exists twice, the earlier instant (the offset before the transition); where it does not
# exist, PostgreSQL already reads it with the offset before the gap.
_FUNCTIONS = (
    """
    CREATE OR REPLACE FUNCTION pg_temp.tw_offset_before(wall timestamp, tz text)
    RETURNS interval LANGUAGE sql IMMUTABLE AS $$
      SELECT (((wall AT TIME ZONE tz) - interval '1 day') AT TIME ZONE tz)
           - (((wall AT TIME ZONE tz) - interval '1 day') AT TIME ZONE 'UTC')
    $$
    """,
    """
    CREATE OR REPLACE FUNCTION pg_temp.tw_utc(wall timestamp, tz text)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE
        WHEN ((wall - pg_temp.tw_offset_before(wall, tz)) AT TIME ZONE 'UTC')
             < (wall AT TIME ZONE tz)
         AND (((wall - pg_temp.tw_offset_before(wall, tz)) AT TIME ZONE 'UTC') AT TIME ZONE tz)
             = wall
        THEN (wall - pg_temp.tw_offset_before(wall, tz)) AT TIME ZONE 'UTC'
        ELSE wall AT TIME ZONE tz
      END
    $$
    """,
    # datetime.isoformat() of a UTC instant, as the one-by-one path writes it into keys.
    """
    CREATE OR REPLACE FUNCTION pg_temp.tw_iso(t timestamptz)
    RETURNS text LANGUAGE sql STABLE AS $$
      SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', t) <> t
                THEN to_char(t AT TIME ZONE 'UTC', '.US') ELSE '' END
        || '+00:00'
    $$
    """,
)

_TEMP_TABLES = (
    "tw_plan",
    "tw_plan_name",
    "tw_deferral",
    "tw_country",
    "tw_vat",
    "tw_weight",
    "tw_renewal",
    "tw_credit",
)


class PostgresBulkBilling:
    """`BulkBilling` on PostgreSQL (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- the session: functions and small tables ---------------------------------------------
    @contextmanager
    def _connection(
        self, plans: Mapping[str, Plan], vat: VatTable, subscribers: str
    ) -> Iterator[Connection]:
        """A connection with the helper functions, the plans, and the country of the
        subscribers selected by the SQL `subscribers` (a query of subscriber ids)."""
        with self._engine.connect() as connection:
            try:
                with connection.begin():
                    # LLVM would compile the country expression (hundreds of branches) for
                    # minutes before running it: these statements are plain scans and joins.
                    connection.exec_driver_sql("SET jit = off")
                    for function in _FUNCTIONS:
                        connection.exec_driver_sql(function)
                    self._load_plans(connection, plans)
                    self._load_countries(connection, subscribers, vat)
                yield connection
            finally:
                with connection.begin():
                    for table in _TEMP_TABLES:
                        connection.exec_driver_sql(f"DROP TABLE IF EXISTS pg_temp.{table}")
                    connection.exec_driver_sql("RESET jit")

    @staticmethod
    def _load_plans(connection: Connection, plans: Mapping[str, Plan]) -> None:
        connection.exec_driver_sql(
            "CREATE TEMP TABLE tw_plan (plan_code text PRIMARY KEY, step interval NOT NULL, "
            "price numeric NOT NULL, currency text NOT NULL)"
        )
        connection.exec_driver_sql(
            "CREATE TEMP TABLE tw_plan_name (plan_code text, locale text, name text, "
            "PRIMARY KEY (plan_code, locale))"
        )
        rows = [(p.code, _STEP[p.period], p.price.amount, p.price.currency) for p in plans.values()]
        if rows:
            connection.exec_driver_sql(
                "INSERT INTO tw_plan VALUES (%s, %s::interval, %s, %s)", rows
            )
        locales = [
            row[0] for row in connection.exec_driver_sql("SELECT DISTINCT locale FROM subscribers")
        ]
        names = [(p.code, locale, p.name(locale)) for p in plans.values() for locale in locales]
        if names:
            connection.exec_driver_sql("INSERT INTO tw_plan_name VALUES (%s, %s, %s)", names)

    @staticmethod
    def _load_countries(connection: Connection, subscribers: str, vat: VatTable) -> None:
        """`tw_country`: each selected subscriber's country where it has a VAT rate (billing
        one without is an error the one-by-one path reports); `tw_vat` is filled later."""
        connection.exec_driver_sql(
            "CREATE TEMP TABLE tw_country (subscriber_id integer PRIMARY KEY, country text)"
        )
        # The country of residence (VAT follows it, as in the one-by-one path); a subscriber
        # whose country is unknown is left to that path, which reports it.
        connection.exec_driver_sql(
            "INSERT INTO tw_country SELECT s.id, s.country FROM subscribers s "
            f"WHERE s.id IN ({subscribers}) AND s.country IS NOT NULL AND s.country <> ''"
        )
        rated = list(vat.rates)
        if rated:
            connection.exec_driver_sql(
                "DELETE FROM tw_country WHERE NOT (country = ANY(%s))", (rated,)
            )
        else:
            connection.exec_driver_sql("DELETE FROM tw_country")
        connection.exec_driver_sql("ANALYZE tw_country")
        connection.exec_driver_sql(
            "CREATE TEMP TABLE tw_vat (currency text, gross numeric, country text, rate text, "
            "net text, vat text, gross_text text, PRIMARY KEY (currency, gross, country))"
        )

    @staticmethod
    def _fill_vat(connection: Connection, vat: VatTable, amounts: str) -> None:
        """VAT splits (the domain's `VatTable.split`) of the distinct (currency, gross,
        country) the SQL `amounts` selects, added to `tw_vat`."""
        missing = connection.exec_driver_sql(
            f"SELECT DISTINCT a.currency, a.gross, a.country FROM ({amounts}) a "
            "WHERE NOT EXISTS (SELECT 1 FROM tw_vat v WHERE v.currency = a.currency "
            "AND v.gross = a.gross AND v.country = a.country)"
        ).all()
        rows = []
        for currency, gross, country in missing:
            split = vat.split(Money(Decimal(gross), currency), country)
            rows.append(
                (
                    currency,
                    gross,
                    country,
                    str(split.rate),
                    str(split.net.amount),
                    str(split.vat.amount),
                    str(split.gross.amount),
                )
            )
        if rows:
            connection.exec_driver_sql(
                "INSERT INTO tw_vat VALUES (%s, %s, %s, %s, %s, %s, %s)", rows
            )

    @staticmethod
    def _take_numbers(connection: Connection, entity_code: str, count: int) -> int:
        """Lock the entity's sequence for this transaction and reserve `count` numbers; the
        last number used before them."""
        connection.exec_driver_sql(
            "INSERT INTO document_sequences (entity_code, last_sequence) VALUES (%s, 0) "
            "ON CONFLICT (entity_code) DO NOTHING",
            (entity_code,),
        )
        last = connection.exec_driver_sql(
            "SELECT last_sequence FROM document_sequences WHERE entity_code = %s FOR UPDATE",
            (entity_code,),
        ).scalar_one()
        connection.exec_driver_sql(
            "UPDATE document_sequences SET last_sequence = last_sequence + %s "
            "WHERE entity_code = %s",
            (count, entity_code),
        )
        return int(last)

    @staticmethod
    def _slices(connection: Connection, table: str) -> list[tuple[int, int]]:
        low, high = connection.exec_driver_sql(f"SELECT min(id), max(id) FROM {table}").one()
        if low is None:
            return []
        return [(start, start + SLICE - 1) for start in range(low, high + 1, SLICE)]

    # -- renewals -----------------------------------------------------------------------------
    def renew_in_bulk(
        self,
        *,
        at: datetime,
        plans: Mapping[str, Plan],
        deferrals: Mapping[str, Sequence[DeferralWindow]],
        vat: VatTable,
        entity_code: str,
        number_prefix: str,
        want_charges: bool,
    ) -> BulkOutcome:
        outcome = BulkOutcome()
        due = (
            "SELECT s.subscriber_id FROM subscriptions s WHERE s.status = 'active' "
            f"AND s.period_end <= '{at.isoformat()}'::timestamptz"
        )
        with self._connection(plans, vat, due) as connection:
            with connection.begin():
                connection.exec_driver_sql(
                    "CREATE TEMP TABLE tw_deferral (plan_code text, lo timestamptz, "
                    "hi timestamptz, resume timestamptz)"
                )
                rows = [
                    (code, window.start, window.end, window.resume)
                    for code, windows in deferrals.items()
                    for window in windows
                ]
                if rows:
                    connection.exec_driver_sql(
                        "INSERT INTO tw_deferral VALUES (%s, %s, %s, %s)", rows
                    )
                self._fill_vat(
                    connection,
                    vat,
                    "SELECT p.currency, p.price AS gross, c.country FROM tw_plan p "
                    "CROSS JOIN (SELECT DISTINCT country FROM tw_country) c",
                )
                slices = self._slices(connection, "subscriptions")
            for low, high in slices:
                while True:
                    with connection.begin():
                        more = self._renew_slice(
                            connection,
                            at=at,
                            low=low,
                            high=high,
                            entity_code=entity_code,
                            number_prefix=number_prefix,
                            want_charges=want_charges,
                            outcome=outcome,
                        )
                    if not more:
                        break
            with connection.begin():
                outcome.deferred = connection.exec_driver_sql(
                    _DUE_IN_SCOPE + " AND d.plan_code IS NOT NULL "
                    "AND (d.resume IS NULL OR d.resume > %(at)s)",
                    {"at": at, "low": None, "high": None},
                ).scalar_one()
                outcome.left_over = {
                    row[0] for row in connection.exec_driver_sql(_LEFT_OVER, {"at": at})
                }
        return outcome

    def _renew_slice(
        self,
        connection: Connection,
        *,
        at: datetime,
        low: int,
        high: int,
        entity_code: str,
        number_prefix: str,
        want_charges: bool,
        outcome: BulkOutcome,
    ) -> bool:
        """One renewal of every subscription of the slice due at `at`; True when some are due
        again (a run that missed periods catches up pass after pass)."""
        connection.exec_driver_sql("DROP TABLE IF EXISTS pg_temp.tw_renewal")
        connection.exec_driver_sql(_RENEWALS, {"at": at, "low": low, "high": high})
        count = connection.exec_driver_sql("SELECT count(*) FROM tw_renewal").scalar_one()
        if not count:
            return False
        last = self._take_numbers(connection, entity_code, count)
        parameters = {
            "at": at,
            "last": last,
            "entity": entity_code,
            "prefix": number_prefix,
        }
        connection.exec_driver_sql(
            "INSERT INTO billing_accounts (subscriber_id, currency) "
            "SELECT DISTINCT subscriber_id, currency FROM tw_renewal "
            "ON CONFLICT (subscriber_id, currency) DO NOTHING"
        )
        for statement in _NUMBER_RENEWALS:
            connection.exec_driver_sql(statement, parameters)
        numbered = connection.exec_driver_sql("SELECT count(*) FROM tw_numbered").scalar_one()
        if numbered != count:  # an account or a VAT split missing: a fault here, not a gap
            raise RuntimeError(f"bulk renewal numbered {numbered} of {count} invoices")
        for statement in _WRITE_RENEWALS:
            connection.exec_driver_sql(statement, parameters)
        _add_totals(connection, "SELECT currency, sum(price) FROM tw_renewal", outcome.charged)
        if want_charges:
            outcome.charges.extend(
                (subscriber_id, Money(price, currency), key)
                for subscriber_id, price, currency, key in connection.exec_driver_sql(
                    "SELECT subscriber_id, price, currency, key FROM tw_renewal "
                    "ORDER BY subscription_id"
                )
            )
        outcome.applied += count
        return bool(
            connection.exec_driver_sql(
                "SELECT EXISTS (SELECT 1 FROM tw_renewal WHERE new_end <= %(at)s)", {"at": at}
            ).scalar_one()
        )

    # -- outage credits -----------------------------------------------------------------------
    def credit_in_bulk(
        self,
        *,
        at: datetime,
        incident_id: int,
        periods: Sequence[OutagePeriod],
        plans: Mapping[str, Plan],
        policy: CreditPolicy,
        vat: VatTable,
        entity_code: str,
        number_prefix: str,
    ) -> BulkOutcome:
        outcome = BulkOutcome()
        start = min(p.start for p in periods)
        end = max(p.end for p in periods if p.end is not None)
        touched = (
            "SELECT pp.subscriber_id FROM billing_paid_periods pp "
            f"WHERE pp.start < '{end.isoformat()}'::timestamptz "
            f"AND pp.end > '{start.isoformat()}'::timestamptz"
        )
        with self._connection(plans, vat, touched) as connection:
            with connection.begin():
                connection.exec_driver_sql(
                    "CREATE TEMP TABLE tw_weight (plan_code text, lo timestamptz, "
                    "hi timestamptz, weight numeric)"
                )
                rows = [
                    (plan.code, left, right, weight)
                    for plan in plans.values()
                    for left, right, weight in outage_weights(
                        [
                            p
                            for p in periods
                            if p.incident_id == incident_id
                            and scope_touches(p.scope, plan.destinations)
                        ],
                        policy,
                    )
                ]
                if rows:
                    connection.exec_driver_sql(
                        "INSERT INTO tw_weight VALUES (%s, %s, %s, %s)", rows
                    )
                slices = self._slices(connection, "subscriptions")
            if not rows:
                return outcome
            parameters: dict[str, Any] = {
                "at": at,
                "start": start,
                "end": end,
                "prefix": f"{OUTAGE_CREDIT_PREFIX}{incident_id}:",
                "threshold": int(policy.threshold.total_seconds()),
                "unit": int(policy.minimum_unit.total_seconds()),
                "entity": entity_code,
                "number_prefix": number_prefix,
            }
            for low, high in slices:
                with connection.begin():
                    self._credit_slice(
                        connection, vat, {**parameters, "low": low, "high": high}, outcome
                    )
            with connection.begin():
                outcome.left_over = {
                    row[0]
                    for row in connection.exec_driver_sql(
                        "SELECT DISTINCT pp.subscription_id FROM billing_paid_periods pp "
                        "JOIN tw_weight w ON w.plan_code = pp.plan_code "
                        "WHERE pp.start < %(end)s AND pp.end > %(start)s "
                        "AND NOT EXISTS (SELECT 1 FROM tw_country c "
                        "WHERE c.subscriber_id = pp.subscriber_id)",
                        parameters,
                    )
                }
        return outcome

    def _credit_slice(
        self,
        connection: Connection,
        vat: VatTable,
        parameters: dict[str, Any],
        outcome: BulkOutcome,
    ) -> None:
        connection.exec_driver_sql("DROP TABLE IF EXISTS pg_temp.tw_credit")
        connection.exec_driver_sql(_CREDITS, parameters)
        connection.exec_driver_sql("DELETE FROM tw_credit WHERE counted = 0")
        # The credit notes gather their lines per subscription: without this index each note
        # would scan the slice's every line (quadratic).
        connection.exec_driver_sql("CREATE INDEX ON tw_credit (subscription_id, start)")
        connection.exec_driver_sql("ANALYZE tw_credit")
        # Minor units per currency: credits round down to them (`amounts.share_of`).
        currencies = [
            row[0] for row in connection.exec_driver_sql("SELECT DISTINCT currency FROM tw_credit")
        ]
        for currency in currencies:
            digits = -minor_unit(currency).as_tuple().exponent  # type: ignore[operator]
            connection.exec_driver_sql(
                "UPDATE tw_credit SET amount = least(trunc(price * counted / period_s, %(d)s), "
                "price - already) WHERE currency = %(c)s",
                {"d": digits, "c": currency},
            )
        connection.exec_driver_sql("DELETE FROM tw_credit WHERE amount <= 0")
        count = connection.exec_driver_sql(
            "SELECT count(DISTINCT subscription_id) FROM tw_credit"
        ).scalar_one()
        if not count:
            return
        self._fill_vat(connection, vat, "SELECT currency, amount AS gross, country FROM tw_credit")
        last = self._take_numbers(connection, parameters["entity"], count)
        for statement in _WRITE_CREDITS:
            connection.exec_driver_sql(statement, {**parameters, "last": last})
        _add_totals(connection, "SELECT currency, sum(amount) FROM tw_credit", outcome.credited)
        outcome.applied += count


def _add_totals(connection: Connection, query: str, totals: dict[str, Money]) -> None:
    """Add the (currency, sum) rows of `query` (grouped here by currency) to `totals`."""
    for currency, total in connection.exec_driver_sql(f"{query} GROUP BY currency"):
        before = totals.get(currency, Money(Decimal(0), currency))
        totals[currency] = Money(before.amount + total, currency)


# -- the statements ----------------------------------------------------------------------------
# Due, plain terms, a plan and a country with a VAT rate: what the bulk path renews (or defers).
_DUE_IN_SCOPE = """
SELECT count(*) FROM subscriptions s
JOIN billing_terms t ON t.subscription_id = s.id
JOIN tw_plan p ON p.plan_code = s.plan_code
JOIN tw_country c ON c.subscriber_id = s.subscriber_id
LEFT JOIN tw_deferral d ON d.plan_code = s.plan_code
     AND s.period_end >= d.lo AND (d.hi IS NULL OR s.period_end < d.hi)
WHERE s.status = 'active' AND s.period_end <= %(at)s
  AND NOT t.cancel_at_period_end AND t.next_plan_code IS NULL AND t.paused_at IS NULL
  AND (%(low)s::integer IS NULL OR s.id BETWEEN %(low)s AND %(high)s)
"""

# Running subscriptions due (or never billed) that the bulk path leaves to `BillingRun`.
_LEFT_OVER = """
SELECT s.id FROM subscriptions s
LEFT JOIN billing_terms t ON t.subscription_id = s.id
WHERE s.status NOT IN ('cancelled', 'expired')
  AND (t.subscription_id IS NULL
       OR (s.status = 'active' AND s.period_end <= %(at)s
           AND (t.cancel_at_period_end OR t.next_plan_code IS NOT NULL
                OR t.paused_at IS NOT NULL
                OR NOT EXISTS (SELECT 1 FROM tw_plan p WHERE p.plan_code = s.plan_code)
                OR NOT EXISTS (SELECT 1 FROM tw_country c
                               WHERE c.subscriber_id = s.subscriber_id))))
"""

# The next period of each subscription of the slice (`lifecycle.next_period`): from the period
# end, or from the end of the outage that deferred it; on the anchor's calendar when that is its
# next boundary, else re-anchored there.
_RENEWALS = """
CREATE TEMP TABLE tw_renewal AS
SELECT s.id AS subscription_id, s.subscriber_id, s.plan_code, sub.email, sub.name, sub.locale,
       sub.business, c.country, p.price, p.currency, x.new_index, x.new_start, x.new_end,
       x.new_anchor,
       'renew:' || s.id || ':' || pg_temp.tw_iso(x.new_start) AS key
FROM subscriptions s
JOIN billing_terms t ON t.subscription_id = s.id
JOIN subscribers sub ON sub.id = s.subscriber_id
JOIN tw_country c ON c.subscriber_id = s.subscriber_id
JOIN tw_plan p ON p.plan_code = s.plan_code
LEFT JOIN tw_deferral d ON d.plan_code = s.plan_code
     AND s.period_end >= d.lo AND (d.hi IS NULL OR s.period_end < d.hi)
CROSS JOIN LATERAL (
  SELECT coalesce(d.resume, s.period_end) AS start,
         pg_temp.tw_utc((t.anchor AT TIME ZONE sub.time_zone)
                        + (t.period_index + 1) * p.step, sub.time_zone) AS next_boundary
) n
CROSS JOIN LATERAL (
  SELECT t.period_index + 1 AS new_index, n.next_boundary AS new_start,
         pg_temp.tw_utc((t.anchor AT TIME ZONE sub.time_zone)
                        + (t.period_index + 2) * p.step, sub.time_zone) AS new_end,
         t.anchor AS new_anchor
  WHERE n.next_boundary = n.start
  UNION ALL
  SELECT 0, pg_temp.tw_utc(n.start AT TIME ZONE sub.time_zone, sub.time_zone),
         pg_temp.tw_utc((n.start AT TIME ZONE sub.time_zone) + p.step, sub.time_zone),
         n.start
  WHERE n.next_boundary <> n.start
) x
WHERE s.status = 'active' AND s.period_end <= %(at)s AND s.id BETWEEN %(low)s AND %(high)s
  AND NOT t.cancel_at_period_end AND t.next_plan_code IS NULL AND t.paused_at IS NULL
  AND (d.plan_code IS NULL OR d.resume <= %(at)s)
  AND NOT EXISTS (SELECT 1 FROM billing_steps b
                  WHERE b.idempotency_key = 'renew:' || s.id || ':' || pg_temp.tw_iso(x.new_start))
"""

_DOCUMENT_NUMBER = (
    "%(prefix)s || '-' || %(entity)s || '-' || "
    "CASE WHEN length(r.seq::text) >= 8 THEN r.seq::text ELSE lpad(r.seq::text, 8, '0') END"
)

_NUMBER_RENEWALS = (
    """
CREATE TEMP TABLE tw_numbered ON COMMIT DROP AS
SELECT r.*, a.id AS account_id, r.seq_offset + %(last)s AS seq,
       v.rate, v.net, v.vat, v.gross_text,
       coalesce(pn.name, r.plan_code) AS plan_name
FROM (SELECT tw_renewal.*, row_number() OVER (ORDER BY subscription_id) AS seq_offset
      FROM tw_renewal) r
JOIN billing_accounts a ON a.subscriber_id = r.subscriber_id AND a.currency = r.currency
JOIN tw_vat v ON v.currency = r.currency AND v.gross = r.price AND v.country = r.country
LEFT JOIN tw_plan_name pn ON pn.plan_code = r.plan_code AND pn.locale = r.locale
""",
    "ALTER TABLE tw_numbered ADD COLUMN number text",
    f"UPDATE tw_numbered r SET number = {_DOCUMENT_NUMBER}",
)

_WRITE_RENEWALS = (
    "INSERT INTO billing_steps (idempotency_key, applied_at) SELECT key, now() FROM tw_numbered",
    "INSERT INTO ledger_entries (account_id, kind, amount, idempotency_key, recorded_at, "
    "reference, description) "
    "SELECT account_id, 'charge', price, key, %(at)s, key, '' FROM tw_numbered",
    """
    INSERT INTO billing_documents (entity_code, sequence, number, kind, subscriber_id, issued_at,
                                   idempotency_key, content)
    SELECT %(entity)s, seq, number, 'invoice', subscriber_id, %(at)s, key,
           json_build_object(
             'account_id', account_id, 'customer_name', name, 'customer_address', '',
             'customer_country', country, 'locale', locale, 'corrects', '',
             'business', business, 'currency', currency,
             'lines', json_build_array(json_build_object(
               'description', plan_name, 'period_start', pg_temp.tw_iso(new_start),
               'period_end', pg_temp.tw_iso(new_end), 'quantity', 1, 'rate', rate,
               'net', net, 'vat', vat, 'gross', gross_text)))
    FROM tw_numbered
    """,
    "INSERT INTO billing_outbox (number, recipient, queued_at) "
    "SELECT number, email, now() FROM tw_numbered WHERE email <> ''",
    "INSERT INTO billing_paid_periods (subscription_id, subscriber_id, plan_code, period_index, "
    'start, "end", price_paid, currency, charge_key) '
    "SELECT subscription_id, subscriber_id, plan_code, new_index, new_start, new_end, price, "
    "currency, key FROM tw_numbered",
    "UPDATE billing_terms t SET anchor = n.new_anchor, period_index = n.new_index, "
    "price_paid = n.price, currency = n.currency, next_plan_code = NULL "
    "FROM tw_numbered n WHERE t.subscription_id = n.subscription_id",
    "UPDATE subscriptions s SET period_start = n.new_start, period_end = n.new_end "
    "FROM tw_numbered n WHERE s.id = n.subscription_id",
)

# Each paid period of the slice the incident touched, with its weighted outage seconds
# (`outage_credits.weighted_outage_seconds`), counted time (threshold, rounded up to whole units,
# never beyond the period) and what earlier credits took from its charge already.
_CREDITS = """
CREATE TEMP TABLE tw_credit AS
SELECT pp.subscription_id, pp.subscriber_id, pp.plan_code, pp.start, pp."end", pp.charge_key,
       pp.price_paid AS price, pp.currency, c.country, sub.name, sub.email, sub.locale,
       sub.business,
       floor(extract(epoch FROM pp."end" - pp.start))::bigint AS period_s,
       CASE WHEN w.weighted <= 0 OR w.weighted < %(threshold)s THEN 0
            ELSE least(ceil(w.weighted / %(unit)s) * %(unit)s,
                       floor(extract(epoch FROM pp."end" - pp.start)))::bigint
       END AS counted,
       coalesce((SELECT sum(le.amount) FROM billing_accounts a
                 JOIN ledger_entries le ON le.account_id = a.id
                 WHERE a.subscriber_id = pp.subscriber_id AND a.currency = pp.currency
                   AND le.kind = 'credit' AND le.reference = pp.charge_key), 0) AS already,
       NULL::numeric AS amount
FROM billing_paid_periods pp
JOIN tw_country c ON c.subscriber_id = pp.subscriber_id
JOIN subscribers sub ON sub.id = pp.subscriber_id
CROSS JOIN LATERAL (
  SELECT coalesce(sum(wt.weight * floor(extract(epoch FROM
           least(wt.hi, pp."end") - greatest(wt.lo, pp.start)))), 0) AS weighted
  FROM tw_weight wt
  WHERE wt.plan_code = pp.plan_code AND wt.lo < pp."end" AND wt.hi > pp.start
) w
WHERE pp.start < %(end)s AND pp."end" > %(start)s
  AND pp.subscription_id BETWEEN %(low)s AND %(high)s
  AND EXISTS (SELECT 1 FROM tw_weight wt WHERE wt.plan_code = pp.plan_code)
  AND NOT EXISTS (SELECT 1 FROM billing_steps b
                  WHERE b.idempotency_key = %(prefix)s || pp.subscription_id)
"""

_WRITE_CREDITS = (
    "INSERT INTO billing_accounts (subscriber_id, currency) "
    "SELECT DISTINCT subscriber_id, currency FROM tw_credit "
    "ON CONFLICT (subscriber_id, currency) DO NOTHING",
    # One credit note per subscription: the first paid period's customer and currency.
    f"""
    CREATE TEMP TABLE tw_note ON COMMIT DROP AS
    SELECT r.*, a.id AS account_id, {_DOCUMENT_NUMBER.replace("%(prefix)s", "%(number_prefix)s")}
           AS number
    FROM (SELECT f.*, %(last)s + row_number() OVER (ORDER BY f.subscription_id) AS seq
          FROM (SELECT DISTINCT ON (subscription_id) subscription_id, subscriber_id, currency,
                       country, name, email, locale, business,
                       %(prefix)s || subscription_id AS key
                FROM tw_credit ORDER BY subscription_id, start) f) r
    JOIN billing_accounts a ON a.subscriber_id = r.subscriber_id AND a.currency = r.currency
    """,
    "INSERT INTO billing_steps (idempotency_key, applied_at) SELECT key, now() FROM tw_note",
    "INSERT INTO ledger_entries (account_id, kind, amount, idempotency_key, recorded_at, "
    "reference, description) "
    "SELECT n.account_id, 'credit', c.amount, n.key || ':' || c.charge_key, %(at)s, "
    "c.charge_key, '' FROM tw_credit c JOIN tw_note n USING (subscription_id)",
    """
    INSERT INTO billing_documents (entity_code, sequence, number, kind, subscriber_id, issued_at,
                                   idempotency_key, content)
    SELECT %(entity)s, n.seq, n.number, 'credit_note', n.subscriber_id, %(at)s, n.key,
           json_build_object(
             'account_id', n.account_id, 'customer_name', n.name, 'customer_address', '',
             'customer_country', n.country, 'locale', n.locale,
             'corrects', (SELECT string_agg(c.charge_key, ', ' ORDER BY c.start)
                          FROM tw_credit c WHERE c.subscription_id = n.subscription_id),
             'business', n.business, 'currency', n.currency,
             'lines', (SELECT json_agg(json_build_object(
                 'description', coalesce(pn.name, c.plan_code) || ': outage '
                   || (c.counted / 86400) || ' d ' || ((c.counted %% 86400) / 3600) || ' h',
                 'period_start', pg_temp.tw_iso(c.start), 'period_end', pg_temp.tw_iso(c."end"),
                 'quantity', 1, 'rate', v.rate, 'net', v.net, 'vat', v.vat,
                 'gross', v.gross_text) ORDER BY c.start)
               FROM tw_credit c
               JOIN tw_vat v ON v.currency = c.currency AND v.gross = c.amount
                            AND v.country = c.country
               LEFT JOIN tw_plan_name pn ON pn.plan_code = c.plan_code AND pn.locale = c.locale
               WHERE c.subscription_id = n.subscription_id))
    FROM tw_note n
    """,
    "INSERT INTO billing_outbox (number, recipient, queued_at) "
    "SELECT number, email, now() FROM tw_note WHERE email <> ''",
)
