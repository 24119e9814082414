"""Issue 11 through the admin API on a real SQLite store: no 500, no silent overwrite, no
half-done command, no nonsense accepted, every refused call recorded, offline docs."""

from __future__ import annotations

import copy

import pytest
from edge_support import decide
from sample_brain import AUTH

HUGE = "999999999999999999999"


def get(client, path, **params):
    return client.get(f"/admin/v1{path}", params=params, headers=AUTH)


def send(client, method, path, body):
    return client.request(method, f"/admin/v1{path}", json=body, headers=AUTH)


def a_subscriber(username="nadia", **changes):
    return {
        "name": "Nadia K",
        "phone": "+33611112222",
        "email": f"{username}@example.org",
        "sip_username": username,
        "time_zone": "Europe/Paris",
        **changes,
    }


def assert_refused(response, status, error_id, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_id"] == error_id, body
    for word in words:
        assert word in body["message"], body


# -- fault 2: HTTP 500 on plain typos -------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/subscribers/{HUGE}", None),
        ("GET", f"/subscribers/{HUGE}/subscriptions", None),
        ("GET", f"/subscribers?offset={HUGE}", None),
        ("GET", f"/calls?subscriber_id={HUGE}", None),
        ("PATCH", f"/subscriptions/{HUGE}", {"status": "cancelled"}),
        (
            "POST",
            "/subscribers/1/subscriptions",
            {"plan_code": "maroc-illimite-mois", "start": "9999-12-31T00:00:00Z"},
        ),
        ("PUT", "/carriers/ma-flat/capacity", {"effective_channels": int(HUGE)}),
        (
            "POST",
            "/explain",
            {"sip_username": "amina", "dialled": "002126", "at": "9999-12-31T23:00:00Z"},
        ),
    ],
)
def test_given_out_of_range_input_then_422_never_500(client, method, path, body):
    response = client.request(method, f"/admin/v1{path}", json=body, headers=AUTH)
    assert_refused(response, 422, "invalid_input")


def test_given_a_plan_with_absurd_fair_use_counts_then_422(client):
    plan = get(client, "/plans/maroc-illimite-mois").json()
    for name, value in (("minutes_per_period", 1e23), ("concurrent_calls", 10**12)):
        bad = copy.deepcopy(plan) | {"code": "big"}
        bad["fair_use"][name] = value
        assert_refused(send(client, "POST", "/plans", bad), 422, "invalid_input", name)
    assert get(client, "/plans/big").status_code == 404


# -- fault 3: silent overwrite --------------------------------------------------------------------
def test_given_an_existing_plan_code_when_posted_then_409_and_the_plan_is_kept(client):
    plan = get(client, "/plans/maroc-illimite-mois").json()
    assert_refused(
        send(client, "POST", "/plans", plan | {"price": "1.00"}), 409, "conflict", "exists"
    )
    assert get(client, "/plans/maroc-illimite-mois").json()["price"] == "9.99"
    assert (
        send(client, "PUT", "/plans/maroc-illimite-mois", plan | {"price": "11.99"}).json()["price"]
        == "11.99"
    )


def test_given_an_existing_carrier_code_when_posted_then_409_and_the_carrier_is_kept(client):
    carrier = get(client, "/carriers/ma-flat").json()
    assert_refused(send(client, "POST", "/carriers", carrier | {"enabled": False}), 409, "conflict")
    assert get(client, "/carriers/ma-flat").json()["enabled"] is True


def test_given_an_unknown_code_when_put_then_404_not_created(client):
    plan = get(client, "/plans/maroc-illimite-mois").json() | {"code": "ghost"}
    assert_refused(send(client, "PUT", "/plans/ghost", plan), 404, "not_found")
    carrier = get(client, "/carriers/ma-flat").json() | {"code": "ghost"}
    assert_refused(send(client, "PUT", "/carriers/ghost", carrier), 404, "not_found")
    assert get(client, "/plans/ghost").status_code == get(client, "/carriers/ghost").status_code


