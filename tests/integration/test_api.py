"""The HTTP API on a real SQLite store: decisions, events, admin, and bad input."""

from __future__ import annotations

import asyncio

import pytest
from edge_support import credentials, decide, granted
from sample_brain import AUTH, NOW  # the brain and client fixtures: conftest.py

from tawasol.adapters.api import sip
from tawasol.adapters.api.app import create_app
from tawasol.adapters.api.latency import LatencyRing
from tawasol.adapters.api.schemas import AuthorizeIn
from tawasol.adapters.api.sip_fast import MAX_BODY_BYTES, SipFastPath
from tawasol.domain.subscribers import digest_ha1


def authorize(client, user="amina", dialled="00212661234567", call_id="call-1"):
    return decide(client, user=user, dialled=dialled, call_id=call_id)


def test_given_monthly_morocco_subscriber_when_calling_moroccan_mobile_then_flat_rate_first(
    client,
):
    body = authorize(client)
    assert body["allow"] is True
    assert body["reason"] == "allowed"
    assert [route["carrier"] for route in body["routes"]] == ["ma-flat", "ma-minute"]
    assert body["routes"][0]["billing"] == "flat_rate"
    assert body["routes"][1]["cost_per_minute"] == "0.0780"
    assert body["routes"][1]["uri"].startswith("sip:00212661234567@")
    assert body["ha1"] == digest_ha1("amina", "tawasol.local", "amina-demo-2026")
    assert body["max_duration_s"] == 7200
    assert 503 in body["failover_codes"] and 486 not in body["failover_codes"]


@pytest.mark.parametrize(
    ("user", "dialled", "reason", "sip_code"),
    [
        ("amina", "0021671234567", "destination_not_in_plan", 403),
        ("amina", "00212892123456", "destination_not_sold", 403),
        ("amina", "00212abc", "invalid_number", 484),
        ("leila", "00212661234567", "no_active_subscription", 403),
        # nobody's digest can verify: refused before any decision (docs/security.md)
        ("nobody", "00212661234567", "credentials_rejected", 403),
    ],
)
def test_given_a_refused_call_when_authorized_then_denial_with_sip_reply(
    client, user, dialled, reason, sip_code
):
    body = authorize(client, user=user, dialled=dialled)
    assert body["allow"] is False
    assert body["reason"] == reason
    assert body["sip_code"] == sip_code
    assert body["routes"] == []


