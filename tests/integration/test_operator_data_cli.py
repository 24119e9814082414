"""Issue 11 through the `tawasol` command: the operator's data survives re-runs, the sample
operator only in demo mode, atomic commands, bounded options, explain asking the running brain,
and the words the CLI prints."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from tawasol.adapters.api.app import create_app
from tawasol.cli import app
from tawasol.composition import build_brain
from tawasol.config import Settings

ROOT = Path(__file__).parents[2]
TOKEN = "cli-test-token-0123456789"
# No brain for these by default; tests that start one pass its port and token.
BASE_ENV = {"COLUMNS": "200", "TAWASOL_ADMIN_TOKEN": "", "TAWASOL_DEMO": "false"}


def tawasol(data_dir: Path, *args: str) -> list[str]:
    """The command line of `tawasol` on `data_dir`, for a test that needs a real process."""
    return [sys.executable, "-m", "tawasol", "--data-dir", str(data_dir), *args]


def run(data_dir: Path, *args: str, **env: str):
    runner = CliRunner(env={**BASE_ENV, **env})
    return runner.invoke(app, ["--data-dir", str(data_dir), *args])


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def scripts_run_commands(*, demo: bool) -> list[list[str]]:
    """The `tawasol` commands scripts/run runs before `exec tawasol up`, in order."""
    commands = []
    for line in (ROOT / "scripts" / "run").read_text().splitlines():
        found = re.match(r"\s*\.venv/bin/tawasol (.*)$", line)
        if not found:
            continue
        words = found.group(1).replace('"${demo[@]}"', "--demo" if demo else "").split()
        inside_demo_branch = "--if-empty" in words
        if inside_demo_branch and not demo:
            continue
        commands.append(words)
    assert commands[0] == ["init"]
    return commands


def rerun_scripts_run(data_dir: Path, *, demo: bool) -> None:
    for words in scripts_run_commands(demo=demo):
        result = run(data_dir, *words)
        assert result.exit_code == 0, (words, result.output)


@pytest.fixture
def demo_dir(tmp_path):
    rerun_scripts_run(tmp_path, demo=True)
    return tmp_path


# -- fault 1: scripts/run keeps the operator's changes ---------------------------------------------
def test_given_operator_changes_when_scripts_run_again_then_everything_is_kept(
    demo_dir, tmp_path_factory
):
    brain = build_brain(Settings(data_dir=demo_dir))
    try:
        from dataclasses import replace
        from decimal import Decimal

        from tawasol.domain.money import Money

        plan = brain.catalog.get_plan("maroc-illimite-mois")
        brain.catalog.update_plan(replace(plan, price=Money(Decimal("11.99"), "EUR")))
        carrier = brain.catalog.get_carrier("ma-flat")
        brain.catalog.update_carrier(replace(carrier, enabled=False))
    finally:
        brain.close()
    deck = tmp_path_factory.mktemp("deck") / "deck.csv"
    deck.write_text(
        "prefix,rate,currency,effective_from,increment\n"
        "2126,0.0611,EUR,2026-01-01T00:00:00+00:00,60/60\n"
    )
    imported = run(demo_dir, "carriers", "rates", "ma-minute", "--import", str(deck))
    assert imported.exit_code == 0, imported.output

    rerun_scripts_run(demo_dir, demo=True)  # restart in demo mode
    rerun_scripts_run(demo_dir, demo=False)  # and as production

    brain = build_brain(Settings(data_dir=demo_dir))
    try:
        assert str(brain.catalog.get_plan("maroc-illimite-mois").price) == "11.99 EUR"
        assert brain.catalog.get_carrier("ma-flat").enabled is False
        rates = brain.catalog.get_carrier("ma-minute").rate_deck.rates()
        assert [(r.prefix, str(r.per_minute.amount)) for r in rates] == [("2126", "0.0611")]
        assert len(brain.catalog.list_subscribers()) == 5
    finally:
        brain.close()


def test_production_scripts_run_on_an_empty_database_loads_no_demo_account(tmp_path):
    rerun_scripts_run(tmp_path, demo=False)
    listing = run(tmp_path, "subscriber", "list")
    assert listing.exit_code == 0
    assert "amina" not in listing.output


def test_the_sample_operator_needs_demo_mode_and_an_empty_database(tmp_path_factory, demo_dir):
    empty = tmp_path_factory.mktemp("empty")
    assert run(empty, "init").exit_code == 0
    refused = run(empty, "seed", "--sample")
    assert refused.exit_code == 2
    assert "--demo" in refused.output
    again = run(demo_dir, "seed", "--sample", "--demo")
    assert again.exit_code == 1
    assert "only loaded into an empty database" in plain(again.output)
    seeded = run(empty, "seed", "--sample", TAWASOL_DEMO="true")
    assert seeded.exit_code == 0, seeded.output
    assert "DEMO MODE" in seeded.output and "amina-demo-2026" in seeded.output


def test_outside_demo_mode_the_brain_refuses_to_run_with_published_passwords(demo_dir):
    # A subprocess with a timeout: a brain that wrongly starts must not hang the suite.
    command = tawasol(demo_dir, "serve", "--port", str(free_port()))
    env = {"PATH": "/usr/bin:/bin", **BASE_ENV}
    result = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "published in the README" in plain(result.stderr)
    assert "amina" in result.stderr


# -- fault 2 and 4 on the CLI ---------------------------------------------------------------------
def test_a_huge_offset_is_a_clear_error_not_a_traceback(demo_dir):
    result = run(demo_dir, "subscriber", "list", "--offset", "999999999999999999999")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--offset" in result.output and "2147483647" in result.output


def test_subscriber_add_with_an_unknown_plan_creates_nothing(demo_dir):
    args = ("subscriber", "add", "noplan", "--name", "No Plan", "--phone", "+33611119999")
    failed = run(demo_dir, *args, "--plan", "nope")
    assert failed.exit_code == 3, failed.output
    assert "nope" in failed.output
    retried = run(demo_dir, *args, "--plan", "maroc-illimite-mois")
    assert retried.exit_code == 0, retried.output
    assert "SIP password (shown once" in retried.output
    assert "subscribed to maroc-illimite-mois" in retried.output


def test_subscriber_add_refuses_a_weak_password(demo_dir):
    args = ("subscriber", "add", "weak", "--name", "Weak", "--phone", "+33611119998")
    result = run(demo_dir, *args, "--password", "12345678")
    assert result.exit_code == 2
    assert "SIP password" in result.output


# -- fault 8: explain asks the running brain -------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def running_brain(demo_dir):
    """The brain's HTTP API on 127.0.0.1 (a real uvicorn server), on the demo database."""
    port = free_port()
    brain = build_brain(Settings(data_dir=demo_dir, admin_token=TOKEN, demo=True))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(brain, background=False), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield {"TAWASOL_API_PORT": str(port), "TAWASOL_ADMIN_TOKEN": TOKEN}
    server.should_exit = True
    thread.join(timeout=10)
    brain.close()


