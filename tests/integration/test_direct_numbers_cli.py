"""`tawasol direct ...` on a real SQLite database with the sample operator: the operator's
whole set-up of a direct number, and bad input refused with nothing half-done."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tawasol.cli import app

runner = CliRunner(env={"COLUMNS": "220", "TAWASOL_ADMIN_TOKEN": "", "TAWASOL_DEMO": "false"})


def run(data_dir: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["--data-dir", str(data_dir), *args])


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("tawasol")
    assert run(directory, "init").exit_code == 0
    assert run(directory, "seed", "--sample", "--demo").exit_code == 0
    trunk = run(
        directory,
        "direct",
        "trunk",
        "set",
        "fr-did",
        "--name",
        "French DID provider",
        "--country",
        "FR",
        "--address",
        "192.0.2.10",
        "--range",
        "3318488",
        "--trust-pai",
    )
    assert trunk.exit_code == 0, trunk.output
    return directory


def test_operator_sets_up_a_direct_number_with_the_cli(data_dir: Path, tmp_path: Path) -> None:
    pool = tmp_path / "pool.csv"
    pool.write_text("number;trunk;description\n01 84 88 00 01;fr-did;Paris\n+33184880002;fr-did;\n")
    imported = run(data_dir, "direct", "pool", "import", str(pool))
    assert imported.exit_code == 0, imported.output
    assert "2 numbers added" in imported.output

    added = run(data_dir, "direct", "caller-id", "add", "amina", "06 12 34 56 78")
    assert added.exit_code == 0, added.output
    code = re.search(r"code \(valid 15 minutes\): (\d{6})", plain(added.output))
    assert code, added.output
    wrong = run(data_dir, "direct", "caller-id", "verify", "amina", "+33612345678", "000000")
    assert wrong.exit_code != 0 and "wrong verification code" in plain(wrong.output)
    verified = run(data_dir, "direct", "caller-id", "verify", "amina", "+33612345678", code[1])
    assert verified.exit_code == 0, verified.output
    assert "+33612345678 verified" in plain(
        run(data_dir, "direct", "caller-id", "list", "amina").output
    )

    contact = run(data_dir, "direct", "contact", "add", "amina", "Maman", "+212 6 61 23 45 67")
    assert contact.exit_code == 0, contact.output
    assert "call 01 84 88 00 01 to reach Maman (+212661234567)" in plain(contact.output)
    usage = run(data_dir, "direct", "pool", "usage")
    assert usage.exit_code == 0 and "pool: 2 numbers" in usage.output


def test_bad_pool_files_are_refused_whole(data_dir: Path, tmp_path: Path) -> None:
    before = run(data_dir, "direct", "pool", "usage").output
    cases = {
        "duplicate": "number;trunk\n+33184880050;fr-did\n0184880050;fr-did\n",
        "abroad": "number;trunk\n+33184880051;fr-did\n+3225550000;fr-did\n",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        refused = run(data_dir, "direct", "pool", "import", str(path))
        assert refused.exit_code != 0, refused.output
        assert "nothing imported" in plain(refused.output)
        assert "Traceback" not in refused.output
    assert run(data_dir, "direct", "pool", "usage").output == before


def test_a_contact_outside_the_plan_is_refused(data_dir: Path) -> None:
    refused = run(data_dir, "direct", "contact", "add", "amina", "Cousin", "+221771234567")
    assert refused.exit_code != 0
    assert "not covered by the subscriber's plan" in plain(refused.output)
    listing = run(data_dir, "direct", "contact", "list", "amina")
    assert "Cousin" not in listing.output