def test_given_unknown_user_then_fake_ha1_is_stable_and_not_a_real_one(client):
    first = authorize(client, user="ghost", call_id="a")["ha1"]
    second = authorize(client, user="ghost", call_id="b")["ha1"]
    assert first == second
    assert len(first) == 32 and first != digest_ha1("ghost", "tawasol.local", "")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"call_id": "x", "user": "amina"},
        {"call_id": "x", "user": "amina", "dialled": 12},
        {"call_id": "", "user": "amina", "dialled": "002126"},
        {"call_id": "x" * 1000, "user": "amina", "dialled": "002126"},
        [1, 2, 3],
    ],
)
def test_given_malformed_authorize_body_then_422_with_clear_message(client, body):
    response = client.post("/sip/v1/authorize", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["error_id"] == "invalid_input"
    assert payload["message"].startswith("invalid request")


def test_given_body_that_is_not_json_then_422(client):
    response = client.post(
        "/sip/v1/authorize", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error_id"] == "invalid_input"


def _call_events(call_id: str, base_ms: int) -> list[dict]:
    common = {"call_id": call_id, "user": "amina", "dialled": "00212661234567"}
    return [
        {
            **common,
            "type": "attempt",
            "at_ms": base_ms,
            "attempt": 1,
            "carrier": "ma-flat",
            "gateway": "gw1",
            "sip_code": 503,
        },
        {
            **common,
            "type": "attempt",
            "at_ms": base_ms + 200,
            "attempt": 2,
            "carrier": "ma-minute",
            "gateway": "gw1",
            "sip_code": 200,
            "pdd_ms": 150,
        },
        {**common, "type": "answer", "at_ms": base_ms + 1000, "carrier": "ma-minute"},
        {**common, "type": "end", "at_ms": base_ms + 62_000, "hangup_cause": "caller"},
    ]


def test_given_each_event_replayed_three_times_then_one_cdr_with_right_duration(client):
    base_ms = int(NOW.timestamp() * 1000)
    events = granted(client.app.state.brain, _call_events("replayed-call", base_ms))
    for event in events:
        for _ in range(3):
            response = client.post("/sip/v1/events", json={"events": [event]})
            assert response.status_code == 200, response.text
    # and the whole batch again, reordered
    response = client.post("/sip/v1/events", json={"events": list(reversed(events))})
    assert response.status_code == 200

    calls = client.get("/admin/v1/calls", headers=AUTH).json()
    assert [call["call_id"] for call in calls].count("replayed-call") == 1
    call = client.get("/admin/v1/calls/replayed-call", headers=AUTH).json()
    assert call["duration_ms"] == 61_000
    assert call["status"] == "completed"
    assert call["carrier"] == "ma-minute"
    assert call["destination"] == "+212661234567"
    assert [(a["carrier"], a["sip_code"]) for a in call["attempts"]] == [
        ("ma-flat", 503),
        ("ma-minute", 200),
    ]
    assert call["pdd_ms"] == 150
    assert call["subscriber_id"] is not None


def test_given_call_in_progress_then_second_call_refused_until_it_ends(client):
    assert authorize(client, call_id="first")["allow"] is True
    second = authorize(client, call_id="second")
    assert second["reason"] == "concurrent_limit"
    base_ms = int(NOW.timestamp() * 1000)
    common = {"call_id": "first", "user": "amina", "dialled": "00212661234567"}
    client.post(
        "/sip/v1/events",
        json={
            "events": [
                {**common, "type": "answer", "at_ms": base_ms, "carrier": "ma-flat"},
                {**common, "type": "end", "at_ms": base_ms + 5000},
            ]
        },
    )
    assert authorize(client, call_id="third")["allow"] is True


@pytest.mark.parametrize(
    "events",
    [
        {"events": []},
        {"events": [{"call_id": "x", "type": "explode", "at_ms": 1795000000000}]},
        {"events": [{"call_id": "x", "type": "end", "at_ms": 12}]},
        {"events": [{"call_id": "x", "type": "attempt", "at_ms": 1795000000000, "sip_code": 99}]},
        {"nothing": True},
    ],
)
def test_given_malformed_events_then_422_and_nothing_recorded(client, events):
    response = client.post("/sip/v1/events", json=events)
    assert response.status_code == 422
    assert client.get("/admin/v1/calls", headers=AUTH).json() == []


def test_given_no_or_wrong_token_then_admin_api_refuses(client):
    assert client.get("/admin/v1/plans").status_code == 401
    wrong = client.get("/admin/v1/plans", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error_id"] == "unauthorized"


def test_given_admin_creates_subscriber_and_plan_then_calls_are_decided_with_them(client):
    plan = {
        "code": "tunisie-soir",
        "names": {"fr": "Tunisie Soir"},
        "period": "week",
        "price": "2.50",
        "currency": "EUR",
        "destinations": [{"country": "TN", "kind": "mobile"}, {"country": "TN", "kind": "fixed"}],
        "time_windows": [{"weekdays": [0, 1, 2, 3, 4, 5, 6], "start": "00:00", "end": "00:00"}],
    }
    assert client.post("/admin/v1/plans", json=plan, headers=AUTH).status_code == 201
    assert client.get("/admin/v1/plans/tunisie-soir", headers=AUTH).json()["price"] == "2.50"
    subscriber = client.post(
        "/admin/v1/subscribers",
        json={
            "name": "Nour",
            "phone": "+33611223344",
            "sip_username": "nour",
            "password": "nour-secret-99",
            "time_zone": "Europe/Paris",
        },
        headers=AUTH,
    )
    assert subscriber.status_code == 201, subscriber.text
    subscriber_id = subscriber.json()["id"]
    assert "password" not in subscriber.json() and "ha1" not in subscriber.json()
    subscription = client.post(
        f"/admin/v1/subscribers/{subscriber_id}/subscriptions",
        json={"plan_code": "tunisie-soir"},
        headers=AUTH,
    )
    assert subscription.status_code == 201, subscription.text
    assert authorize(client, user="nour", dialled="0021650123456")["routes"][0]["carrier"] == (
        "tn-carrier"
    )
    duplicate = client.post(
        "/admin/v1/subscribers",
        json={
            "name": "Nour 2",
            "phone": "+33611223345",
            "sip_username": "nour",
            "password": "another-secret",
        },
        headers=AUTH,
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error_id"] == "conflict"
    suspended = client.patch(
        f"/admin/v1/subscriptions/{subscription.json()['id']}",
        json={"status": "suspended"},
        headers=AUTH,
    )
    assert suspended.status_code == 200
    assert authorize(client, user="nour", dialled="0021650123456")["reason"] == (
        "subscription_suspended"
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/admin/v1/plans",
            {
                "code": "x",
                "names": {"fr": "X"},
                "period": "month",
                "price": 9.99,
                "currency": "EUR",
                "destinations": [{"country": "MA", "kind": "mobile"}],
            },
        ),
        (
            "/admin/v1/plans",
            {
                "code": "x",
                "names": {"fr": "X"},
                "period": "decade",
                "price": "9.99",
                "currency": "EUR",
                "destinations": [{"country": "MA", "kind": "mobile"}],
            },
        ),
        (
            "/admin/v1/plans",
            {
                "code": "x",
                "names": {"fr": "X"},
                "period": "month",
                "price": "9.99",
                "currency": "EUR",
                "destinations": [],
            },
        ),
        (
            "/admin/v1/subscribers",
            {
                "name": "A",
                "phone": "not a phone",
                "sip_username": "aa",
                "password": "long-enough-1",
            },
        ),
        (
            "/admin/v1/subscribers",
            {
                "name": "A",
                "phone": "+33611223344",
                "sip_username": "a b",
                "password": "long-enough-1",
            },
        ),
        (
            "/admin/v1/subscribers",
            {"name": "A", "phone": "+33611223344", "sip_username": "ab", "password": "short"},
        ),
        (
            "/admin/v1/subscribers",
            {
                "name": "A",
                "phone": "+33611223344",
                "sip_username": "ab",
                "password": "long-enough-1",
                "time_zone": "Mars/Olympus",
            },
        ),
        (
            "/admin/v1/carriers",
            {
                "code": "c",
                "name": "C",
                "gateways": [],
                "destinations": [{"country": "MA", "kind": "fixed"}],
            },
        ),
        (
            "/admin/v1/carriers",
            {
                "code": "c",
                "name": "C",
                "gateways": [{"name": "g", "host": "h;evil"}],
                "destinations": [{"country": "MA", "kind": "fixed"}],
                "flat_rate": {"channels": 2, "monthly_fee": "1", "currency": "EUR"},
            },
        ),
        (
            "/admin/v1/carriers",
            {
                "code": "c",
                "name": "C",
                "gateways": [{"name": "g", "host": "10.0.0.1"}],
                "destinations": [{"country": "MA", "kind": "fixed"}],
            },
        ),
    ],
)
def test_given_invalid_admin_input_then_422_with_error_id_and_nothing_saved(client, path, body):
    before = client.get("/admin/v1/carriers", headers=AUTH).json()
    response = client.post(path, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["error_id"] in {"invalid_input", "invalid_configuration"}
    assert response.json()["message"]
    assert client.get("/admin/v1/carriers", headers=AUTH).json() == before


def test_given_unknown_things_then_404_with_error_id(client):
    for path in (
        "/admin/v1/plans/nope",
        "/admin/v1/subscribers/999",
        "/admin/v1/carriers/nope",
        "/admin/v1/calls/nope",
    ):
        response = client.get(path, headers=AUTH)
        assert response.status_code == 404, path
        assert response.json()["error_id"] == "not_found"


def test_carrier_round_trip_keeps_decimal_rates_exactly(client):
    carrier = client.get("/admin/v1/carriers/ma-minute", headers=AUTH).json()
    assert {rate["prefix"]: rate["per_minute"] for rate in carrier["rates"]}["2126"] == "0.0780"
    carrier["rates"].append(
        {
            "prefix": "21266",
            "per_minute": "0.0615",
            "currency": "EUR",
            "effective_from": "2026-11-01T00:00:00+00:00",
            "increment": "1/1",
        }
    )
    response = client.put("/admin/v1/carriers/ma-minute", json=carrier, headers=AUTH)
    assert response.status_code == 200, response.text
    routes = authorize(client, dialled="00212661234567", call_id="rate-check")["routes"]
    assert routes[1]["cost_per_minute"] == "0.0615"


def test_explain_endpoint_gives_every_reason(client):
    response = client.post(
        "/admin/v1/explain",
        json={
            "sip_username": "karim",
            "dialled": "00212661234567",
            "at": "2026-11-24T14:00:00+01:00",
        },
        headers=AUTH,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["reason"] == "outside_time_window"
    assert any("Europe/Brussels" in line for line in body["explanation"])


def test_openapi_is_published_with_both_apis(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/sip/v1/authorize" in paths and "/sip/v1/events" in paths
    assert "/admin/v1/subscribers" in paths


def test_health_reports_catalog_revision(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["catalog_revision"] > 0


def test_stats_report_decision_latency_measured_inside_the_brain(client):
    assert client.get("/sip/v1/stats").json()["decisions"] == 0
    for index in range(20):
        authorize(client, call_id=f"timed-{index}")
        client.post(
            "/sip/v1/events",
            json={
                "events": [
                    {
                        "call_id": f"timed-{index}",
                        "type": "failure",
                        "at_ms": int(NOW.timestamp() * 1000),
                        "sip_code": 486,
                        "user": "amina",
                        "dialled": "00212661234567",
                    }
                ]
            },
        )
    stats = client.get("/sip/v1/stats").json()
    assert stats["decisions"] == 20 and stats["window"] == 20
    assert 0 < stats["p50_us"] <= stats["p99_us"] <= stats["max_us"]
    assert stats["calls_in_progress"] == 0


@pytest.mark.parametrize(
    ("user", "dialled"),
    [
        ("amina", "00212661234567"),
        ("amina", "0021671234567"),
        ("ghost", "00212661234567"),
        ("karim", "00213551234567"),
        ("amina", "12"),
    ],
)
def test_authorize_answers_match_the_published_model_exactly(client, user, dialled):
    from tawasol.adapters.api.schemas import AuthorizeOut

    body = authorize(client, user=user, dialled=dialled)
    assert AuthorizeOut.model_validate(body).model_dump(mode="json") == body


def test_authorize_schema_is_frozen(client):
    # A change to the decision API must be deliberate: update docs/sip-decision-api.md, the
    # edge (src/tawasol/adapters/sip/kemi) and this list together.
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert sorted(schema["AuthorizeOut"]["properties"]) == [
        "allow",
        "call_id",
        "destination",
        "failover_codes",
        "grant",
        "ha1",
        "max_duration_s",
        "reason",
        "routes",
        "sip_code",
        "sip_reason",
    ]
    assert sorted(schema["RouteOut"]["properties"]) == [
        "billing",
        "carrier",
        "cost_per_minute",
        "currency",
        "gateway",
        "timeout_ms",
        "uri",
    ]
    assert sorted(schema["AuthorizeIn"]["required"]) == ["call_id", "dialled", "user"]


def test_inbound_decision_schema_is_frozen(client):
    # Calls from inbound trunks to direct numbers (docs/sip-decision-api.md): the edge's
    # edge_inbound.request_body writes InboundIn, and applies InboundOut like AuthorizeOut.
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert sorted(schema["InboundIn"]["properties"]) == [
        "asserted_identity",
        "call_id",
        "dialled",
        "from_user",
        "node",
        "privacy",
        "source_ip",
        "user_agent",
    ]
    assert sorted(schema["InboundIn"]["required"]) == ["call_id", "dialled", "source_ip"]
    assert sorted(schema["InboundOut"]["properties"]) == sorted(
        [
            *schema["AuthorizeOut"]["properties"],
            "user",
            "dialled",
            "access",
            "inbound_trunk",
            "caller_id",
        ]
    )


def test_call_event_schema_is_frozen(client):
    # The edge writes these events (adapters/sip/kemi/edge_rules.event) and spools them while
    # the brain is down, so a brain must read what an older edge wrote: a change here must be
    # deliberate (docs/sip-decision-api.md, the edge and this test together, CHANGELOG).
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    event = schema["CallEventIn"]
    assert sorted(event["properties"]) == [
        "access",
        "at_ms",
        "attempt",
        "billing",
        "call_id",
        "caller_id",
        "carrier",
        "dialled",
        "duration_ms",
        "gateway",
        "grant",
        "hangup_cause",
        "inbound_trunk",
        "pdd_ms",
        "q850_cause",
        "retry_after_s",
        "sip_code",
        "type",
        "user",
    ]
    # Added for calls to direct numbers (issue 18), all optional: an older edge's events and a
    # softphone's call leave them out.
    assert sorted(event["required"]) == ["at_ms", "call_id", "type"]
    assert sorted(schema["CallEventType"]["enum"]) == ["answer", "attempt", "end", "failure"]
    assert sorted(schema["CallEventsIn"]["required"]) == ["events"]


def test_every_event_the_edge_writes_is_read_by_the_brain_field_for_field():
    from tawasol.adapters.api.schemas import CallEventIn
    from tawasol.adapters.sip.kemi.edge_rules import attempt_event, event

    route = {"carrier": "atlas", "gateway": "casa-1", "billing": "per_minute"}
    written = [
        attempt_event(
            call_id="c1",
            at_ms=1_790_000_000_000,
            user="amina",
            dialled="0661234567",
            attempt=1,
            route=route,
            sip_code=503,
            pdd_ms=None,
            q850=34,
            retry_after_s=30,
        ),
        event("answer", call_id="c1", at_ms=1_790_000_001_000, user="amina", dialled="x"),
        event(
            "end",
            call_id="c1",
            at_ms=1_790_000_061_000,
            user="amina",
            dialled="x",
            duration_ms=60_000,
            hangup_cause="normal_clearing",
            grant="g",
        ),
    ]
    for body in written:
        read = CallEventIn.model_validate(body).model_dump(exclude_unset=True)
        assert {key: str(value) for key, value in read.items()} == {
            key: str(value) for key, value in body.items()
        }, body


# -- the edge's two requests are answered in front of FastAPI (sip_fast.SipFastPath) --------
class Recorder:
    """An inner ASGI app that only notes what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_the_edge_requests_never_reach_the_framework_and_the_rest_always_does(brain):
    app = create_app(brain)
    inner = Recorder()
    fast = SipFastPath(inner)
    sent: list[dict] = []

    async def run(method: str, path: str, body: bytes) -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": method, "path": path, "app": app}
        await fast(scope, receive, send)

    request = b'{"call_id":"c1","user":"amina","dialled":"00212661234567"}'
    asyncio.run(run("POST", "/sip/v1/authorize", request))
    asyncio.run(run("GET", "/sip/v1/authorize", b""))
    asyncio.run(run("POST", "/admin/v1/plans", b"{}"))
    asyncio.run(run("GET", "/health", b""))
    assert inner.paths == ["/sip/v1/authorize", "/admin/v1/plans", "/health"]
    assert sent[0]["status"] == 200


def test_the_answer_is_the_one_the_documented_route_gives(brain, client):
    body = {
        "call_id": "same",
        "user": "amina",
        "dialled": "00212661234567",
        "credentials": credentials(brain, "amina", "00212661234567"),
    }
    fast = client.post("/sip/v1/authorize", json=body)
    direct = sip.decide(brain, AuthorizeIn(**body), LatencyRing())
    assert fast.status_code == 200
    assert fast.headers["content-type"] == "application/json"
    assert fast.content == direct
    assert int(fast.headers["content-length"]) == len(direct)


def test_a_missing_field_is_named_as_fastapi_names_it(client):
    response = client.post("/sip/v1/authorize", json={"call_id": "x", "user": "amina"})
    assert response.status_code == 422
    problems = response.json()["details"]["problems"]
    assert [problem["field"] for problem in problems] == ["body.dialled"]
    assert response.json()["message"] == "invalid request: body.dialled: Field required"


def test_a_body_too_large_is_refused_before_being_read_whole(client):
    huge = b"{" + b" " * MAX_BODY_BYTES["/sip/v1/authorize"] + b"}"
    response = client.post(
        "/sip/v1/authorize", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error_id"] == "payload_too_large"


def test_events_through_the_fast_path_are_recorded(client):
    event = {
        "call_id": "fast-1",
        "type": "failure",
        "at_ms": 1795000000000,
        "user": "amina",
        "dialled": "00212661234567",
        "sip_code": 486,
    }
    response = client.post(
        "/sip/v1/events", json={"events": granted(client.app.state.brain, [event])}
    )
    assert response.status_code == 200
    assert response.json() == {"accepted": 1, "calls": 1}
    calls = client.get("/admin/v1/calls", headers=AUTH).json()
    assert [call["call_id"] for call in calls] == ["fast-1"]
    assert calls[0]["final_sip_code"] == 486
