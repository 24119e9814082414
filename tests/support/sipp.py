"""SIPp (Debian `sip-tester`) for the e2e tests and the benchmarks: the one way both start it.

`sipp_command` writes every SIPp command line (the options every run shares: bound by `-m`
calls and `-timeout`, on 127.0.0.1, with a message trace and/or a statistics file);
`start_sipp`, `stop_sipp` and `wait_sipp` run it. On them sit the e2e parties (a carrier's
gateway `SippCarrier`/`SippGateway`, a caller `run_caller`, many callers `run_callers`) and
the benchmark's (bench/_sipp.py: generated scenarios, per-step statistics, the caller's CPU).

A message trace (`-trace_msg -message_file`) is read back by `read_trace` into `SipMessage`s
with their timestamps: the tests assert on what the caller and each carrier actually sent and
received; a statistics file (`-trace_stat -stf`) by `read_sipp_stats`. SIPp is driven with
subprocess (pysipp is broken, see the field notes).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from support.stack import LOCALHOST, free_port
from tawasol.adapters.sip.render import KEMI_SCRIPT

SCENARIOS = KEMI_SCRIPT.parent.parent / "scenarios"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
_SEPARATOR = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$")


@dataclass
class SipMessage:
    """One SIP message as SIPp logged it."""

    at: datetime
    direction: str  # "sent" or "received"
    first_line: str
    headers: list[tuple[str, str]]
    body: str = ""

    @property
    def is_request(self) -> bool:
        return not self.first_line.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.first_line.split(" ", 1)[0] if self.is_request else ""

    @property
    def status(self) -> int | None:
        if self.is_request:
            return None
        return int(self.first_line.split(" ")[1])

    @property
    def reason_phrase(self) -> str:
        return "" if self.is_request else self.first_line.split(" ", 2)[2]

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def all_headers(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def call_id(self) -> str:
        return self.header("Call-ID") or self.header("i") or ""

    @property
    def cseq_method(self) -> str:
        return (self.header("CSeq") or " ").split()[-1]

    @property
    def branch(self) -> str:
        via = self.header("Via") or ""
        match = re.search(r"branch=([^;,\s]+)", via)
        return match.group(1) if match else ""


def read_trace(path: Path) -> list[SipMessage]:
    """Parse a SIPp `-trace_msg` file (timestamps are local time, made aware here)."""
    if not path.exists():
        return []
    messages: list[SipMessage] = []
    lines = path.read_text(errors="replace").splitlines()
    index = 0
    while index < len(lines):
        match = _SEPARATOR.match(lines[index])
        if not match:
            index += 1
            continue
        at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").astimezone()
        direction_line = lines[index + 1] if index + 1 < len(lines) else ""
        direction = "sent" if " sent " in direction_line else "received"
        index += 2
        block: list[str] = []
        while index < len(lines) and not _SEPARATOR.match(lines[index]):
            block.append(lines[index])
            index += 1
        while block and not block[0].strip():
            block.pop(0)
        if not block:
            continue
        first_line = block[0].strip()
        headers: list[tuple[str, str]] = []
        body_lines: list[str] = []
        in_body = False
        for line in block[1:]:
            if in_body:
                body_lines.append(line)
            elif not line.strip():
                in_body = True
            elif ":" in line:
                name, value = line.split(":", 1)
                headers.append((name.strip(), value.strip()))
        messages.append(
            SipMessage(
                at=at,
                direction=direction,
                first_line=first_line,
                headers=headers,
                body="\n".join(body_lines).strip(),
            )
        )
    return messages


def new_invites(messages: list[SipMessage]) -> list[SipMessage]:
    """INVITEs received, one per transaction (retransmissions left out)."""
    seen: set[tuple[str, str]] = set()
    invites = []
    for message in messages:
        if message.direction == "received" and message.method == "INVITE":
            key = (message.call_id, message.branch)
            if key not in seen:
                seen.add(key)
                invites.append(message)
    return invites


# -- running SIPp: one command line, one start, one stop, one bounded wait ---------------------
def sipp_command(
    scenario: Path,
    *,
    calls: int,
    timeout_s: float,
    target: str | None = None,
    port: int | None = None,
    source_ip: str = LOCALHOST,
    message_trace: Path | None = None,
    stats_file: Path | None = None,
    keys: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The SIPp command line of one run of `scenario` (an XML file).

    A caller when `target` ("host:port") is given, else a server (a carrier's gateway, `-nd`:
    no default behaviour for unexpected messages). Bounded by `calls` (`-m`) and `timeout_s`
    (`-timeout`; SIPp 3.6 does not always honour it: `wait_sipp` has its own deadline).
    `message_trace` gets every message (`-trace_msg`) and its errors beside it (`.err`);
    `stats_file` the statistics once a second (`-trace_stat -fd 1`).
    """
    command = [SIPP]
    if target is not None:
        command.append(target)
    command += ["-sf", str(scenario), "-i", source_ip]
    command += ["-p", str(port if port is not None else free_port(source_ip))]
    if target is None:
        command.append("-nd")
    command += ["-nostdin", "-m", str(calls), "-timeout", f"{int(timeout_s)}s"]
    command += ["-max_socket", "1000"]
    if message_trace is not None:
        command += ["-trace_msg", "-message_file", str(message_trace)]
        command += ["-trace_err", "-error_file", str(message_trace.with_suffix(".err"))]
    if stats_file is not None:
        command += ["-trace_stat", "-stf", str(stats_file), "-fd", "1"]
    for key, value in (keys or {}).items():
        command += ["-key", key, value]
    return command + list(extra)


