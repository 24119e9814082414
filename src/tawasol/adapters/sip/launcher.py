"""Run Kamailio as a child process with its own run directory.

`start_edge(settings, run_dir)` renders the configuration into `run_dir/kamailio.cfg`;
`start_kamailio` (the one Kamailio command line, also used for the benchmark's bare relay)
checks it (`kamailio -c -f`), starts `kamailio -f CFG -P RUNDIR/kamailio.pid -Y RUNDIR -DD -E`
(foreground, log to stderr, captured in `run_dir/kamailio.log`) in its own process group, and
waits until it answers a SIP OPTIONS on its port. `EdgeProcess.stop()` or `stop_edge(run_dir)`
(from another process: `tawasol down`) ends it with SIGTERM, then SIGKILL for the group if it
hangs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from tawasol.adapters.sip.render import ctl_socket, render_config, spool_dir
from tawasol.domain.errors import TawasolError

if TYPE_CHECKING:
    from tawasol.config import Settings

CONFIG_NAME = "kamailio.cfg"
PID_NAME = "kamailio.pid"
LOG_NAME = "kamailio.log"
PKG_MEMORY_MB = 16
# Kamailio's memory manager for shared (-x) and private (-X) memory. The default, q_malloc,
# searches its free lists on every allocation: under load it took ~20% of Kamailio's CPU
# (perf, bench/sip_throughput.py at 500 calls/s); TLSF allocates in constant time.
MEMORY_MANAGER = "tlsf"


class EdgeError(TawasolError):
    """Kamailio is missing, refuses its configuration, or does not come up."""

    error_id = "sip_edge_error"


def kamailio_binary() -> str:
    found = shutil.which("kamailio") or next(
        (
            path
            for path in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio")
            if os.access(path, os.X_OK)
        ),
        None,
    )
    if found is None:
        raise EdgeError(
            "kamailio is not installed: apt-get install kamailio kamailio-python3-modules "
            "kamailio-extra-modules kamailio-utils-modules kamailio-json-modules"
        )
    return found


def write_config(settings: Settings, run_dir: Path) -> Path:
    """Render the configuration into `run_dir/kamailio.cfg` (and create the spool)."""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("segments", "rejected"):
        (spool_dir(run_dir) / name).mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_NAME
    text = render_config(settings, run_dir=run_dir)
    # The configuration holds the edge's token for the brain: readable by its owner only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def check_config(config: Path, *, timeout_s: float = 30) -> str:
    """`kamailio -c -f CONFIG`: return its report, raise EdgeError if the config is refused."""
    result = subprocess.run(
        [kamailio_binary(), "-c", "-f", str(config), "-E"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    report = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise EdgeError(f"kamailio refuses {config}:\n{report[-4000:]}", config=str(config))
    return report


@dataclass
class EdgeProcess:
    """A running Kamailio: its process, files and address."""

    process: subprocess.Popen[bytes]
    run_dir: Path
    config: Path
    log: Path
    listen: str
    port: int
    _log_handle: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def ctl_socket(self) -> Path:
        return ctl_socket(self.run_dir)

    @property
    def spool_dir(self) -> Path:
        return spool_dir(self.run_dir)

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float = 15) -> None:
        """Wait until Kamailio answers a SIP OPTIONS (the whole script path is then up)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise EdgeError(
                    f"kamailio exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if sip_ping(self.listen, self.port, timeout_s=0.3):
                return
            time.sleep(0.1)
        raise EdgeError(f"kamailio did not answer on {self.listen}:{self.port}:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 10) -> int | None:
        """SIGTERM, wait, then SIGKILL the process group. Returns the exit code.

        If the main process already died (kill -9), its workers may live on holding the SIP
        port and the control socket: the group is ended so that a new Kamailio can start."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(self.process.pid)
                self.process.wait(timeout=5)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)  # its own group: start_new_session
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        (self.run_dir / PID_NAME).unlink(missing_ok=True)
        return self.process.returncode


def start_edge(settings: Settings, run_dir: Path, *, ready_timeout_s: float = 15) -> EdgeProcess:
    """Render, check and start Kamailio; return once it answers SIP on its port."""
    run_dir = run_dir.resolve()
    existing = running_pid(run_dir)
    if existing is not None:
        raise EdgeError(f"an edge is already running from {run_dir} (pid {existing})")
    config = write_config(settings, run_dir)
    return start_kamailio(
        config,
        run_dir,
        listen=settings.sip_listen,
        port=settings.sip_port,
        shared_memory_mb=settings.sip_shared_memory_mb,
        # Lower priority than the brain (settings.sip_nice): every new call waits on a
        # decision, so when both want the CPU the brain goes first. Measured with
        # bench/sip_throughput.py on 2 cores: 600 clean calls/s at the same priority, 900
        # with Kamailio at nice 5.
        nice=settings.sip_nice,
        ready_timeout_s=ready_timeout_s,
    )


def start_kamailio(
    config: Path,
    run_dir: Path,
    *,
    listen: str,
    port: int,
    shared_memory_mb: int,
    nice: int = 0,
    memory_manager: str = MEMORY_MANAGER,
    ready_timeout_s: float = 15,
) -> EdgeProcess:
    """Check `config` (`kamailio -c`) and run it from `run_dir` in a process group of its
    own, its log in `run_dir/kamailio.log`; return once it answers a SIP OPTIONS on
    `listen:port`. The one Kamailio command line: the edge (`start_edge`, hence `tawasol up`
    and the e2e tests) and the benchmark's bare relay (bench/_stack.py) both start here.

    Raises EdgeError when Kamailio is missing, refuses the config, exits or stays silent."""
    run_dir = run_dir.resolve()
    check_config(config)
    log = run_dir / LOG_NAME
    log_handle = open(log, "ab")  # noqa: SIM115 - closed by EdgeProcess.stop()
    niceness = ["nice", "-n", str(nice)] if nice else []
    process = subprocess.Popen(
        [
            *niceness,
            kamailio_binary(),
            "-f",
            str(config),
            "-P",
            str(run_dir / PID_NAME),
            "-Y",
            str(run_dir),
            "-w",
            str(run_dir),
            "-m",
            str(shared_memory_mb),
            "-M",
            str(PKG_MEMORY_MB),
            "-x",
            memory_manager,
            "-X",
            memory_manager,
            "-DD",
            "-E",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log_handle,
        stderr=subprocess.STDOUT,
        cwd=run_dir,
        start_new_session=True,  # its own process group: stop() can end every child
    )
    edge = EdgeProcess(
        process=process,
        run_dir=run_dir,
        config=config,
        log=log,
        listen=listen,
        port=port,
        _log_handle=log_handle,
    )
    try:
        edge.wait_ready(ready_timeout_s)
    except BaseException:
        edge.stop()
        raise
    return edge


def running_pid(run_dir: Path) -> int | None:
    """The pid in `run_dir/kamailio.pid` if that process is alive."""
    try:
        pid = int((run_dir / PID_NAME).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def stop_edge(run_dir: Path, *, timeout_s: float = 10) -> bool:
    """Stop the Kamailio started from `run_dir` (by another process). False if none ran."""
    pid = running_pid(run_dir.resolve())
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running_pid(run_dir.resolve()) is None:
            return True
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        time.sleep(0.05)
    _kill_group(pid)
    return True


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def sip_ping(host: str, port: int, *, timeout_s: float = 0.5) -> bool:
    """Send one SIP OPTIONS over UDP; True if a 200 comes back."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout_s)
        sock.bind((host, 0))
        local_port = sock.getsockname()[1]
        branch = "z9hG4bK" + uuid.uuid4().hex
        target = f"[{host}]" if family == socket.AF_INET6 else host
        request = (
            f"OPTIONS sip:{target}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {target}:{local_port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:ping@{target}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{target}:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@tawasol-ping\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"User-Agent: tawasol-launcher\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode(), (host, port))
            data = sock.recv(65535)
        except OSError:
            return False
    return data.startswith(b"SIP/2.0 200")


__all__ = [
    "EdgeError",
    "EdgeProcess",
    "check_config",
    "running_pid",
    "sip_ping",
    "start_edge",
    "stop_edge",
    "write_config",
]
