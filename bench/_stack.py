"""The two worlds bench/sip_throughput.py drives, and the tools to measure them.

- `BareKamailio`: Kamailio alone (bench/kamailio_bare.cfg.template), a stateful relay with
  Record-Route and a static route to one carrier: the ceiling on this machine.
- `FullStack`: the brain (`tawasol serve` wiring, through bench/_brain_server.py for its
  decision stopwatch) on its own SQLite, seeded with a generated operator, and the tawasol edge
  started by `tawasol.adapters.sip.start_edge` exactly as `tawasol up` does (KEMI routing
  script, digest auth against the brain's HA1, decision per INVITE, dialogs, event spool).
- `DecisionProbe`: decision round trips as an edge sees them.
- `CpuMeter`: CPU seconds per process group read from /proc (the caller's own CPU comes from
  its rusage when it exits).

SIPp (scenarios, carrier, caller) lives in bench/_sipp.py and is re-exported here. Everything
listens on 127.0.0.1, on ports picked free at run time. Every process started here is stopped
by its `stop()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _sipp import (  # bench/ is not a package: sip_throughput.py puts it on sys.path
    DIALLED,
    CallerResult,
    SippCarrier,
    carrier_counts,
    percentile,
    run_caller,
    write_scenarios,
)

from support.operator import admin_document, flat_rate_carrier, morocco_plan, per_minute_carrier
from support.sipp import SIPP, read_sipp_stats  # tests/ is on sys.path through _sipp
from support.stack import LOCALHOST, BrainServer, free_port
from tawasol.adapters.sip.launcher import kamailio_binary
from tawasol.domain.carriers import Carrier
from tawasol.domain.catalog import Plan

BENCH_DIR = Path(__file__).resolve().parent
# The edge's bearer token for the brain (the brain and the edge have data dirs of their own).
EDGE_TOKEN = "bench-edge-token-0123456789"
EDGE_HEADERS = {"Authorization": f"Bearer {EDGE_TOKEN}"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


# -- CPU from /proc -------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces
    return text[text.rfind(")") + 2 :].split()


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process (all its threads), in clock ticks; 0 once it is gone."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def group_pids(pgid: int) -> list[int]:
    """Every live process of a process group (Kamailio's main process and its children)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields and int(fields[2]) == pgid:
                found.append(int(entry.name))
    return found


def all_process_ticks() -> dict[int, int]:
    """utime + stime of every live process. (The machine-wide counters of /proc/stat are
    sampled at the timer tick and miss much of a load whose bursts follow that tick, as
    SIPp's do: they read lower than the processes' own precise figures here.)"""
    ticks = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


class CpuMeter:
    """CPU used by named groups of processes between `start()` and `stop()`, in cores
    (1.0 = one core busy all the time), and by every process of the machine ("machine":
    processes that lived only between start and stop are missed)."""

    def __init__(self, groups: dict[str, Callable[[], Iterable[int]]]) -> None:
        self._groups = groups
        self._before: dict[str, dict[int, int]] = {}
        self._all_before: dict[int, int] = {}
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._all_before = all_process_ticks()
        self._before = {
            name: {pid: cpu_ticks(pid) for pid in pids()} for name, pids in self._groups.items()
        }

    def stop(self) -> dict[str, float]:
        elapsed = max(1e-6, time.monotonic() - self._started)
        used = {}
        for name, pids in self._groups.items():
            before = self._before.get(name, {})
            ticks = sum(cpu_ticks(pid) - before.get(pid, 0) for pid in pids())
            used[name] = ticks / CLOCK_TICKS / elapsed
        machine = sum(
            ticks - self._all_before.get(pid, 0) for pid, ticks in all_process_ticks().items()
        )
        used["machine"] = machine / CLOCK_TICKS / elapsed
        return used


# -- Kamailio alone -------------------------------------------------------------------------------
def render_bare_config(*, run_dir: Path, port: int, carrier_port: int, children: int) -> str:
    values = {
        "RUN_DIR": str(run_dir.resolve()),
        "PORT": str(port),
        "CARRIER_PORT": str(carrier_port),
        "CHILDREN": str(children),
    }
    text = (BENCH_DIR / "kamailio_bare.cfg.template").read_text()
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


@dataclass
class BareKamailio:
    """Kamailio alone relaying to one carrier: the machine's ceiling. Started by
    `tawasol.adapters.sip.launcher.start_kamailio`, the edge's own command line."""

    run_dir: Path
    carrier_port: int
    children: int
    shared_memory_mb: int
    # the tawasol edge's allocator (launcher.MEMORY_MANAGER), so that both setups use the same
    memory_manager: str = "tlsf"
    port: int = field(default_factory=free_port)
    edge: Any = None  # launcher.EdgeProcess once started

    def start(self) -> BareKamailio:
        from tawasol.adapters.sip.launcher import start_kamailio

        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "kamailio.cfg"
        config.write_text(
            render_bare_config(
                run_dir=self.run_dir,
                port=self.port,
                carrier_port=self.carrier_port,
                children=self.children,
            )
        )
        self.edge = start_kamailio(
            config,
            self.run_dir,
            listen=LOCALHOST,
            port=self.port,
            shared_memory_mb=self.shared_memory_mb,
            memory_manager=self.memory_manager,
        )
        return self

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.edge.process if self.edge is not None else None

    def pids(self) -> list[int]:
        return group_pids(self.edge.pid) if self.edge is not None else []

    def stop(self) -> None:
        if self.edge is not None:
            self.edge.stop()
            self.edge = None


# -- the brain ------------------------------------------------------------------------------------
ADMIN_TOKEN = "bench-admin-token"
REALM = "tawasol.bench"
PLAN_CODE = "bench-unlimited"


def bench_plan() -> Plan:
    """The sample operator's Moroccan plan (tests/support/operator.py) with no minute cap, no
    distinct-number cap and no limit of simultaneous calls: fair use never refuses a
    benchmark call."""
    return morocco_plan(PLAN_CODE)


def bench_carriers(port: int) -> list[Carrier]:
    """The sample operator's two kinds of carrier, both played by the same SIPp carrier: a
    flat-rate one (tried first while it has a free channel) and a per-minute one, so every
    decision carries two routes."""
    return [
        flat_rate_carrier("bench-flat", port=port, channels=2000, name="Bench flat-rate carrier"),
        per_minute_carrier("bench-minute", port=port, name="Bench per-minute carrier"),
    ]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def subscriber_name(index: int) -> tuple[str, str]:
    """(SIP username, password) of generated subscriber `index` (1-based)."""
    return f"bench{index:05d}", f"bench-pass-{index:05d}"


@dataclass
class BrainProcess(BrainServer):
    """The brain on its own SQLite, started through bench/_brain_server.py (or, with
    `plain=True`, through `tawasol serve` itself: no decision stopwatch); started and stopped
    by tests/support (`BrainServer`), as the e2e tests and `tawasol up` start it."""

    port: int = field(default_factory=free_port)
    log: Path = Path()  # DATA_DIR/brain.log
    admin_token: str = ADMIN_TOKEN
    edge_token: str = EDGE_TOKEN
    ready_timeout_s: float = 60
    plain: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.log == Path():
            self.log = self.data_dir / "brain.log"
        self.settings = {
            "TAWASOL_SIP_REALM": REALM,
            # SIPp carriers answer OPTIONS, but a carrier restarted between load steps may
            # miss a probe: never mark it down during the run.
            "TAWASOL_PROBE_DOWN_AFTER": "100",
            **self.extra_env,
        }

    def prepare(self, *, subscribers: int) -> float:
        """`tawasol init`, then the plan, the carriers (port filled in later) and
        `subscribers` subscribers written through the catalog service, before the brain
        starts. Returns the seconds it took."""
        started = time.monotonic()
        self.init()
        from tawasol.composition import build_brain
        from tawasol.config import Settings

        brain = build_brain(
            Settings(data_dir=self.data_dir, sip_realm=REALM, api_port=self.port)  # type: ignore[call-arg]
        )
        try:
            brain.catalog.add_plan(bench_plan())
            for index in range(1, subscribers + 1):
                username, password = subscriber_name(index)
                brain.catalog.add_subscriber(
                    name=f"Bench subscriber {index}",
                    email="",
                    phone=f"+3361{index:07d}",
                    locale="fr",
                    time_zone="Europe/Paris",
                    sip_username=username,
                    password=password,
                    plan_code=PLAN_CODE,
                )
        finally:
            brain.close()
        return time.monotonic() - started

    def command(self) -> list[str]:
        """What starts the brain process."""
        if self.plain:
            return super().command()
        return [sys.executable, str(BENCH_DIR / "_brain_server.py")]

    def add_carriers(self, carrier_port: int) -> None:
        for carrier in bench_carriers(carrier_port):
            self.admin("POST", "/carriers", json=admin_document(carrier))

    def decisions(self, *, reset: bool = False) -> dict[str, float]:
        """The stopwatch's figures since the last reset (empty with `plain=True`)."""
        if self.plain:
            return {}
        query = "?reset=1" if reset else ""
        response = httpx.get(f"{self.url}/_bench/decisions{query}", timeout=5)
        response.raise_for_status()
        figures: dict[str, float] = response.json()
        return figures


class DecisionProbe:
    """What a Kamailio worker waits for a decision, seen from outside the brain.

    A thread sends `POST /sip/v1/authorize` `per_second` times a second on one kept
    connection with TCP_NODELAY, as the edge's `BrainClient` does, and times each round trip
    (queueing in the brain's event loop included, which the stopwatch inside cannot see). Its
    calls are allowed and never end: harmless with the benchmark plan (no limit of
    simultaneous calls), a few hundred per run.
    """

    def __init__(
        self, brain: BrainProcess, *, user: str, password: str, per_second: float = 20
    ) -> None:
        self._brain = brain
        self._user = user
        self._ha1 = _md5(f"{user}:{REALM}:{password}")
        self._interval_s = 1 / per_second
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples_ms: list[float] = []
        self.errors = 0
        self._call_ids: list[str] = []

    def start(self) -> None:
        self._stop.clear()
        self.samples_ms = []
        self.errors = 0
        self._call_ids = []
        self._thread = threading.Thread(target=self._run, name="decision-probe", daemon=True)
        self._thread.start()

    def stop(self) -> list[float]:
        """Stop probing, end the probe's calls in the brain (failure events, as an edge would
        send for a caller who gave up) and return the round trips, sorted, in ms."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        at_ms = time.time_ns() // 1_000_000
        for first in range(0, len(self._call_ids), 500):
            events = [
                {
                    "call_id": call_id,
                    "type": "failure",
                    "at_ms": at_ms,
                    "user": self._user,
                    "dialled": DIALLED,
                    "sip_code": 487,
                    "hangup_cause": "caller_cancelled",
                }
                for call_id in self._call_ids[first : first + 500]
            ]
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(
                    f"{self._brain.url}/sip/v1/events",
                    json={"events": events},
                    headers=EDGE_HEADERS,
                    timeout=30,
                )
        return sorted(self.samples_ms)

    def _credentials(self, sequence: int) -> str:
        """A phone's digest answer (RFC 2617 §3.2.2), new for every request like a real one."""
        nonce, cnonce, uri = f"probe{os.getpid()}n{sequence}", f"c{sequence}", f"sip:{DIALLED}@b"
        ha2 = _md5(f"INVITE:{uri}")
        response = _md5(f"{self._ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        return (
            f'Digest username="{self._user}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", cnonce="{cnonce}", qop=auth, nc=00000001'
        )

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        sequence = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            sequence += 1
            call_id = f"probe-{os.getpid()}-{time.time_ns()}-{sequence}"
            self._call_ids.append(call_id)
            body = json.dumps(
                {
                    "call_id": call_id,
                    "user": self._user,
                    "dialled": DIALLED,
                    "node": "bench-probe",
                    "credentials": self._credentials(sequence),
                }
            ).encode()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(LOCALHOST, self._brain.port, timeout=5)
                    connection.connect()
                    assert connection.sock is not None
                    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                started = time.perf_counter()
                connection.request(
                    "POST",
                    "/sip/v1/authorize",
                    body=body,
                    headers={"Content-Type": "application/json", **EDGE_HEADERS},
                )
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    self.samples_ms.append((time.perf_counter() - started) * 1000)
                else:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                if connection is not None:
                    connection.close()
                connection = None
            next_at += self._interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))
        if connection is not None:
            connection.close()


