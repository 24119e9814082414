"""`tawasol incidents ...` on a real SQLite database: the operator's whole round, bad input."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from tawasol.cli import app

runner = CliRunner(env={"COLUMNS": "220", "TAWASOL_ADMIN_TOKEN": "", "TAWASOL_DEMO": "false"})


def run(data_dir, *args: str):
    return runner.invoke(app, ["--data-dir", str(data_dir), "incidents", *args])


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def data_dir(tmp_path):
    assert runner.invoke(app, ["--data-dir", str(tmp_path), "init"]).exit_code == 0
    return tmp_path


def test_open_update_resolve_reopen_and_show_with_the_audit(data_dir):
    opened = run(
        data_dir,
        "open",
        "Maintenance on the Casablanca link",
        "--kind",
        "maintenance",
        "--scope",
        "MA/mobile/Maroc Telecom",
        "--fr",
        "Maintenance prévue",
        "--ar",
        "صيانة مبرمجة",
        "--author",
        "amina",
    )
    assert opened.exit_code == 0, opened.output
    assert "#1" in opened.output and "MA mobile (Maroc Telecom)" in opened.output

    updated = run(
        data_dir,
        "update",
        "1",
        "--state",
        "identified",
        "--impact",
        "partial",
        "--en",
        "Work started",
        "--author",
        "youssef",
    )
    assert updated.exit_code == 0, updated.output
    assert "customer-facing" in updated.output and "impact partial" in updated.output

    resolved = run(
        data_dir, "resolve", "1", "--fr", "Terminé", "--postmortem", "On time.", "--author", "amina"
    )
    assert resolved.exit_code == 0 and "resolved" in resolved.output

    late = run(data_dir, "update", "1", "--en", "one more", "--author", "amina")
    assert late.exit_code == 1
    assert "error (conflict)" in plain(late.output) and "reopen" in late.output

    assert run(data_dir, "reopen", "1", "--en", "Back", "--author", "amina").exit_code == 0
    listed = run(data_dir, "list")
    assert listed.exit_code == 0 and "Maintenance on the Casablanca link" in plain(listed.output)
    shown = plain(run(data_dir, "show", "1").output)
    assert "صيانة مبرمجة" in shown and "postmortem: On time." in shown
    for action in (
        "opened by amina",
        "updated by youssef",
        "resolved by amina",
        "reopened by amina",
    ):
        assert "audit: " in shown and action in shown


@pytest.mark.parametrize(
    ("args", "error_id"),
    [
        (
            ["open", "x", "--kind", "destination", "--scope", "Morocco", "--en", "x"],
            "invalid_input",
        ),
        (
            ["open", "x", "--kind", "destination", "--scope", "MA/satellite", "--en", "x"],
            "invalid_input",
        ),
        (["open", "x", "--kind", "destination", "--en", "x"], "invalid_input"),
        (["open", "x", "--kind", "maintenance"], "invalid_input"),
        (["show", "7"], "not_found"),
        (["update", "7", "--en", "x"], "not_found"),
    ],
)
def test_bad_input_gets_a_clear_error_and_no_traceback(data_dir, args, error_id):
    result = run(data_dir, *args)
    assert result.exit_code != 0
    assert f"error ({error_id})" in result.output
    assert "Traceback" not in result.output


def test_subscriber_add_to_a_plan_in_an_outage_needs_the_incident_acknowledged(data_dir):
    assert (
        runner.invoke(app, ["--data-dir", str(data_dir), "seed", "--sample", "--demo"]).exit_code
        == 0
    )
    opened = run(
        data_dir,
        "open",
        "Morocco mobiles down",
        "--kind",
        "destination",
        "--scope",
        "MA/mobile",
        "--impact",
        "major",
        "--en",
        "down",
        "--author",
        "amina",
    )
    assert opened.exit_code == 0, opened.output

    def add(name: str, *extra: str):
        return runner.invoke(
            app,
            [
                "--data-dir",
                str(data_dir),
                "subscriber",
                "add",
                name,
                "--name",
                name,
                "--phone",
                f"+3361234{len(name):04d}",
                "--password",
                f"{name}-long-secret-9",
                "--plan",
                "maroc-illimite-mois",
                *extra,
            ],
        )

    refused = add("nadia")
    assert refused.exit_code == 1 and "error (destination_unavailable)" in plain(refused.output)
    assert "incident_ids: [1]" in plain(refused.output)
    sold = add("yasmine", "--acknowledge", "1")
    assert sold.exit_code == 0, sold.output


def test_notices_progress_per_channel_as_a_table_and_as_json(data_dir):
    from tawasol.adapters.store import SqlStore, sqlite_url_for
    from tawasol.adapters.store.notices_sql import SqlNoticeOutbox
    from tawasol.domain.notices import Channel, Notice, NoticeOccasion

    store = SqlStore.from_url(sqlite_url_for(data_dir))
    outbox = SqlNoticeOutbox(store.engine)
    outbox.enqueue(
        [
            Notice(
                incident_id=incident,
                occasion=NoticeOccasion.CUSTOMER_FACING,
                occasion_seq=1,
                subscriber_id=subscriber,
                channel=channel,
                address="+212600000001" if channel is Channel.SMS else "a@example.org",
                locale="fr",
                subject="s",
                text="t",
                html="",
                message_id=f"<{incident}.{subscriber}.{channel}@x>",
            )
            for incident in (1, 2)
            for subscriber in (1, 2, 3)
            for channel in (Channel.EMAIL, Channel.SMS)
        ]
    )
    from datetime import UTC, datetime, timedelta

    (first,) = outbox.claim(
        now=datetime.now(UTC), lease=timedelta(minutes=2), limit=1, channels=[Channel.SMS]
    )
    outbox.mark_failed(first.id, error="UNDELIV err:001")
    store.close()

    shown = run(data_dir, "notices", "--json")
    assert shown.exit_code == 0, shown.output
    progress = json.loads(shown.output)
    assert progress["email"] == {"queued": 6, "sending": 0, "sent": 0, "delivered": 0, "failed": 0}
    assert progress["sms"]["queued"] == 5 and progress["sms"]["failed"] == 1

    one = run(data_dir, "notices", "--incident", "2", "--json")
    assert json.loads(one.output)["sms"]["queued"] == 3

    table = run(data_dir, "notices")
    assert table.exit_code == 0
    assert "queued" in table.output and "delivered" in table.output
    assert re.search(r"sms\s*│\s*5\s*│\s*0\s*│\s*0\s*│\s*0\s*│\s*1\s*│\s*6", table.output)

    assert run(data_dir, "notices", "--incident", "0").exit_code != 0
