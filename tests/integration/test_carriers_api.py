"""Carriers at run time through the API, on a real SQLite store: channels held per call,
capacity learned from 503s and caps set by operators, rating, rate decks, cost ceilings."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from edge_support import decide, granted
from fastapi.testclient import TestClient
from sample_brain import AUTH, MovableClock, add_callers, sample_brain

from tawasol.adapters.api.app import create_app
from tawasol.composition import build_brain
from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def brain(tmp_path, clock):
    brain = sample_brain(tmp_path, clock=clock, capacity_raise_after_s=60)
    add_callers(brain, 45, now=clock.now)  # one call each at a time: many calls at once
    yield brain
    brain.close()


def authorize(client, user, call_id, dialled="00212661234567"):
    return decide(client, user=user, dialled=dialled, call_id=call_id)


def events(client, *items):
    batch = granted(client.app.state.brain, list(items))
    response = client.post("/sip/v1/events", json={"events": batch})
    assert response.status_code == 200, response.text


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def answered(client, clock, call_id, user, *, carrier, billing, ring_ms=0, talk_ms, **attempt):
    """The edge reports: `call_id` answered on `carrier` after `ring_ms`, hung up after
    `talk_ms` of talk (`attempt`: more fields of the attempt, e.g. pdd_ms)."""
    common = {"call_id": call_id, "user": user, "dialled": "00212661234567"}
    start = ms(clock.now)
    events(
        client,
        {
            **common,
            "type": "attempt",
            "at_ms": start,
            "attempt": 1,
            "carrier": carrier,
            "gateway": "gw1",
            "sip_code": 200,
            "billing": billing,
            **attempt,
        },
        {**common, "type": "answer", "at_ms": start + ring_ms, "carrier": carrier},
        {**common, "type": "end", "at_ms": start + ring_ms + talk_ms},
    )


def status(client, code):
    rows = client.get("/admin/v1/carriers/status", headers=AUTH).json()
    return next(row for row in rows if row["code"] == code)


def test_given_40_simultaneous_calls_and_30_flat_channels_then_30_flat_first_and_10_per_minute(
    client,
):
    first_carriers = [
        authorize(client, f"caller{index}", f"call-{index}")["routes"][0]["carrier"]
        for index in range(40)
    ]
    assert first_carriers.count("ma-flat") == 30
    assert first_carriers.count("ma-minute") == 10
    assert first_carriers[:30] == ["ma-flat"] * 30
    assert status(client, "ma-flat")["channels_in_use"] == 30
    assert status(client, "ma-minute")["channels_in_use"] == 10


def test_given_a_call_ends_then_its_flat_channel_is_free_again(client, clock):
    for index in range(30):
        authorize(client, f"caller{index}", f"call-{index}")
    assert authorize(client, "caller30", "call-30")["routes"][0]["carrier"] == "ma-minute"
    answered(
        client, clock, "call-0", "caller0", carrier="ma-flat", billing="flat_rate", talk_ms=30_000
    )
    assert status(client, "ma-flat")["channels_in_use"] == 29
    assert authorize(client, "caller31", "call-31")["routes"][0]["carrier"] == "ma-flat"


def refused(client, clock, call_id, user, *, sip_code=503, q850_cause=34, **extra):
    """The edge reports: `call_id`'s INVITE on ma-flat was refused (`extra`: more fields)."""
    events(
        client,
        {
            "call_id": call_id,
            "user": user,
            "dialled": "00212661234567",
            "type": "attempt",
            "at_ms": ms(clock.now),
            "attempt": 1,
            "carrier": "ma-flat",
            "gateway": "gw1",
            "sip_code": sip_code,
            "q850_cause": q850_cause,
            "billing": "flat_rate",
            **extra,
        },
    )


