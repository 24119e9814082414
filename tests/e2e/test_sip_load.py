"""A burst of calls through the edge and the real brain: every call completes and is filed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Brain, subscriber_call

from support.sipp import SippCarrier, free_port
from tawasol.adapters.sip import EdgeProcess

pytestmark = pytest.mark.sip

CALLS = 100
RATE = 20  # new calls per second


def test_given_100_calls_at_20_per_second_then_100_cdrs_and_no_failed_call(
    brain: Brain, edge: EdgeProcess, workdir: Path
) -> None:
    carrier = SippCarrier(
        "carrier_answer.xml", free_port(), workdir, delay_ms=100, timeout_s=60
    ).start()
    unused = SippCarrier("carrier_answer.xml", free_port(), workdir, timeout_s=60).start()
    codes = brain.point_carriers(flat_port=carrier.port, minute_port=unused.port)
    prefix = f"load{int(time.time())}"
    try:
        run = subscriber_call(
            edge,
            workdir,
            "farah",
            name="load",
            calls=CALLS,
            rate=RATE,
            talk_ms=500,
            timeout_s=40,
            call_id_prefix=prefix,
        )
    finally:
        carrier.stop()
        unused.stop()
    assert run.returncode == 0, run.output  # SIPp: 0 = every call succeeded
    assert unused.invites() == []

    deadline = time.monotonic() + 15
    completed: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = brain.admin("GET", "/calls", params={"limit": 1000})
        completed = [
            record
            for record in records
            if record["call_id"].startswith(prefix) and record["status"] == "completed"
        ]
        if len(completed) >= CALLS:
            break
        time.sleep(0.2)
    assert len(completed) == CALLS
    assert all(record["carrier"] == codes.flat for record in completed)
    assert all(400 <= record["duration_ms"] <= 700 for record in completed)
