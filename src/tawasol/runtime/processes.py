"""Run the whole platform on one machine: the brain's API and the Kamailio edge, as children.

`tawasol up` starts the brain (`python -m tawasol serve`), waits for its health check, then
starts Kamailio through the SIP adapter, and supervises both: a child that dies is restarted
(after 0.5 s, doubling per restart up to 30 s), the other one keeps running. While the brain is
down Kamailio keeps serving: new calls are refused at once with 503 and the reason
`brain_unavailable`, calls that are up go on, their events wait in the edge's spool. A child
restarted more than `supervisor_max_restarts` times within `supervisor_restart_window_s` is
given up on: both are stopped and `tawasol up` exits non-zero (under systemd, the units in
deploy/systemd restart each process on their own). Ctrl-C / SIGTERM stops both. Process ids
live in `DATA_DIR/run/` so `tawasol down` can stop a platform started from another shell.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tawasol.adapters.sip import EdgeProcess, start_edge, stop_edge
from tawasol.config import Settings
from tawasol.domain.errors import TawasolError, Unavailable

BRAIN_PID = "brain.pid"
SUPERVISOR_PID = "up.pid"
BRAIN_LOG = "brain.log"


def run_dir_for(settings: Settings) -> Path:
    return (settings.data_dir / "run").resolve()


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process the same settings as this one."""
    environment = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        environment[f"TAWASOL_{name.upper()}"] = str(text)
    environment["TAWASOL_DATA_DIR"] = str(settings.data_dir.resolve())
    return environment


def brain_health(settings: Settings, *, timeout_s: float = 1.0) -> dict[str, object] | None:
    """The brain's /health answer, or None when it does not answer in full (not listening, or
    killed in the middle of its answer: `http.client.IncompleteRead`, which would otherwise end
    the supervisor)."""
    try:
        with urllib.request.urlopen(f"{settings.api_url}/health", timeout=timeout_s) as answer:
            body: dict[str, object] = json.loads(answer.read())
            return body
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError):
        return None


def spawn_brain(
    command: Sequence[str], *, environment: Mapping[str, str], log_handle: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start a brain process (`tawasol serve`, or a wrapper of it) in a session of its own,
    its output into `log_handle`. The one way tawasol up, the tests and the benchmarks start
    a brain (tests/support/stack.py)."""
    return subprocess.Popen(
        list(command),
        env=dict(environment),
        stdin=subprocess.DEVNULL,
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_until_healthy(
    process: subprocess.Popen[bytes],
    healthy: Callable[[], bool],
    *,
    timeout_s: float,
    log: Path,
) -> None:
    """Until `healthy()` (its /health answers); raises Unavailable, with the log's tail, when
    the process exits or `timeout_s` passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"the brain exited at start-up:\n{log_tail(log)}")
        if healthy():
            return
        time.sleep(0.1)
    raise Unavailable(f"the brain did not come up in {timeout_s:g} s:\n{log_tail(log)}")


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 10) -> None:
    """SIGTERM, wait up to `timeout_s`, then SIGKILL its whole session (it leads one)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class BrainProcess:
    process: subprocess.Popen[bytes]
    log: Path
    pid_file: Path
    log_handle: IO[bytes]

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log, lines)

    def stop(self, timeout_s: float = 10) -> None:
        stop_process(self.process, timeout_s=timeout_s)
        self.log_handle.close()
        self.pid_file.unlink(missing_ok=True)


def start_brain(settings: Settings, run_dir: Path, *, ready_timeout_s: float = 20) -> BrainProcess:
    """Start `python -m tawasol serve` and wait until /health answers."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if brain_health(settings) is not None:
        raise Unavailable(f"something already answers on {settings.api_url}: is tawasol up?")
    log = run_dir / BRAIN_LOG
    log_handle = open(log, "ab")  # noqa: SIM115 - closed by BrainProcess.stop()
    process = spawn_brain(
        [sys.executable, "-m", "tawasol", "serve"],
        environment=settings_environment(settings),
        log_handle=log_handle,
    )
    pid_file = run_dir / BRAIN_PID
    pid_file.write_text(str(process.pid))
    brain = BrainProcess(process=process, log=log, pid_file=pid_file, log_handle=log_handle)
    try:
        wait_until_healthy(
            process,
            lambda: brain_health(settings, timeout_s=0.5) is not None,
            timeout_s=ready_timeout_s,
            log=log,
        )
    except Unavailable:
        brain.stop()
        raise
    return brain


@dataclass
class Platform:
    brain: BrainProcess
    edge: EdgeProcess

    def stop(self) -> None:
        self.edge.stop()
        self.brain.stop()


def start_platform(settings: Settings) -> Platform:
    run_dir = run_dir_for(settings)
    brain = start_brain(settings, run_dir)
    try:
        edge = start_edge(settings, run_dir)
    except BaseException:
        brain.stop()
        raise
    return Platform(brain=brain, edge=edge)


