"""Carriers under real calls (issue 4): committed channels first, live capacity, probing, cost
ceilings and quality, with the real brain, the real edge (Kamailio) and carriers played by SIPp.

These tests run their own brain and edge (module scope), not the session's: the brain probes
carriers fast (OPTIONS every 0.5 s, 300 ms to answer, down after 3 misses, up after 2 answers),
where the session's brain never marks a carrier down. Every SIPp carrier here answers the
probes. The brain's own plan has a cost ceiling and one call at a time per subscriber, so every
caller is a subscriber of its own: one SIPp caller places many calls, one injection-file line
(user, `[authentication ...]`, number) per call (`carrier_caller.xml`, `support.sipp.run_callers`).

Carrier scenarios (src/tawasol/adapters/sip/scenarios):
- `carrier_channels.xml`: answers, the callee hangs up after `-d` ms; takes at most
  `-set channels N` calls at once and answers every INVITE beyond with 503 + Q.850 cause 34
  (after `-set refuse_ms`). SIPp's `-l` limits only the calls SIPp places itself and a UAS
  scenario sees one call at a time, so the scenario keeps the count of calls up in a SIPp
  *global* variable (`<Global variables=.../>`, shared by all calls of one SIPp run), compared
  and incremented in the INVITE's own actions (atomic in SIPp's single thread), given back when
  the BYE is answered or at once for a refused call.
- `carrier_mix.xml`: each call's outcome (answer with known ring delay and talk time, busy,
  no answer, no circuit) is chosen by the last digit of the dialled number.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import ROUTE_TIMEOUT_MS, Brain, edge_settings

from support.operator import admin_document, flat_rate_carrier, morocco_plan, per_minute_carrier
from support.sipp import (
    CallerRun,
    PlacedCall,
    SippGateway,
    answered_calls,
    placed_calls,
    start_callers,
    wait_callers,
)
from support.stack import wait_for
from tawasol.adapters.sip import EdgeProcess, start_edge
from tawasol.domain.carriers import Carrier

pytestmark = pytest.mark.sip

PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_MS = 300
PROBE_DOWN_AFTER = 3
PROBE_UP_AFTER = 2
PLAN = "carriers-maroc"
CEILING_PER_MINUTE = "0.1000"  # EUR, the plan's cost ceiling for Morocco
MOROCCAN_MOBILE = "00212661234567"


# -- the world: a brain that probes fast, its edge, its subscribers ----------------------------
@dataclass
class ProbingBrain(Brain):
    """The session's brain, but probing carriers fast and keeping what it learns."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            TAWASOL_PROBE_INTERVAL_S=str(PROBE_INTERVAL_S),
            TAWASOL_PROBE_TIMEOUT_MS=str(PROBE_TIMEOUT_MS),
            TAWASOL_PROBE_DOWN_AFTER=str(PROBE_DOWN_AFTER),
            TAWASOL_PROBE_UP_AFTER=str(PROBE_UP_AFTER),
            # a learned capacity must not creep back up while a test looks at it
            TAWASOL_CAPACITY_RAISE_AFTER_S="3600",
        )
        return env


@dataclass
class Subscribers:
    """Subscribers of the plan, handed out so that no two tests share one."""

    brain: Brain
    created: int = 0

    def take(self, count: int) -> list[tuple[str, str]]:
        users = []
        for _ in range(count):
            index = self.created
            self.created += 1
            user, password = f"cx{index:03d}", f"cx{index:03d}-carriers-2026"
            self.brain.subscribe(
                user,
                password,
                plan_code=PLAN,
                phone=f"+336{index:08d}",
                name=f"Carrier test {index}",
            )
            users.append((user, password))
        return users


@pytest.fixture(scope="module")
def probing_brain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbingBrain]:
    brain = ProbingBrain.new(tmp_path_factory.mktemp("carriers-brain"))
    try:
        plan = morocco_plan(PLAN, concurrent_calls=1, cost_ceiling=CEILING_PER_MINUTE)
        brain.admin("POST", "/plans", json=admin_document(plan))
        yield brain
    finally:
        brain.stop()