# -- the tawasol stack ----------------------------------------------------------------------------
@dataclass
class FullStack:
    """The brain plus the tawasol edge (Kamailio + KEMI routing script), as `tawasol up`."""

    brain: BrainProcess
    run_dir: Path
    children: int
    shared_memory_mb: int
    edge: Any = None

    def start(self) -> FullStack:
        from tawasol.adapters.sip import start_edge
        from tawasol.config import Settings

        settings = Settings(  # type: ignore[call-arg]
            data_dir=self.run_dir,
            api_host=LOCALHOST,
            api_port=self.brain.port,
            sip_listen=LOCALHOST,
            sip_port=free_port(),
            sip_children=self.children,
            sip_shared_memory_mb=self.shared_memory_mb,
            sip_realm=REALM,
            edge_token=EDGE_TOKEN,
            # every call comes from 127.0.0.1: flood protection would ban the load generator
            sip_pike_requests=10_000_000,
        )
        self.edge = start_edge(settings, self.run_dir)
        return self

    @property
    def port(self) -> int:
        return int(self.edge.port)

    def pids(self) -> list[int]:
        return group_pids(self.edge.pid) if self.edge is not None else []

    def spooled_events(self) -> int:
        from tawasol.adapters.sip.kemi.edge_brain import EventSpool

        return EventSpool(self.edge.spool_dir).pending_events()

    def wait_drained(self, timeout_s: float = 15) -> bool:
        """Wait until the edge has shipped every spooled event to the brain."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.spooled_events() == 0:
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.edge is not None:
            self.edge.stop()
            self.edge = None


__all__ = [
    "DIALLED",
    "LOCALHOST",
    "SIPP",
    "BareKamailio",
    "BrainProcess",
    "CallerResult",
    "CpuMeter",
    "DecisionProbe",
    "FullStack",
    "SippCarrier",
    "carrier_counts",
    "free_port",
    "kamailio_binary",
    "percentile",
    "read_sipp_stats",
    "run_caller",
    "subscriber_name",
    "write_scenarios",
]
