"""The `tawasol` command on a real SQLite database: init, seed, explain and friends.

These are the support desk's cases from the foundation issue: the answers must be right for the
sample operator, with the reasons printed.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from tawasol.cli import app

# No admin token: `explain` reads the database (tests of asking the brain set one).
runner = CliRunner(env={"COLUMNS": "220", "TAWASOL_ADMIN_TOKEN": "", "TAWASOL_DEMO": "false"})


def run(data_dir, *args: str, input: str | None = None):
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args], input=input)
    return result


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tawasol")
    assert run(directory, "init").exit_code == 0
    seeded = run(directory, "seed", "--sample", "--demo")
    assert seeded.exit_code == 0, seeded.output
    assert "amina-demo-2026" in seeded.output
    return directory


def test_init_twice_is_harmless(data_dir):
    result = run(data_dir, "init")
    assert result.exit_code == 0, result.output
    assert "database ready" in result.output


def test_seed_twice_keeps_subscribers(data_dir):
    result = run(data_dir, "seed", "--sample", "--demo")
    assert result.exit_code == 1, result.output
    assert "only loaded into an empty database" in plain(result.output)
    listing = run(data_dir, "subscriber", "list")
    assert listing.output.count("amina") == 1


def test_explain_monthly_subscriber_calling_moroccan_mobile_is_allowed_flat_rate_first(data_dir):
    result = run(data_dir, "explain", "amina", "00212661234567")
    assert result.exit_code == 0, result.output
    output = plain(result.output)
    assert "ALLOWED" in output
    flat = output.index("ma-flat │ flat_rate")
    per_minute = output.index("ma-minute │ per_minute")
    assert flat < per_minute
    assert "Maroc Telecom" in output


@pytest.mark.parametrize(
    ("user", "number", "extra", "reason"),
    [
        ("amina", "0021671234567", [], "destination_not_in_plan"),
        ("amina", "00212892123456", [], "destination_not_sold"),
        ("karim", "00212661234567", ["--at", "2026-11-24T14:00"], "outside_time_window"),
        ("leila", "00212661234567", [], "no_active_subscription"),
        ("nobody", "00212661234567", [], "unknown_subscriber"),
        ("amina", "+212 abc", [], "invalid_number"),
    ],
)
def test_explain_denials_name_their_reason(data_dir, user, number, extra, reason):
    result = run(data_dir, "explain", user, number, *extra)
    assert result.exit_code == 0, result.output
    assert f"DENIED: {reason}" in result.output


def test_explain_evening_plan_in_the_evening_is_allowed(data_dir):
    result = run(data_dir, "explain", "karim", "0021671234567", "--at", "2026-11-24T21:30")
    assert result.exit_code == 0, result.output
    assert "ALLOWED" in result.output
    assert "tn-carrier" in result.output


def test_explain_reads_a_time_without_offset_in_the_subscribers_zone(data_dir):
    # 14:00 in Brussels on a Tuesday; the same instant written in UTC is 13:00.
    result = run(data_dir, "explain", "karim", "00212661234567", "--at", "2026-11-24T13:00Z")
    assert "DENIED: outside_time_window" in result.output
    assert "Tue 14:00" in plain(result.output)


def test_explain_with_a_bad_time_says_so(data_dir):
    result = run(data_dir, "explain", "karim", "00212661234567", "--at", "teatime")
    assert result.exit_code == 2
    assert "ISO 8601" in result.output


def test_plan_list_shows_the_sample_plans_in_arabic(data_dir):
    result = run(data_dir, "plan", "list", "--locale", "ar")
    assert result.exit_code == 0, result.output
    assert "المغرب بلا حدود" in result.output
    assert "soirees-maghreb" in result.output


def test_subscriber_add_and_show(data_dir):
    added = run(
        data_dir,
        "subscriber",
        "add",
        "nadia",
        "--name",
        "Nadia K",
        "--phone",
        "+33611112222",
        "--plan",
        "maroc-illimite-semaine",
        "--password",
        "nadia-password-1",
    )
    assert added.exit_code == 0, added.output
    assert "subscribed to maroc-illimite-semaine" in added.output
    shown = run(data_dir, "subscriber", "show", "nadia")
    assert shown.exit_code == 0
    assert "Nadia K" in shown.output and "maroc-illimite-semaine" in shown.output
    assert run(data_dir, "explain", "nadia", "00212522123456").output.startswith("ALLOWED")


def test_subscriber_add_refuses_a_taken_username(data_dir):
    result = run(
        data_dir,
        "subscriber",
        "add",
        "amina",
        "--name",
        "Other",
        "--phone",
        "+33611112223",
        "--password",
        "other-password-1",
    )
    assert result.exit_code == 1
    assert "conflict" in result.output


def test_subscriber_show_unknown_exits_3(data_dir):
    result = run(data_dir, "subscriber", "show", "ghost")
    assert result.exit_code == 3
    assert "not_found" in result.output


def test_broken_database_url_gives_a_clear_error(tmp_path):
    result = runner.invoke(app, ["--database-url", "mysql://nope", "init"])
    assert result.exit_code == 2
    assert "database_url" in result.output
