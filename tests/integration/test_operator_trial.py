"""Defects a fresh operator found while trying issues 9 and 11 (no nonsense accepted, HA1s never
leak, no demo passwords in production), through the real app over HTTP and the real CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sample_brain import AUTH
from typer.testing import CliRunner

from tawasol.cli import app
from tawasol.composition import build_brain
from tawasol.config import Settings
from tawasol.services.sample_operator import published_sample_accounts

BASE_ENV = {"COLUMNS": "200", "TAWASOL_ADMIN_TOKEN": "", "TAWASOL_DEMO": "false"}
PUBLISHED = ["amina-demo-2026", "Youssef-Demo-2026", "leila-demo-2026"]


def run(data_dir: Path, *args: str, input: str | None = None, **env: str):
    runner = CliRunner(env={**BASE_ENV, **env})
    return runner.invoke(app, ["--data-dir", str(data_dir), *args], input=input)


def plain(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def demo_dir(tmp_path):
    directory = tmp_path / "demo"  # apart from the `brain` fixture's database in tmp_path
    assert run(directory, "init").exit_code == 0
    seeded = run(directory, "seed", "--sample", "--demo")
    assert seeded.exit_code == 0, seeded.output
    return directory


def _new_subscriber(password: str) -> dict:
    return {
        "name": "Nadia Saidi",
        "phone": "+33611112222",
        "sip_username": "nadia",
        "password": password,
    }


# -- 1. published passwords are refused wherever a password is chosen -------------------------
@pytest.mark.parametrize("password", PUBLISHED)
def test_given_a_published_password_when_set_over_the_api_then_422(client, password):
    created = client.post("/admin/v1/subscribers", json=_new_subscriber(password), headers=AUTH)
    assert created.status_code == 422, created.text
    assert "published" in created.json()["message"]
    changed = client.put(
        "/admin/v1/subscribers/2/password", json={"password": password}, headers=AUTH
    )
    assert changed.status_code == 422, changed.text
    assert "published" in changed.json()["message"]


def test_given_a_published_password_when_added_with_the_cli_then_refused(demo_dir):
    added = run(
        demo_dir,
        "subscriber",
        "add",
        "nadia",
        "--name",
        "Nadia Saidi",
        "--phone",
        "+33611112222",
        "--password",
        "karim-demo-2026",
    )
    assert added.exit_code != 0
    assert "published" in plain(added.output)
    asked = run(
        demo_dir, "subscriber", "password", "amina", "--ask-password",
        input="sami-demo-2026\nsami-demo-2026\n",
    )  # fmt: skip
    assert asked.exit_code != 0
    assert "published" in plain(asked.output)


# -- 2. the refusal to start names a command that works without a brain ------------------------
def test_given_published_sample_accounts_when_refused_then_the_cli_command_resets_them(demo_dir):
    command = [sys.executable, "-m", "tawasol", "--data-dir", str(demo_dir), "serve"]
    env = {"PATH": "/usr/bin:/bin", **BASE_ENV}
    refused = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "tawasol subscriber password USER" in plain(refused.stderr)
    for username in ("amina", "youssef", "karim", "sami", "leila"):
        result = run(demo_dir, "subscriber", "password", username)
        assert result.exit_code == 0, result.output
        assert "shown once" in result.output
    typed = run(
        demo_dir, "subscriber", "password", "amina", "--ask-password",
        input="Blue-Cedar-Atlas-4417\nBlue-Cedar-Atlas-4417\n",
    )  # fmt: skip
    assert typed.exit_code == 0, typed.output
    assert "shown once" not in typed.output
    brain = build_brain(Settings(data_dir=demo_dir))
    try:
        published = published_sample_accounts(brain.settings.sip_realm)
        for username, ha1 in published.items():
            subscriber = brain.catalog.find_subscriber(username)
            assert subscriber is not None and subscriber.ha1 != ha1
    finally:
        brain.close()
    unknown = run(demo_dir, "subscriber", "password", "nobody")
    assert unknown.exit_code != 0
    assert "no subscriber" in plain(unknown.output)


# -- 8. every admin route refuses a query parameter it does not take ---------------------------
@pytest.mark.parametrize("query", ["bogus=1", "since=2026-11-01T00:00:00Z"])
def test_given_an_unknown_query_parameter_on_auth_failures_then_422_like_other_routes(
    client, query
):
    answer = client.get(f"/admin/v1/security/auth-failures?{query}", headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert query.split("=")[0] in answer.json()["message"]
    assert client.get("/admin/v1/security/auth-failures", headers=AUTH).status_code == 200


# -- 9. a bad instant is reported under the option the user typed ------------------------------
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["calls", "report", "--since", "9999-01-01"], "--since"),
        (["calls", "report", "--since", "2026-11-01", "--until", "1970-01-01"], "--until"),
        (["calls", "report", "--since", "yesterday"], "--since"),
        (["explain", "amina", "00212661234567", "--database-only", "--at", "9999-01-01"], "--at"),
    ],
)
def test_given_an_instant_out_of_bounds_then_the_error_names_the_option_typed(
    demo_dir, args, option
):
    result = run(demo_dir, *args)
    assert result.exit_code != 0
    text = plain(result.output)
    assert f"{option} must be" in text or f"{option} must carry" in text, text
    assert "Traceback" not in text
    others = {"--at", "--since", "--until"} - {option}
    assert not any(f"{other} must" in text for other in others)


# -- 3. the database holding every HA1 is private -----------------------------------------------
def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_given_a_new_data_dir_then_directory_0700_and_database_files_0600(tmp_path):
    data_dir = tmp_path / "fresh"
    assert run(data_dir, "init").exit_code == 0
    brain = build_brain(Settings(data_dir=data_dir))
    try:
        brain.catalog.add_subscriber(
            name="Nadia Saidi", email="", phone="+33611112222", locale="fr",
            time_zone="Europe/Paris", sip_username="nadia",
        )  # fmt: skip
        files = [data_dir / name for name in ("tawasol.db", "tawasol.db-wal", "tawasol.db-shm")]
        assert all(path.exists() for path in files)
        assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}
        assert _mode(data_dir) == 0o700
    finally:
        brain.close()


def test_given_a_world_readable_database_from_before_then_tightened_on_start(demo_dir):
    database = demo_dir / "tawasol.db"
    database.chmod(0o644)
    demo_dir.chmod(0o755)
    listing = run(demo_dir, "subscriber", "list")
    assert listing.exit_code == 0, listing.output
    assert _mode(database) == 0o600
    assert _mode(demo_dir) == 0o700
    assert all(_mode(path) == 0o600 for path in demo_dir.glob("tawasol.db-*"))


# -- 7 and 10: plans and carriers that make no sense are refused, naming the field -----------
def _sample(client, kind: str, code: str) -> dict:
    answer = client.get(f"/admin/v1/{kind}/{code}", headers=AUTH)
    assert answer.status_code == 200
    return answer.json()


def _refused(client, kind: str, body: dict, field: str) -> str:
    """POST `body` as a new plan/carrier: 422 naming `field`; the message, for more checks."""
    answer = client.post(f"/admin/v1/{kind}", json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert field in message, message
    return message


CONTROL = "ctrl\u0000\u001b[31m"


def test_given_control_characters_or_blank_names_then_422_everywhere(client):
    subscriber = _new_subscriber("Blue-Cedar-Atlas-4417") | {"name": CONTROL}
    assert "U+0000" in _refused(client, "subscribers", subscriber, "body.name")
    subscriber = _new_subscriber("Blue-Cedar-Atlas-4417") | {"name": "   "}
    assert "blank" in _refused(client, "subscribers", subscriber, "body.name")
    subscriber = _new_subscriber("Blue-Cedar-Atlas-4417") | {"email": "a\u001b@example.org"}
    _refused(client, "subscribers", subscriber, "body.email")
    for name in (CONTROL, "   ", "\u0085line"):
        plan = _sample(client, "plans", "maroc-illimite-mois")
        plan |= {"code": "trial-plan", "names": {"fr": "Essai", "ar": name}}
        _refused(client, "plans", plan, "body.names.ar")
        carrier = _sample(client, "carriers", "ma-minute") | {"code": "trial", "name": name}
        _refused(client, "carriers", carrier, "body.name")
    assert client.get("/admin/v1/plans/trial-plan", headers=AUTH).status_code == 404


def test_given_control_characters_in_a_name_on_the_cli_then_refused_and_nothing_added(demo_dir):
    added = run(
        demo_dir, "subscriber", "add", "nadia", "--name", CONTROL, "--phone", "+33611112222",
    )  # fmt: skip
    assert added.exit_code != 0
    assert "control characters" in plain(added.output)
    assert "\u001b[31m" not in added.output
    listing = run(demo_dir, "subscriber", "list")
    assert "nadia" not in listing.output


def _plan_with(client, **changes) -> dict:
    return _sample(client, "plans", "maroc-illimite-mois") | {"code": "trial-plan", **changes}


def _carrier_with(client, **changes) -> dict:
    return _sample(client, "carriers", "ma-minute") | {"code": "trial", **changes}


def test_given_contradictory_plans_then_422_naming_the_field(client):
    ceiling = {"country": "MA", "kind": "mobile", "max_per_minute": "0.05", "currency": "EUR"}
    cases = [
        ({"cost_ceilings": [ceiling, ceiling | {"max_per_minute": "0.09"}]}, "cost_ceilings[1]"),
        (
            {"time_windows": [{"weekdays": [0], "start": "20:00", "end": "20:00"}]},
            "body.time_windows.0",
        ),
        ({"price": "9.99", "currency": "JPY"}, "price"),
        ({"price": "9.999", "currency": "EUR"}, "price"),
        ({"period": "week", "fair_use": {"minutes_per_period": 10_081}}, "minutes_per_period"),
        ({"period": "month", "fair_use": {"minutes_per_period": 44_641}}, "minutes_per_period"),
    ]
    for changes, field in cases:
        _refused(client, "plans", _plan_with(client, **changes), field)
    accepted = _plan_with(
        client,
        price="999",
        currency="JPY",
        cost_ceilings=[],
        period="week",
        fair_use={"minutes_per_period": 10_080},
        time_windows=[{"weekdays": [0], "start": "00:00", "end": "00:00"}],
    )
    created = client.post("/admin/v1/plans", json=accepted, headers=AUTH)
    assert created.status_code == 201, created.text


def test_given_contradictory_carriers_then_422_naming_the_field(client):
    rate = {
        "prefix": "2126",
        "per_minute": "0.0611",
        "currency": "EUR",
        "effective_from": "2026-01-01T00:00:00Z",
        "increment": "60/60",
    }
    gateway = {"name": "gw1", "host": "127.0.0.1", "port": 5099, "transport": "udp"}
    cases = [
        ({"rates": [rate, rate | {"per_minute": "0.0700"}]}, "rates[1]"),
        ({"gateways": [gateway, gateway | {"host": "127.0.0.2"}]}, "gateways[1]"),
        (
            {"destinations": [
                {"country": "MA", "kind": "mobile", "priority": 1},
                {"country": "MA", "kind": "mobile", "priority": 9},
            ]},
            "destinations[1]",
        ),
        (
            {"flat_rate": {"channels": 10, "monthly_fee": "100.5", "currency": "JPY"}},
            "flat_rate.monthly_fee",
        ),
    ]  # fmt: skip
    for changes, field in cases:
        _refused(client, "carriers", _carrier_with(client, **changes), field)
    # An identical repeat of a rate is read once, as in the CSV import.
    same = client.post(
        "/admin/v1/carriers", json=_carrier_with(client, rates=[rate, rate]), headers=AUTH
    )
    assert same.status_code == 201, same.text
    assert len(same.json()["rates"]) == 1


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("0.0.0.0", 5060),
        ("::", 5060),
        ("224.0.1.75", 5060),
        ("ff02::1", 5060),
        ("255.255.255.255", 5060),
        ("127.0.0.1", 5060),  # the edge itself: sip_listen 127.0.0.1, sip_port 5060
        ("localhost", 5060),
    ],
)
def test_given_a_gateway_that_cannot_be_a_carrier_then_422_and_never_routed(client, host, port):
    gateway = {"name": "gw1", "host": host, "port": port, "transport": "udp"}
    body = _carrier_with(client, gateways=[gateway])
    _refused(client, "carriers", body, "gateways")
    changed = _sample(client, "carriers", "ma-minute") | {"gateways": [gateway]}
    answer = client.put("/admin/v1/carriers/ma-minute", json=changed, headers=AUTH)
    assert answer.status_code == 422, answer.text
    stored = _sample(client, "carriers", "ma-minute")["gateways"]
    assert all((item["host"], item["port"]) != (host, port) for item in stored)


# -- 5. codes and SIP usernames are identifiers: case does not make a new one -----------------
def test_given_a_code_differing_only_in_case_then_409_and_not_routed(client):
    plan = _sample(client, "plans", "maroc-illimite-mois") | {"code": "MAROC-ILLIMITE-MOIS"}
    answer = client.post("/admin/v1/plans", json=plan, headers=AUTH)
    assert answer.status_code == 409, answer.text
    assert "maroc-illimite-mois" in answer.json()["message"]
    carrier = _sample(client, "carriers", "ma-minute") | {"code": "MA-MINUTE"}
    answer = client.post("/admin/v1/carriers", json=carrier, headers=AUTH)
    assert answer.status_code == 409, answer.text
    codes = [item["code"] for item in client.get("/admin/v1/carriers", headers=AUTH).json()]
    assert "MA-MINUTE" not in codes


def test_given_a_username_in_capitals_then_explain_and_show_find_the_subscriber(demo_dir, client):
    shown = run(demo_dir, "subscriber", "show", "AMINA")
    assert shown.exit_code == 0, shown.output
    assert "Amina El Idrissi" in shown.output
    explained = run(demo_dir, "explain", "AMINA", "00212661234567", "--database-only")
    assert "unknown" not in explained.output.lower()
    assert "no active subscription" not in plain(explained.output).lower()
    lower = run(demo_dir, "explain", "amina", "00212661234567", "--database-only")
    assert (
        explained.output.splitlines()[0].split("(")[0] == lower.output.splitlines()[0].split("(")[0]
    )
    answer = client.post(
        "/admin/v1/explain",
        json={"sip_username": "AMINA", "dialled": "00212661234567"},
        headers=AUTH,
    )
    assert answer.status_code == 200
    assert answer.json()["reason"] != "unknown_subscriber"
    assert answer.json()["allow"] is True


# -- 4. a command run in the wrong place creates nothing and says where it looked --------------
@pytest.mark.parametrize(
    "args",
    [
        ["subscriber", "list"],
        ["subscriber", "show", "amina"],
        ["plan", "list"],
        ["explain", "amina", "00212661234567", "--database-only"],
        ["calls", "report", "--since", "2026-11-01"],
        ["carriers", "rates", "ma-minute"],
    ],
)
def test_given_no_database_in_the_working_directory_then_nothing_created_and_told_where(
    tmp_path, monkeypatch, args
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAWASOL_DATA_DIR", raising=False)
    monkeypatch.delenv("TAWASOL_DATABASE_URL", raising=False)
    result = CliRunner(env={**BASE_ENV, "COLUMNS": "400"}).invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    text = plain(result.output)
    assert f"no tawasol database at {(tmp_path / 'var' / 'tawasol.db').resolve()}" in text
    assert "TAWASOL_DATA_DIR" in text and "--data-dir" in text
    assert list(tmp_path.iterdir()) == []


def test_given_an_initialised_data_dir_then_reading_commands_create_nothing(tmp_path):
    assert run(tmp_path, "init").exit_code == 0
    created = {path.name: _mode(path) for path in tmp_path.iterdir()}
    assert created["grant.key"] == 0o600 and created["edge.token"] == 0o600
    for args in (["subscriber", "list"], ["plan", "list"], ["subscriber", "show", "nobody"]):
        run(tmp_path, *args)
    # SQLite's own -wal/-shm come and go with connections; nothing else may appear.
    after = {path.name for path in tmp_path.iterdir() if not path.name.startswith("tawasol.db-")}
    assert after == {name for name in created if not name.startswith("tawasol.db-")}
