"""Plans with hours through the admin API on a real store (issue 10, fault 8): a call that
starts near the end of the plan's hours is cut at the end, or after the plan's grace."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sample_brain import AUTH, sample_brain  # the client fixture: conftest.py

# Tuesday 13 January 2026, 07:59 in Brussels (UTC+1): the sample "soirees-maghreb" plan's
# hours (every evening 20:00-08:00, weekends all day) end in a minute for karim.
TUESDAY_0759 = "2026-01-13T07:59:00+01:00"


@pytest.fixture
def brain(tmp_path):
    brain = sample_brain(
        tmp_path,
        clock=lambda: datetime(2026, 1, 13, 6, 0, tzinfo=UTC),
        seeded_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    yield brain
    brain.close()


def explain(client, at: str) -> dict:
    response = client.post(
        "/admin/v1/explain",
        json={"sip_username": "karim", "dialled": "00212661234567", "at": at},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_given_a_plan_without_grace_when_called_at_0759_then_cut_at_0800_and_explained(client):
    plan = client.get("/admin/v1/plans/soirees-maghreb", headers=AUTH).json()
    assert plan["window_grace_minutes"] == 0
    decision = explain(client, TUESDAY_0759)
    assert decision["allow"] is True
    assert decision["max_duration_s"] == 60
    assert any(
        "plan hours end at Tue 08:00 in Europe/Brussels: calls are cut then" in line
        for line in decision["explanation"]
    )


def test_given_an_operator_sets_a_15_minute_grace_then_stored_and_applied(client):
    plan = client.get("/admin/v1/plans/soirees-maghreb", headers=AUTH).json()
    plan["window_grace_minutes"] = 15
    response = client.put("/admin/v1/plans/soirees-maghreb", json=plan, headers=AUTH)
    assert response.status_code == 200, response.text
    assert (
        client.get("/admin/v1/plans/soirees-maghreb", headers=AUTH).json()["window_grace_minutes"]
        == 15
    )
    decision = explain(client, TUESDAY_0759)
    assert decision["max_duration_s"] == 16 * 60
    assert any("cut 15 min after it" in line for line in decision["explanation"])


@pytest.mark.parametrize("grace", [-1, 1441, "ten", None])
def test_given_a_bad_grace_then_422_not_500(client, grace):
    plan = client.get("/admin/v1/plans/soirees-maghreb", headers=AUTH).json()
    plan["window_grace_minutes"] = grace
    response = client.put("/admin/v1/plans/soirees-maghreb", json=plan, headers=AUTH)
    assert response.status_code == 422, response.text
