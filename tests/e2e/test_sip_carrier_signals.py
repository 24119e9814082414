"""Carriers' signals read right at the edge (issue 10): real Kamailio, the real brain, SIPp
carriers. Each test has two carriers of its own ("flat-N" tried first, "minute-N" second).

The edge reads the one table of `tawasol.domain.sip_semantics` (loaded by path inside
Kamailio): these tests show each fault of the issue where the edge is involved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from conftest import (
    ROUTE_TIMEOUT_MS,
    Brain,
    Carriers,
    subscriber_call,
)
from test_sip_calls import _carriers

from support.sipp import CallerRun, SippCarrier, free_port
from tawasol.adapters.sip import EdgeProcess

pytestmark = pytest.mark.sip


def _attempts(record: dict[str, Any]) -> list[tuple[int, str, int | None, int | None]]:
    return [
        (a["attempt"], a["carrier"], a["sip_code"], a["q850_cause"]) for a in record["attempts"]
    ]


def _ms(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() * 1000


def _placed(
    brain: Brain,
    edge: EdgeProcess,
    workdir: Any,
    calls: list[tuple[str, str]],
    **carriers: Any,
) -> tuple[SippCarrier, SippCarrier, Carriers, list[CallerRun]]:
    """Two carriers of this test's own (`carriers`: `_carriers`' options), then one call per
    (caller scenario, name), one after the other."""
    with _carriers(brain, workdir, **carriers) as (flat, minute, codes):
        runs = [
            subscriber_call(edge, workdir, "bilal", scenario=scenario, name=name)
            for scenario, name in calls
        ]
    for run in runs:
        assert run.returncode == 0, run.output
    return flat, minute, codes, runs


def _fails_over(
    brain: Brain, edge: EdgeProcess, workdir: Any, reply: tuple[int, str, str], name: str
) -> tuple[Carriers, dict[str, Any]]:
    """One call whose first carrier answers `reply`: it must be completed by the second."""
    flat, minute, codes, (run,) = _placed(
        brain,
        edge,
        workdir,
        [("caller_call.xml", name)],
        flat="carrier_reject.xml",
        flat_reply=reply,
    )
    assert len(flat.invites()) == 1
    assert len(minute.invites()) == 1
    record = brain.wait_call(run.messages()[0].call_id)
    assert record["status"] == "completed"
    assert record["carrier"] == codes.minute
    return codes, record


def test_given_480_with_q850_cause_47_when_called_then_next_carrier_completes_it(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    # fault 1: congestion on the wrong code (FreeSWITCH #732) used to end the call with 480
    reply = (480, "Temporarily Unavailable", "Q.850;cause=47")
    codes, record = _fails_over(brain, edge, workdir, reply, "480-47")
    assert _attempts(record) == [(1, codes.flat, 480, 47), (2, codes.minute, 200, None)]


@pytest.mark.parametrize(
    ("code", "phrase"),
    [
        (501, "Not Implemented"),
        (505, "Version Not Supported"),
        (513, "Message Too Large"),
        (580, "Precondition Failure"),
    ],
)
def test_given_any_5xx_when_called_then_next_carrier_completes_it(
    brain: Brain, edge: EdgeProcess, workdir: Any, code: int, phrase: str
) -> None:
    # fault 2: RFC 3261 §21.5, the server failed; the request may succeed elsewhere
    codes, record = _fails_over(
        brain, edge, workdir, (code, phrase, f"SIP;cause={code}"), f"{code}"
    )
    assert [attempt[:3] for attempt in _attempts(record)] == [
        (1, codes.flat, code),
        (2, codes.minute, 200),
    ]


def test_given_quoted_text_with_a_comma_before_the_cause_then_the_edge_reads_the_cause(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    # fault 7: a callee's cause (17, user busy) on a 503 after text with a comma: the edge
    # found no cause, failed over and rang the callee twice
    reply = (503, "Service Unavailable", 'Q.850;text="User busy, try later";cause=17')
    _, minute, codes, (run,) = _placed(
        brain,
        edge,
        workdir,
        [("caller_refused.xml", "comma")],
        flat="carrier_reject.xml",
        flat_reply=reply,
    )
    assert set(run.final_statuses()) == {486}  # the table's reply for cause 17 (RFC 3398)
    assert minute.invites() == []
    record = brain.wait_call(run.messages()[0].call_id)
    assert _attempts(record) == [(1, codes.flat, 503, 17)]
    assert record["final_sip_code"] == 486


def test_given_503_with_retry_after_when_called_again_then_that_carrier_is_skipped(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    # fault 3: RFC 3261 §21.5.4, do not send it requests for that long (siphon #69)
    reply = (503, "Service Unavailable", "Q.850;cause=41\nRetry-After: 300")
    flat, minute, codes, (_, second) = _placed(
        brain,
        edge,
        workdir,
        [("caller_call.xml", "retry-after-1"), ("caller_call.xml", "retry-after-2")],
        flat="carrier_reject.xml",
        flat_reply=reply,
    )
    assert len(flat.invites()) == 1  # only the first call tried it
    assert len(minute.invites()) == 2
    record = brain.wait_call(second.messages()[0].call_id)
    assert _attempts(record) == [(2, codes.minute, 200, None)]  # route 1 skipped, not tried
    status = next(
        row for row in brain.admin("GET", "/carriers/status") if row["code"] == codes.flat
    )
    assert status["state"] == "held_off" and status["held_off_until"]
    events = brain.admin("GET", f"/carriers/{codes.flat}/events")
    assert any(e["kind"] == "held_off" and "300 s" in e["detail"] for e in events)


def test_given_100_trying_then_silence_when_called_then_next_carrier_after_the_route_timer(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    # fault 5: the caller was held 120 s, then got 408, and the second carrier saw no INVITE
    flat, minute, codes, (run,) = _placed(
        brain,
        edge,
        workdir,
        [("caller_call.xml", "trying-silent")],
        flat="carrier_trying_silent.xml",
    )
    assert any(m.direction == "sent" and m.status == 100 for m in flat.messages())
    waited = _ms(minute.invites()[0].at, flat.invites()[0].at)
    assert ROUTE_TIMEOUT_MS - 100 <= waited <= ROUTE_TIMEOUT_MS + 500, waited
    record = brain.wait_call(run.messages()[0].call_id)
    assert record["carrier"] == codes.minute
    assert _attempts(record) == [(1, codes.flat, 408, None), (2, codes.minute, 200, None)]


def test_given_callee_rings_longer_than_the_route_timer_then_the_first_carrier_still_answers(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    # the route timer runs only until the first 18x: after it, the ring timeout
    ring_ms = ROUTE_TIMEOUT_MS + 1500
    _, minute, codes, (run,) = _placed(
        brain, edge, workdir, [("caller_call.xml", "long-ring")], delay_ms=ring_ms
    )
    assert minute.invites() == []
    record = brain.wait_call(run.messages()[0].call_id)
    assert record["carrier"] == codes.flat
    assert record["attempts"][0]["pdd_ms"] is not None


def test_given_every_carrier_held_off_when_called_then_503_at_once_and_the_slot_is_freed(
    brain: Brain, edge: EdgeProcess, workdir: Any
) -> None:
    reply = (503, "Service Unavailable", "Q.850;cause=34\nRetry-After: 120")
    first = SippCarrier("carrier_reject.xml", free_port(), workdir, reply=reply, timeout_s=30)
    second = SippCarrier("carrier_reject.xml", free_port(), workdir, reply=reply, timeout_s=30)
    first.start()
    second.start()
    brain.point_carriers(flat_port=first.port, minute_port=second.port)
    try:
        runs = [
            subscriber_call(
                edge, workdir, "bilal", scenario="caller_refused.xml", name=f"held-off-{number}"
            )
            for number in range(3)
        ]
    finally:
        first.stop()
        second.stop()
    for run in runs:
        assert run.returncode == 0, run.output
        (refusal,) = run.received(503)
        assert refusal.reason_phrase == "All Routes Failed"
    # only the first call reached the carriers; the next two were refused by the edge at once,
    # and each freed the subscriber's only slot (else the third would be a concurrent_limit 403)
    assert len(first.invites()) == 1 and len(second.invites()) == 1
    for run in runs[1:]:
        record = brain.wait_call(run.messages()[0].call_id)
        assert record["status"] == "failed" and record["final_sip_code"] == 503
        assert record["attempts"] == []
