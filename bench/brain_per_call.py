"""The brain's CPU per call, in process: the edge's requests handed straight to the ASGI app.

What one call costs the brain besides HTTP parsing (uvicorn): `POST /sip/v1/authorize` through
the request guard and the SIP fast path (body validation, the digest check, the decision, the
grant, the JSON answer), plus the call's share of `POST /sip/v1/events` batches (attempt,
answer and end events, 100 calls per batch as the edge's spool ships them under load) written
to the SQLite store. Every call comes from one of `--subscribers` generated subscribers with a
fresh digest answer, as a phone sends it.

Figure: process CPU time per call (user + system, all threads: the events are written in a
worker thread), for the decision alone and for the decision with its events; and the Python
function calls per call on the event loop (cProfile's count: the decision and the events'
validation and checks, not the worker thread's SQL writes), which does not drift. On a busy shared
machine CPU time drifts by tens of percent: the trees take turns round by round so that they
share the drift, and the ratio to the first tree is the figure to compare. (Counting
instructions with valgrind's callgrind was tried: a worker's start-up alone took over 15
minutes under valgrind on the shared 2-core machine, so it is not offered.)

The same script measures other source trees (`--tree DIR`, each with its own `.venv`): each
tree's own brain (its `bench/_stack.py` seeds it), same calls, same run, the trees taking
turns round by round. It only sends what every version of the API accepts (a version without
edge tokens or digest checking ignores them).

    .venv/bin/python bench/brain_per_call.py [--tree /work/wt/base] [--calls 3000] [--rounds 3]
        [--profile out.txt]
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
        # a tree's `bench_carriers` gives admin documents (older trees) or domain carriers
        carriers = [
            carrier if isinstance(carrier, dict) else _stack.admin_document(carrier)
            for carrier in _stack.bench_carriers(5999)
        ]
        asyncio.run(_serve(driver, caller, carriers, options))
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
        if command == "count":
            # Python function calls on the event loop per call (the decision, and the events'
            # validation and checks; not the SQL writes of the worker thread): deterministic,
            # whatever else the machine runs.
            import cProfile
            import pstats

            counter = cProfile.Profile()
            counter.enable()
            await drive(driver, caller, calls)
            counter.disable()
            total = pstats.Stats(counter).total_calls  # type: ignore[attr-defined]
            print(json.dumps({"calls": calls, "function_calls": total}), flush=True)
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
    def __init__(self, tree: Path, options: argparse.Namespace) -> None:
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
        self.tree = tree
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
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
    workers = [Worker(tree, options) for tree in trees]
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
        function_calls = {
            tree: worker_process.ask(f"count {options.calls}")["function_calls"] / options.calls
            for tree, worker_process in zip(trees, workers, strict=True)
        }
    finally:
        for worker_process in workers:
            worker_process.close()
    print(
        f"## The brain's CPU per call, in process ({platform.node()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n"
    )
    print(
        f"{options.subscribers:,} subscribers; per round and tree, {options.calls:,} decisions "
        f"alone, then {options.calls:,} calls (the decision and the call's attempt, answer and "
        f"end events, {EVENT_BATCH_CALLS} calls per events batch), the trees taking turns for "
        f"{options.rounds} rounds; process CPU (all threads), median of the rounds\n"
    )
    print(
        "| tree | decision, CPU µs | decision + events, CPU µs | rounds (µs) | x first tree | "
        "Python function calls per call, event loop |"
    )
    print("|---|---:|---:|---|---:|---:|")

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    reference = median(per_call[trees[0]]["run"])
    for tree in trees:
        decide = median(per_call[tree]["decide"])
        run = median(per_call[tree]["run"])
        rounds = "; ".join(
            f"{name} " + ", ".join(f"{value:.0f}" for value in values)
            for name, values in per_call[tree].items()
        )
        print(
            f"| {label(tree)} | {decide:.0f} | {run:.0f} | {rounds} | {run / reference:.2f} | "
            f"{function_calls[tree]:,.0f} |"
        )


if __name__ == "__main__":
    main()
