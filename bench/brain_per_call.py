"""The brain's CPU per call, in process: the edge's requests handed straight to the ASGI app.

What one call costs the brain besides HTTP parsing (uvicorn): `POST /sip/v1/authorize` through
the request guard and the SIP fast path (body validation, the digest check, the decision, the
grant, the JSON answer), plus the call's share of `POST /sip/v1/events` batches (attempt,
answer and end events, 100 calls per batch as the edge's spool ships them under load) written
to the SQLite store. Every call comes from one of `--subscribers` generated subscribers with a
fresh digest answer, as a phone sends it.

Figures: process CPU time per call (user + system, all threads: the events are written in a
worker thread), and, with `--callgrind`, instructions per call counted by valgrind
(`--tool=callgrind`): the difference between a worker that places `--callgrind-calls` calls
and one that places none, after the same start-up and warm-up. Instruction counts do not depend
on what else the machine runs; CPU time does, by tens of percent on a busy shared machine.

The same script measures other source trees (`--tree DIR`, each with its own `.venv`): each
tree's own brain (its `bench/_stack.py` seeds it), same calls, same run, the trees taking
turns round by round. It only sends what every version of the API accepts (a version without
edge tokens or digest checking ignores them).

    .venv/bin/python bench/brain_per_call.py [--tree /work/wt/base] [--calls 3000] [--rounds 3]
        [--callgrind] [--profile out.txt]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
EDGE_TOKEN = "bench-edge-token-0123456789"
ADMIN_TOKEN = "bench-admin-token"
REALM = "tawasol.bench"
DIALLED = ("00212661234567", "00212522123456", "00212700112233")
EVENT_BATCH_CALLS = 100


# -- the worker: runs inside the measured tree's virtualenv ---------------------------------------
def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


class AsgiDriver:
    """Requests handed to an ASGI app in this process, as uvicorn would hand them."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        raw_headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode())]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8080),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        status = 0
        chunks: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


class Caller:
    """Decision requests with fresh digest answers, and the events of the calls allowed."""

    def __init__(self, subscribers: int, subscriber_name: Any) -> None:
        self.users = [subscriber_name(index) for index in range(1, subscribers + 1)]
        self.ha1 = {user: _md5(f"{user}:{REALM}:{password}") for user, password in self.users}
        self.sequence = 0
        self.pending: list[dict[str, Any]] = []
        self.allowed = 0
        self.refused = 0

    def decision_body(self) -> tuple[bytes, str, str, str]:
        self.sequence += 1
        sequence = self.sequence
        user = self.users[sequence % len(self.users)][0]
        dialled = DIALLED[sequence % len(DIALLED)]
        call_id = f"bench-{os.getpid()}-{sequence}"
        nonce, cnonce, uri = f"n{os.getpid()}x{sequence}", f"c{sequence}", f"sip:{dialled}@b"
        ha2 = _md5(f"INVITE:{uri}")
        response = _md5(f"{self.ha1[user]}:{nonce}:00000001:{cnonce}:auth:{ha2}")
        credentials = (
            f'Digest username="{user}", realm="{REALM}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", cnonce="{cnonce}", qop=auth, nc=00000001'
        )
        body = json.dumps(
            {
                "call_id": call_id,
                "user": user,
                "dialled": dialled,
                "source_ip": "127.0.0.1",
                "user_agent": "bench",
                "node": "bench",
                "credentials": credentials,
                "method": "INVITE",
            },
            separators=(",", ":"),
        ).encode()
        return body, call_id, user, dialled

    def call_events(self, answer: dict[str, Any], *, call_id: str, user: str, dialled: str) -> None:
        """What the edge spools for an answered call of 60 s on the first route."""
        at_ms = 1_790_000_000_000 + self.sequence * 10
        route = answer["routes"][0]
        common = {"call_id": call_id, "user": user, "dialled": dialled}
        grant = {"grant": answer["grant"]} if answer.get("grant") else {}
        self.pending += [
            {
                **common,
                **grant,
                "type": "attempt",
                "at_ms": at_ms + 5,
                "attempt": 1,
                "carrier": route["carrier"],
                "gateway": route["gateway"],
                "billing": route["billing"],
                "sip_code": 200,
                "pdd_ms": 5,
            },
            {**common, **grant, "type": "answer", "at_ms": at_ms + 10, "carrier": route["carrier"]},
            {
                **common,
                **grant,
                "type": "end",
                "at_ms": at_ms + 60_010,
                "duration_ms": 60_000,
                "hangup_cause": "caller",
            },
        ]