def test_explain_asks_the_running_brain_which_knows_every_carrier_is_capped(
    demo_dir, running_brain
):
    for code in ("ma-flat", "ma-minute"):
        capped = run(demo_dir, "carriers", "capacity", code, "0", **running_brain)
        assert capped.exit_code == 0, capped.output
        assert "closed" in capped.output
    live = run(demo_dir, "explain", "amina", "00212661234567", **running_brain)
    assert live.exit_code == 0, live.output
    assert "DENIED: no_route" in live.output
    assert "answered by the running brain" in live.output
    local = run(demo_dir, "explain", "amina", "00212661234567", "--database-only", **running_brain)
    assert "ALLOWED" in local.output
    assert "read from the database only" in plain(local.output)
    assert "NOT taken into account" in plain(local.output)


def test_explain_without_a_brain_says_it_only_read_the_database(demo_dir):
    port = free_port()  # nothing listens there
    result = run(
        demo_dir,
        "explain",
        "amina",
        "00212661234567",
        TAWASOL_API_PORT=str(port),
        TAWASOL_ADMIN_TOKEN=TOKEN,
    )
    assert result.exit_code == 0, result.output
    assert "read from the database only" in plain(result.output)
    assert "does not answer" in plain(result.output)


# -- fault 10: words that mislead ------------------------------------------------------------------
def test_a_wrong_token_is_unauthorized_on_the_cli_as_on_the_api(demo_dir, running_brain):
    env = running_brain | {"TAWASOL_ADMIN_TOKEN": "wrong-token"}
    result = run(demo_dir, "carriers", "capacity", "ma-flat", "5", **env)
    assert result.exit_code == 5
    assert "error (unauthorized)" in result.output
    assert "invalid_input" not in result.output


