"""The brain goes away: the edge fails closed for new calls, keeps the calls that are up, and
delivers the events of the outage once the brain is back (the spool in the run directory)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import MOROCCAN_MOBILE, SUBSCRIBERS, Brain, subscriber_call

from support.sipp import SippCarrier, answered_call_id, free_port, start_caller
from tawasol.adapters.sip import EdgeProcess
from tawasol.adapters.sip.kemi.edge_brain import EventSpool

pytestmark = pytest.mark.sip


def _refused_while_down(edge: EdgeProcess, workdir: Path, name: str) -> float:
    """Place a call; return the ms between the authenticated INVITE and the 503."""
    run = subscriber_call(
        edge, workdir, "hamza", scenario="caller_refused.xml", name=name, timeout_s=15
    )
    assert run.returncode == 0, run.output
    messages = run.messages()
    invite = next(
        m
        for m in messages
        if m.direction == "sent" and m.method == "INVITE" and m.header("CSeq") == "2 INVITE"
    )
    refusal = run.received(503)[0]
    assert refusal.header("Warning") == '399 tawasol "brain_unavailable"'
    return (refusal.at - invite.at).total_seconds() * 1000


def test_given_brain_stopped_when_calling_then_503_fast_calls_up_go_on_events_delivered_later(
    brain: Brain, edge: EdgeProcess, workdir: Path
) -> None:
    carrier = SippCarrier("carrier_answer.xml", free_port(), workdir, delay_ms=100, timeout_s=40)
    carrier.start()
    brain.point_carriers(flat_port=carrier.port, minute_port=carrier.port)
    long_call, trace = start_caller(
        "caller_call.xml",
        edge_port=edge.port,
        dialled=MOROCCAN_MOBILE,
        user="ghita",
        password=SUBSCRIBERS["ghita"][0],
        workdir=workdir,
        name="long",
        talk_ms=4000,
    )
    try:
        # wait until the long call is answered (the brain has its answer event) ...
        call_id = answered_call_id(trace)
        assert call_id, "the long call was not answered"
        brain.wait_call(call_id, until=lambda record: record["status"] == "answered")

        # ... then stop the brain: new calls are refused within 2 s
        brain.stop()
        assert _refused_while_down(edge, workdir, "brain-down") < 2000

        # the call that was up goes on to its natural end (BYE answered)
        assert long_call.wait(timeout=20) == 0
        assert carrier.wait_for(lambda m: m.direction == "sent" and m.cseq_method == "BYE")
        spool = EventSpool(edge.spool_dir)
        assert spool.pending_events() > 0, "the end of the call should wait in the spool"
    finally:
        if long_call.poll() is None:
            long_call.kill()
            long_call.wait()
        carrier.stop()
        if not brain.running():
            brain.start()

    # the brain is back: the events of the outage reach the CDR
    record = brain.wait_call(call_id, timeout_s=15)
    assert record["status"] == "completed"
    assert 3900 <= record["duration_ms"] <= 4300
    # the shipper records how far it got once the brain has answered: a moment after the CDR
    deadline = time.monotonic() + 5
    while spool.pending_events() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spool.pending_events() == 0


def test_given_brain_hanging_when_calling_then_503_within_2s(
    brain: Brain, edge: EdgeProcess, workdir: Path
) -> None:
    assert brain.process is not None
    os.kill(brain.process.pid, signal.SIGSTOP)
    try:
        elapsed_ms = _refused_while_down(edge, workdir, "brain-hung")
    finally:
        os.kill(brain.process.pid, signal.SIGCONT)
    assert 900 <= elapsed_ms < 2000  # the brain_timeout_ms (1 s), then a refusal