def test_given_flat_carrier_answers_503_above_15_calls_then_capacity_learned_and_alert_recorded(
    client, clock
):
    for index in range(15):
        authorize(client, f"caller{index}", f"call-{index}")
    # Three calls in a row get 503 on the flat carrier with the same 15 others up: repeated
    # congestion, the evidence capacity learning needs (one refusal proves little).
    for index in (15, 16, 17):
        authorize(client, f"caller{index}", f"call-{index}")
        refused(client, clock, f"call-{index}", f"caller{index}")
        clock.now += timedelta(seconds=1)
        if index < 17:
            assert status(client, "ma-flat")["learned_capacity"] is None
    flat = status(client, "ma-flat")
    assert flat["learned_capacity"] == 15
    assert flat["effective_channels"] == 15
    assert flat["channels_in_use"] == 15  # the refused calls moved to the next carrier
    assert status(client, "ma-minute")["channels_in_use"] == 3
    history = client.get("/admin/v1/carriers/ma-flat/events", headers=AUTH).json()
    assert history[0]["kind"] == "capacity_learned"
    assert history[0]["effective_channels"] == 15
    assert "3 congestion answers within 30 s, one with only 15 other" in history[0]["detail"]
    # A 19th caller goes straight to the per-minute carrier: no wait, no failure.
    assert authorize(client, "caller18", "call-18")["routes"][0]["carrier"] == "ma-minute"

    # Later, with no new congestion, capacity is probed upward a channel at a time.
    clock.now += timedelta(seconds=61)
    client.app.state.brain.monitor.tick()
    assert status(client, "ma-flat")["effective_channels"] == 16
    assert client.get("/admin/v1/carriers/ma-flat/events", headers=AUTH).json()[0]["kind"] == (
        "capacity_raised"
    )


def test_given_503_from_a_carrier_without_contracted_channels_then_nothing_learned(client, clock):
    authorize(client, "caller0", "call-0")
    events(
        client,
        {
            "call_id": "call-0",
            "user": "caller0",
            "dialled": "00212661234567",
            "type": "attempt",
            "at_ms": ms(clock.now),
            "attempt": 2,
            "carrier": "ma-minute",
            "gateway": "gw1",
            "sip_code": 503,
        },
    )
    minute = status(client, "ma-minute")
    assert minute["learned_capacity"] is None and minute["effective_channels"] is None
    assert client.get("/admin/v1/carriers/ma-minute/events", headers=AUTH).json() == []