# -- fault 4: half-done commands ------------------------------------------------------------------
def test_given_a_subscriber_with_an_unknown_plan_then_nothing_is_created(client):
    response = send(client, "POST", "/subscribers", a_subscriber(plan_code="nope"))
    assert_refused(response, 404, "not_found", "nope")
    retry = send(client, "POST", "/subscribers", a_subscriber(plan_code="maroc-illimite-mois"))
    assert retry.status_code == 201, retry.text
    subscriptions = get(client, f"/subscribers/{retry.json()['id']}/subscriptions").json()
    assert [s["plan_code"] for s in subscriptions] == ["maroc-illimite-mois"]


# -- fault 5: money without currency checks -------------------------------------------------------
def test_given_a_usd_rate_deck_on_a_carrier_under_eur_ceilings_then_refused(client):
    deck = "prefix,rate,currency,effective_from,increment\n212,0.05,USD,2026-01-01T00:00:00Z,1/1\n"
    response = client.put("/admin/v1/carriers/ma-minute/rates", content=deck.encode(), headers=AUTH)
    assert_refused(response, 422, "invalid_configuration", "ma-minute", "USD", "EUR")
    assert "EUR" in client.get("/admin/v1/carriers/ma-minute/rates", headers=AUTH).text
    explained = send(
        client, "POST", "/explain", {"sip_username": "amina", "dialled": "00212661234567"}
    )
    assert explained.json()["allow"] is True


@pytest.mark.parametrize(
    ("currency", "effective_from", "column"),
    [
        ("XXX", "2026-01-01T00:00:00Z", "currency"),
        ("EUR", "9999-12-31T00:00:00Z", "effective_from"),
        ("EUR", "1970-01-01T00:00:00Z", "effective_from"),
    ],
)
def test_given_a_csv_deck_with_nonsense_then_refused_naming_the_cell(
    client, currency, effective_from, column
):
    header = "prefix,rate,currency,effective_from,increment"
    deck = f"{header}\n2126,0.05,{currency},{effective_from},1/1\n"
    response = client.put("/admin/v1/carriers/ma-minute/rates", content=deck, headers=AUTH)
    assert_refused(response, 422, "invalid_input", f"column '{column}'")


def test_given_a_usd_plan_with_a_jpy_ceiling_then_refused(client):
    plan = get(client, "/plans/maroc-illimite-mois").json() | {"code": "usd", "currency": "USD"}
    plan["cost_ceilings"] = [
        {"country": "MA", "kind": None, "max_per_minute": "10", "currency": "JPY"}
    ]
    assert_refused(send(client, "POST", "/plans", plan), 422, "invalid_configuration", "JPY")


# -- fault 6: nonsense accepted -------------------------------------------------------------------
def test_given_a_subscription_starting_in_1970_then_refused(client):
    body = {"plan_code": "maroc-illimite-mois", "start": "1970-01-01T00:00:00Z"}
    assert_refused(send(client, "POST", "/subscribers/1/subscriptions", body), 422, "invalid_input")
    body["start"] = "2024-01-01T00:00:00Z"  # a valid date, but years back
    assert_refused(
        send(client, "POST", "/subscribers/1/subscriptions", body), 422, "invalid_input", "366"
    )


@pytest.mark.parametrize(
    ("field", "value"), [("currency", "XXX"), ("currency", "XTS"), ("country", "ZZ")]
)
def test_given_codes_that_are_not_iso_then_refused(client, field, value):
    plan = get(client, "/plans/maroc-illimite-mois").json() | {"code": "iso"}
    if field == "currency":
        plan["currency"] = value
        plan["cost_ceilings"] = []
    else:
        plan["destinations"] = [{"country": value, "kind": "mobile"}]
    assert_refused(send(client, "POST", "/plans", plan), 422, "invalid_input", value)


@pytest.mark.parametrize("channels", [1_000_000, 100_000, 31, -5])
def test_given_a_capacity_above_the_contract_then_refused(client, channels):
    response = send(client, "PUT", "/carriers/ma-flat/capacity", {"effective_channels": channels})
    assert_refused(response, 422, "invalid_input")
    assert (
        send(client, "PUT", "/carriers/ma-flat/capacity", {"effective_channels": 30}).status_code
        == 200
    )


