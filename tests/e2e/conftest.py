"""The e2e world: the real brain (`tawasol serve`, its own data dir and SQLite), the real edge
(Kamailio from the Debian packages, started by `start_edge`) and carriers played by SIPp.

One brain and one edge serve the whole session (starting them costs a few seconds); each test
points the two test carriers at its own SIPp ports through the admin API. Ports are picked free
at run time; everything listens on 127.0.0.1 only.

The session's catalog, created through the admin API:
- plan "e2e-maroc": Moroccan fixed and mobile, 100 calls at a time, no minute cap;
- plan "e2e-one-minute": the same with one minute a month (to run a subscriber out of time);
- per test, two carriers for Morocco: "flat-N" (flat-rate channels, tried first) and
  "minute-N" (per minute, second), pointed at that test's SIPp servers;
- one subscriber per story, so that no test's calls or failed logins affect another's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from support.operator import admin_document, flat_rate_carrier, morocco_plan, per_minute_carrier
from support.sipp import CallerRun, run_caller
from support.stack import BrainServer, free_port
from tawasol.adapters.sip import EdgeProcess, start_edge
from tawasol.config import Settings

REALM = "tawasol.e2e"
ADMIN_TOKEN = "e2e-admin-token"
# The edge's credential for the brain: `tawasol up` shares one through the data directory;
# here the brain and the edges have directories of their own, so both are given this one.
EDGE_TOKEN = "e2e-edge-token-0123456789"
EDGE_HEADERS = {"Authorization": f"Bearer {EDGE_TOKEN}"}
# The key of the brain's decision grants: tests that play an edge reporting a call sign it.
GRANT_KEY = "e2e-grant-key-0123456789"


def grant(call_id: str, user: str, max_duration_s: int) -> str:
    """The grant the brain gives an allowed call (what an edge puts on the call's events)."""
    from tawasol.services.verify_credentials import DecisionGrants

    grants = DecisionGrants(
        key=GRANT_KEY.encode(), clock=lambda: datetime.now(UTC), remember_for=timedelta(0)
    )
    return grants.issue(call_id=call_id, username=user, max_duration_s=max_duration_s)


ROUTE_TIMEOUT_MS = 1500
MOROCCAN_MOBILE = "00212661234567"
FRENCH_MOBILE = "0033612345678"

# sip username -> (password, plan)
SUBSCRIBERS: dict[str, tuple[str, str]] = {
    "amina": ("amina-e2e-2026", "e2e-maroc"),
    "bilal": ("bilal-e2e-2026", "e2e-maroc"),
    "chems": ("chems-e2e-2026", "e2e-maroc"),
    "driss": ("driss-e2e-2026", "e2e-one-minute"),
    "farah": ("farah-e2e-2026", "e2e-maroc"),
    "ghita": ("ghita-e2e-2026", "e2e-maroc"),
    "hamza": ("hamza-e2e-2026", "e2e-maroc"),
    # test_sip_security.py: one per attack, so that no lock-out or ban spills over
    "imane": ("imane-e2e-2026", "e2e-maroc"),
    "jamal": ("jamal-e2e-2026", "e2e-maroc"),
    "karim": ("karim-e2e-2026", "e2e-maroc"),
    "laila": ("laila-e2e-2026", "e2e-maroc"),
    "mehdi": ("mehdi-e2e-2026", "e2e-maroc"),
    "nabil": ("nabil-e2e-2026", "e2e-maroc"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [tool for tool in ("sipp",) if shutil.which(tool) is None]
    if not (shutil.which("kamailio") or os.access("/usr/sbin/kamailio", os.X_OK)):
        missing.append("kamailio")
    if not missing:
        return
    needed = f"needs {' and '.join(missing)} (scripts/install installs them; see docs/sip-edge.md)"
    if os.environ.get("CI") and any("sip" in item.keywords for item in items):
        # In CI a missing tool is a broken install, not a reason to pass without the SIP tests.
        raise pytest.UsageError(f"the SIP end-to-end tests {needed}")
    skip = pytest.mark.skip(reason=needed)
    for item in items:
        if "sip" in item.keywords:
            item.add_marker(skip)


# -- the brain ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Carriers:
    """The codes of one test's two carriers: flat-rate (tried first) and per minute."""

    flat: str
    minute: str


# What the session's brain runs with, beyond its tokens (TAWASOL_* variables).
E2E_SETTINGS = {
    "TAWASOL_GRANT_KEY": GRANT_KEY,
    "TAWASOL_SIP_REALM": REALM,
    "TAWASOL_ROUTE_TIMEOUT_MS": str(ROUTE_TIMEOUT_MS),
    "TAWASOL_CATALOG_REFRESH_MS": "200",
    # SIPp's carriers do not answer the brain's OPTIONS probes: never mark them down during
    # the suite (probing has its own tests).
    "TAWASOL_PROBE_DOWN_AFTER": "100",
}


@dataclass
class Brain(BrainServer):
    """`tawasol serve` as a subprocess (tests/support), with its own data directory, and
    carriers of its own per test."""

    admin_token: str = ADMIN_TOKEN
    edge_token: str = EDGE_TOKEN
    settings: dict[str, str] = field(default_factory=lambda: dict(E2E_SETTINGS))
    _generation: int = 0
    _active: list[tuple[str, int, Callable[[str, int], dict[str, Any]]]] = field(
        default_factory=list
    )

    def point_carriers(self, *, flat_port: int, minute_port: int) -> Carriers:
        """Two new carriers for Morocco, at these SIPp ports; the previous pair is disabled.

        Each test gets carriers of its own: what the brain learnt about the last test's
        carriers (a 503 lowers a carrier's capacity, silence marks it down, poor quality
        de-prefers it) must not change the next test's routes.
        """
        self._generation += 1
        carriers = Carriers(flat=f"flat-{self._generation}", minute=f"minute-{self._generation}")
        for code, port, build in self._active:
            self.admin("PUT", f"/carriers/{code}", json={**build(code, port), "enabled": False})
        self.admin("POST", "/carriers", json=_flat_carrier(carriers.flat, flat_port))
        self.admin("POST", "/carriers", json=_minute_carrier(carriers.minute, minute_port))
        self._active = [
            (carriers.flat, flat_port, _flat_carrier),
            (carriers.minute, minute_port, _minute_carrier),
        ]
        return carriers


def _plan(code: str, *, minutes: int | None, concurrent_calls: int = 100) -> dict[str, Any]:
    """The sample's Moroccan plan (tests/support/operator.py) as the admin API takes it."""
    return admin_document(
        morocco_plan(code, minutes_per_period=minutes, concurrent_calls=concurrent_calls)
    )


def _flat_carrier(code: str, port: int) -> dict[str, Any]:
    return admin_document(flat_rate_carrier(code, port=port, channels=500))


def _minute_carrier(code: str, port: int) -> dict[str, Any]:
    return admin_document(per_minute_carrier(code, port=port))


@pytest.fixture(scope="session")
def brain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brain]:
    brain = Brain.new(tmp_path_factory.mktemp("brain"))
    try:
        brain.admin("POST", "/plans", json=_plan("e2e-maroc", minutes=None))
        brain.admin("POST", "/plans", json=_plan("e2e-one-minute", minutes=1))
        for index, (user, (password, plan)) in enumerate(SUBSCRIBERS.items()):
            brain.subscribe(user, password, plan_code=plan, phone=f"+3361234{index:04d}")
        yield brain
    finally:
        brain.stop()


# -- the edge -----------------------------------------------------------------------------------
def edge_settings(brain: Brain, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "api_host": "127.0.0.1",
        "api_port": brain.port,
        "sip_listen": "127.0.0.1",
        "sip_port": free_port(),
        "sip_children": 4,
        "sip_realm": REALM,
        "edge_token": EDGE_TOKEN,
        "route_timeout_ms": ROUTE_TIMEOUT_MS,
        "brain_timeout_ms": 1000,
        # The load test sends 40 new requests a second from 127.0.0.1; the flood test runs
        # its own edge with a low limit.
        "sip_pike_requests": 5000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def edge(brain: Brain, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeProcess]:
    run_dir = tmp_path_factory.mktemp("edge")
    process = start_edge(edge_settings(brain, run_dir), run_dir)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def subscriber_call(
    edge: EdgeProcess,
    workdir: Path,
    user: str,
    *,
    name: str,
    scenario: str = "caller_call.xml",
    dialled: str = MOROCCAN_MOBILE,
    password: str | None = None,
    timeout_s: int = 30,
    **options: Any,
) -> CallerRun:
    """`user`, a subscriber of the session's brain (SUBSCRIBERS), places a call through `edge`
    with its own password unless `password` is given, and SIPp is waited for
    (`support.sipp.run_caller`; `options`: calls, rate, talk_ms, source_ip, call_id_prefix)."""
    return run_caller(
        scenario,
        edge_port=edge.port,
        dialled=dialled,
        user=user,
        password=SUBSCRIBERS[user][0] if password is None else password,
        workdir=workdir,
        name=name,
        timeout_s=timeout_s,
        **options,
    )
