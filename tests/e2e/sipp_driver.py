"""Drive SIPp (Debian `sip-tester`) from the tests, and read what it saw.

Every SIPp run writes its message trace (`-trace_msg -message_file`), which `read_trace` turns
into `SipMessage`s with their timestamps: the tests assert on what the caller and each carrier
actually sent and received. SIPp is driven with subprocess (pysipp is broken, see the field
notes); every run is bounded by `-m` (calls) and `-timeout` (time).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from support.stack import free_port
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


@dataclass
class SippCarrier:
    """A carrier's gateway played by SIPp in server mode (UAS), in the background."""

    scenario: str
    port: int
    workdir: Path
    calls: int = 10_000  # the brain's OPTIONS probes count as calls too: never rely on -m here
    delay_ms: int = 0
    keys: dict[str, str] = field(default_factory=dict)
    timeout_s: int = 60
    reply: tuple[int, str, str] | None = None  # carrier_reject.xml: (code, phrase, Reason)
    process: subprocess.Popen[bytes] | None = None

    @property
    def trace(self) -> Path:
        return self.workdir / f"carrier-{self.port}-{Path(self.scenario).stem}.msg"

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

    def start(self) -> SippCarrier:
        command = [
            SIPP,
            "-sf",
            str(self._scenario_file()),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-nd",
            "-nostdin",
            "-m",
            str(self.calls),
            "-d",
            str(self.delay_ms),
            "-timeout",
            f"{self.timeout_s}s",
            "-max_socket",
            "1000",
            "-trace_msg",
            "-message_file",
            str(self.trace),
            "-trace_err",
            "-error_file",
            str(self.trace.with_suffix(".err")),
        ]
        for key, value in self.keys.items():
            command += ["-key", key, value]
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_udp_bound(self.port)
        return self

    def wait_for(self, predicate: Callable[[SipMessage], bool], timeout_s: float = 3) -> bool:
        """Wait until the carrier's trace holds a message matching `predicate`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(predicate(message) for message in self.messages()):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def messages(self) -> list[SipMessage]:
        return read_trace(self.trace)

    def invites(self) -> list[SipMessage]:
        return new_invites(self.messages())

    def answered_bye(self) -> bool:
        """The carrier received a BYE and answered it 200."""
        messages = self.messages()
        return any(m.direction == "received" and m.method == "BYE" for m in messages) and any(
            m.direction == "sent" and m.status == 200 and m.cseq_method == "BYE" for m in messages
        )


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
    source_ip: str = "127.0.0.1",
) -> list[str]:
    """The SIPp command line of a caller placing `calls` calls through the edge as `user`."""
    return [
        SIPP,
        f"127.0.0.1:{edge_port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-s",
        dialled,
        "-key",
        "caller",
        user,
        "-au",
        user,
        "-ap",
        password,
        "-i",
        source_ip,
        "-p",
        str(free_port(source_ip)),
        "-nostdin",
        "-m",
        str(calls),
        "-l",
        str(max(1, calls)),
        "-d",
        str(talk_ms),
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-max_socket",
        "1000",
        "-trace_msg",
        "-message_file",
        str(trace),
        "-trace_err",
        "-error_file",
        str(trace.with_suffix(".err")),
    ]


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
    source_ip: str = "127.0.0.1",
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
    result = subprocess.run(
        command,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout_s + 15,
        check=False,
    )
    return CallerRun(
        returncode=result.returncode,
        elapsed_s=time.monotonic() - started,
        trace=trace,
        output=(result.stdout + result.stderr).decode(errors="replace")[-3000:],
    )


def _wait_udp_bound(port: int, timeout_s: float = 5) -> None:
    """Wait until something has bound UDP `port` on 127.0.0.1 (SIPp is listening)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return
        time.sleep(0.02)
    raise RuntimeError(f"SIPp did not bind UDP port {port}")


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
    source_ip: str = "127.0.0.1",
) -> list[str]:
    """The SIPp command placing `calls` calls, one per injection line, `rate` new calls a second,
    all allowed to be up at once (-l), bounded by -m and -timeout."""
    return [
        SIPP,
        f"127.0.0.1:{edge_port}",
        "-sf",
        str(SCENARIOS / scenario),
        "-inf",
        str(injection),
        "-i",
        source_ip,
        "-p",
        str(free_port(source_ip)),
        "-nostdin",
        "-m",
        str(calls),
        "-l",
        str(max(1, calls)),
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-max_socket",
        "1000",
        "-cid_str",
        f"{call_id_prefix}-%u-%p@%s",
        "-trace_msg",
        "-message_file",
        str(trace),
        "-trace_err",
        "-error_file",
        str(trace.with_suffix(".err")),
    ]


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
    output = (workdir / f"callers-{name}.out").open("wb")
    try:
        process = subprocess.Popen(
            command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=output, stderr=output
        )
    finally:
        output.close()  # the child holds its own copy
    return process, trace, time.monotonic()


def wait_callers(
    process: subprocess.Popen[bytes], trace: Path, started: float, *, timeout_s: float
) -> CallerRun:
    """Wait for callers started by `start_callers`; SIPp 3.6 sometimes ignores its own -timeout,
    so past `timeout_s` (from the start) it is killed and the run reported as failed."""
    try:
        returncode = process.wait(timeout=max(0.1, started + timeout_s - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
        returncode = -9
    output = trace.with_name(trace.name.replace(".msg", ".out"))
    return CallerRun(
        returncode=returncode,
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


# -- carriers that die and come back; what each of many callers got ------------------------------
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
    process: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @property
    def trace(self) -> Path:
        return self.workdir / f"gateway-{self.name}-{self.runs}.msg"

    def start(self) -> SippGateway:
        self.runs += 1
        command = [
            SIPP,
            "-sf",
            str(SCENARIOS / self.scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-nd",
            "-nostdin",
            "-m",
            "100000",  # the brain's OPTIONS probes are calls too: -timeout bounds the run
            "-d",
            str(self.hold_ms),
            "-timeout",
            f"{self.timeout_s}s",
            "-max_socket",
            "1000",
            "-trace_msg",
            "-message_file",
            str(self.trace),
            "-trace_err",
            "-error_file",
            str(self.trace.with_suffix(".err")),
        ]
        if self.scenario == "carrier_channels.xml":
            command += ["-set", "channels", str(self.channels)]
            command += ["-set", "refuse_ms", str(self.refuse_ms)]
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_udp_bound(self.port)
        return self

    def kill(self) -> None:
        """The gateway stops answering anything at once (SIGKILL, no goodbye)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL
            self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def messages(self, run: int | None = None) -> list[SipMessage]:
        runs = [run] if run is not None else range(1, self.runs + 1)
        messages: list[SipMessage] = []
        for number in runs:
            messages += read_trace(self.workdir / f"gateway-{self.name}-{number}.msg")
        return messages

    def invites(self, run: int | None = None) -> list[SipMessage]:
        return new_invites(self.messages(run))

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