def test_subscription_statuses_move_only_along_allowed_transitions(client):
    amina = get(client, "/subscribers/1/subscriptions").json()[0]
    path = f"/subscriptions/{amina['id']}"
    # expired before the period ends
    assert_refused(send(client, "PATCH", path, {"status": "expired"}), 409, "conflict", "expire")
    assert send(client, "PATCH", path, {"status": "suspended"}).json()["status"] == "suspended"
    assert send(client, "PATCH", path, {"status": "cancelled"}).json()["status"] == "cancelled"
    assert_refused(send(client, "PATCH", path, {"status": "active"}), 409, "conflict", "final")
    leila = get(client, "/subscribers/5/subscriptions").json()[0]
    assert leila["status"] == "expired"
    response = send(client, "PATCH", f"/subscriptions/{leila['id']}", {"status": "active"})
    assert_refused(response, 409, "conflict")


def test_given_a_plan_with_subscribers_when_its_period_changes_then_refused(client):
    plan = get(client, "/plans/maroc-illimite-mois").json()
    response = send(client, "PUT", "/plans/maroc-illimite-mois", plan | {"period": "week"})
    assert_refused(response, 409, "conflict", "running subscription")
    assert get(client, "/plans/maroc-illimite-mois").json()["period"] == "month"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sip_username": "AMINA"}, "SIP username"),
        ({"phone": "+33612345678"}, "phone"),
        ({"email": "Amina@Example.org"}, "email"),
    ],
)
def test_given_a_taken_sip_user_phone_or_email_then_409(client, changes, field):
    response = send(client, "POST", "/subscribers", a_subscriber("other", **changes))
    assert_refused(response, 409, "conflict", field)


@pytest.mark.parametrize("password", ["12345678", "        ", "nadia12345"])
def test_given_a_weak_sip_password_then_refused(client, password):
    response = send(client, "POST", "/subscribers", a_subscriber(password=password))
    assert_refused(response, 422, "invalid_input")


def test_without_a_password_the_platform_generates_one_and_shows_it_once(client, brain):
    created = send(client, "POST", "/subscribers", a_subscriber())
    assert created.status_code == 201, created.text
    password = created.json()["generated_password"]
    assert len(password) >= 20
    stored = brain.catalog.find_subscriber("nadia")
    from tawasol.domain.subscribers import digest_ha1

    assert stored.ha1 == digest_ha1("nadia", "tawasol.local", password)
    assert "generated_password" not in get(client, f"/subscribers/{stored.id}").json()


def test_one_running_subscription_per_subscriber_and_a_plan_change_ends_the_old(client):
    second = {"plan_code": "maroc-illimite-an"}
    response = send(client, "POST", "/subscribers/1/subscriptions", second)
    assert_refused(response, 409, "conflict", "already has running subscription")
    changed = send(client, "PUT", "/subscribers/1/plan", second)
    assert changed.status_code == 200, changed.text
    statuses = {
        s["plan_code"]: s["status"] for s in get(client, "/subscribers/1/subscriptions").json()
    }
    assert statuses == {"maroc-illimite-mois": "cancelled", "maroc-illimite-an": "active"}
    explained = send(
        client, "POST", "/explain", {"sip_username": "amina", "dialled": "00212661234567"}
    ).json()
    assert explained["allow"] is True
    assert any("maroc-illimite-an" in line for line in explained["explanation"])


# -- fault 7: refused calls leave no record -------------------------------------------------------
def authorize(client, user, dialled, call_id):
    return decide(client, user=user, dialled=dialled, call_id=call_id)