def test_given_operator_caps_capacity_then_applied_at_once_and_recorded(client):
    response = client.put(
        "/admin/v1/carriers/ma-flat/capacity", json={"effective_channels": 2}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["operator_cap"] == 2
    carriers = [authorize(client, f"caller{i}", f"c{i}")["routes"][0]["carrier"] for i in range(3)]
    assert carriers == ["ma-flat", "ma-flat", "ma-minute"]
    assert client.get("/admin/v1/carriers/ma-flat/events", headers=AUTH).json()[0]["kind"] == (
        "capacity_set"
    )
    cleared = client.put(
        "/admin/v1/carriers/ma-flat/capacity", json={"effective_channels": None}, headers=AUTH
    )
    assert cleared.json()["operator_cap"] is None
    assert authorize(client, "caller3", "c3")["routes"][0]["carrier"] == "ma-flat"


@pytest.mark.parametrize("body", [{"effective_channels": -1}, {"effective_channels": "ten"}, {}])
def test_given_a_bad_capacity_then_422(client, body):
    response = client.put("/admin/v1/carriers/ma-flat/capacity", json=body, headers=AUTH)
    assert response.status_code == 422


def test_capacity_of_unknown_carrier_is_404(client):
    response = client.put(
        "/admin/v1/carriers/nope/capacity", json={"effective_channels": 3}, headers=AUTH
    )
    assert response.status_code == 404


def test_given_per_minute_call_ends_then_cdr_cost_matches_the_rate_deck(client, clock):
    for index in range(30):
        authorize(client, f"caller{index}", f"call-{index}")
    decision = authorize(client, "caller30", "paid-call")
    assert decision["routes"][0]["carrier"] == "ma-minute"
    answered(
        client,
        clock,
        "paid-call",
        "caller30",
        carrier="ma-minute",
        billing="per_minute",
        ring_ms=2000,
        talk_ms=90_500,
        pdd_ms=120,
    )
    call = client.get("/admin/v1/calls/paid-call", headers=AUTH).json()
    # 2126 -> 0.0780 EUR/min, 1/1 increment; 90.5 s talk -> 91 billable seconds.
    # 0.0780 * 91 / 60 = 0.1183 exactly.
    assert call["rate_per_minute"] == "0.0780"
    assert call["increment"] == "1/1"
    assert call["cost"] == "0.118300"
    assert call["currency"] == "EUR"
    assert call["billing"] == "per_minute"


def test_given_flat_rate_call_then_cost_is_zero(client, clock):
    authorize(client, "caller0", "flat-call")
    answered(
        client,
        clock,
        "flat-call",
        "caller0",
        carrier="ma-flat",
        billing="flat_rate",
        talk_ms=600_000,
    )
    call = client.get("/admin/v1/calls/flat-call", headers=AUTH).json()
    assert call["billing"] == "flat_rate"
    assert call["cost"] == "0"


def test_given_per_minute_route_dearer_than_the_ceiling_then_never_used(client):
    carrier = client.get("/admin/v1/carriers/ma-minute", headers=AUTH).json()
    for rate in carrier["rates"]:
        rate["per_minute"] = "0.2500"  # above the plan's 0.10 EUR/min ceiling for Morocco
    assert client.put("/admin/v1/carriers/ma-minute", json=carrier, headers=AUTH).status_code == 200
    for index in range(30):
        authorize(client, f"caller{index}", f"call-{index}")
    refused = authorize(client, "caller30", "too-dear")
    assert refused["allow"] is False
    assert refused["reason"] == "no_route"
    explained = client.post(
        "/admin/v1/explain",
        json={"sip_username": "caller31", "dialled": "00212661234567"},
        headers=AUTH,
    ).json()
    assert any("above the plan's ceiling" in line for line in explained["explanation"])


def test_rate_deck_csv_upload_replaces_rates_all_or_nothing(client):
    good = (
        "prefix,rate,currency,effective_from,increment\n"
        "212,0.0700,EUR,2026-01-01,60/60\n"
        "2126,0.0610,EUR,2026-01-01,1/1\n"
        "2126,0.0550,EUR,2027-01-01,1/1\n"
    )
    response = client.put("/admin/v1/carriers/ma-minute/rates", content=good.encode(), headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["rates"] == 3
    exported = client.get("/admin/v1/carriers/ma-minute/rates", headers=AUTH).text
    assert "2126,0.0610,EUR" in exported and "2126,0.0550,EUR" in exported
    bad = good + "21x,0.01,EUR,2026-01-01,60/60\n"
    refused = client.put("/admin/v1/carriers/ma-minute/rates", content=bad.encode(), headers=AUTH)
    assert refused.status_code == 422
    assert "line 5" in refused.json()["message"]
    assert client.get("/admin/v1/carriers/ma-minute/rates", headers=AUTH).text == exported


def test_status_board_lists_every_carrier_with_quality(client, clock):
    authorize(client, "caller0", "q1")
    common = {"call_id": "q1", "user": "caller0", "dialled": "00212661234567"}
    start = ms(clock.now) - 10_000
    events(
        client,
        {
            **common,
            "type": "attempt",
            "at_ms": start,
            "attempt": 1,
            "carrier": "ma-flat",
            "gateway": "gw1",
            "sip_code": 503,
        },
        {
            **common,
            "type": "attempt",
            "at_ms": start + 100,
            "attempt": 2,
            "carrier": "ma-minute",
            "gateway": "gw1",
            "sip_code": 486,
        },
        {**common, "type": "failure", "at_ms": start + 200, "sip_code": 486},
    )
    rows = client.get("/admin/v1/carriers/status", headers=AUTH).json()
    assert {row["code"] for row in rows} == {"ma-flat", "ma-minute", "tn-carrier", "dz-carrier"}
    minute = status(client, "ma-minute")
    overall = next(q for q in minute["quality"] if q["country"] is None)
    assert overall["attempts"] == 1 and overall["asr"] == 0.0 and overall["ner"] == 1.0
    flat = next(q for q in status(client, "ma-flat")["quality"] if q["country"] is None)
    assert flat["ner"] == 0.0
    assert minute["rate_min_per_minute"] == "0.0250" and minute["currency"] == "EUR"


def _attempts(client, clock, *, first: int, count: int, sip_code: int) -> None:
    """`count` one-attempt calls on ma-minute that ended with `sip_code`."""
    cause = {"q850_cause": 34} if sip_code == 503 else {}
    events(
        client,
        *(
            {
                "call_id": f"quality-{index}",
                "user": f"caller{index % 45}",
                "dialled": "00212661234567",
                "type": "attempt",
                "at_ms": ms(clock.now),
                "attempt": 1,
                "carrier": "ma-minute",
                "gateway": "gw1",
                "sip_code": sip_code,
                **cause,
            }
            for index in range(first, first + count)
        ),
    )


def test_given_a_carrier_failing_most_attempts_then_de_preferred_checked_every_5_seconds(
    client, clock
):
    monitor = client.app.state.brain.monitor
    # 25 network failures (503, Q.850 34): NER 0 over 25 attempts, above the 20 needed
    _attempts(client, clock, first=0, count=25, sip_code=503)
    monitor.tick()
    assert status(client, "ma-minute")["de_preferred"] is True

    # Then 100 callee answers (busy counts as effective, E.425): NER 0.8 is healthy again,
    # but the 5-minute figures are summarised again only 5 seconds after the last check.
    clock.now += timedelta(seconds=1)
    _attempts(client, clock, first=25, count=100, sip_code=486)
    monitor.tick()
    assert status(client, "ma-minute")["de_preferred"] is True
    clock.now += timedelta(seconds=5)
    monitor.tick()
    assert status(client, "ma-minute")["de_preferred"] is False


# -- issue 10: capacity learning needs evidence, an operator's word wins, Retry-After, restart --
def test_given_one_plain_503_with_no_call_up_then_nothing_learned(client, clock):
    # fault 4: a single plain 503 while the carrier carried nothing set its capacity to 1
    authorize(client, "caller0", "call-0")
    refused(client, clock, "call-0", "caller0", q850_cause=None)
    flat = status(client, "ma-flat")
    assert flat["learned_capacity"] is None and flat["effective_channels"] is None
    assert client.get("/admin/v1/carriers/ma-flat/events", headers=AUTH).json() == []


@pytest.mark.parametrize(("sip_code", "cause"), [(503, 41), (480, None), (500, None), (408, 18)])
def test_given_repeated_answers_that_do_not_say_congestion_then_nothing_learned(
    client, clock, sip_code, cause
):
    for index in range(5):
        authorize(client, f"caller{index}", f"call-{index}")
        refused(
            client, clock, f"call-{index}", f"caller{index}", sip_code=sip_code, q850_cause=cause
        )
    assert status(client, "ma-flat")["learned_capacity"] is None


def test_given_480_with_cause_47_repeated_then_capacity_learned_like_a_503(client, clock):
    # fault 1, brain side: the edge now fails over on it too (same table)
    for index in range(3):
        authorize(client, f"caller{index}", f"call-{index}")
    for index in range(3, 6):
        authorize(client, f"caller{index}", f"call-{index}")
        refused(client, clock, f"call-{index}", f"caller{index}", sip_code=480, q850_cause=47)
    assert status(client, "ma-flat")["learned_capacity"] == 3


def _learn_one_channel(client, clock):
    for index in range(3):
        authorize(client, f"caller{index}", f"call-{index}")
        refused(client, clock, f"call-{index}", f"caller{index}", q850_cause=None)
    assert status(client, "ma-flat")["learned_capacity"] == 1


@pytest.mark.parametrize("cap", [None, 30, 12])
def test_given_learned_capacity_when_operator_sets_capacity_then_learning_forgotten_at_once(
    client, clock, cap
):
    # fault 4: `tawasol carriers capacity ma-flat --contract` (or 30) left it at 1
    _learn_one_channel(client, clock)
    response = client.put(
        "/admin/v1/carriers/ma-flat/capacity", json={"effective_channels": cap}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    assert response.json()["learned_capacity"] is None
    assert response.json()["effective_channels"] == cap
    history = client.get("/admin/v1/carriers/ma-flat/events", headers=AUTH).json()
    assert history[0]["kind"] == "capacity_set"
    assert "learned capacity 1 forgotten" in history[0]["detail"]
    first = [authorize(client, f"caller{i}", f"after-{i}")["routes"][0]["carrier"] for i in (3, 4)]
    assert first == ["ma-flat", "ma-flat"]


def test_given_congestion_keeps_coming_then_the_raise_timer_restarts(client, clock):
    # fault 4: a raise came 10 s after the last of 300 consecutive 503s
    _learn_one_channel(client, clock)
    monitor = client.app.state.brain.monitor
    for index in range(3, 9):
        clock.now += timedelta(seconds=50)  # the raise waits 60 s without congestion
        authorize(client, f"caller{index}", f"call-{index}")
        refused(client, clock, f"call-{index}", f"caller{index}", q850_cause=None)
        monitor.tick()
        assert status(client, "ma-flat")["learned_capacity"] == 1
    clock.now += timedelta(seconds=59)
    monitor.tick()
    assert status(client, "ma-flat")["learned_capacity"] == 1
    clock.now += timedelta(seconds=1)
    monitor.tick()
    assert status(client, "ma-flat")["learned_capacity"] == 2


def test_given_503_with_retry_after_then_held_off_in_status_and_events(client, clock):
    # fault 3, brain side: the edge skips the carrier; the brain shows and records why
    authorize(client, "caller0", "call-0")
    refused(client, clock, "call-0", "caller0", q850_cause=None, retry_after_s=300)
    flat = status(client, "ma-flat")
    assert flat["state"] == "held_off"
    assert flat["held_off_until"].startswith("2026-11-24T10:05:00")
    (held,) = [
        event
        for event in client.get("/admin/v1/carriers/ma-flat/events", headers=AUTH).json()
        if event["kind"] == "held_off"
    ]
    assert "Retry-After" in held["detail"] and "300 s" in held["detail"]
    clock.now += timedelta(seconds=300)
    assert status(client, "ma-flat")["state"] == "up"
    assert status(client, "ma-flat")["held_off_until"] is None


def test_given_a_carrier_down_and_a_capacity_learned_when_the_brain_restarts_then_both_kept(
    tmp_path, clock
):
    # fault 6: after a restart every carrier started "up", dead ones included
    first = sample_brain(tmp_path, clock=clock)
    for _ in range(3):
        first.monitor.on_probe("tn-carrier", answered=False, detail="no answer")
    first.store.record_carrier_event(
        CarrierEvent("ma-flat", clock.now, CarrierEventKind.CAPACITY_LEARNED, "learned", 7)
    )
    first.close()

    second = build_brain(first.settings, clock=clock)
    try:
        with TestClient(create_app(second)) as client:
            assert status(client, "tn-carrier")["state"] == "up"  # nothing restored yet
            second.monitor.restore()  # what the app does when it starts (background on)
            assert status(client, "tn-carrier")["state"] == "down"
            assert status(client, "ma-flat")["learned_capacity"] == 7
            assert status(client, "ma-flat")["effective_channels"] == 7
            assert status(client, "ma-minute")["state"] == "up"
            # the probes decide from there: two answers and it is back
            second.monitor.on_probe("tn-carrier", answered=True)
            second.monitor.on_probe("tn-carrier", answered=True)
            assert status(client, "tn-carrier")["state"] == "up"
    finally:
        second.close()