async def drive(driver: AsgiDriver, caller: Caller, calls: int, *, events: bool = True) -> None:
    """`calls` decisions; with `events`, each allowed call's events posted in batches."""
    headers = {"Authorization": f"Bearer {EDGE_TOKEN}", "Content-Type": "application/json"}
    for index in range(calls):
        body, call_id, user, dialled = caller.decision_body()
        status, content = await driver.request("POST", "/sip/v1/authorize", body, headers)
        if status != 200:
            raise SystemExit(f"authorize: HTTP {status} {content[:300]!r}")
        answer = json.loads(content)
        if answer["allow"]:
            caller.allowed += 1
            caller.call_events(answer, call_id=call_id, user=user, dialled=dialled)
        else:
            caller.refused += 1
        if not events:
            caller.pending.clear()  # the calls end unseen: the brain heals their slots
        elif (index + 1) % EVENT_BATCH_CALLS == 0 or index == calls - 1:
            await post_events(driver, caller, headers)


async def post_events(driver: AsgiDriver, caller: Caller, headers: dict[str, str]) -> None:
    if not caller.pending:
        return
    body = json.dumps({"events": caller.pending}, separators=(",", ":")).encode()
    status, content = await driver.request("POST", "/sip/v1/events", body, headers)
    if status != 200:
        raise SystemExit(f"events: HTTP {status} {content[:300]!r}")
    caller.pending = []


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(options: argparse.Namespace) -> None:
    """Inside the tree's virtualenv: seed a brain, then answer 'run N' lines with JSON figures."""
    tree = Path(options.worker)
    sys.path.insert(0, str(tree / "bench"))
    sys.path.insert(0, str(tree / "tests"))
    os.chdir(tree)
    import _stack  # the tree's own (bench/ is not a package)

    data_dir = Path(tempfile.mkdtemp(prefix="tawasol-brain-per-call-"))
    try:
        brain_process = _stack.BrainProcess(data_dir=data_dir / "brain")
        os.environ.update(brain_process.env())
        os.environ.update(
            TAWASOL_EDGE_TOKEN=EDGE_TOKEN,
            TAWASOL_ADMIN_TOKEN=ADMIN_TOKEN,
            TAWASOL_SIP_REALM=REALM,
            TAWASOL_PROBE_DOWN_AFTER="100",
        )
        brain_process.prepare(subscribers=options.subscribers)
        from tawasol.adapters.api.app import create_app
        from tawasol.composition import build_brain
        from tawasol.config import Settings

        brain = build_brain(Settings())
        app = create_app(brain)
        driver = AsgiDriver(app)
        caller = Caller(options.subscribers, _stack.subscriber_name)
        asyncio.run(_serve(driver, caller, _stack.bench_carriers(5999), options))
        brain.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def _serve(
    driver: AsgiDriver, caller: Caller, carriers: list[dict[str, Any]], options: Any
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    for carrier in carriers:
        status, content = await driver.request(
            "POST", "/admin/v1/carriers", json.dumps(carrier).encode(), admin
        )
        if status >= 300:
            raise SystemExit(f"carrier: HTTP {status} {content[:300]!r}")
    await drive(driver, caller, 200)  # warm-up: caches, the first snapshot
    print(json.dumps({"ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip() or line.strip() == "quit":
            return
        command, _, count = line.partition(" ")
        calls = int(count)
        if command == "profile":
            import pyinstrument

            profiler = pyinstrument.Profiler(interval=0.0002, async_mode="disabled")
            profiler.start()
            await drive(driver, caller, calls)
            profiler.stop()
            Path(options.profile).write_text(profiler.output_text(unicode=True, show_all=False))
            print(json.dumps({"profile": str(options.profile)}), flush=True)
            continue
        allowed_before = caller.allowed
        before = cpu_seconds()
        await drive(driver, caller, calls, events=command == "run")
        used = cpu_seconds() - before
        print(
            json.dumps(
                {
                    "calls": calls,
                    "cpu_s": used,
                    "allowed": caller.allowed - allowed_before,
                }
            ),
            flush=True,
        )


# -- the orchestrator: this tree's Python, one worker per tree ------------------------------------
class Worker:
    def __init__(self, tree: Path, options: argparse.Namespace, *, valgrind: bool = False) -> None:
        python = tree / ".venv" / "bin" / "python"
        if not python.exists():
            raise SystemExit(f"{tree}: no .venv (python3 -m venv .venv; pip install -e '.[test]')")
        command = [
            str(python),
            str(Path(__file__).resolve()),
            "--worker",
            str(tree),
            "--subscribers",
            str(options.subscribers),
        ]
        if options.profile:
            command += ["--profile", str(Path(options.profile).resolve())]
        self.callgrind_out: Path | None = None
        if valgrind:
            self.callgrind_out = Path(tempfile.mkstemp(prefix="callgrind.", suffix=".out")[1])
            command = [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={self.callgrind_out}",
                "--dump-instr=no",
                *command,
            ]
        self.tree = tree
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if valgrind else None,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("TAWASOL_")},
        )
        self.read()  # ready

    def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise SystemExit(f"{self.tree}: the worker died")
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            try:
                self.process.wait(timeout=600)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def close(self) -> None:
        self.stop()
        if self.callgrind_out is not None:
            for path in self.callgrind_out.parent.glob(self.callgrind_out.name + "*"):
                path.unlink(missing_ok=True)

    def instructions(self) -> int:
        """Instructions the worker executed, once it has stopped (valgrind only)."""
        assert self.callgrind_out is not None
        for line in self.callgrind_out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
        raise SystemExit(f"{self.callgrind_out}: no instruction count")


def instructions_per_call(tree: Path, options: argparse.Namespace) -> float:
    """Instructions per call (decision and events) under callgrind, start-up not counted."""
    totals = []
    for calls in (0, options.callgrind_calls):
        worker_process = Worker(tree, options, valgrind=True)
        try:
            if calls:
                worker_process.ask(f"run {calls}")
            worker_process.stop()
            totals.append(worker_process.instructions())
        finally:
            worker_process.close()
    return (totals[1] - totals[0]) / options.callgrind_calls


def label(tree: Path) -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(tree), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        commit = "?"
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no", "src"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    ).stdout.strip()
    return f"{tree.name} ({commit[:60]}{', uncommitted changes' if dirty else ''})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another tree")
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=3000, help="calls per tree per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    parser.add_argument("--callgrind-calls", type=int, default=1000)
    parser.add_argument("--profile", type=Path, default=None, help="pyinstrument profile (text)")
    parser.add_argument(
        "--not-this-tree", action="store_true", help="measure only the --tree trees"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(options)
        return

    trees = [*([] if options.not_this_tree else [ROOT]), *[t.resolve() for t in options.tree]]
    if not trees:
        raise SystemExit("no tree to measure")
    if options.profile:
        profiled = Worker(ROOT, options)
        profiled.ask(f"profile {options.calls}")
        profiled.close()
        print(f"profile written to {options.profile}", file=sys.stderr)
        return
    workers = [Worker(tree, options) for tree in trees] if options.rounds else []
    # per tree: "decide" (the decision request alone) and "run" (the decision and its events)
    per_call: dict[Path, dict[str, list[float]]] = {
        tree: {"decide": [], "run": []} for tree in trees
    }
    try:
        for round_index in range(options.rounds):
            for command in ("decide", "run"):
                for tree, worker_process in zip(trees, workers, strict=True):
                    figures = worker_process.ask(f"{command} {options.calls}")
                    if figures["allowed"] != options.calls:
                        raise SystemExit(f"{tree}: {figures['allowed']}/{options.calls} allowed")
                    per_call[tree][command].append(figures["cpu_s"] / options.calls * 1e6)
                    print(
                        f"[round {round_index + 1}] {tree.name} {command}: "
                        f"{per_call[tree][command][-1]:.0f} µs/call",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for worker_process in workers:
            worker_process.close()
    instructions = {
        tree: instructions_per_call(tree, options) if options.callgrind else None for tree in trees
    }
    print(
        f"## The brain's CPU per call, in process ({platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n"
    )
    print(
        f"{options.subscribers:,} subscribers; per round and tree, {options.calls:,} decisions "
        f"alone, then {options.calls:,} calls (the decision and the call's attempt, answer and "
        f"end events, {EVENT_BATCH_CALLS} calls per events batch), the trees taking turns for "
        f"{options.rounds} rounds; process CPU (all threads), median of the rounds; "
        + (
            f"instructions: callgrind, {options.callgrind_calls:,} calls with their events"
            if options.callgrind
            else "instructions not counted (--callgrind)"
        )
        + "\n"
    )
    print(
        "| tree | decision, CPU µs | decision + events, CPU µs | rounds (µs) | "
        "x first tree | instructions per call |"
    )
    print("|---|---:|---:|---|---:|---:|")

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    reference = median(per_call[trees[0]]["run"])
    reference_count = instructions[trees[0]]
    for tree in trees:
        decide = median(per_call[tree]["decide"])
        run = median(per_call[tree]["run"])
        count = instructions[tree]
        rounds = "; ".join(
            f"{name} " + ", ".join(f"{value:.0f}" for value in values)
            for name, values in per_call[tree].items()
        )
        print(
            f"| {label(tree)} | {decide:.0f} | {run:.0f} | {rounds} | {run / reference:.2f} | "
            + (f"{count / 1e6:.2f} M" if count is not None else "-")
            + (f" (x {count / reference_count:.2f})" if count and reference_count else "")
            + " |"
        )


if __name__ == "__main__":
    main()