def test_every_refused_call_is_a_call_record_with_its_reason_and_counted(client, brain):
    for code in ("ma-flat", "ma-minute"):
        send(client, "PUT", f"/carriers/{code}/capacity", {"effective_channels": 0})
    refused = {
        "c-no-route": ("amina", "00212661234567"),
        "c-not-in-plan": ("amina", "0021671234567"),
        "c-not-sold": ("amina", "00212892123456"),
        "c-lapsed": ("leila", "00212661234567"),
    }
    for call_id, (user, dialled) in refused.items():
        assert authorize(client, user, dialled, call_id)["allow"] is False
    authorize(client, "amina", "00212661234567", "c-no-route")  # asked again: one record
    authorize(client, "ghost", "00212661234567", "c-ghost")  # refused before any decision
    brain.refusals.flush()

    calls = {call["call_id"]: call for call in get(client, "/calls").json()}
    assert set(calls) == set(refused)
    assert calls["c-no-route"]["refusal_reason"] == "no_route"
    assert calls["c-no-route"]["status"] == "refused"
    assert calls["c-no-route"]["final_sip_code"] == 503
    assert calls["c-no-route"]["destination"] == "+212661234567"
    assert calls["c-no-route"]["subscriber_id"] == 1
    assert calls["c-not-in-plan"]["refusal_reason"] == "destination_not_in_plan"
    assert calls["c-lapsed"]["refusal_reason"] == "no_active_subscription"

    report = get(
        client, "/calls/report", since="2026-11-24T00:00:00Z", until="2026-11-25T00:00:00Z"
    ).json()
    assert report["total"] == report["refused"] == 4
    assert report["refused_by_reason"] == {
        "destination_not_in_plan": 1,
        "destination_not_sold": 1,
        "no_active_subscription": 1,
        "no_route": 1,
    }


def test_a_concurrent_limit_refusal_is_recorded(client, brain):
    assert authorize(client, "amina", "00212661234567", "first")["allow"] is True
    second = authorize(client, "amina", "00212661234568", "second")
    assert second["reason"] == "concurrent_limit"
    brain.refusals.flush()
    assert get(client, "/calls/second").json()["refusal_reason"] == "concurrent_limit"


# -- fault 10: words that mislead, through the API ------------------------------------------------
def test_a_bad_caller_id_is_named_as_caller_ids_not_phone(client):
    response = send(client, "POST", "/subscribers", a_subscriber(caller_ids=["+1"]))
    assert_refused(response, 422, "invalid_input", "caller_ids")
    assert "caller_ids" in response.json()["details"]


def test_events_of_an_unknown_carrier_are_404_like_its_capacity(client):
    assert_refused(get(client, "/carriers/nope/events"), 404, "not_found", "nope")
    response = send(client, "PUT", "/carriers/nope/capacity", {"effective_channels": 1})
    assert_refused(response, 404, "not_found", "nope")


def test_an_unknown_query_parameter_is_refused_and_since_filters(client):
    assert_refused(get(client, "/calls", sinse="2026-11-24T00:00:00Z"), 422, "invalid_input")
    authorize(client, "amina", "0021671234567", "today")
    client.app.state.brain.refusals.flush()
    assert [c["call_id"] for c in get(client, "/calls", since="2026-11-24T00:00:00Z").json()] == [
        "today"
    ]
    assert get(client, "/calls", since="2026-11-25T00:00:00Z").json() == []
    assert_refused(get(client, "/calls", since="2026-11-25"), 422, "invalid_input", "since")


def test_an_operator_cap_of_zero_reads_closed_not_full(client):
    row = send(client, "PUT", "/carriers/ma-flat/capacity", {"effective_channels": 0}).json()
    assert row["state"] == "closed"


@pytest.mark.parametrize(
    ("path", "error_id"), [("/admin/v1/plans", "unauthorized"), ("/nowhere", "not_found")]
)
def test_every_error_id_the_api_answers_is_in_the_readme(client, path, error_id):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert client.get(path).json()["error_id"] == error_id
    from tawasol.adapters.api.errors import ERROR_TABLE, HTTP_ERROR_IDS, OTHER_HTTP_ERROR_ID

    documented = readme[readme.index("## The HTTP API") :]
    for error_type, _ in ERROR_TABLE:
        if error_type.error_id != "tawasol_error":
            assert f"`{error_type.error_id}`" in documented, error_type
    for known in [*HTTP_ERROR_IDS.values(), OTHER_HTTP_ERROR_ID]:
        assert f"`{known}`" in documented, known


# -- /docs and /redoc offline ---------------------------------------------------------------------
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_their_assets_from_the_brain_not_a_cdn(client, page):
    html = client.get(page).text
    assert "cdn." not in html and "googleapis" not in html
    assets = [part.split('"')[0] for part in html.split('src="')[1:]] + [
        part.split('"')[0] for part in html.split('href="')[1:] if ".css" in part.split('"')[0]
    ]
    assert assets
    for asset in assets:
        assert asset.startswith("/static-offline-docs/"), asset
        assert client.get(asset).status_code == 200, asset
