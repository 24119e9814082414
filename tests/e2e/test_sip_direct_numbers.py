"""Calling from any phone (issue 18): a DID provider played by SIPp calls a direct number
through the real edge and the real brain; the carriers are SIPp too.

The world (module fixture, through the admin API): inbound trunk `fr-did-N` at 127.0.18.21
(trusted to assert the caller, French numbers 3318488...), a rate deck for it, a pool of two
direct numbers, amina's and samir's verified mobiles, a third subscriber's unverified one,
and one contact each on the same pool number (Maman for amina, Papa for samir).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import Brain, Carriers

from support.sipp import SCENARIOS, SIPP, CallerRun, SippCarrier
from support.stack import free_port
from tawasol.adapters.sip import EdgeProcess

pytestmark = pytest.mark.sip

TRUNK_ADDRESS = "127.0.18.21"
STRANGER_ADDRESS = "127.0.18.66"
AMINA_MOBILE = "+33612345678"
SAMIR_MOBILE = "+33698765432"
UNVERIFIED_MOBILE = "+33611110000"
MAMAN = "+212661234567"
PAPA = "+212661112233"
POOL = ("+33184880001", "+33184880002")


@dataclass
class World:
    trunk: str
    amina: int
    samir: int
    carriers: Carriers
    flat: SippCarrier
    minute: SippCarrier
    workdir: Path


def _subscriber(brain: Brain, name: str, phone: str) -> int:
    subscriber = brain.admin(
        "POST",
        "/subscribers",
        json={
            "name": name.title(),
            "phone": phone,
            "time_zone": "Europe/Paris",
            "sip_username": f"{name}-dn",
            "password": f"{name}-dn-e2e-2026-pass",
            "plan_code": "e2e-maroc",
        },
    )
    return int(subscriber["id"])


def _verified(brain: Brain, subscriber_id: int, number: str) -> None:
    issued = brain.admin(
        "POST", f"/subscribers/{subscriber_id}/caller-ids", json={"number": number}
    )
    assert issued["verified"] is False and issued["code_sent"] is False
    assert issued["code"] and len(issued["code"]) == 6  # no SMS channel: for the operator
    verified = brain.admin(
        "POST",
        f"/subscribers/{subscriber_id}/caller-ids/{number}/verify",
        json={"code": issued["code"]},
    )
    assert verified["verified"] is True


@pytest.fixture(scope="module")
def world(brain: Brain, edge: EdgeProcess, tmp_path_factory: pytest.TempPathFactory) -> Any:
    workdir = tmp_path_factory.mktemp("direct-numbers")
    flat = SippCarrier("carrier_answer.xml", free_port(), workdir, timeout_s=120).start()
    minute = SippCarrier("carrier_answer.xml", free_port(), workdir, timeout_s=120).start()
    try:
        carriers = brain.point_carriers(flat_port=flat.port, minute_port=minute.port)
        trunk = f"fr-did-{carriers.flat}"
        brain.admin(
            "PUT",
            f"/inbound-trunks/{trunk}",
            json={
                "code": trunk,
                "name": "E2E French DID provider",
                "country": "FR",
                "addresses": [TRUNK_ADDRESS],
                "number_ranges": ["3318488"],
                "trust_asserted_identity": True,
            },
        )
        brain.admin(
            "PUT",
            f"/inbound-trunks/{trunk}/rates",
            content="prefix;rate;currency;effective_from;increment\n"
            "336;0.0120;EUR;2025-01-01;1/1\n33;0.0060;EUR;2025-01-01;1/1\n",
        )
        pool = "number;trunk\n" + "".join(f"{n};{trunk}\n" for n in POOL)
        assert brain.admin("POST", "/direct-numbers/pool", content=pool) == {"imported": 2}
        amina = _subscriber(brain, "amina", "+33612000001")
        samir = _subscriber(brain, "samir", "+33612000002")
        third = _subscriber(brain, "tarik", "+33612000003")
        _verified(brain, amina, AMINA_MOBILE)
        _verified(brain, samir, SAMIR_MOBILE)
        brain.admin("POST", f"/subscribers/{third}/caller-ids", json={"number": UNVERIFIED_MOBILE})
        maman = brain.admin(
            "POST", f"/subscribers/{amina}/contacts", json={"name": "Maman", "number": MAMAN}
        )
        papa = brain.admin(
            "POST", f"/subscribers/{samir}/contacts", json={"name": "Papa", "number": PAPA}
        )
        # One pool serves everybody: both get the pool's first number, each for their own.
        assert maman["direct_number"] == papa["direct_number"] == POOL[0]
        assert maman["message"] == "call 01 84 88 00 01 to reach Maman"
        time.sleep(2.5)  # the edge's workers refresh the trunk addresses and pool (2 s)
        yield World(trunk, amina, samir, carriers, flat, minute, workdir)
    finally:
        flat.stop()
        minute.stop()


def _did_call(
    world: World,
    edge: EdgeProcess,
    *,
    name: str,
    dialled: str = "0184880001",
    caller: str = AMINA_MOBILE,
    asserted: str | None = None,
    privacy: str = "none",
    source_ip: str = TRUNK_ADDRESS,
    talk_ms: int = 0,
) -> tuple[CallerRun, str]:
    """One call from the DID provider's SIPp; returns the run and its Call-ID."""
    trace = world.workdir / f"did-{name}.msg"
    call_id = f"dn-{name}-{time.monotonic_ns()}@{source_ip}"
    command = [
        SIPP,
        f"127.0.0.1:{edge.port}",
        "-sf",
        str(SCENARIOS / "did_carrier_call.xml"),
        "-s",
        dialled,
        "-key",
        "caller",
        caller,
        "-key",
        "asserted",
        asserted or caller,
        "-key",
        "privacy",
        privacy,
        "-cid_str",
        call_id,
        "-i",
        source_ip,
        "-p",
        str(free_port(source_ip)),
        "-nostdin",
        "-m",
        "1",
        "-d",
        str(talk_ms),
        "-timeout",
        "20s",
        "-timeout_error",
        "-trace_msg",
        "-message_file",
        str(trace),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=world.workdir, capture_output=True, timeout=40, check=False
    )
    run = CallerRun(
        returncode=result.returncode,
        elapsed_s=time.monotonic() - started,
        trace=trace,
        output=(result.stdout + result.stderr).decode(errors="replace")[-3000:],
    )
    return run, call_id