@pytest.fixture(scope="module")
def probing_edge(
    probing_brain: ProbingBrain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeProcess]:
    run_dir = tmp_path_factory.mktemp("carriers-edge")
    process = start_edge(edge_settings(probing_brain, run_dir), run_dir)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def subscribers(probing_brain: ProbingBrain) -> Subscribers:
    return Subscribers(probing_brain)


# -- carriers: SIPp gateways and their definitions in the brain --------------------------------
@dataclass
class Fleet:
    """One test's carriers: SIPp gateways plus their definitions in the brain. `close()` stops
    the gateways and disables the carriers, so no later test routes to them."""

    brain: Brain
    workdir: Path
    prefix: str
    gateways: list[SippGateway] = field(default_factory=list)
    carriers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def gateway(self, scenario: str, name: str, **options: Any) -> SippGateway:
        gateway = SippGateway(scenario, self.workdir, f"{self.prefix}-{name}", **options).start()
        self.gateways.append(gateway)
        return gateway

    def flat_rate(self, name: str, gateway: SippGateway, *, channels: int) -> str:
        """A carrier paid per month for `channels` channels (no per-minute rate)."""
        code = f"{self.prefix}-{name}"
        return self._add(
            flat_rate_carrier(code, port=gateway.port, channels=channels, name=f"E2E {code}")
        )

    def per_minute(
        self,
        name: str,
        gateway: SippGateway,
        *,
        rate: str,
        increment: str = "1/1",
        priority: int = 20,
    ) -> str:
        """A carrier paid `rate` EUR a minute for Morocco (prefix 212)."""
        code = f"{self.prefix}-{name}"
        carrier = per_minute_carrier(
            code,
            port=gateway.port,
            per_minute=rate,
            increment=increment,
            priority=priority,
            name=f"E2E {code}",
        )
        return self._add(carrier)

    def _add(self, carrier: Carrier) -> str:
        body = admin_document(carrier)
        self.brain.admin("POST", "/carriers", json=body)
        self.carriers[carrier.code] = body
        return carrier.code

    def disable(self, code: str) -> None:
        self.brain.admin("PUT", f"/carriers/{code}", json={**self.carriers[code], "enabled": False})

    def close(self) -> None:
        for gateway in self.gateways:
            gateway.stop()
        for code in self.carriers:
            self.disable(code)


_fleets = iter(range(1, 1000))


