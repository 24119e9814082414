"""The lifecycle and report commands as an operator types them (real processes, real SQLite
database), and migration 0007 filling the country of residence of existing subscribers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from test_billing_cli import ENV, tawasol

from support.stores import a_new_subscriber, a_plan, database_at
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.domain.money import Money
from tawasol.domain.subscribers import SubscriptionStatus


def seeded(data_dir: Path) -> str:
    """`tawasol init`, two EUR plans and one in MAD, and user0 on maroc-illimite for
    September (a 30-day period)."""
    result = tawasol(data_dir, "init")
    assert result.returncode == 0, result.stderr
    url = sqlite_url_for(data_dir)
    store = SqlStore.from_url(url)
    store.save_plan(a_plan(time_windows=()))
    store.save_plan(a_plan("maroc-plus", time_windows=(), price=Money(Decimal("14.99"), "EUR")))
    store.save_plan(a_plan("maroc-dirham", time_windows=(), price=Money(Decimal("99"), "MAD")))
    subscriber = store.add_subscriber(a_new_subscriber("user0"))
    store.add_subscription(
        subscriber_id=subscriber.id,
        plan_code="maroc-illimite",
        status=SubscriptionStatus.ACTIVE,
        period_start=datetime(2026, 9, 1, tzinfo=UTC),
        period_end=datetime(2026, 10, 1, tzinfo=UTC),
    )
    store.close()
    return url


def ledger(url: str) -> list[tuple[str, str, str]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT kind, amount, idempotency_key FROM ledger_entries ORDER BY id")
        ).all()
    engine.dispose()
    return [tuple(str(value) for value in row) for row in rows]  # type: ignore[misc]


def test_given_an_operator_at_the_shell_then_plan_change_cancel_and_reports_agree(
    tmp_path: Path,
):
    url = seeded(tmp_path)
    assert tawasol(tmp_path, "billing", "run", "--at", "2026-09-01T06:00:00Z").returncode == 0

    changed = tawasol(
        tmp_path, "billing", "change-plan", "user0", "maroc-plus", "--at", "2026-09-16T00:00:00Z"
    )

    assert changed.returncode == 0, changed.stderr
    assert "credited 4.99 EUR" in changed.stdout  # 9.99 x 15/30 = 4.995, rounded down
    assert "charged 14.99 EUR" in changed.stdout
    before = ledger(url)
    refused = tawasol(
        tmp_path, "billing", "change-plan", "user0", "maroc-dirham", "--at", "2026-09-17T00:00Z"
    )
    assert refused.returncode != 0
    assert "MAD" in refused.stderr and "EUR" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert ledger(url) == before

    revenue = tawasol(
        tmp_path, "billing", "revenue", "--start", "2026-09-01", "--end", "2026-10-01", "--csv"
    )
    assert revenue.returncode == 0, revenue.stderr
    assert revenue.stdout.splitlines() == [
        "plan,currency,charged,credited,vat,net",
        "maroc-illimite,EUR,9.99,4.99,0.83,4.17",
        "maroc-plus,EUR,14.99,0,2.50,12.49",
    ]
    paused = tawasol(tmp_path, "billing", "pause", "user0", "--at", "2026-09-20T00:00:00Z")
    assert paused.returncode == 0, paused.stderr
    again = tawasol(tmp_path, "billing", "pause", "user0", "--at", "2026-09-21T00:00:00Z")
    assert again.returncode != 0
    assert "error (conflict)" in again.stderr
    assert "only an active subscription can be" in again.stderr
    bad_country = tawasol(tmp_path, "subscriber", "set-country", "user0", "XQ")
    assert bad_country.returncode != 0
    assert "ISO 3166-1" in bad_country.stderr


def test_given_a_database_at_0006_when_migrated_then_countries_filled_from_phones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    url = sqlite_url_for(tmp_path)
    with database_at(url, "0006") as connection:
        for number, phone in enumerate(("+33612345678", "+212612345678", "+80012345678")):
            connection.execute(
                text(
                    "INSERT INTO subscribers (name, email, phone, locale, time_zone, "
                    "sip_username, ha1, caller_ids) VALUES ('n', '', :phone, 'fr', "
                    "'Europe/Paris', :user, :ha1, '[]')"
                ),
                {"phone": phone, "user": f"user{number}", "ha1": "0" * 32},
            )

    with caplog.at_level(logging.WARNING, logger="tawasol.migrations"):
        migrate(url)

    store = SqlStore.from_url(url)
    try:
        countries = [s.country for s in store.list_subscribers()]
    finally:
        store.close()
    assert countries == ["FR", "MA", None]  # +800 is not a country: left unknown
    assert "2 subscriber(s)" in caplog.text and "1 left unknown" in caplog.text
    assert "FR 1, MA 1" in caplog.text
    migrate(url)  # again: nothing changes
    assert ENV  # the CLI's environment module is shared with test_billing_cli