def _final(run: CallerRun) -> tuple[int, str]:
    for message in run.messages():
        if (
            message.direction == "received"
            and message.status is not None
            and message.status >= 200
            and message.cseq_method == "INVITE"
        ):
            return message.status, message.reason_phrase
    raise AssertionError(f"no final answer: {run.output}")


def _invites_to(carrier: SippCarrier, number: str) -> list[Any]:
    return [i for i in carrier.invites() if i.first_line.startswith(f"INVITE sip:{number}@")]


def test_given_verified_mobile_when_did_provider_calls_pool_number_then_contact_rings_via_flat_rate(
    brain: Brain, edge: EdgeProcess, world: World
) -> None:
    run, call_id = _did_call(world, edge, name="maman", talk_ms=1500)
    assert run.returncode == 0, run.output
    assert _final(run)[0] == 200
    invite = _invites_to(world.flat, MAMAN)
    assert len(invite) == 1
    # the callee is shown the subscriber's own number (asserted to the carrier)
    assert invite[0].header("P-Asserted-Identity") == f"<tel:{AMINA_MOBILE}>"
    assert world.minute.invites() == []

    record = brain.wait_call(call_id, until=lambda r: r["status"] == "completed")
    assert record["sip_username"] == "amina-dn"
    assert record["subscriber_id"] == world.amina
    assert record["destination"] == MAMAN
    assert record["access"] == "direct_number"
    assert record["inbound_trunk"] == world.trunk
    assert record["caller_id"] == AMINA_MOBILE
    assert record["carrier"] == world.carriers.flat
    assert record["billing"] == "flat_rate" and record["cost"] == "0"
    # the DID provider's rate for a French mobile caller (336: 0.0120/min, per second)
    talk_s = -(-record["duration_ms"] // 1000)
    expected = (Decimal("0.0120") * talk_s / 60).quantize(Decimal("0.000001"))
    assert Decimal(record["inbound_cost"]) == expected > 0
    assert record["inbound_cost_currency"] == "EUR"


def test_given_untrusted_address_when_it_calls_pool_number_then_403_recorded_and_no_carrier(
    brain: Brain, edge: EdgeProcess, world: World
) -> None:
    before = len(world.flat.invites()) + len(world.minute.invites())
    run, call_id = _did_call(world, edge, name="spoof", source_ip=STRANGER_ADDRESS)
    assert _final(run) == (403, "Forbidden")
    assert len(world.flat.invites()) + len(world.minute.invites()) == before
    record = brain.wait_call(call_id, until=lambda r: r["status"] == "refused")
    assert record["refusal_reason"] == "inbound_untrusted_source"
    assert record["final_sip_code"] == 403
    assert record["subscriber_id"] is None


@pytest.mark.parametrize(
    ("case", "options", "reply", "reason"),
    [
        (
            "withheld",
            {"privacy": "id", "caller": "anonymous", "asserted": AMINA_MOBILE},
            (433, "Anonymity Disallowed"),
            "caller_id_withheld",
        ),
        (
            "unregistered",
            {"caller": "+33677777777"},
            (403, "Caller ID Not Registered"),
            "caller_id_unknown",
        ),
        (
            "unverified",
            {"caller": UNVERIFIED_MOBILE},
            (403, "Caller ID Not Verified"),
            "caller_id_unverified",
        ),
        (
            "not-a-contact",
            {"dialled": "+33184880002"},
            (404, "Direct Number Not Assigned"),
            "direct_number_not_a_contact",
        ),
    ],
)
def test_given_bad_caller_or_number_when_called_then_own_reason_and_recorded(
    brain: Brain,
    edge: EdgeProcess,
    world: World,
    case: str,
    options: dict[str, str],
    reply: tuple[int, str],
    reason: str,
) -> None:
    before = len(world.flat.invites()) + len(world.minute.invites())
    run, call_id = _did_call(world, edge, name=case, **options)
    assert _final(run) == reply, run.output
    warning = [
        m.header("Warning")
        for m in run.messages()
        if m.direction == "received" and m.status == reply[0]
    ]
    assert warning and reason in (warning[0] or "")
    assert len(world.flat.invites()) + len(world.minute.invites()) == before
    record = brain.wait_call(call_id, until=lambda r: r["status"] == "refused")
    assert record["refusal_reason"] == reason
    assert record["access"] == "direct_number"
    assert record["inbound_trunk"] == world.trunk


def test_given_two_subscribers_same_pool_number_when_each_calls_then_own_contact_rings(
    brain: Brain, edge: EdgeProcess, world: World
) -> None:
    run, call_id = _did_call(world, edge, name="papa", caller=SAMIR_MOBILE, talk_ms=200)
    assert run.returncode == 0, run.output
    assert len(_invites_to(world.flat, PAPA)) == 1
    record = brain.wait_call(call_id, until=lambda r: r["status"] == "completed")
    assert (record["sip_username"], record["destination"]) == ("samir-dn", PAPA)


def test_given_contact_removed_when_called_then_refused_and_number_quarantined(
    brain: Brain, edge: EdgeProcess, world: World
) -> None:
    contacts = brain.admin("GET", f"/subscribers/{world.amina}/contacts")
    maman = next(c for c in contacts if c["name"] == "Maman")
    brain.admin("DELETE", f"/subscribers/{world.amina}/contacts/{maman['id']}")

    run, call_id = _did_call(world, edge, name="removed")
    assert _final(run) == (404, "Direct Number Not Assigned")
    record = brain.wait_call(call_id, until=lambda r: r["status"] == "refused")
    assert record["refusal_reason"] == "direct_number_not_a_contact"

    # a new contact does not get the quarantined number back: the next free one
    tante = brain.admin(
        "POST",
        f"/subscribers/{world.amina}/contacts",
        json={"name": "Tante", "number": "+212661998877"},
    )
    assert tante["direct_number"] == POOL[1]
    usage = brain.admin("GET", "/direct-numbers/usage")
    assert usage["numbers_per_subscriber"][str(world.amina)] == 2  # one in quarantine
    assert usage["alert"] is True  # two numbers: everybody is running out
