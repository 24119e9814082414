"""`tawasol billing run` as an operator runs it: a real process on a real SQLite database,
re-run, and killed with SIGKILL in the middle (must-show 2 of issue 14)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from support.operator import a_new_subscriber, a_plan
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.domain.billing.documents import check_gap_free
from tawasol.domain.catalog import Period
from tawasol.domain.subscribers import SubscriptionStatus

SUBSCRIBERS = 150
AT = "2026-09-01T06:00:00+00:00"
ENV = {
    **os.environ,
    "TAWASOL_BILLING_ENTITY_CODE": "FR1",
    "TAWASOL_BILLING_ENTITY_NAME": "Tawasol SAS",
    "TAWASOL_BILLING_ENTITY_ADDRESS": "1 rue de la Paix, 75002 Paris",
    "TAWASOL_BILLING_ENTITY_SIREN": "123456789",
    "TAWASOL_BILLING_ENTITY_VAT_NUMBER": "FR12123456789",
    "TAWASOL_BILLING_VAT_RATES": "FR=20",
}


def seeded(data_dir: Path) -> str:
    """Weekly subscribers since 1 June: each is many renewals behind on 1 September."""
    data_dir.mkdir(parents=True, exist_ok=True)
    url = sqlite_url_for(data_dir)
    migrate(url)
    store = SqlStore.from_url(url)
    store.save_plan(a_plan("hebdo", period=Period.WEEK, time_windows=()))
    start = datetime(2026, 6, 1, tzinfo=UTC)
    for number in range(SUBSCRIBERS):
        subscriber = store.add_subscriber(a_new_subscriber(f"user{number}"))
        store.add_subscription(
            subscriber_id=subscriber.id,
            plan_code="hebdo",
            status=SubscriptionStatus.ACTIVE,
            period_start=start,
            period_end=datetime(2026, 6, 8, tzinfo=UTC),
        )
    store.close()
    return url


def tawasol(
    data_dir: Path, *arguments: str, env: dict[str, str] = ENV
) -> subprocess.CompletedProcess[str]:
    """One `tawasol` command to its end (bounded), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "tawasol", "--data-dir", str(data_dir), *arguments],
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=300,
    )


def billing_run(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tawasol",
            "--data-dir",
            str(data_dir),
            "billing",
            "run",
            "--at",
            AT,
            *extra,
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return out


def state(url: str) -> tuple[set[tuple[str, str, str]], list[int], set[str]]:
    engine = create_engine(url)
    with engine.connect() as connection:
        entries = {
            (k, kind, str(amount))
            for k, kind, amount in connection.execute(
                text("SELECT idempotency_key, kind, amount FROM ledger_entries")
            )
        }
        sequences = [
            row[0] for row in connection.execute(text("SELECT sequence FROM billing_documents"))
        ]
        keys = [
            row[0]
            for row in connection.execute(text("SELECT idempotency_key FROM billing_documents"))
        ]
    engine.dispose()
    assert len(keys) == len(set(keys)), "a step issued two documents"
    return entries, sequences, set(keys)


def count_documents(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM billing_documents")).scalar_one()
    except Exception:  # the table is being written: count again next time
        return 0
    finally:
        engine.dispose()


def test_given_a_run_killed_mid_way_when_run_again_then_same_ledger_no_gap(tmp_path: Path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    url = seeded(reference_dir)
    shutil.copytree(reference_dir, killed_dir)
    killed_url = sqlite_url_for(killed_dir)

    dry = finished(billing_run(reference_dir, "--dry-run"))
    assert "renewals charged" in dry
    assert state(url)[1] == []  # a dry run writes nothing

    out = finished(billing_run(reference_dir))
    assert "renewals charged" in out
    reference = state(url)
    assert (
        len(reference[1]) == SUBSCRIBERS * 14
    )  # first invoice (1 June) + 13 weekly renewals to 31 August

    process = billing_run(killed_dir)
    deadline = time.monotonic() + 120
    while count_documents(killed_url) < SUBSCRIBERS and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the run ended before it could be killed; make it longer")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)  # reaps it and closes its pipes
    interrupted = state(killed_url)
    assert 0 < len(interrupted[1]) < len(reference[1])
    check_gap_free(interrupted[1])

    for _ in range(3):
        finished(billing_run(killed_dir))
        entries, sequences, keys = state(killed_url)
        assert entries == reference[0]
        assert keys == reference[2]
        check_gap_free(sequences)


def test_given_no_vat_rate_for_the_subscribers_country_then_clear_error_nothing_written(
    tmp_path: Path,
):
    url = seeded(tmp_path)
    process = tawasol(
        tmp_path, "billing", "run", "--at", AT, env={**ENV, "TAWASOL_BILLING_VAT_RATES": "BE=21"}
    )
    assert process.returncode == 1
    assert "no VAT rate is configured for FR" in process.stderr
    assert "Traceback" not in process.stderr
    assert state(url)[1] == []


def test_given_a_bank_transfer_recorded_twice_then_counted_once(tmp_path: Path):
    seeded(tmp_path)
    finished(billing_run(tmp_path))

    def payment(*arguments: str) -> subprocess.CompletedProcess[str]:
        return tawasol(tmp_path, "billing", "payment", *arguments)

    first = payment("1", "20.00", "EUR", "--reference", "VIR-2026-0001")
    again = payment("1", "20.00", "EUR", "--reference", "VIR-2026-0001")
    assert first.returncode == 0, first.stderr
    # 14 weekly periods at 9.99 = 139.86 charged, 20.00 received once
    assert "recorded; balance owed 119.86 EUR" in first.stdout
    assert "already recorded; balance owed 119.86 EUR" in again.stdout
    bad = payment("1", "0", "EUR", "--reference", "VIR-X")
    unknown = payment("1", "5", "ABC", "--reference", "VIR-Y")
    assert bad.returncode != 0 and "positive amount" in bad.stderr
    assert unknown.returncode != 0 and "ISO 4217" in unknown.stderr
    assert "Traceback" not in bad.stderr + unknown.stderr
    credits = tawasol(tmp_path, "billing", "credits", "--csv")
    assert credits.stdout.splitlines() == ["incident_id,currency,credited"]  # no outage here