def test_a_negative_capacity_is_named_as_such_not_an_unknown_option(demo_dir, running_brain):
    result = run(demo_dir, "carriers", "capacity", "ma-flat", "-5", **running_brain)
    assert result.exit_code == 2
    assert "No such option" not in result.output
    assert "channels must be a whole number from 0" in result.output
    above = run(demo_dir, "carriers", "capacity", "ma-flat", "31", **running_brain)
    assert above.exit_code == 2
    assert "contract gives 30 channels" in plain(above.output)
    absurd = run(demo_dir, "carriers", "capacity", "ma-flat", "1000000", **running_brain)
    assert absurd.exit_code == 2
    assert "not 1000000" in absurd.output


def test_events_of_an_unknown_carrier_are_not_found_like_its_capacity(demo_dir):
    result = run(demo_dir, "carriers", "events", "nope")
    assert result.exit_code == 3
    assert "not_found" in result.output


@pytest.mark.parametrize(
    "command", [["carriers", "status"], ["seed"], ["up"], ["explain"], ["subscriber", "add"]]
)
def test_help_shows_no_type_on_flags(command):
    result = CliRunner(env=BASE_ENV).invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.output


def test_the_status_board_fits_80_columns(demo_dir, running_brain):
    result = run(demo_dir, "carriers", "status", **(running_brain | {"COLUMNS": "80"}))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), result.output
    for code in ("ma-flat", "ma-minute", "tn-carrier", "dz-carrier"):
        assert any(line.strip().startswith(code) for line in lines), result.output
    assert re.search(r"carriers at \d\d:\d\d:\d\d", result.output)


def test_status_watch_into_a_file_writes_timed_tables(demo_dir, running_brain, tmp_path):
    output = tmp_path / "board.txt"
    command = tawasol(demo_dir, "carriers", "status", "--watch")
    env = {"PATH": "/usr/bin:/bin", **BASE_ENV, **running_brain}
    with output.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and output.read_text().count("carriers at") < 2:
                time.sleep(0.2)
        finally:
            process.terminate()
            process.wait(timeout=10)
    text = output.read_text()
    assert len(re.findall(r"carriers at \d\d:\d\d:\d\d", text)) >= 2, text
    assert "ma-flat" in text


def test_a_plan_change_on_the_cli_leaves_one_running_subscription(demo_dir):
    changed = run(demo_dir, "subscriber", "change-plan", "amina", "maroc-illimite-an")
    assert changed.exit_code == 0, changed.output
    shown = plain(run(demo_dir, "subscriber", "show", "amina").output)
    assert "maroc-illimite-mois │ cancelled" in shown
    assert "maroc-illimite-an │ active" in shown


def test_the_calls_report_counts_refusals_per_reason(demo_dir):
    from datetime import UTC, datetime

    from tawasol.domain.decision import CallRequest

    brain = build_brain(Settings(data_dir=demo_dir))
    try:
        brain.authorizer.authorize(CallRequest("amina", "0021671234567", call_id="tn-1"))
        brain.authorizer.authorize(CallRequest("leila", "00212661234567", call_id="lapsed-1"))
    finally:
        brain.close()  # writes what is queued
    today = datetime.now(UTC).date().isoformat()
    result = run(demo_dir, "calls", "report", "--since", today)
    assert result.exit_code == 0, result.output
    text = plain(result.output)
    assert "refused │ 2" in text
    assert "refused: destination_not_in_plan │ 1" in text
    assert "refused: no_active_subscription │ 1" in text


def test_subscriber_add_can_ask_the_password_hidden(demo_dir):
    args = ("subscriber", "add", "asked", "--name", "Asked", "--phone", "+33611119997")
    runner = CliRunner(env=BASE_ENV)
    typed = "harbour-violet-73-kite\n"
    result = runner.invoke(
        app, ["--data-dir", str(demo_dir), *args, "--ask-password"], input=typed * 2
    )
    assert result.exit_code == 0, result.output
    assert "harbour-violet-73-kite" not in result.output
    assert "shown once" not in result.output  # the operator chose it: nothing generated
