"""`tawasol up` supervises its children (issue 9, fault 11): kill -9 of the brain no longer stops
Kamailio (new calls get 503 `brain_unavailable` meanwhile) and the brain comes back; kill -9 of
Kamailio brings a new Kamailio; a call the brain still counts but the edge no longer has (its
end event was lost with the killed Kamailio) is dropped after the brain compares its calls with
Kamailio's dialog list (`kamcmd dlg.list`), so the subscriber is not refused with
`concurrent_limit` for hours.

A platform of its own (data directory, ports) started with the real `tawasol up` command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import (
    EDGE_HEADERS,
    MOROCCAN_MOBILE,
    Brain,
    _plan,
    add_subscriber,
)
from sipp_driver import CallerRun, SippCarrier, caller_command, read_trace, run_caller

from support.stack import free_port, tawasol_command
from tawasol.adapters.sip import sip_ping
from tawasol.adapters.sip.dialogs import dialog_call_ids

pytestmark = pytest.mark.sip

PASSWORDS = {"sara": "sara-e2e-2026", "tarik": "tarik-e2e-2026"}


class UpPlatform(Brain):
    """`tawasol up` (brain + Kamailio under its supervisor) as `process`, driven like the
    session's brain (admin API, carriers, call records)."""

    sip_port: int = 0
    extra_env: dict[str, str] | None = None

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            TAWASOL_SIP_LISTEN="127.0.0.1",
            TAWASOL_SIP_PORT=str(self.sip_port),
            TAWASOL_SIP_CHILDREN="4",
            TAWASOL_SIP_PIKE_REQUESTS="5000",
            # long enough to place a call while the brain is down, short enough for a test
            TAWASOL_SUPERVISOR_FIRST_DELAY_MS="3000",
            TAWASOL_EDGE_RECONCILE_INTERVAL_S="1",
        )
        env.update(self.extra_env or {})
        return env

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def pid(self, name: str) -> int:
        return int((self.run_dir / name).read_text().strip())

    def command(self) -> list[str]:
        return [tawasol_command(), "--data-dir", str(self.data_dir), "up"]

    def start(self) -> None:
        super().start()  # the brain answers /health
        self.wait_serving(timeout_s=40)

    def wait_serving(self, *, timeout_s: float) -> None:
        """Until the brain answers /health and Kamailio answers OPTIONS."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.running(), self.log.read_text()[-3000:]
            if self.healthy() and sip_ping("127.0.0.1", self.sip_port, timeout_s=0.3):
                return
            time.sleep(0.2)
        raise AssertionError(f"the platform is not serving: {self.log.read_text()[-3000:]}")

    def calls_in_progress(self) -> int:
        stats: dict[str, int] = httpx.get(
            f"{self.url}/sip/v1/stats", headers=EDGE_HEADERS, timeout=5
        ).json()
        return stats["calls_in_progress"]


def _up(tmp_path: Path, **extra_env: str) -> UpPlatform:
    data_dir = tmp_path / "up"
    data_dir.mkdir()
    platform = UpPlatform(data_dir=data_dir, port=free_port(), log=tmp_path / "up.log")
    platform.sip_port = free_port()
    platform.extra_env = extra_env
    platform.init()
    platform.start()
    return platform


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[UpPlatform]:
    platform = _up(tmp_path)
    try:
        one_at_a_time = _plan("e2e-one-call", minutes=None)
        one_at_a_time["fair_use"]["concurrent_calls"] = 1
        platform.admin("POST", "/plans", json=one_at_a_time)
        for index, (user, password) in enumerate(PASSWORDS.items()):
            add_subscriber(
                platform.admin, user, password, plan="e2e-one-call", phone=f"+3361299{index:04d}"
            )
        yield platform
    finally:
        platform.stop()
        assert platform.process is not None
        assert platform.process.returncode == 0, platform.log.read_text()[-3000:]
        assert not (platform.run_dir / "kamailio.pid").exists()


def _long_call(platform: UpPlatform, workdir: Path, user: str) -> tuple[subprocess.Popen, Path]:
    trace = workdir / f"caller-long-{user}.msg"
    command = caller_command(
        "caller_call.xml",
        edge_port=platform.sip_port,
        dialled=MOROCCAN_MOBILE,
        user=user,
        password=PASSWORDS[user],
        trace=trace,
        talk_ms=60_000,
        timeout_s=90,
    )
    process = subprocess.Popen(
        command,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, trace


def _call(platform: UpPlatform, workdir: Path, scenario: str, user: str) -> CallerRun:
    return run_caller(
        scenario,
        edge_port=platform.sip_port,
        dialled=MOROCCAN_MOBILE,
        user=user,
        password=PASSWORDS[user],
        workdir=workdir,
        name=f"{user}-{time.monotonic_ns()}",
        timeout_s=20,
    )


def test_given_tawasol_up_when_brain_then_kamailio_killed_then_both_come_back_and_lost_calls_stop_counting(  # noqa: E501
    platform: UpPlatform, workdir: Path
) -> None:
    carrier = SippCarrier("carrier_answer.xml", free_port(), workdir, timeout_s=120).start()
    platform.point_carriers(flat_port=carrier.port, minute_port=carrier.port)
    long_call, trace = _long_call(platform, workdir, "sara")
    try:
        # sara's call is up: the brain counts it, Kamailio's dialog list has it
        deadline = time.monotonic() + 15
        call_id = ""
        while time.monotonic() < deadline and not call_id:
            answered = [m for m in read_trace(trace) if m.status == 200]
            call_id = answered[0].call_id if answered else ""
            time.sleep(0.05)
        assert call_id, "sara's call was not answered"
        platform.wait_call(call_id, until=lambda record: record["status"] == "answered")
        assert call_id in dialog_call_ids(platform.run_dir / "kamailio_ctl")

        # kill -9 the brain: Kamailio goes on and refuses new calls with 503 brain_unavailable
        edge_pid = platform.pid("kamailio.pid")
        os.kill(platform.pid("brain.pid"), signal.SIGKILL)
        refused = _call(platform, workdir, "caller_refused.xml", "tarik")
        assert refused.returncode == 0, refused.output
        assert refused.received(503)[0].header("Warning") == '399 tawasol "brain_unavailable"'
        assert _alive(edge_pid)

        # the supervisor brings the brain back; Kamailio is the same process
        platform.wait_serving(timeout_s=40)
        assert _alive(edge_pid)
        assert platform.calls_in_progress() == 1  # sara's call is still up, and counted

        # kill -9 Kamailio: its dialogs are gone, sara's call will never send its end event
        os.kill(edge_pid, signal.SIGKILL)
        long_call.kill()
        long_call.wait(timeout=10)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            restarted = (platform.run_dir / "kamailio.pid").exists() and (
                platform.pid("kamailio.pid") != edge_pid
            )
            if restarted and sip_ping("127.0.0.1", platform.sip_port, timeout_s=0.3):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"kamailio did not come back: {platform.log.read_text()[-3000:]}")

        # the brain compares its calls with the new Kamailio's (empty) dialog list
        deadline = time.monotonic() + 15
        while platform.calls_in_progress() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert platform.calls_in_progress() == 0

        # sara (one call at a time) can call again: not refused with concurrent_limit
        again = _call(platform, workdir, "caller_call.xml", "sara")
        assert again.returncode == 0, again.output
        log = platform.log.read_text()
        assert "brain restarted" in log and "kamailio restarted" in log
    finally:
        if long_call.poll() is None:
            long_call.kill()
            long_call.wait()
        carrier.stop()


def test_given_a_brain_that_keeps_dying_when_its_restarts_are_spent_then_tawasol_up_stops_both_and_fails(  # noqa: E501
    tmp_path: Path,
) -> None:
    platform = _up(
        tmp_path, TAWASOL_SUPERVISOR_MAX_RESTARTS="1", TAWASOL_SUPERVISOR_FIRST_DELAY_MS="0"
    )
    try:
        edge_pid = platform.pid("kamailio.pid")
        os.kill(platform.pid("brain.pid"), signal.SIGKILL)  # restarted once ...
        platform.wait_serving(timeout_s=40)
        os.kill(platform.pid("brain.pid"), signal.SIGKILL)  # ... and not twice
        assert platform.process is not None
        assert platform.process.wait(timeout=30) == 1
    finally:
        platform.stop()
    log = platform.log.read_text()
    assert "brain exited 2 times within 300 s, giving up" in log
    assert not _alive(edge_pid)
