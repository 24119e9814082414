"""Against the real brain app (HTTP) and the real `tawasol` command, on a real SQLite store:
explaining a call never changes the live counters (issue 9, fault 9), and a subscriber in
Montreal may dial `+`, `00` or `011` (issue 11, fault 9) on the SIP path and in the CLI."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from edge_support import decide, edge_headers, granted
from fastapi.testclient import TestClient
from sample_brain import AUTH, NOW, sample_brain
from typer.testing import CliRunner

from tawasol.adapters.api.app import create_app
from tawasol.cli import app
from tawasol.domain.carriers import CarrierDestination
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.numbering import NumberKind

WAYS_TO_DIAL_MOROCCO_FROM_MONTREAL = ["00212661234567", "+212661234567", "011212661234567"]


def _authorize(client, *, user: str, dialled: str, call_id: str) -> dict:
    return decide(client, user=user, dialled=dialled, call_id=call_id)


def _counters(client, brain) -> dict[str, object]:
    carriers = client.get("/admin/v1/carriers/status", headers=AUTH)
    assert carriers.status_code == 200, carriers.text
    stats = client.get("/sip/v1/stats").json()
    return {
        "calls_in_progress": stats["calls_in_progress"],
        "carriers": carriers.json(),
        "channels": {code: brain.authorizer.channels_in_use(code) for code in ("ma-flat",)},
    }


def test_given_calls_in_progress_when_explained_at_past_and_future_times_then_no_counter_moves(
    client, brain
):
    for index, user in enumerate(("amina", "sami")):
        assert _authorize(client, user=user, dialled="00212661234567", call_id=f"live-{index}")[
            "allow"
        ]
    before = _counters(client, brain)
    assert before["calls_in_progress"] == 2
    assert before["channels"] == {"ma-flat": 2}

    for offset in (
        timedelta(days=400),
        timedelta(hours=5),
        timedelta(minutes=-30),
        timedelta(days=-40),
        timedelta(0),
    ):
        at = (NOW + offset).isoformat()
        for user in ("amina", "sami", "youssef"):
            response = client.post(
                "/admin/v1/explain",
                json={"sip_username": user, "dialled": "00212661234567", "at": at},
                headers=AUTH,
            )
            assert response.status_code == 200, response.text
        assert _counters(client, brain) == before, f"explain at {at} changed the counters"

    # amina's only call slot is still taken: her next real call is refused as before.
    again = _authorize(client, user="amina", dialled="00212661234567", call_id="second")
    assert again["reason"] == "concurrent_limit"


@pytest.mark.parametrize("dialled", WAYS_TO_DIAL_MOROCCO_FROM_MONTREAL)
def test_given_a_montreal_subscriber_when_the_edge_asks_then_plus_00_and_011_all_allowed(
    client, dialled
):
    body = _authorize(client, user="youssef", dialled=dialled, call_id=f"mtl-{dialled}")

    assert body["allow"] is True, body
    assert body["destination"] == "+212661234567"


@pytest.mark.parametrize("dialled", WAYS_TO_DIAL_MOROCCO_FROM_MONTREAL)
def test_given_a_montreal_subscriber_when_explained_on_the_cli_then_plus_00_and_011_allowed(
    tmp_path, dialled
):
    # No admin token: explain reads the database (no brain runs here).
    runner = CliRunner(env={"COLUMNS": "220", "TAWASOL_ADMIN_TOKEN": ""})
    assert runner.invoke(app, ["--data-dir", str(tmp_path), "init"]).exit_code == 0
    seeded = runner.invoke(app, ["--data-dir", str(tmp_path), "seed", "--sample", "--demo"])
    assert seeded.exit_code == 0, seeded.output

    result = runner.invoke(app, ["--data-dir", str(tmp_path), "explain", "youssef", dialled])

    assert result.exit_code == 0, result.output
    assert result.output.startswith("ALLOWED"), result.output
    assert "+212661234567" in result.output


# -- numbers nobody sells: an unlisted number, allowed only where the operator says so ----------
IVORIAN_UNLISTED = "00225 27 21 45 67 89"  # a real fixed range libphonenumber does not list


def _sell_ivory_coast(brain) -> None:
    plan = brain.catalog.get_plan("maroc-illimite-mois")
    ivorian_fixed = DestinationRule("CI", NumberKind.FIXED)
    brain.catalog.update_plan(replace(plan, destinations=plan.destinations | {ivorian_fixed}))
    carrier = brain.catalog.get_carrier("ma-flat")
    brain.catalog.update_carrier(
        replace(carrier, destinations=(*carrier.destinations, CarrierDestination(ivorian_fixed)))
    )


@pytest.mark.parametrize(("countries", "allowed"), [("", False), ("ci", True)])
def test_given_an_unlisted_number_then_allowed_only_where_metadata_is_marked_incomplete_flagged_counted_and_in_the_cdr(  # noqa: E501
    tmp_path, countries, allowed
):
    brain = sample_brain(tmp_path, unlisted_number_countries=countries)
    _sell_ivory_coast(brain)
    try:
        with TestClient(create_app(brain, background=False)) as client:
            client.headers.update(edge_headers(brain))
            body = _authorize(client, user="amina", dialled=IVORIAN_UNLISTED, call_id="ci-1")
            assert body["allow"] is allowed, body
            if not allowed:
                assert body["reason"] == "destination_not_sold"
            assert client.get("/sip/v1/stats").json()["unlisted_numbers_allowed"] == int(allowed)

            base_ms = int(NOW.timestamp() * 1000)
            common = {"call_id": "ci-1", "user": "amina", "dialled": IVORIAN_UNLISTED}
            outcome = (
                [
                    {**common, "type": "answer", "at_ms": base_ms + 1000, "carrier": "ma-flat"},
                    {**common, "type": "end", "at_ms": base_ms + 31_000},
                ]
                if allowed
                else [{**common, "type": "failure", "at_ms": base_ms, "sip_code": 403}]
            )
            # (the grant an allowed call carries; for the refused one, as if it had been)
            response = client.post("/sip/v1/events", json={"events": granted(brain, outcome)})
            assert response.status_code == 200, response.text
            record = client.get("/admin/v1/calls/ci-1", headers=AUTH).json()
            assert (record["destination"], record["kind"]) == ("+2252721456789", "unlisted")
    finally:
        brain.close()
