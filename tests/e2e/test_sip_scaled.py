"""The scaled mode end to end (issue 19), scaled to a shared 2-core machine: two Kamailio edges
and two brain processes on loopback, one PostgreSQL database, one Redis.

- A one-call subscriber calling through both edges at once (edge 1 asks brain A first, edge 2
  brain B) gets one call.
- Calls at 8/s through both edges for ~12 s, brain A SIGKILLed after 5 s: every call is set up,
  talks and ends (SIPp's callers fail on any refused or dropped call), each has exactly one
  completed CDR, and once they ended Redis and both edges' dialog lists hold no call.

Not shown here (docs/scaling.md): an edge killed under load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    E2E_SETTINGS,
    MOROCCAN_MOBILE,
    Brain,
    _plan,
    edge_settings,
)

from support.sipp import SippCarrier, caller_command
from support.stack import free_port, wait_until
from support.stores import REDIS_URL, postgres_schema, redis_live_counters, redis_prefix
from tawasol.adapters.sip import EdgeProcess, start_edge
from tawasol.adapters.sip.dialogs import dialog_call_ids

pytestmark = [pytest.mark.sip, pytest.mark.postgres, pytest.mark.redis]

USERS = {"amina": "amina-scaled-2026", "bilal": "bilal-scaled-2026", "solo": "solo-scaled-2026"}
RATE = 4  # new calls per second per edge
CALLS = 48  # per edge: 12 s
TALK_MS = 2000
KILL_AFTER_S = 5.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with postgres_schema() as url, redis_prefix() as prefix:
        shared = {
            **E2E_SETTINGS,
            "TAWASOL_DATABASE_URL": url,
            "TAWASOL_LIVE_COUNTERS": "redis",
            "TAWASOL_REDIS_URL": REDIS_URL,
            "TAWASOL_REDIS_KEY_PREFIX": prefix,
            "TAWASOL_EDGE_RECONCILE_INTERVAL_S": "0",
        }
        brains = [
            Brain(
                data_dir=tmp_path / name,
                port=free_port(),
                log=tmp_path / f"{name}.log",
                settings=dict(shared),
            )
            for name in ("brain-a", "brain-b")
        ]
        edges: list[EdgeProcess] = []
        carriers: list[SippCarrier] = []
        try:
            brains[0].init()
            for brain in brains:
                brain.data_dir.mkdir(parents=True, exist_ok=True)
                brain.start()
            _seed(brains[0])
            carrier = SippCarrier(
                "carrier_answer.xml", free_port(), tmp_path, delay_ms=50, timeout_s=120
            ).start()
            unused = SippCarrier("carrier_answer.xml", free_port(), tmp_path, timeout_s=120)
            carriers += [carrier, unused.start()]
            codes = brains[0].point_carriers(flat_port=carrier.port, minute_port=unused.port)
            for index, order in enumerate(((0, 1), (1, 0))):
                run_dir = tmp_path / f"edge-{index + 1}"
                run_dir.mkdir()
                listed = ",".join(f"127.0.0.1:{brains[i].port}" for i in order)
                settings = edge_settings(brains[order[0]], run_dir, edge_brains=listed)
                edges.append(start_edge(settings, run_dir))
            time.sleep(0.5)  # brain B sees the catalog (refresh every 200 ms)
            yield {"brains": brains, "edges": edges, "codes": codes, "prefix": prefix}
        finally:
            for edge in edges:
                edge.stop()
            for each in carriers:
                each.stop()
            for brain in brains:
                brain.stop()


def _seed(brain: Brain) -> None:
    brain.admin("POST", "/plans", json=_plan("scaled-maroc", minutes=None))
    one_call = _plan("scaled-one-call", minutes=None)
    one_call["fair_use"]["concurrent_calls"] = 1
    brain.admin("POST", "/plans", json=one_call)
    for index, (user, password) in enumerate(USERS.items()):
        plan = "scaled-one-call" if user == "solo" else "scaled-maroc"
        brain.subscribe(user, password, plan_code=plan, phone=f"+3361235{index:04d}")


def _caller(
    edge: EdgeProcess, user: str, workdir: Path, name: str, *, calls: int, talk_ms: int
) -> subprocess.Popen[bytes]:
    command = caller_command(
        "caller_call.xml",
        edge_port=edge.port,
        dialled=MOROCCAN_MOBILE,
        user=user,
        password=USERS[user],
        trace=workdir / f"caller-{name}.msg",
        calls=calls,
        talk_ms=talk_ms,
        timeout_s=90,
    )
    command += ["-r", str(RATE), "-rp", "1000", "-cid_str", f"{name}-%u-%p@%s"]
    return subprocess.Popen(
        command,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_given_two_edges_and_two_brains_when_a_one_call_subscriber_calls_through_both_then_one(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    edges = cluster["edges"]
    results: list[int] = []
    processes = [
        subprocess.Popen(
            caller_command(
                "caller_call.xml",
                edge_port=edge.port,
                dialled=MOROCCAN_MOBILE,
                user="solo",
                password=USERS["solo"],
                trace=tmp_path / f"solo-{index}.msg",
                talk_ms=3000,
                timeout_s=20,
            ),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for index, edge in enumerate(edges)
    ]
    for process in processes:
        results.append(process.wait(timeout=40))
    assert sorted(results) == [0, 1]  # one call talked, the other was refused
    traces = [(tmp_path / f"solo-{index}.msg").read_text(errors="replace") for index in (0, 1)]
    assert sum("403 Too Many Simultaneous Calls" in trace for trace in traces) == 1


def test_given_calls_through_two_edges_when_a_brain_is_killed_then_no_call_lost(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    brains: list[Brain] = cluster["brains"]
    edges: list[EdgeProcess] = cluster["edges"]
    callers = [
        _caller(edge, user, tmp_path, f"load{index}", calls=CALLS, talk_ms=TALK_MS)
        for index, (edge, user) in enumerate(zip(edges, ("amina", "bilal"), strict=True))
    ]
    try:
        time.sleep(KILL_AFTER_S)
        assert brains[0].pid is not None
        os.kill(brains[0].pid, signal.SIGKILL)
        outputs = [
            caller.communicate(timeout=120)[0].decode(errors="replace") for caller in callers
        ]
    finally:
        for caller in callers:
            if caller.poll() is None:
                caller.kill()
                caller.wait(timeout=10)
    for caller, output in zip(callers, outputs, strict=True):
        assert caller.returncode == 0, output[-2000:]  # every call set up, talked and ended

    survivor = brains[1]

    def completed() -> list[dict[str, Any]]:
        records = survivor.admin("GET", "/calls", params={"limit": 1000})
        return [r for r in records if r["call_id"].startswith(("load0-", "load1-"))]

    assert wait_until(
        lambda: sum(r["status"] == "completed" for r in completed()) == 2 * CALLS, 30
    ), [r for r in completed() if r["status"] != "completed"]
    records = completed()
    assert len(records) == len({r["call_id"] for r in records}) == 2 * CALLS
    assert all(r["carrier"] == cluster["codes"].flat for r in records)
    assert all(TALK_MS - 300 <= r["duration_ms"] <= TALK_MS + 1500 for r in records)

    with redis_live_counters(cluster["prefix"]) as counters:
        assert wait_until(lambda: counters.calls_in_progress() == 0, 20), counters.open_calls()
    for edge in edges:  # an ended dialog stays listed until Kamailio's dialog timer drops it
        assert wait_until(lambda edge=edge: not dialog_call_ids(edge.ctl_socket), 30, 0.5), (
            subprocess.run(
                ["kamcmd", "-s", f"unix:{edge.ctl_socket}", "dlg.list"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout[:3000]
        )
