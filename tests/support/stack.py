"""One way to start the brain for the e2e tests and the benchmarks, the way `tawasol up` does.

`BrainServer` runs a brain as a child process on its own data directory and port, through
`tawasol.runtime.processes` (`spawn_brain`, `wait_until_healthy`, `stop_process`: the
functions `tawasol up` uses), and speaks to it as an operator (admin API) and as an edge
(`POST /sip/v1/events`). The Kamailio edge is started by `tawasol.adapters.sip.start_edge`
everywhere (tests, benchmarks, `tawasol up`). Subclasses change the environment or the
command (a brain that probes fast, `tawasol up` itself, the benchmark's timed server).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

import httpx

from tawasol.runtime.processes import spawn_brain, stop_process, wait_until_healthy

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A port free for both UDP and TCP on `host` right now (Kamailio listens on both)."""
    for _attempt in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found")


def wait_until(condition: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    """Whether `condition()` became true within `timeout_s` (asked every `every_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return bool(condition())


def wait_for(
    predicate: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.05
) -> Any:
    """Poll `predicate` every `every_s` until it returns something true, and return that;
    raise AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every_s)
    raise AssertionError(f"waited {timeout_s} s for {what}")


def tawasol_command() -> str:
    """The `tawasol` command of this environment (next to its Python, else on PATH)."""
    beside_python = Path(sys.executable).parent / "tawasol"
    found = str(beside_python) if beside_python.exists() else shutil.which("tawasol")
    if found is None:
        raise RuntimeError("the tawasol command is not installed in this environment")
    return found


@dataclass
class BrainServer:
    """`tawasol serve` as a child process, with its own data directory, port and log."""

    data_dir: Path
    port: int
    log: Path
    admin_token: str = "test-admin-token"
    edge_token: str = "test-edge-token-0123456789"
    settings: dict[str, str] = field(default_factory=dict)  # TAWASOL_* variables
    ready_timeout_s: float = 30
    process: subprocess.Popen[bytes] | None = None
    _log_handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def edge_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.edge_token}"}

    def env(self) -> dict[str, str]:
        """This process's environment without its TAWASOL_* variables, plus the brain's."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TAWASOL_")}
        env.update(
            TAWASOL_DATA_DIR=str(self.data_dir),
            TAWASOL_API_HOST=LOCALHOST,
            TAWASOL_API_PORT=str(self.port),
            TAWASOL_ADMIN_TOKEN=self.admin_token,
            TAWASOL_EDGE_TOKEN=self.edge_token,
        )
        env.update(self.settings)
        return env

    def command(self) -> list[str]:
        return [tawasol_command(), "--data-dir", str(self.data_dir), "serve"]

    def init(self) -> None:
        """`tawasol init`: the database migrated, nothing in it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [tawasol_command(), "--data-dir", str(self.data_dir), "init"],
            env=self.env(),
            check=True,
            capture_output=True,
            timeout=120,
        )

    @classmethod
    def new(cls, data_dir: Path, **fields: Any) -> Self:
        """A brain on a new data directory (`tawasol init` done), its port picked free and its
        log in `data_dir/brain.log`, started and answering /health; `stop()` it after."""
        brain = cls(data_dir=data_dir, port=free_port(), log=data_dir / "brain.log", **fields)
        brain.init()
        brain.start()
        return brain

    def start(self) -> None:
        self._log_handle = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = spawn_brain(
            self.command(), environment=self.env(), log_handle=self._log_handle
        )
        try:
            wait_until_healthy(
                self.process, self.healthy, timeout_s=self.ready_timeout_s, log=self.log
            )
        except Exception:
            self.stop()
            raise

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    # -- as an operator (admin API) and as an edge ---------------------------------------------
    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.url}/admin/v1{path}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=30,
            **kwargs,
        )
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def subscribe(
        self,
        user: str,
        password: str,
        *,
        plan_code: str,
        phone: str,
        name: str | None = None,
        time_zone: str = "Europe/Paris",
    ) -> dict[str, Any]:
        """A new subscriber (SIP `user`/`password`) with a subscription to `plan_code`, through
        the admin API, as an operator signs one up. Returns the subscriber as the API has it."""
        subscriber: dict[str, Any] = self.admin(
            "POST",
            "/subscribers",
            json={
                "name": name or user.title(),
                "phone": phone,
                "time_zone": time_zone,
                "sip_username": user,
                "password": password,
            },
        )
        self.admin(
            "POST",
            f"/subscribers/{subscriber['id']}/subscriptions",
            json={"plan_code": plan_code},
        )
        return subscriber

    def post_events(self, events: list[dict[str, Any]]) -> None:
        """What an edge would send (`POST /sip/v1/events`)."""
        httpx.post(
            f"{self.url}/sip/v1/events",
            json={"events": events},
            headers=self.edge_headers,
            timeout=5,
        ).raise_for_status()

    def call(self, call_id: str) -> dict[str, Any] | None:
        response = httpx.get(
            f"{self.url}/admin/v1/calls/{call_id}",
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=5,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def wait_call(
        self,
        call_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda record: (
            record["status"] in ("completed", "failed")
        ),
        timeout_s: float = 10,
    ) -> dict[str, Any]:
        """The CDR once `until` holds (events reach the brain within ~100 ms when it is up)."""
        deadline = time.monotonic() + timeout_s
        record = None
        while time.monotonic() < deadline:
            record = self.call(call_id)
            if record is not None and until(record):
                return record
            time.sleep(0.1)
        raise AssertionError(f"call {call_id} not as expected after {timeout_s}s: {record}")