@pytest.fixture
def fleet(probing_brain: ProbingBrain, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(probing_brain, tmp_path, f"t{next(_fleets)}")
    try:
        yield fleet
    finally:
        fleet.close()


@dataclass
class World:
    """What one test works with: the module's probing brain and edge, subscribers no other test
    uses, its own carriers, and its work directory (SIPp's files)."""

    brain: ProbingBrain
    edge: EdgeProcess
    subscribers: Subscribers
    fleet: Fleet
    workdir: Path

    def start_calls(
        self, calls: list[tuple[str, str, str]], *, name: str, rate: float = 100, timeout_s: int
    ) -> tuple[subprocess.Popen[bytes], Path, float]:
        """SIPp places one call per (user, password, dialled) through the edge, in the
        background (`support.sipp.start_callers`)."""
        return start_callers(
            edge_port=self.edge.port,
            calls=calls,
            workdir=self.workdir,
            name=name,
            rate=rate,
            timeout_s=timeout_s,
        )

    def call(
        self, calls: list[tuple[str, str, str]], *, name: str, rate: float = 100, timeout_s: int
    ) -> CallerRun:
        """The same, waiting until SIPp is done (`support.sipp.run_callers`)."""
        process, trace, began = self.start_calls(calls, name=name, rate=rate, timeout_s=timeout_s)
        return wait_callers(process, trace, began, timeout_s=timeout_s + 15)


@pytest.fixture
def world(
    probing_brain: ProbingBrain,
    probing_edge: EdgeProcess,
    subscribers: Subscribers,
    fleet: Fleet,
    tmp_path: Path,
) -> World:
    return World(probing_brain, probing_edge, subscribers, fleet, tmp_path)


# -- reading what happened -----------------------------------------------------------------------
def attempts(record: dict[str, Any]) -> list[tuple[int, str, int | None]]:
    return [(a["attempt"], a["carrier"], a["sip_code"]) for a in record["attempts"]]


def carrier_status(brain: Brain, code: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = brain.admin("GET", "/carriers/status")
    return next(row for row in rows if row["code"] == code)


def carrier_events(brain: Brain, code: str, kind: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = brain.admin("GET", f"/carriers/{code}/events")
    return [event for event in events if event["kind"] == kind]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _calls(users: list[tuple[str, str]], dialled: str | list[str]) -> list[tuple[str, str, str]]:
    numbers = dialled if isinstance(dialled, list) else [dialled] * len(users)
    return [
        (user, password, number) for (user, password), number in zip(users, numbers, strict=True)
    ]


# -- 1. committed channels first, then the cheapest per minute, costs as the deck says ---------
def test_given_40_simultaneous_calls_and_30_flat_channels_then_30_flat_10_cheapest_costs_per_deck(
    world: World,
) -> None:
    probing_brain, subscribers, fleet = world.brain, world.subscribers, world.fleet
    hold_ms = 3000
    flat_gateway = fleet.gateway("carrier_channels.xml", "flat", hold_ms=hold_ms)
    flat = fleet.flat_rate("flat", flat_gateway, channels=30)
    cheap_gateway = fleet.gateway("carrier_channels.xml", "cheap", hold_ms=hold_ms)
    dear_gateway = fleet.gateway("carrier_channels.xml", "dear", hold_ms=hold_ms)
    cheap = fleet.per_minute("cheap", cheap_gateway, rate="0.0450", increment="1/1")
    dear = fleet.per_minute("dear", dear_gateway, rate="0.0700", increment="1/1")
    users = subscribers.take(40)

    # 40 subscribers dial within 0.4 s (100 new calls a second, all allowed up at once) and
    # each call lasts 3 s: all 40 are up together.
    run = world.call(_calls(users, MOROCCAN_MOBILE), name="forty", rate=100, timeout_s=30)
    assert run.returncode == 0, run.output
    calls = placed_calls(run)
    assert sorted(calls) == sorted(user for user, _ in users)
    assert {call.final_status for call in calls.values()} == {200}
    last_answer = max(call.final_at for call in calls.values())
    first_hang_up = min(call.hung_up_at for call in calls.values() if call.hung_up_at)
    assert last_answer < first_hang_up, "the 40 calls must overlap"

    records = [probing_brain.wait_call(call.call_id) for call in calls.values()]
    on_flat = [record for record in records if record["carrier"] == flat]
    on_cheap = [record for record in records if record["carrier"] == cheap]
    assert len(on_flat) == 30
    assert len(on_cheap) == 10
    assert len(flat_gateway.invites()) == 30
    assert len(cheap_gateway.invites()) == 10
    assert dear_gateway.invites() == []  # dearer than `cheap`: never needed
    assert carrier_status(probing_brain, dear)["quality"] == []  # no attempt at all
    assert all(len(record["attempts"]) == 1 for record in records)

    for record in on_flat:  # the channels are paid monthly: nothing more per call
        assert record["billing"] == "flat_rate"
        assert Decimal(record["cost"]) == 0
    for record in on_cheap:
        # By hand: talk time rounded up to whole seconds, then to the 1/1 increment (every
        # second billed, no minimum), times 0.0450 EUR / 60 s. A 3,004 ms call: 4 s billed,
        # 0.0450 * 4 / 60 = 0.003000 EUR.
        billed_s = math.ceil(record["duration_ms"] / 1000)
        assert hold_ms - 100 <= record["duration_ms"] <= hold_ms + 500, record["duration_ms"]
        expected = (Decimal("0.0450") * billed_s / 60).quantize(Decimal("0.000001"))
        assert record["billing"] == "per_minute"
        assert (record["rate_per_minute"], record["increment"]) == ("0.0450", "1/1")
        assert Decimal(record["cost"]) == expected, (record["duration_ms"], record["cost"])
        assert record["currency"] == "EUR"


# -- 2. a carrier that restored only 15 of its 30 channels ----------------------------------------
def test_given_flat_carrier_answers_503_above_15_calls_then_capacity_learned_and_no_caller_fails(
    world: World,
) -> None:
    probing_brain, subscribers, fleet = world.brain, world.subscribers, world.fleet
    hold_ms = 6000
    flat_gateway = fleet.gateway("carrier_channels.xml", "flat", hold_ms=hold_ms, channels=15)
    flat = fleet.flat_rate("flat", flat_gateway, channels=30)
    minute_gateway = fleet.gateway("carrier_channels.xml", "minute", hold_ms=hold_ms)
    minute = fleet.per_minute("minute", minute_gateway, rate="0.0450")
    first_wave, second_wave = subscribers.take(25), subscribers.take(5)

    # 25 calls, 10 a second, each up 6 s: the flat carrier takes 15 and refuses the rest (503,
    # no circuit) until the brain has learned to send it no more than it carries.
    started = datetime.now(UTC)
    process, trace, began = world.start_calls(
        _calls(first_wave, MOROCCAN_MOBILE), name="wave1", rate=10, timeout_s=30
    )
    try:

        def learned() -> dict[str, Any] | None:
            status = carrier_status(probing_brain, flat)
            capacity = status["learned_capacity"]
            return status if capacity is not None and capacity <= 15 else None

        status = wait_for(
            learned, timeout_s=60, what="the flat carrier's capacity to be learned", every_s=0.2
        )
        assert status["effective_channels"] <= 15
        assert status["contracted_channels"] == 30
        # Once the first wave is up and the brain holds exactly the 15 calls the carrier
        # carries, more callers must go straight to the next carrier.
        wait_for(
            lambda: (
                answered_calls(trace) == 25
                and carrier_status(probing_brain, flat)["channels_in_use"] == 15
                and carrier_status(probing_brain, flat)["learned_capacity"] == 15
            ),
            timeout_s=10,
            what="the first wave to be up",
        )
        flat_invites_before = len(flat_gateway.invites())
        second = world.call(
            _calls(second_wave, MOROCCAN_MOBILE), name="wave2", rate=20, timeout_s=30
        )
        flat_invites_after = len(flat_gateway.invites())
    finally:
        first = wait_callers(process, trace, began, timeout_s=45)

    # no caller saw a failure: 15 flat + the per-minute carrier covered the demand
    assert first.returncode == 0, first.output
    assert second.returncode == 0, second.output
    first_calls, second_calls = placed_calls(first), placed_calls(second)
    assert {call.final_status for call in first_calls.values()} == {200}
    assert {call.final_status for call in second_calls.values()} == {200}

    # the carrier never carried more than 15; every INVITE beyond was refused
    flat_finals = flat_gateway.sent_finals()
    assert flat_finals.get(200) == 15
    assert set(flat_finals) <= {200, 503}
    refused = flat_finals.get(503, 0)
    assert refused >= 1
    assert flat_invites_after == flat_invites_before  # the second wave skipped it

    records = [probing_brain.wait_call(c.call_id) for c in first_calls.values()]
    assert sum(1 for r in records if r["carrier"] == flat) == 15
    failed_over = [r for r in records if attempts(r)[0][1:] == (flat, 503)]
    assert len(failed_over) == refused
    assert all(attempts(r) == [(1, flat, 503), (2, minute, 200)] for r in failed_over)
    for call in second_calls.values():
        assert attempts(probing_brain.wait_call(call.call_id)) == [(1, minute, 200)]

    events = carrier_events(probing_brain, flat, "capacity_learned")
    assert events, "no capacity_learned event"
    assert min(event["effective_channels"] for event in events) == 15
    assert all(started <= _at(event["at"]) <= started + timedelta(minutes=1) for event in events)


def test_given_burst_of_25_calls_when_flat_carrier_carries_15_then_capacity_learned_is_15(
    world: World,
) -> None:
    probing_brain, subscribers, fleet = world.brain, world.subscribers, world.fleet
    # The same carrier as above, but 25 subscribers call in the same few milliseconds, and the
    # carrier takes a second to say it has no circuit (an overloaded switch): every refusal
    # reaches the brain after all 25 calls were routed to it.
    hold_ms = 3000
    flat_gateway = fleet.gateway(
        "carrier_channels.xml", "flat", hold_ms=hold_ms, channels=15, refuse_ms=1000
    )
    flat = fleet.flat_rate("flat", flat_gateway, channels=30)
    minute = fleet.per_minute(
        "minute", fleet.gateway("carrier_channels.xml", "minute", hold_ms=hold_ms), rate="0.0450"
    )
    run = world.call(
        _calls(subscribers.take(25), MOROCCAN_MOBILE), name="burst", rate=1000, timeout_s=30
    )
    assert run.returncode == 0, run.output
    calls = placed_calls(run)
    assert {call.final_status for call in calls.values()} == {200}  # failover hid the 503s
    assert flat_gateway.sent_finals() == {200: 15, 503: 10}
    records = [probing_brain.wait_call(call.call_id) for call in calls.values()]
    assert sum(1 for record in records if record["carrier"] == minute) == 10

    events = carrier_events(probing_brain, flat, "capacity_learned")
    assert events, "no capacity_learned event"
    # The carrier carried 15 calls whenever it refused one: no lesson may claim more. (A
    # refusal is explained by the calls sent to the carrier before it, not by the calls of the
    # same burst routed after it.)
    # Refusals that reach the brain in one batch are read in routing order, so the first lesson
    # is already right; a lesson can only lower the capacity, never raise it.
    learned = carrier_status(probing_brain, flat)["learned_capacity"]
    details = [event["detail"] for event in events]
    assert learned is not None and learned <= 15, details
    oldest_first = [event["effective_channels"] for event in reversed(events)]
    assert oldest_first == sorted(oldest_first, reverse=True), details


# -- 3. a carrier's gateway dies, then comes back ------------------------------------------------
def test_given_flat_gateway_killed_then_marked_down_next_calls_skip_it_and_back_up_when_restarted(
    world: World,
) -> None:
    probing_brain, subscribers, fleet = world.brain, world.subscribers, world.fleet
    flat_gateway = fleet.gateway("carrier_channels.xml", "flat", hold_ms=300)
    flat = fleet.flat_rate("flat", flat_gateway, channels=30)
    minute = fleet.per_minute(
        "minute", fleet.gateway("carrier_channels.xml", "minute", hold_ms=300), rate="0.0450"
    )
    users = iter(subscribers.take(4))

    def call(name: str) -> tuple[PlacedCall, dict[str, Any]]:
        run = world.call(_calls([next(users)], MOROCCAN_MOBILE), name=name, timeout_s=15)
        assert run.returncode == 0, run.output
        (placed,) = placed_calls(run).values()
        return placed, probing_brain.wait_call(placed.call_id)

    # probed and up: calls go to the flat-rate channels
    wait_for(lambda: carrier_status(probing_brain, flat)["state"] == "up", timeout_s=5, what="up")
    _, record = call("before")
    assert attempts(record) == [(1, flat, 200)]

    # the gateway stops answering anything
    flat_gateway.kill()
    killed_at = datetime.now(UTC)
    # a call placed before the probes noticed waits for the route timer, then fails over
    placed, record = call("unnoticed")
    assert placed.final_status == 200
    assert placed.setup_ms >= ROUTE_TIMEOUT_MS
    assert attempts(record) == [(1, flat, 408), (2, minute, 200)]

    # down within the probing window: 3 rounds unanswered, each 300 ms of waiting + 500 ms pause
    wait_for(
        lambda: carrier_status(probing_brain, flat)["state"] == "down", timeout_s=5, what="down"
    )
    (down,) = carrier_events(probing_brain, flat, "down")
    round_s = PROBE_INTERVAL_S + PROBE_TIMEOUT_MS / 1000
    noticed_s = (_at(down["at"]) - killed_at).total_seconds()
    # at least the 3 missed answers (2 full rounds + 1 timeout), at most one round more
    assert (PROBE_DOWN_AFTER - 1) * round_s <= noticed_s <= (PROBE_DOWN_AFTER + 1) * round_s + 0.3
    assert "3 probes in a row unanswered" in down["detail"]

    # new calls go straight to the next carrier: one attempt, no route timer spent
    placed, record = call("down")
    assert placed.final_status == 200
    assert placed.setup_ms < ROUTE_TIMEOUT_MS / 3, placed.setup_ms
    assert attempts(record) == [(1, minute, 200)]

    # the gateway is back: up after 2 answered probes, and takes calls again
    flat_gateway.start()
    restarted_at = datetime.now(UTC)
    wait_for(
        lambda: carrier_status(probing_brain, flat)["state"] == "up", timeout_s=5, what="up again"
    )
    (up,) = carrier_events(probing_brain, flat, "up")
    back_s = (_at(up["at"]) - restarted_at).total_seconds()
    assert 0 <= back_s <= PROBE_UP_AFTER * round_s + 0.3
    _, record = call("restored")
    assert attempts(record) == [(1, flat, 200)]
    assert len(flat_gateway.invites(run=2)) == 1


# -- 4. the plan's cost ceiling ------------------------------------------------------------------
def test_given_per_minute_route_dearer_than_plan_ceiling_then_never_used_and_decision_says_why(
    world: World,
) -> None:
    probing_brain, subscribers, fleet = world.brain, world.subscribers, world.fleet
    # `within` is under the ceiling but has no circuit left (0 channels: 503 to every call);
    # `above` would answer, at 0.1500 EUR/min, more than the plan's 0.1000 EUR/min.
    within_gateway = fleet.gateway("carrier_channels.xml", "within", channels=0)
    above_gateway = fleet.gateway("carrier_channels.xml", "above")
    within = fleet.per_minute("within", within_gateway, rate="0.0900", priority=20)
    above = fleet.per_minute("above", above_gateway, rate="0.1500", priority=5)
    (user, password), (other, other_password) = subscribers.take(2)

    explained = probing_brain.admin(
        "POST", "/explain", json={"sip_username": user, "dialled": MOROCCAN_MOBILE}
    )
    assert explained["allow"] is True
    assert [route["carrier"] for route in explained["routes"]] == [within]
    why = "\n".join(explained["explanation"])
    assert f"pays carriers at most {CEILING_PER_MINUTE} EUR/min for MA" in why
    assert (
        f"carrier {above} skipped: 0.1500 EUR/min is above the plan's ceiling of "
        f"{CEILING_PER_MINUTE} EUR/min"
    ) in why

    run = world.call([(user, password, MOROCCAN_MOBILE)], name="ceiling", timeout_s=15)
    assert run.returncode == 0, run.output
    (placed,) = placed_calls(run).values()
    assert placed.final_status == 503  # all routes failed: better than a loss-making route
    record = probing_brain.wait_call(placed.call_id)
    assert attempts(record) == [(1, within, 503)]

    # with `within` gone, `above` is the only carrier left and still not used: no route at all
    fleet.disable(within)
    wait_for(
        lambda: (
            not probing_brain.admin(
                "POST", "/explain", json={"sip_username": other, "dialled": MOROCCAN_MOBILE}
            )["allow"]
        ),
        timeout_s=5,
        what="the catalog change",
    )
    run = world.call([(other, other_password, MOROCCAN_MOBILE)], name="ceiling-alone", timeout_s=15)
    assert run.returncode == 0, run.output
    refusal = next(m for m in run.received(503) if m.cseq_method == "INVITE")
    assert refusal.header("Warning") == '399 tawasol "no_route"'

    assert len(within_gateway.invites()) == 1
    # `above` was alive all along (it answered the brain's probes) and got no INVITE
    assert above_gateway.invites() == []
    wait_for(
        lambda: any(m.method == "OPTIONS" for m in above_gateway.messages()),
        timeout_s=3,
        what="a probe of `above`",
    )
    assert carrier_status(probing_brain, above)["state"] == "up"


# -- 5. quality figures from a scripted mix of outcomes -----------------------------------------
def test_given_scripted_mix_of_outcomes_then_asr_ner_acd_pdd_match_hand_computed_values(
    world: World,
) -> None:
    probing_brain, subscribers, fleet = world.brain, world.subscribers, world.fleet
    # The carrier under test is the cheapest; `backup` takes over after its network failures.
    mix_gateway = fleet.gateway("carrier_mix.xml", "mix")
    backup_gateway = fleet.gateway("carrier_channels.xml", "backup", hold_ms=300)
    mix = fleet.per_minute("mix", mix_gateway, rate="0.0300")
    backup = fleet.per_minute("backup", backup_gateway, rate="0.0600")
    # The last digit of the number picks the outcome at the carrier (carrier_mix.xml):
    script = {
        "00212661234501": 2,  # answered, rings after 100 ms, talk 1,000 ms
        "00212661234502": 2,  # answered, rings after 400 ms, talk 2,000 ms
        "00212661234503": 2,  # busy: 486, Q.850 cause 17, no ringing
        "00212661234504": 1,  # no answer: rings after 250 ms, then 408 + Q.850 cause 18
        "00212661234505": 1,  # no answer: rings after 250 ms, then 480
        "00212661234506": 2,  # no circuit: 503 + Q.850 cause 34 -> backup answers
    }
    numbers = [number for number, count in script.items() for _ in range(count)]
    users = subscribers.take(len(numbers))
    run = world.call(_calls(users, numbers), name="mix", rate=20, timeout_s=30)
    assert run.returncode == 0, run.output
    calls = placed_calls(run)
    dialled = dict(zip((user for user, _ in users), numbers, strict=True))
    by_outcome = {
        number[-1]: sorted(calls[user].final_status for user in dialled if dialled[user] == number)
        for number in script
    }
    # what the callers heard: the callee's answers as they are, the failures hidden by failover
    assert by_outcome == {
        "1": [200, 200],
        "2": [200, 200],
        "3": [486, 486],
        "4": [408],
        "5": [480],
        "6": [200, 200],
    }
    records = {user: probing_brain.wait_call(calls[user].call_id) for user in dialled}
    assert mix_gateway.sent_finals() == {200: 4, 486: 2, 408: 1, 480: 1, 503: 2}
    assert len(backup_gateway.invites()) == 2
    # each call's attempts: (attempt, carrier, final code, Q.850 cause from the carrier)
    expected_attempts = {
        "1": [(1, mix, 200, None)],
        "2": [(1, mix, 200, None)],
        "3": [(1, mix, 486, 17)],
        "4": [(1, mix, 408, 18)],
        "5": [(1, mix, 480, None)],
        "6": [(1, mix, 503, 34), (2, backup, 200, None)],
    }
    for user, number in dialled.items():
        got = [
            (a["attempt"], a["carrier"], a["sip_code"], a["q850_cause"])
            for a in records[user]["attempts"]
        ]
        assert got == expected_attempts[number[-1]], (number, got)

    # By hand, for carrier `mix` over the last 5 minutes (ITU-T E.425):
    #   attempts  = 2 + 2 + 2 + 1 + 1 + 2                      = 10
    #   answered  = 2 (...1) + 2 (...2)                         = 4  -> ASR = 4 / 10 = 0.4
    #   effective = answered 4 + busy 2 + no answer 1 + 1 (408 cause 18, 480); the 503s are
    #               the network's failures                      = 8  -> NER = 8 / 10 = 0.8
    #   ACD = (1.0 + 1.0 + 2.0 + 2.0) s / 4 answered calls     = 1.5 s
    #   PDD, attempts that rang: 100, 100, 400, 400 (answered), 250, 250 (no answer) ms;
    #       sorted 100 100 250 250 400 400; nearest rank p50 = ceil(0.50 * 6) = 3rd = 250 ms,
    #       p95 = ceil(0.95 * 6) = 6th = 400 ms.
    status = carrier_status(probing_brain, mix)
    figures = {row["country"]: row for row in status["quality"] if row["window_s"] == 300}
    assert set(figures) == {None, "MA"}
    for row in figures.values():
        assert (row["attempts"], row["answered"]) == (10, 4)
        assert row["asr"] == 0.4
        assert row["ner"] == 0.8
        assert row["acd_s"] is not None and abs(row["acd_s"] - 1.5) <= 0.05, row
        # SIPp's pauses and the loopback add a few ms, never less than the scripted delay
        assert 250 <= row["pdd_p50_ms"] <= 250 + 40, row
        assert 400 <= row["pdd_p95_ms"] <= 400 + 40, row

    # the same figures from the CDRs themselves
    answered_on_mix = [r for r in records.values() if r["carrier"] == mix]
    assert len(answered_on_mix) == 4
    talk_ms = sorted(r["duration_ms"] for r in answered_on_mix)
    assert all(
        0 <= got - want <= 50 for got, want in zip(talk_ms, [1000, 1000, 2000, 2000], strict=True)
    )
    # post-dial delay of each call's first attempt, as scripted (None: it never rang)
    scripted_pdd_ms = {"1": 100, "2": 400, "3": None, "4": 250, "5": 250, "6": None}
    for user, number in dialled.items():
        pdd_ms = records[user]["attempts"][0]["pdd_ms"]
        scripted = scripted_pdd_ms[number[-1]]
        if scripted is None:
            assert pdd_ms is None, (number, pdd_ms)
        else:
            assert pdd_ms is not None and 0 <= pdd_ms - scripted <= 40, (number, pdd_ms)
    backup_figures = carrier_status(probing_brain, backup)["quality"]
    assert [(row["attempts"], row["asr"]) for row in backup_figures if row["country"] is None] == [
        (2, 1.0)
    ]


# -- 6. a brain that restarts keeps the carriers' last known state (issue 10) -----------------
def test_given_a_carrier_down_when_the_brain_restarts_then_it_stays_down_and_calls_skip_it(
    world: World,
) -> None:
    probing_brain, subscribers, fleet = world.brain, world.subscribers, world.fleet
    # Runs last in this module: it restarts the module's brain.
    dead_gateway = fleet.gateway("carrier_channels.xml", "dead")
    dead = fleet.flat_rate("dead", dead_gateway, channels=5)
    alive_gateway = fleet.gateway("carrier_channels.xml", "alive")
    alive = fleet.per_minute("alive", alive_gateway, rate="0.0400")
    users = subscribers.take(1)
    wait_for(lambda: carrier_status(probing_brain, dead)["state"] == "up", timeout_s=5, what="up")
    dead_gateway.kill()
    wait_for(
        lambda: carrier_status(probing_brain, dead)["state"] == "down", timeout_s=5, what="down"
    )

    probing_brain.stop()
    probing_brain.start()
    # From the brain's first answer the dead carrier is down (it used to start "up" and take
    # calls until its probes failed again, ~15 s with the default settings) ...
    assert carrier_status(probing_brain, dead)["state"] == "down"
    run = world.call(_calls(users, MOROCCAN_MOBILE), name="after-restart", rate=10, timeout_s=15)
    assert run.returncode == 0, run.output
    (placed,) = placed_calls(run).values()
    assert placed.setup_ms < ROUTE_TIMEOUT_MS / 3, placed.setup_ms  # no route timer spent
    record = probing_brain.wait_call(placed.call_id)
    assert attempts(record) == [(1, alive, 200)]

    # It is back when its probes answer again.
    dead_gateway.start()
    wait_for(
        lambda: carrier_status(probing_brain, dead)["state"] == "up", timeout_s=5, what="up again"
    )
