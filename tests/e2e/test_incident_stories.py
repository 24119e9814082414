"""Issue 13's must-show 1 and 2, end to end: real Kamailio, SIPp carriers and callers, the real
brain, aiosmtpd for email, a real HTTP server for the operator's webhook (incident_world.py).

1. The seed's first day: 20 calls a second to Morocco; the flat-rate carrier is cut hard, then
   the per-minute carrier cannot carry the load; both come back.
2. A range-holder outage: both Moroccan carriers fail calls to Maroc Telecom's mobile ranges
   while other Moroccan mobiles answer.

Notices are counted in every inbox of `World.inboxes`: email at aiosmtpd and SMS at a real
SMPP server (tests/support/smpp.py); each affected subscriber gets exactly one of each per
occasion, in their language (an Arabic SMS arrives as UCS-2 and reads back exactly as the
Arabic email's text), and nobody else gets anything. Timers are shortened by settings
(`INCIDENT_SETTINGS`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from incident_world import (
    CALLS_PER_SECOND,
    INWI,
    MAROC_TELECOM,
    MAROC_TELECOM_PATTERN,
    ON_CALL,
    ORANGE,
    RECOVERY_HOLD_S,
    TUNISIAN_MOBILE,
    Subscriber,
    World,
    scenario_with_down_pattern,
    start_world,
    wait_until,
)

from support.sipp import SippGateway

pytestmark = pytest.mark.sip

MOROCCO = [("MA", "fixed"), ("MA", "mobile")]
TUNISIA = [("TN", "fixed"), ("TN", "mobile")]
# Subscribers of the Moroccan plan who call Morocco, with their language.
CALLERS = {
    "amal": "fr",
    "badr": "ar",
    "chaima": "en",
    "driss": "fr",
    "essaid": "ar",
    "farida": "en",
    "ghizlane": "fr",
    "hicham": "ar",
}
FLAT_CONTRACT = {"channels": 500, "monthly_fee": "300.00", "currency": "EUR"}
PER_MINUTE_CHANNELS = 60  # the per-minute trunk's contract (what capacity is learned against)
CAPPED_CHANNELS = 12  # what the per-minute carrier carries once "capped": about half the demand


def _rates(prefix: str) -> list[dict[str, str]]:
    return [
        {
            "prefix": prefix,
            "per_minute": "0.0800",
            "currency": "EUR",
            "effective_from": "2025-01-01T00:00:00Z",
            "increment": "1/1",
        }
    ]


def _moroccan_carriers(world: World, flat: SippGateway, minute: SippGateway) -> tuple[str, str]:
    """The seed's two Moroccan carriers: flat-rate channels (tried first), then per minute."""
    return world.carrier(
        "ma-flat", flat, destinations=MOROCCO, priority=10, flat_rate=FLAT_CONTRACT
    ), world.carrier(
        "ma-minute",
        minute,
        destinations=MOROCCO,
        priority=20,
        max_channels=PER_MINUTE_CHANNELS,
        rates=_rates("212"),
        number_format="00",
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = start_world(tmp_path)
    try:
        yield world
    finally:
        world.stop()


def _events(world: World, event: str, incident_id: int | None = None) -> list[tuple[float, Any]]:
    return [
        (at, body)
        for at, body in world.webhook.events()
        if body["event"] == event and incident_id in (None, body["incident"]["id"])
    ]


def _open(world: World) -> list[dict[str, Any]]:
    return [i for i in world.incidents() if i["state"] != "resolved"]


def _answered_share(statuses: list[int]) -> float:
    """The share of calls answered. Not all of them: on this shared 2-core machine (load 10-16
    seen) the brain can miss the edge's 1 s decision timeout, and the edge then refuses the
    call (503, fail closed, no carrier tried: seen in Kamailio's log as "no decision")."""
    return statuses.count(200) / len(statuses) if statuses else 0.0


NOTHING = {"email": [], "sms": []}  # what someone who is not affected receives


def _told_once_each(world: World, name: str, locale: str, *occasions: str) -> None:
    """`name` received one email and one SMS per occasion, in `locale`: the SMS in GSM 7-bit,
    or UCS-2 for Arabic, and reading back exactly as the email's text (incident_world)."""
    received = world.notices_for(world.subscribers[name])
    assert set(received) == {"email", "sms"}, received
    for channel, messages in received.items():
        assert sorted(r.occasion for r in messages) == sorted(occasions), (name, channel, messages)
        assert {r.language for r in messages} == {locale}, (name, channel, messages)
    for sms in received["sms"]:
        assert sms.data_coding == (8 if locale == "ar" else 0), (name, sms)


# -- must-show 1 -----------------------------------------------------------------------------------
def test_seed_first_day_cut_then_capped_then_restored(world: World) -> None:
    world.plan("maroc", MOROCCO)
    world.plan("maghreb", MOROCCO + TUNISIA)
    world.plan("tunisie", TUNISIA)
    for name, locale in CALLERS.items():
        world.subscriber(name, locale=locale, plan="maroc")
    tunisia_only = world.subscriber("tarek", locale="fr", plan="tunisie")
    # Her plan sells Morocco (and Tunisia) but she never called Morocco: not affected.
    never_called_morocco = world.subscriber("nadia", locale="ar", plan="maghreb")
    flat_gateway = world.gateway("flat")
    minute_gateway = world.gateway("minute")
    tunisia_gateway = world.gateway("tunisia")
    flat, minute = _moroccan_carriers(world, flat_gateway, minute_gateway)
    world.carrier(
        "tn-minute",
        tunisia_gateway,
        destinations=TUNISIA,
        priority=10,
        rates=_rates("216"),
        number_format="00",
    )
    tunisian_calls = world.place(
        world.calls(["tarek", "nadia"], (TUNISIAN_MOBILE,), 4), "tunisia", rate=4
    ).wait()
    assert tunisian_calls.returncode == 0, tunisian_calls.output
    numbers = MAROC_TELECOM + ORANGE + INWI
    callers = list(CALLERS)

    # -- the flat-rate carrier is cut hard while 20 calls a second go to Morocco -----------------
    load = world.place(world.calls(callers, numbers, CALLS_PER_SECOND * 24), "cut")
    try:
        time.sleep(6)
        cut_at = time.time()
        flat_gateway.kill()
        ((opened_at, opened),) = wait_until(
            lambda: _events(world, "incident.opened"), timeout_s=30, what="the cut's alert"
        )
        # the first unanswered probe came after the cut: this bounds the delay from above
        assert opened_at - cut_at <= 15, opened_at - cut_at
        assert opened["incident"]["kind"] == "carrier"
        assert opened["incident"]["carrier"] == flat
        assert not opened["incident"]["customer_facing"]
        incident_id = opened["incident"]["id"]
        wait_until(
            lambda: world.carrier_row(flat)["state"] == "down", timeout_s=15, what="flat down"
        )
        down_at = time.time()
        run = load.wait()
    finally:
        load.stop()
    assert run.returncode != -9, run.output  # SIPp ended on its own
    after_down = [status for at, status in load.outcomes() if at > down_at]
    assert len(after_down) > CALLS_PER_SECOND * 5
    assert _answered_share(after_down) >= 0.98, "failover carries the calls once it is down"
    assert minute_gateway.invites(), "calls moved to the per-minute carrier"
    answered_by_minute = sum(
        1
        for record in world.brain.admin("GET", "/calls", params={"limit": 500})
        if record["carrier"] == minute and record["status"] == "completed"
    )
    assert answered_by_minute >= len(after_down) * 0.9
    time.sleep(2)
    cut = world.incident(incident_id)
    assert not cut["customer_facing"] and cut["impact"] == []
    # the operator is told (email and webhook); no subscriber is (nobody is affected)
    assert [r for r in world.operator_emails() if "opened" in r.subject]
    everyone = [*CALLERS, "tarek", "nadia"]
    for name in everyone:
        assert world.notices_for(world.subscribers[name]) == NOTHING, name

    # -- then the per-minute carrier is capped below demand: calls fail --------------------------
    minute_gateway.stop()
    minute_gateway.channels = CAPPED_CHANNELS
    minute_gateway.start()
    load = world.place(world.calls(callers, numbers, CALLS_PER_SECOND * 30), "capped")
    try:
        facing = wait_until(
            lambda: (found := world.incident(incident_id))["customer_facing"] and found,
            timeout_s=30,
            what="the cut's incident to become customer-facing",
        )
        assert facing["impact"][-1]["impact"] == "partial"
        status = {(d["country"], d["kind"]): d["status"] for d in world.status()["destinations"]}
        assert status == {
            ("MA", "fixed"): "partial_outage",
            ("MA", "mobile"): "partial_outage",
            ("TN", "fixed"): "operational",
            ("TN", "mobile"): "operational",
        }
        page = httpx.get(f"{world.brain.url}/status", params={"lang": "fr"}, timeout=10).text
        assert "Panne partielle" in page and flat not in page and minute not in page
        # nothing is sold into the outage without the buyer's acknowledgement
        buyer = {
            "name": "Omar",
            "email": "omar@subscribers.example",
            "phone": "+33612559999",
            "locale": "fr",
            "time_zone": "Europe/Paris",
            "sip_username": "omar",
            "password": "omar-incident-2026",
            "plan_code": "maroc",
        }
        refused = httpx.post(
            f"{world.brain.url}/admin/v1/subscribers",
            json=buyer,
            headers={"Authorization": f"Bearer {world.brain.admin_token}"},
            timeout=10,
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["error_id"] == "destination_unavailable"
        assert incident_id in refused.json()["details"]["incident_ids"]
        bought = world.brain.admin(
            "POST",
            "/subscribers",
            json={**buyer, "plan_code": "maghreb", "acknowledged_incidents": [incident_id]},
        )
        assert bought["sip_username"] == "omar"
        omar = Subscriber(
            name="omar",
            password=buyer["password"],
            email=buyer["email"],
            phone=buyer["phone"],
            locale="fr",
            plan="maghreb",
            id=bought["id"],
        )

        def everyone_told() -> bool:
            return all(all(world.notices_for(world.subscribers[name]).values()) for name in CALLERS)

        wait_until(everyone_told, timeout_s=30, what="every caller's notice")
        run = load.wait()
    finally:
        load.stop()
    assert run.returncode != -9, run.output
    outcomes = [status for _, status in load.outcomes()]
    assert outcomes.count(200) > len(outcomes) * 0.2, "the capped carrier still carries some"
    assert len(outcomes) - outcomes.count(200) > len(outcomes) * 0.2, "and calls fail"
    for name, locale in CALLERS.items():
        _told_once_each(world, name, locale, "customer_facing")
    for outsider in (tunisia_only, never_called_morocco):
        assert world.notices_for(outsider) == NOTHING, outsider.name
    assert world.notices_for(omar) == NOTHING
    # one customer-facing incident: the cut; the per-minute carrier's shortfall stays internal
    incidents = world.incidents()
    assert all(i["kind"] == "carrier" for i in incidents), incidents
    assert [i["id"] for i in incidents if i["impact"]] == [incident_id]

    # -- both carriers come back ----------------------------------------------------------------
    minute_gateway.stop()
    minute_gateway.channels = 100_000
    minute_gateway.start()
    flat_gateway.start()
    wait_until(lambda: world.carrier_row(flat)["state"] == "up", timeout_s=15, what="flat up")
    load = world.place(world.calls(callers, numbers, CALLS_PER_SECOND * 20), "restored")
    try:
        wait_until(
            lambda: not _open(world), timeout_s=60, what="every incident resolved", every_s=0.5
        )
        run = load.wait()
    finally:
        load.stop()
    assert run.returncode != -9, run.output
    restored = [status for _, status in load.outcomes()]
    assert _answered_share(restored) >= 0.98, "calls are answered again"
    resolved = world.incident(incident_id)
    assert resolved["state"] == "resolved" and not resolved["customer_facing"]
    timeline = [(u["author"], u["state"], u["message"]["en"]) for u in resolved["updates"]]
    assert timeline[0][:2] == ("detection", "investigating")
    assert any("partial outage" in message for _, _, message in timeline), timeline
    assert any("succeed again" in message for _, _, message in timeline), timeline
    assert timeline[-1][:2] == ("detection", "resolved")
    assert [stretch["impact"] for stretch in resolved["impact"]] == ["partial"]
    status = {(d["country"], d["kind"]): d["status"] for d in world.status()["destinations"]}
    assert set(status.values()) == {"operational"}
    # one resolution notice each, in their language; still nothing for the others
    time.sleep(2)
    for name, locale in CALLERS.items():
        _told_once_each(world, name, locale, "customer_facing", "resolved")
    for outsider in (tunisia_only, never_called_morocco, omar):
        assert world.notices_for(outsider) == NOTHING, outsider.name
    alerts = {body["event"] for _, body in _events(world, "incident.resolved", incident_id)}
    assert alerts == {"incident.resolved"}
    assert _events(world, "incident.customer_facing", incident_id)
    assert len([r for r in world.operator_emails() if r.subject.startswith("[tawasol]")]) >= 3
    assert RECOVERY_HOLD_S > 0  # the hold is what made them wait: see INCIDENT_SETTINGS


# -- must-show 2 -----------------------------------------------------------------------------------
def test_range_holder_outage_is_one_destination_incident_told_only_to_its_callers(
    world: World,
) -> None:
    world.plan("maroc", MOROCCO)
    # who called Maroc Telecom mobiles (among other numbers), and who only called other networks
    maroc_telecom_callers = {"amal": "fr", "badr": "ar", "chaima": "en"}
    other_callers = {"driss": "fr", "essaid": "ar"}
    for name, locale in {**maroc_telecom_callers, **other_callers}.items():
        world.subscriber(name, locale=locale, plan="maroc")
    scenario = str(scenario_with_down_pattern(world.workdir, MAROC_TELECOM_PATTERN))
    flat_gateway = world.gateway("flat", scenario=scenario)
    minute_gateway = world.gateway("minute", scenario=scenario)
    flat, minute = _moroccan_carriers(world, flat_gateway, minute_gateway)
    # 20 calls a second for 25 s: 3 of every 5 to Maroc Telecom mobiles (its ranges are down),
    # the rest to Orange and Inwi mobiles (up)
    mixed = (MAROC_TELECOM[0], ORANGE[0], MAROC_TELECOM[1], INWI[0], MAROC_TELECOM[2])
    calls = world.calls(list(maroc_telecom_callers), mixed, CALLS_PER_SECOND * 15)
    calls += world.calls(list(other_callers), ORANGE + INWI, CALLS_PER_SECOND * 10)
    calls = [call for pair in zip(calls[::2], calls[1::2], strict=False) for call in pair]
    load = world.place(calls, "range-holder")
    try:
        facing = wait_until(
            lambda: [i for i in _open(world) if i["customer_facing"]],
            timeout_s=40,
            what="a customer-facing incident",
        )
        wait_until(
            lambda: all(
                all(world.notices_for(world.subscribers[name]).values())
                for name in maroc_telecom_callers
            ),
            timeout_s=30,
            what="the Maroc Telecom callers' notices",
        )
        run = load.wait()
    finally:
        load.stop()
    assert run.returncode != -9, run.output
    (incident,) = facing
    assert incident["kind"] == "destination" and incident["carrier"] is None
    assert incident["scope"] == {
        "country": "MA",
        "number_kind": "mobile",
        "range_holder": "Maroc Telecom",
    }
    # one incident in all: no carrier incident beside it
    assert [i["id"] for i in world.incidents()] == [incident["id"]]
    # routing is left alone: neither carrier down, de-preferred or capacity-lowered
    for code in (flat, minute):
        row = world.carrier_row(code)
        assert row["state"] == "up" and not row["de_preferred"], row
        assert not row["learned_capacity"], row
        events = world.brain.admin("GET", f"/carriers/{code}/events")
        assert not [e for e in events if e["kind"] in ("down", "capacity_learned")], events
    outcomes = load.outcomes()
    assert {status for _, status in outcomes} == {200, 503}
    time.sleep(2)
    for name, locale in maroc_telecom_callers.items():
        _told_once_each(world, name, locale, "customer_facing")
        for channel, (received,) in world.notices_for(world.subscribers[name]).items():
            assert "Maroc Telecom" in received.subject + received.text, (channel, received)
    for name in other_callers:
        assert world.notices_for(world.subscribers[name]) == NOTHING, name
    status = {(d["country"], d["kind"]): d["status"] for d in world.status()["destinations"]}
    assert status[("MA", "mobile")] in ("partial_outage", "major_outage")
    assert status[("MA", "fixed")] == "operational"
    assert ON_CALL in {r.address for r in world.operator_emails()}
