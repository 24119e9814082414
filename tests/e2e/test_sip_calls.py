"""Calls through the real edge and the real brain, carriers played by SIPp.

Each test gets two carriers of its own ("flat-N", tried first; "minute-N", second) at its own
SIPp servers, places calls with SIPp as a subscriber, and checks what the caller got, what each
carrier received, and the call detail record the brain filed from the edge's events.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from conftest import (
    FRENCH_MOBILE,
    MOROCCAN_MOBILE,
    ROUTE_TIMEOUT_MS,
    Brain,
    Carriers,
    grant,
    subscriber_call,
)

from support.sipp import SipMessage, SippCarrier, free_port
from tawasol.adapters.sip import EdgeProcess
from tawasol.config import Settings

pytestmark = pytest.mark.sip


@contextmanager
def _carriers(
    brain: Brain,
    workdir: Any,
    *,
    flat: str = "carrier_answer.xml",
    minute: str = "carrier_answer.xml",
    flat_reply: tuple[int, str, str] | None = None,
    delay_ms: int = 100,
) -> Iterator[tuple[SippCarrier, SippCarrier, Carriers]]:
    """Two SIPp carriers (`flat` tried first, then `minute`) the brain routes to, stopped when
    the block ends (their traces stay readable)."""
    first = SippCarrier(
        flat, free_port(), workdir, delay_ms=delay_ms, reply=flat_reply, timeout_s=30
    ).start()
    try:
        second = SippCarrier(minute, free_port(), workdir, delay_ms=delay_ms, timeout_s=30).start()
        try:
            yield first, second, brain.point_carriers(flat_port=first.port, minute_port=second.port)
        finally:
            second.stop()
    finally:
        first.stop()


def _first(messages: list[SipMessage], predicate: Any) -> SipMessage:
    for message in messages:
        if predicate(message):
            return message
    raise AssertionError("no such message")


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _attempts(record: dict[str, Any]) -> list[tuple[int, str, int | None]]:
    return [(a["attempt"], a["carrier"], a["sip_code"]) for a in record["attempts"]]


def test_given_moroccan_mobile_when_subscriber_calls_then_flat_rate_carrier_completes_it(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    with _carriers(brain, workdir, delay_ms=300) as (flat, minute, codes):
        run = subscriber_call(
            edge, workdir, "amina", scenario="caller_call.xml", name="happy", talk_ms=1500
        )
        assert run.returncode == 0, run.output
        assert flat.wait_for(lambda m: m.direction == "sent" and m.cseq_method == "BYE")

    caller = run.messages()
    call_id = caller[0].call_id
    answered = _first(
        caller,
        lambda m: m.direction == "received" and m.status == 200 and m.cseq_method == "INVITE",
    )
    bye = _first(caller, lambda m: m.direction == "sent" and m.method == "BYE")
    carrier = flat.messages()
    invite = _first(carrier, lambda m: m.direction == "received" and m.method == "INVITE")
    ringing = _first(carrier, lambda m: m.direction == "sent" and m.status == 180)
    assert invite.first_line.startswith("INVITE sip:+212661234567@127.0.0.1:")
    assert invite.header("Proxy-Authorization") is None  # credentials never leave the edge
    assert invite.header("Record-Route") is not None
    assert minute.invites() == []

    record = brain.wait_call(call_id)
    assert record["status"] == "completed"
    assert record["carrier"] == codes.flat
    assert record["destination"] == "+212661234567"
    assert _attempts(record) == [(1, codes.flat, 200)]
    assert abs(_ms(_at(record["started_at"]), invite.at)) <= 50  # the INVITE left the edge
    # PDD: from the edge's INVITE to the carrier to its first 18x, as the carrier saw it
    carrier_pdd = _ms(ringing.at, invite.at)
    assert abs(record["pdd_ms"] - carrier_pdd) <= 50, (record["pdd_ms"], carrier_pdd)
    assert abs(_ms(_at(record["answered_at"]), answered.at)) <= 100
    talked = _ms(bye.at, answered.at)
    assert abs(record["duration_ms"] - talked) <= 100, (record["duration_ms"], talked)
    assert record["hangup_cause"] == "caller"


def test_given_destination_outside_plan_when_called_then_403_with_reason_and_no_carrier_invite(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    with _carriers(brain, workdir) as (flat, minute, _codes):
        run = subscriber_call(
            edge,
            workdir,
            "amina",
            scenario="caller_refused.xml",
            dialled=FRENCH_MOBILE,
            name="outside",
        )
    assert run.returncode == 0, run.output
    refusal = run.received(403)[0]
    assert refusal.cseq_method == "INVITE"
    assert refusal.header("Warning") == '399 tawasol "destination_not_in_plan"'
    assert "destination_not_in_plan" in (refusal.header("Reason") or "")
    assert flat.invites() == [] and minute.invites() == []


def test_given_first_carrier_answers_503_when_called_then_second_completes_and_cdr_lists_both(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    with _carriers(
        brain,
        workdir,
        flat="carrier_reject.xml",
        flat_reply=(503, "Service Unavailable", "Q.850;cause=34"),
    ) as (flat, minute, codes):
        run = subscriber_call(edge, workdir, "amina", scenario="caller_call.xml", name="fail503")
        assert run.returncode == 0, run.output
    assert len(flat.invites()) == 1
    assert len(minute.invites()) == 1
    assert minute.invites()[0].first_line.startswith("INVITE sip:00212661234567@")
    record = brain.wait_call(run.messages()[0].call_id)
    assert record["status"] == "completed"
    assert record["carrier"] == codes.minute
    assert _attempts(record) == [(1, codes.flat, 503), (2, codes.minute, 200)]
    assert record["attempts"][0]["q850_cause"] == 34  # from the carrier's Reason header


def test_given_first_carrier_silent_when_called_then_second_answers_within_route_timer_plus_1s(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    with _carriers(brain, workdir, flat="carrier_silent.xml") as (flat, minute, codes):
        run = subscriber_call(edge, workdir, "amina", scenario="caller_call.xml", name="silent")
        assert run.returncode == 0, run.output
    caller = run.messages()
    invite = [m for m in caller if m.direction == "sent" and m.method == "INVITE"][-1]
    answered = _first(
        caller,
        lambda m: m.direction == "received" and m.status == 200 and m.cseq_method == "INVITE",
    )
    assert _ms(answered.at, invite.at) <= ROUTE_TIMEOUT_MS + 1000
    # the second INVITE left when the first route's timer ran out, not before
    waited = _ms(minute.invites()[0].at, flat.invites()[0].at)
    assert ROUTE_TIMEOUT_MS - 100 <= waited <= ROUTE_TIMEOUT_MS + 300, waited
    record = brain.wait_call(invite.call_id)
    assert record["carrier"] == codes.minute
    assert _attempts(record) == [(1, codes.flat, 408), (2, codes.minute, 200)]
    assert record["attempts"][0]["pdd_ms"] is None


# RFC 3398: the callee's own answers (busy: cause 17 -> 486; no answer: cause 18 -> 408) end
# the hunt: another carrier would ring the same phone again and cost twice.
@pytest.mark.parametrize(
    ("reply", "name"),
    [
        ((486, "Busy Here", "Q.850;cause=17"), "busy"),
        ((408, "Request Timeout", "Q.850;cause=18"), "noanswer"),
    ],
)
def test_given_the_callee_busy_or_not_answering_at_first_carrier_when_called_then_no_failover(
    brain: Brain, edge: EdgeProcess, workdir: Any, reply: tuple[int, str, str], name: str
) -> None:
    with _carriers(brain, workdir, flat="carrier_reject.xml", flat_reply=reply) as (
        flat,
        minute,
        codes,
    ):
        run = subscriber_call(edge, workdir, "amina", scenario="caller_refused.xml", name=name)
    code = reply[0]
    assert run.returncode == 0, run.output
    assert set(run.final_statuses()) == {code}
    assert len(flat.invites()) == 1
    assert minute.invites() == []
    record = brain.wait_call(run.messages()[0].call_id)
    assert record["status"] == "failed"
    assert record["final_sip_code"] == code
    assert _attempts(record) == [(1, codes.flat, code)]


def test_given_every_carrier_fails_when_called_then_caller_gets_503_all_routes_failed(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    with _carriers(
        brain,
        workdir,
        flat="carrier_reject.xml",
        minute="carrier_reject.xml",
        flat_reply=(502, "Bad Gateway", "Q.850;cause=27"),
    ) as (_flat, _minute, codes):
        run = subscriber_call(edge, workdir, "amina", scenario="caller_refused.xml", name="allfail")
    assert run.returncode == 0, run.output
    refusal = run.received(503)[0]
    assert refusal.reason_phrase == "All Routes Failed"
    assert "cause=34" in (refusal.header("Reason") or "")
    record = brain.wait_call(refusal.call_id)
    assert record["final_sip_code"] == 503
    assert [attempt[1] for attempt in _attempts(record)] == [codes.flat, codes.minute]


def test_given_max_duration_reached_when_talking_then_both_sides_get_bye_and_cdr_equals_limit(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    # driss's plan has one minute a month; a 55-second call already counts against it, so the
    # brain allows the next call 5 seconds.
    now_ms = int(datetime.now().timestamp() * 1000)
    seed_id = f"e2e-seed-driss-{now_ms}"
    seeded = {
        "call_id": seed_id,
        "user": "driss",
        "dialled": MOROCCAN_MOBILE,
        "grant": grant(seed_id, "driss", 60),
    }
    brain.post_events(
        [
            {
                **seeded,
                "type": "attempt",
                "at_ms": now_ms,
                "attempt": 1,
                "carrier": "seed-carrier",
                "gateway": "gw1",
                "sip_code": 200,
                "pdd_ms": 100,
            },
            {**seeded, "type": "answer", "at_ms": now_ms, "carrier": "seed-carrier"},
            {
                **seeded,
                "type": "end",
                "at_ms": now_ms + 55_000,
                "duration_ms": 55_000,
                "hangup_cause": "caller",
            },
        ]
    )
    limit_ms = 5_000

    with _carriers(brain, workdir) as (flat, _minute, codes):
        run = subscriber_call(edge, workdir, "driss", scenario="caller_wait_bye.xml", name="maxdur")
        assert run.returncode == 0, run.output
        assert flat.wait_for(lambda m: m.direction == "sent" and m.cseq_method == "BYE")
    caller = run.messages()
    answered = _first(
        caller,
        lambda m: m.direction == "received" and m.status == 200 and m.cseq_method == "INVITE",
    )
    caller_bye = _first(caller, lambda m: m.direction == "received" and m.method == "BYE")
    carrier_bye = _first(flat.messages(), lambda m: m.direction == "received" and m.method == "BYE")
    assert abs(_ms(caller_bye.at, answered.at) - limit_ms) <= 250
    assert abs(_ms(carrier_bye.at, answered.at) - limit_ms) <= 250
    record = brain.wait_call(answered.call_id)
    assert record["carrier"] == codes.flat
    assert record["hangup_cause"] == "max_duration"
    assert abs(record["duration_ms"] - limit_ms) <= 200, record["duration_ms"]


def test_given_caller_hangs_up_while_ringing_when_cancelled_then_carrier_cancelled_and_cdr_487(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    with _carriers(brain, workdir, flat="carrier_ring.xml") as (flat, minute, codes):
        run = subscriber_call(
            edge, workdir, "amina", scenario="caller_cancel.xml", name="cancel", talk_ms=500
        )
        assert run.returncode == 0, run.output
        assert flat.wait_for(lambda m: m.direction == "received" and m.method == "ACK")
    assert any(m.direction == "received" and m.method == "CANCEL" for m in flat.messages())
    assert minute.invites() == []
    record = brain.wait_call(run.messages()[0].call_id)
    assert record["status"] == "failed"
    assert record["final_sip_code"] == 487
    assert _attempts(record) == [(1, codes.flat, 487)]
    assert record["attempts"][0]["pdd_ms"] is not None


def test_given_callee_hangs_up_when_talking_then_cdr_says_callee(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    with _carriers(brain, workdir, flat="carrier_hangup.xml", delay_ms=800) as (
        _flat,
        _minute,
        codes,
    ):
        run = subscriber_call(
            edge, workdir, "amina", scenario="caller_wait_bye.xml", name="callee-bye"
        )
        assert run.returncode == 0, run.output
    record = brain.wait_call(run.messages()[0].call_id)
    assert record["status"] == "completed"
    assert record["carrier"] == codes.flat
    assert record["hangup_cause"] == "callee"
    assert 700 <= record["duration_ms"] <= 1100


def test_every_kamailio_process_runs_below_the_brain_priority(edge: EdgeProcess) -> None:
    # Every new call waits on the brain: when both want the CPU the brain goes first
    # (Settings.sip_nice, default 5, bench/sip_throughput.py: 600 -> 900 clean calls/s).
    pids = [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit() and _process_group(int(entry.name)) == edge.pid
    ]
    assert len(pids) > 4  # the main process, its workers and timers
    assert {os.getpriority(os.PRIO_PROCESS, pid) for pid in pids} == {Settings().sip_nice}
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == 0


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