@dataclass
class RestartBudget:
    """How often one child may be restarted: at most `max_restarts` within `window_s`, each
    after a delay that starts at `first_delay_s` and doubles per recent restart (at most
    `max_delay_s`), so a child that dies at start does not spin."""

    max_restarts: int
    window_s: float
    first_delay_s: float
    max_delay_s: float = 30.0
    restarts: list[float] = field(default_factory=list)

    @classmethod
    def from_settings(cls, settings: Settings) -> RestartBudget:
        return cls(
            max_restarts=settings.supervisor_max_restarts,
            window_s=settings.supervisor_restart_window_s,
            first_delay_s=settings.supervisor_first_delay_ms / 1000,
        )

    def next_delay(self, now: float) -> float | None:
        """Seconds to wait before the next restart, or None when the budget is spent."""
        self.restarts = [at for at in self.restarts if now - at < self.window_s]
        if len(self.restarts) >= self.max_restarts:
            return None
        self.restarts.append(now)
        delay: float = self.first_delay_s * 2.0 ** (len(self.restarts) - 1)
        return min(self.max_delay_s, delay)


def supervise(
    platform: Platform,
    *,
    settings: Settings,
    on_exit: Callable[[str], None],
    on_event: Callable[[str], None] = lambda _message: None,
) -> int:
    """Block until SIGINT/SIGTERM or a child's restart budget is spent, restarting a child
    that dies meanwhile; then stop both. Returns 0 after a signal, 1 after giving up."""
    stopping: list[str] = []
    gave_up = False

    def _stop(signum: int, _frame: object) -> None:
        stopping.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    run_dir = platform.brain.pid_file.parent
    supervisor_pid = run_dir / SUPERVISOR_PID
    supervisor_pid.write_text(str(os.getpid()))
    budgets = {
        "brain": RestartBudget.from_settings(settings),
        "kamailio": RestartBudget.from_settings(settings),
    }

    def wait(seconds: float) -> bool:
        """Sleep, unless asked to stop; True if still running."""
        deadline = time.monotonic() + seconds
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return not stopping

    def restart(name: str, why: str, start: Callable[[], None]) -> None:
        nonlocal gave_up
        delay = budgets[name].next_delay(time.monotonic())
        if delay is None:
            gave_up = True
            stopping.append(
                f"{name} exited {settings.supervisor_max_restarts + 1} times within "
                f"{settings.supervisor_restart_window_s} s, giving up:\n{why}"
            )
            return
        on_event(f"{name} exited, restarting in {delay:.1f} s:\n{why}")
        if not wait(delay):
            return
        try:
            start()
        except TawasolError as error:
            on_event(f"{name} did not start again: {error.message}")
            return
        on_event(f"{name} restarted")

    def start_brain_again() -> None:
        platform.brain = start_brain(settings, run_dir)

    def start_edge_again() -> None:
        platform.edge = start_edge(settings, run_dir)

    try:
        while not stopping:
            if not platform.brain.running():
                # Kamailio keeps serving meanwhile: new calls get 503 brain_unavailable.
                code = platform.brain.process.returncode
                why = platform.brain.log_tail(10)
                platform.brain.stop()
                restart("brain", f"(exit {code}) {why}", start_brain_again)
            elif not platform.edge.running():
                code = platform.edge.process.returncode
                why = platform.edge.log_tail(10)
                platform.edge.stop()  # also ends Kamailio processes the main one left
                restart("kamailio", f"(exit {code}) {why}", start_edge_again)
            else:
                time.sleep(0.2)
    finally:
        platform.stop()
        supervisor_pid.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    on_exit(stopping[0])
    return 1 if gave_up else 0


def stop_platform(settings: Settings, *, timeout_s: float = 10) -> list[str]:
    """Stop a platform started from another shell; returns what was stopped."""
    run_dir = run_dir_for(settings)
    stopped = []
    supervisor = _read_pid(run_dir / SUPERVISOR_PID)
    if supervisor is not None and _terminate(supervisor, timeout_s=timeout_s * 2):
        # `tawasol up` stops its children itself, edge first.
        stopped.append("tawasol up (brain and kamailio)")
        return stopped
    if stop_edge(run_dir, timeout_s=timeout_s):
        stopped.append("kamailio")
    pid_file = run_dir / BRAIN_PID
    brain = _read_pid(pid_file)
    if brain is not None and _terminate(brain, timeout_s=timeout_s):
        stopped.append("brain")
    pid_file.unlink(missing_ok=True)
    return stopped


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _terminate(pid: int, *, timeout_s: float) -> bool:
    """SIGTERM, wait for the process to go, SIGKILL if it will not. False if it was not there."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True