def start_sipp(
    command: Sequence[str], *, workdir: Path, output: IO[bytes] | int | None = None
) -> subprocess.Popen[bytes]:
    """Start SIPp in the background in `workdir`; its screen output to `output` (discarded
    by default, or a pipe with `subprocess.PIPE`)."""
    return subprocess.Popen(
        list(command),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if output is None else output,
        stderr=subprocess.DEVNULL if output is None else subprocess.STDOUT,
    )


def stop_sipp(
    process: subprocess.Popen[bytes] | None, *, how: signal.Signals = signal.SIGTERM
) -> None:
    """End a SIPp run with `how` (SIGINT makes it write its final statistics; SIGKILL is a
    gateway that dies without a goodbye), SIGKILL after 5 s if it hangs."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass(frozen=True)
class SippExit:
    """How a SIPp run ended: its exit code (0: every call succeeded, 1: some failed, -9:
    killed at the deadline), its CPU seconds (user + system) and whether it was killed."""

    returncode: int
    cpu_s: float
    killed: bool


def wait_sipp(process: subprocess.Popen[bytes], *, deadline: float) -> SippExit:
    """Wait for a SIPp run until `deadline` (time.monotonic()), then kill it. A thread blocks in
    wait4 (which also gives the run's CPU), so the end is seen at once and nothing polls."""
    ended: list[tuple[int, float]] = []

    def reap() -> None:
        _pid, status, usage = os.wait4(process.pid, 0)
        ended.append((os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime))

    reaper = threading.Thread(target=reap, name=f"sipp-{process.pid}", daemon=True)
    reaper.start()
    reaper.join(timeout=max(0.0, deadline - time.monotonic()))
    killed = reaper.is_alive()
    if killed:
        process.kill()
        reaper.join()
    returncode, cpu_s = ended[0]
    process.returncode = -9 if killed else returncode
    return SippExit(process.returncode, cpu_s, killed)


def wait_udp_bound(port: int, timeout_s: float = 5, host: str = LOCALHOST) -> None:
    """Wait until something has bound UDP `port` on `host` (SIPp is listening)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return
        time.sleep(0.02)
    raise RuntimeError(f"SIPp did not bind UDP port {port}")


def read_sipp_stats(path: Path) -> dict[str, str]:
    """The last line of a SIPp `-trace_stat` file, by column name ({} if none yet)."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    names = lines[0].split(";")
    return dict(zip(names, lines[-1].split(";"), strict=False))


def stat_count(stats: Mapping[str, str], name: str) -> int:
    """One counter of `read_sipp_stats` ("SuccessfulCall(C)", ...), 0 when absent."""
    try:
        return int(stats.get(name, "0") or 0)
    except ValueError:
        return 0


# -- the e2e parties -----------------------------------------------------------------------------
@dataclass
class SippGateway:
    """A carrier's gateway played by SIPp (UAS) in the background, on its own port, that can be
    killed and started again on the same port (each run keeps its own message trace).

    `carrier_channels.xml` takes `channels` calls at once and refuses the others with 503 after
    `refuse_ms`; `hold_ms` is the talk time before the callee hangs up (-d).
    """

    scenario: str
    workdir: Path
    name: str
    hold_ms: int = 1000
    channels: int = 100_000  # carrier_channels.xml: calls taken at once ...
    refuse_ms: int = 0  # ... and how long it takes to refuse one more
    port: int = field(default_factory=free_port)
    timeout_s: int = 90
    keys: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def trace(self) -> Path:
        return self.workdir / f"gateway-{self.name}-{self.runs}.msg"

    def _scenario_file(self) -> Path:
        return SCENARIOS / self.scenario

    def start(self) -> SippGateway:
        self.runs += 1
        extra = ["-d", str(self.hold_ms)]
        if self.scenario == "carrier_channels.xml":
            extra += ["-set", "channels", str(self.channels)]
            extra += ["-set", "refuse_ms", str(self.refuse_ms)]
        command = sipp_command(
            self._scenario_file(),
            port=self.port,
            calls=100_000,  # the brain's OPTIONS probes are calls too: -timeout bounds the run
            timeout_s=self.timeout_s,
            message_trace=self.trace,
            keys=self.keys,
            extra=extra,
        )
        self.process = start_sipp(command, workdir=self.workdir)
        wait_udp_bound(self.port)
        return self

    def kill(self) -> None:
        """The gateway stops answering anything at once (SIGKILL, no goodbye)."""
        stop_sipp(self.process, how=signal.SIGKILL)

    def stop(self) -> None:
        stop_sipp(self.process)

    def wait_for(self, predicate: Callable[[SipMessage], bool], timeout_s: float = 3) -> bool:
        """Wait until the gateway's trace holds a message matching `predicate`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(predicate(message) for message in self.messages()):
                return True
            time.sleep(0.05)
        return False

    def messages(self, run: int | None = None) -> list[SipMessage]:
        runs = [run] if run is not None else range(1, self.runs + 1)
        messages: list[SipMessage] = []
        for number in runs:
            messages += read_trace(self.workdir / f"gateway-{self.name}-{number}.msg")
        return messages

    def invites(self, run: int | None = None) -> list[SipMessage]:
        return new_invites(self.messages(run))

    def answered_bye(self) -> bool:
        """The gateway received a BYE and answered it 200."""
        messages = self.messages()
        return any(m.direction == "received" and m.method == "BYE" for m in messages) and any(
            m.direction == "sent" and m.status == 200 and m.cseq_method == "BYE" for m in messages
        )

    def sent_finals(self) -> dict[int, int]:
        """Final answers this gateway gave to INVITEs, by status code (retransmissions once)."""
        seen: set[tuple[str, int]] = set()
        for message in self.messages():
            final = message.status is not None and message.status >= 200
            if message.direction == "sent" and message.cseq_method == "INVITE" and final:
                seen.add((message.call_id, message.status or 0))
        counts: dict[int, int] = {}
        for _call_id, status in seen:
            counts[status] = counts.get(status, 0) + 1
        return counts


class SippCarrier(SippGateway):
    """A carrier's gateway for one test, on the port given: `SippCarrier(scenario, port,
    workdir, delay_ms=..., reply=(code, phrase, Reason))` (carrier_reject.xml answers with
    `reply` instead of its 503)."""

    def __init__(
        self,
        scenario: str,
        port: int,
        workdir: Path,
        calls: int = 10_000,  # kept for callers; the probes count as calls: -timeout bounds it
        delay_ms: int = 0,
        keys: dict[str, str] | None = None,
        timeout_s: int = 60,
        reply: tuple[int, str, str] | None = None,
    ) -> None:
        super().__init__(
            scenario,
            workdir,
            name=f"{port}-{Path(scenario).stem}",
            hold_ms=delay_ms,
            port=port,
            timeout_s=timeout_s,
            keys=dict(keys or {}),
        )
        self.reply = reply

    @property
    def trace(self) -> Path:
        return self.workdir / f"carrier-{self.name}.msg"

    def messages(self, run: int | None = None) -> list[SipMessage]:
        return read_trace(self.trace)

    def _scenario_file(self) -> Path:
        source = SCENARIOS / self.scenario
        if self.reply is None:
            return source
        code, phrase, reason = self.reply
        text = source.read_text()
        text = text.replace("SIP/2.0 503 Service Unavailable", f"SIP/2.0 {code} {phrase}")
        text = text.replace("Reason: Q.850;cause=34", f"Reason: {reason}")
        variant = self.workdir / f"{source.stem}-{code}-{self.port}.xml"
        variant.write_text(text)
        return variant


@dataclass
class CallerRun:
    returncode: int
    elapsed_s: float
    trace: Path
    output: str

    def messages(self) -> list[SipMessage]:
        return read_trace(self.trace)

    def received(self, status: int) -> list[SipMessage]:
        return [m for m in self.messages() if m.direction == "received" and m.status == status]

    def final_statuses(self) -> list[int]:
        """Final answers to the authenticated INVITEs (the 407 challenges left out),
        retransmissions included."""
        return [
            m.status
            for m in self.messages()
            if m.direction == "received"
            and m.status
            and m.status >= 200
            and m.status != 407
            and m.cseq_method == "INVITE"
        ]


def caller_command(
    scenario: str,
    *,
    edge_port: int,
    dialled: str,
    user: str,
    password: str,
    trace: Path,
    calls: int = 1,
    talk_ms: int = 0,
    timeout_s: int = 30,
    source_ip: str = LOCALHOST,
) -> list[str]:
    """The SIPp command line of a caller placing `calls` calls through the edge as `user`."""
    return sipp_command(
        SCENARIOS / scenario,
        target=f"{LOCALHOST}:{edge_port}",
        calls=calls,
        timeout_s=timeout_s,
        source_ip=source_ip,
        message_trace=trace,
        keys={"caller": user},
        extra=[
            "-s",
            dialled,
            "-au",
            user,
            "-ap",
            password,
            "-l",
            str(max(1, calls)),
            "-d",
            str(talk_ms),
            "-timeout_error",
        ],
    )


def start_caller(
    scenario: str,
    *,
    edge_port: int,
    dialled: str,
    user: str,
    password: str,
    workdir: Path,
    name: str,
    talk_ms: int,
    timeout_s: int = 30,
) -> tuple[subprocess.Popen[bytes], Path]:
    """One call placed in the background (a long call that stays up while a test acts):
    the SIPp process and its message trace (see `answered_call_id`)."""
    trace = workdir / f"caller-{name}.msg"
    command = caller_command(
        scenario,
        edge_port=edge_port,
        dialled=dialled,
        user=user,
        password=password,
        trace=trace,
        talk_ms=talk_ms,
        timeout_s=timeout_s,
    )
    return start_sipp(command, workdir=workdir), trace


def answered_call_id(trace: Path, *, timeout_s: float = 10) -> str:
    """The Call-ID of the first call answered (a 200 received) in a caller's trace, once it
    is there; "" if none within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answered = [m for m in read_trace(trace) if m.status == 200]
        if answered:
            return answered[0].call_id
        time.sleep(0.05)
    return ""


def run_caller(
    scenario: str,
    *,
    edge_port: int,
    dialled: str,
    user: str,
    password: str,
    workdir: Path,
    name: str,
    calls: int = 1,
    rate: float | None = None,
    talk_ms: int = 0,
    timeout_s: int = 30,
    source_ip: str = LOCALHOST,
    call_id_prefix: str | None = None,
    extra: tuple[str, ...] = (),
) -> CallerRun:
    """Place `calls` calls through the edge as `user` and wait for SIPp to finish."""
    trace = workdir / f"caller-{name}.msg"
    command = caller_command(
        scenario,
        edge_port=edge_port,
        dialled=dialled,
        user=user,
        password=password,
        trace=trace,
        calls=calls,
        talk_ms=talk_ms,
        timeout_s=timeout_s,
        source_ip=source_ip,
    )
    if rate is not None:
        command += ["-r", str(rate), "-rp", "1000"]
    if call_id_prefix:
        command += ["-cid_str", f"{call_id_prefix}-%u-%p@%s"]
    command += list(extra)
    started = time.monotonic()
    with (workdir / f"caller-{name}.out").open("w+b") as output:
        process = start_sipp(command, workdir=workdir, output=output)
        ended = wait_sipp(process, deadline=started + timeout_s + 15)
        output.seek(0)
        text = output.read().decode(errors="replace")[-3000:]
    return CallerRun(
        returncode=ended.returncode,
        elapsed_s=time.monotonic() - started,
        trace=trace,
        output=text,
    )


# -- many subscribers at once: SIPp injection files (-inf) --------------------------------------
def write_injection_file(path: Path, calls: list[tuple[str, str, str]]) -> Path:
    """A SIPp injection file for `carrier_caller.xml`: one line per call, read in order
    (SEQUENTIAL), each `USER;[authentication username=USER password=PW];DIALLED`.

    SIPp 3.6 does not expand `[field0]` inside `[authentication username=...]`, but a field that
    holds the whole `[authentication ...]` keyword is expanded as a keyword (SIPp's
    docs/scenarios/sipauth.rst): each call answers its challenge with its own credentials.
    """
    lines = ["SEQUENTIAL"]
    for user, password, dialled in calls:
        for value in (user, password, dialled):
            if not value or any(character in value for character in ";[] \r\n"):
                raise ValueError(f"not usable in an injection file: {value!r}")
        lines.append(f"{user};[authentication username={user} password={password}];{dialled}")
    path.write_text("\n".join(lines) + "\n")
    return path


def callers_command(
    *,
    edge_port: int,
    injection: Path,
    calls: int,
    trace: Path,
    rate: float,
    timeout_s: int,
    call_id_prefix: str,
    scenario: str = "carrier_caller.xml",
    source_ip: str = LOCALHOST,
) -> list[str]:
    """The SIPp command placing `calls` calls, one per injection line, `rate` new calls a second,
    all allowed to be up at once (-l), bounded by -m and -timeout."""
    return sipp_command(
        SCENARIOS / scenario,
        target=f"{LOCALHOST}:{edge_port}",
        calls=calls,
        timeout_s=timeout_s,
        source_ip=source_ip,
        message_trace=trace,
        extra=[
            "-inf",
            str(injection),
            "-l",
            str(max(1, calls)),
            "-r",
            str(rate),
            "-rp",
            "1000",
            "-timeout_error",
            "-cid_str",
            f"{call_id_prefix}-%u-%p@%s",
        ],
    )


def start_callers(
    *,
    edge_port: int,
    calls: list[tuple[str, str, str]],
    workdir: Path,
    name: str,
    rate: float = 100,
    timeout_s: int = 30,
) -> tuple[subprocess.Popen[bytes], Path, float]:
    """Start SIPp placing one call per (user, password, dialled), in the background.

    Returns the process, its message trace and its start time (monotonic); hand them to
    `wait_callers`. Call ids start with `name`.
    """
    trace = workdir / f"callers-{name}.msg"
    command = callers_command(
        edge_port=edge_port,
        injection=write_injection_file(workdir / f"callers-{name}.csv", calls),
        calls=len(calls),
        trace=trace,
        rate=rate,
        timeout_s=timeout_s,
        call_id_prefix=name,
    )
    with (workdir / f"callers-{name}.out").open("wb") as output:
        process = start_sipp(command, workdir=workdir, output=output)  # the child has its copy
    return process, trace, time.monotonic()


def wait_callers(
    process: subprocess.Popen[bytes], trace: Path, started: float, *, timeout_s: float
) -> CallerRun:
    """Wait for callers started by `start_callers`; SIPp 3.6 sometimes ignores its own -timeout,
    so past `timeout_s` (from the start) it is killed and the run reported as failed."""
    ended = wait_sipp(process, deadline=started + timeout_s)
    output = trace.with_name(trace.name.replace(".msg", ".out"))
    return CallerRun(
        returncode=ended.returncode,
        elapsed_s=time.monotonic() - started,
        trace=trace,
        output=output.read_text(errors="replace")[-3000:] if output.exists() else "",
    )


def run_callers(
    *,
    edge_port: int,
    calls: list[tuple[str, str, str]],
    workdir: Path,
    name: str,
    rate: float = 100,
    timeout_s: int = 30,
) -> CallerRun:
    """`start_callers` then `wait_callers`: place the calls and wait until SIPp is done."""
    process, trace, started = start_callers(
        edge_port=edge_port, calls=calls, workdir=workdir, name=name, rate=rate, timeout_s=timeout_s
    )
    return wait_callers(process, trace, started, timeout_s=timeout_s + 15)


@dataclass(frozen=True)
class PlacedCall:
    """One call as its caller saw it."""

    call_id: str
    user: str
    invited_at: datetime  # the INVITE with credentials left the phone
    final_status: int
    final_at: datetime
    hung_up_at: datetime | None  # the callee's BYE arrived

    @property
    def setup_ms(self) -> float:
        return (self.final_at - self.invited_at).total_seconds() * 1000


def placed_calls(run: CallerRun) -> dict[str, PlacedCall]:
    """Every call of a caller run, by subscriber."""
    by_call: dict[str, list[SipMessage]] = {}
    for message in run.messages():
        by_call.setdefault(message.call_id, []).append(message)
    calls = {}
    for call_id, messages in by_call.items():
        invites = [m for m in messages if m.direction == "sent" and m.header("CSeq") == "2 INVITE"]
        finals = [
            m
            for m in messages
            if m.direction == "received"
            and m.cseq_method == "INVITE"
            and m.status is not None
            and m.status >= 200
            and m.status != 407
        ]
        if not invites or not finals:
            raise AssertionError(f"call {call_id}: no authenticated INVITE or no final answer")
        invite, final = invites[0], finals[0]
        bye = next((m for m in messages if m.direction == "received" and m.method == "BYE"), None)
        user = (invite.header("From") or "").split("<sip:", 1)[1].split("@", 1)[0]
        calls[user] = PlacedCall(
            call_id=call_id,
            user=user,
            invited_at=invite.at,
            final_status=final.status or 0,
            final_at=final.at,
            hung_up_at=bye.at if bye else None,
        )
    return calls


def answered_calls(trace: Path) -> int:
    """Calls of a caller run answered so far."""
    return len(
        {
            m.call_id
            for m in read_trace(trace)
            if m.direction == "received" and m.status == 200 and m.cseq_method == "INVITE"
        }
    )
