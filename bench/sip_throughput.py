"""SIP calls per second: Kamailio alone against the whole tawasol stack, on this machine.

Two setups, each on 127.0.0.1 with SIPp as the caller and as the carrier (same cores):
- (a) "bare": Kamailio alone, a minimal stateful relay with Record-Route and a static route to
  the carrier (bench/kamailio_bare.cfg.template): the ceiling of this machine;
- (b) "tawasol": the brain (SQLite, a generated operator of `--subscribers` subscribers, a plan
  without any limit of simultaneous calls) and the tawasol edge as `tawasol up` starts it:
  digest authentication (407 then INVITE with credentials), one decision per call over the kept
  HTTP connection, dialogs, Record-Route, the call events spooled and recorded in the CDRs.
  SIPp 3.6 cannot vary digest credentials per call (the field notes), so every call comes from
  one subscriber; the plan never refuses it.

Calls are short: answered at once, BYE `--talk-ms` (200 ms) later. (With no pause at all, ACK and
BYE race through two Kamailio workers and the dialog module of Kamailio 5.6.3 logs "bogus event"
and once crashed here; phones do not hang up within microseconds of answering.)

For each setup a coarse-then-fine search (doubling from `--bare-start` / `--tawasol-start`, then
`--fine-steps` bisections) finds the highest SIPp rate that stays clean over one `--window-s`
window: no failed call on either side, retransmissions under 0.5% of the calls (caller's and
carrier's together), and the caller kept the pace (done within the window + 2 s). Before the
search, one window at `--latency-rate` (200 calls/s) measures the caller's INVITE -> 200 OK
(SIPp RTD, whole milliseconds) and, for tawasol, the decision latency inside the brain
(bench/_brain_server.py's stopwatch) and as an edge waits for it (a probe sending 20 decision
requests a second on its own kept connection). CPU per process comes from /proc.

Prints Markdown; `--json PATH` also writes the figures (bench/run_all.py reads them).

    .venv/bin/python bench/sip_throughput.py [--window-s 10] [--children 8] [--only tawasol]
        [--experiment drop_events] [--edge-run-dir /dev/shm] [--json out.json]
"""

from __future__ import annotations

import abc
import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _stack  # bench/ is not a package: found through sys.path above
from _stack import (
    BareKamailio,
    BrainProcess,
    CpuMeter,
    DecisionProbe,
    FullStack,
    SippCarrier,
    carrier_counts,
    free_port,
    percentile,
    run_caller,
    subscriber_name,
    write_scenarios,
)

from tawasol.adapters.sip.launcher import MEMORY_MANAGER
from tawasol.config import Settings

MAX_RETRANSMISSIONS = 0.005  # of the calls placed
PACE_SLACK_S = 2.0  # SIPp needs ~0.5 s to start and stop; more means it fell behind


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Step:
    """One window of load at one rate, and what it showed."""

    setup: str
    purpose: str  # "latency" or "search"
    rate: int
    calls: int
    window_s: float
    successful: int = 0
    failed: int = 0
    retransmissions: int = 0
    elapsed_s: float = 0.0
    killed: bool = False
    cpu: dict[str, float] = field(default_factory=dict)
    answer_p50_ms: float | None = None
    answer_p99_ms: float | None = None
    decision: dict[str, float] = field(default_factory=dict)  # inside the brain, µs
    probe_p50_ms: float | None = None
    probe_p99_ms: float | None = None
    probe_count: int = 0

    @property
    def retransmission_ratio(self) -> float:
        return self.retransmissions / self.calls if self.calls else 0.0

    @property
    def kept_pace(self) -> bool:
        return self.elapsed_s <= self.window_s + PACE_SLACK_S

    @property
    def clean(self) -> bool:
        return (
            not self.killed
            and self.failed == 0
            and self.successful == self.calls
            and self.retransmission_ratio < MAX_RETRANSMISSIONS
            and self.kept_pace
        )

    def summary(self) -> str:
        verdict = "clean" if self.clean else "NOT clean"
        return (
            f"{self.setup} {self.rate}/s: {self.successful}/{self.calls} ok, {self.failed} failed, "
            f"{self.retransmission_ratio:.2%} retransmitted, {self.elapsed_s:.1f}s -> {verdict}"
        )


class World(abc.ABC):
    """A setup under load: where the caller sends, with what, and which processes to watch."""

    name = ""
    label = ""

    def __init__(self, *, work: Path, scenarios: dict[str, Path], carrier: SippCarrier) -> None:
        self.work = work
        self.scenarios = scenarios
        self.carrier = carrier

    @property
    @abc.abstractmethod
    def port(self) -> int:
        """The SIP port the caller sends to."""

    @abc.abstractmethod
    def caller_options(self) -> dict[str, Any]:
        """SIPp options for this setup's caller."""

    @abc.abstractmethod
    def cpu_groups(self) -> dict[str, Any]:
        """The processes whose CPU is measured, by name."""

    def settle(self, *, after_failure: bool) -> None:
        time.sleep(5.0 if after_failure else 1.0)

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop every process of the setup."""


class BareWorld(World):
    name = "bare"
    label = "(a) Kamailio alone: stateful relay, Record-Route, static route"

    def __init__(
        self, *, children: int, shared_memory_mb: int, memory_manager: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.kamailio = BareKamailio(
            run_dir=self.work / "bare",
            carrier_port=self.carrier.port,
            children=children,
            shared_memory_mb=shared_memory_mb,
            memory_manager=memory_manager,
        ).start()

    @property
    def port(self) -> int:
        return self.kamailio.port

    def caller_options(self) -> dict[str, Any]:
        return {"scenario": self.scenarios["caller_plain"]}

    def cpu_groups(self) -> dict[str, Any]:
        return {"kamailio": self.kamailio.pids, "carrier": lambda: [self.carrier.pid]}

    def stop(self) -> None:
        self.kamailio.stop()


class TawasolWorld(World):
    name = "tawasol"
    label = "(b) tawasol: digest auth + decision per call + dialogs + call events"
    # what runs the brain and the edge (bench/edge_alternatives.py swaps them for its variants)
    brain_class: type[BrainProcess] = BrainProcess
    stack_class: type[FullStack] = FullStack

    def __init__(
        self,
        *,
        children: int,
        shared_memory_mb: int,
        subscribers: int,
        experiments: list[str],
        edge_run_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.brain = self.brain_class(
            data_dir=self.work / "brain",
            extra_env={"BENCH_BRAIN_EXPERIMENTS": ",".join(experiments)},
        )
        seconds = self.brain.prepare(subscribers=subscribers)
        log(f"brain seeded with {subscribers} subscribers in {seconds:.1f}s")
        self.brain.start()
        self.stack: FullStack | None = None
        try:
            self.brain.add_carriers(self.carrier.port)
            self.stack = self.stack_class(
                brain=self.brain,
                run_dir=edge_run_dir,
                children=children,
                shared_memory_mb=shared_memory_mb,
            ).start()
        except BaseException:
            self.stop()
            raise
        self.user, self.password = subscriber_name(1)
        self.probe_user = subscriber_name(2)[0]

    @property
    def port(self) -> int:
        assert self.stack is not None
        return self.stack.port

    def caller_options(self) -> dict[str, Any]:
        return {
            "scenario": self.scenarios["caller_digest"],
            "user": self.user,
            "password": self.password,
        }

    def cpu_groups(self) -> dict[str, Any]:
        assert self.stack is not None
        return {
            "kamailio": self.stack.pids,
            "brain": lambda: [self.brain.pid],
            "carrier": lambda: [self.carrier.pid],
        }

    def settle(self, *, after_failure: bool) -> None:
        assert self.stack is not None
        if not self.stack.wait_drained(timeout_s=20):
            log(f"the edge still holds {self.stack.spooled_events()} spooled events")
        super().settle(after_failure=after_failure)

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop()
            self.stack = None
        self.brain.stop()


def run_step(
    world: World, *, rate: int, window_s: float, purpose: str, probe: bool = False
) -> Step:
    calls = max(1, int(rate * window_s))
    step = Step(setup=world.name, purpose=purpose, rate=rate, calls=calls, window_s=window_s)
    world.carrier.start(calls=calls, timeout_s=window_s + 40)
    probe_thread = None
    if probe and isinstance(world, TawasolWorld):
        world.brain.decisions(reset=True)
        probe_thread = DecisionProbe(
            world.brain, user=world.probe_user, password=subscriber_name(2)[1]
        )
        probe_thread.start()
    meter = CpuMeter(world.cpu_groups())
    meter.start()
    options = world.caller_options()
    result = run_caller(
        options.pop("scenario"),
        target_port=world.port,
        rate=rate,
        calls=calls,
        workdir=world.work,
        name=f"{world.name}-{purpose}-{rate}-{time.monotonic_ns()}",
        deadline_s=window_s + 30,
        rtt=True,
        **options,
    )
    cpu = meter.stop()
    carrier_stats = world.carrier.stop()
    if probe_thread is not None:
        samples = probe_thread.stop()
        step.probe_count = len(samples)
        step.probe_p50_ms = percentile(samples, 0.50)
        step.probe_p99_ms = percentile(samples, 0.99)
    if probe and isinstance(world, TawasolWorld):
        step.decision = world.brain.decisions()
    carrier_failed, carrier_retransmissions = carrier_counts(carrier_stats)
    caller_cpu = result.cpu_s / max(result.elapsed_s, 1e-6)  # the caller exited: from rusage
    cpu["sipp"] = cpu.pop("carrier", 0.0) + caller_cpu
    cpu["machine"] += caller_cpu
    ours = sum(value for name, value in cpu.items() if name != "machine")
    cpu["other"] = max(0.0, cpu["machine"] - ours)
    answers = sorted(result.answer_ms)
    step.successful = result.successful
    step.failed = result.failed + carrier_failed
    step.retransmissions = result.retransmissions + carrier_retransmissions
    step.elapsed_s = result.elapsed_s
    step.killed = result.killed
    step.cpu = cpu
    step.answer_p50_ms = percentile(answers, 0.50)
    step.answer_p99_ms = percentile(answers, 0.99)
    for path in world.work.glob("*_rtt.csv"):
        path.unlink(missing_ok=True)
    log(step.summary())
    return step


def round_rate(rate: float) -> int:
    step = 10 if rate < 1000 else 50
    return max(step, int(round(rate / step) * step))


def search(
    world: World,
    *,
    start: int,
    max_rate: int,
    fine_steps: int,
    window_s: float,
    deadline: float,
) -> tuple[int | None, list[Step]]:
    """Double the rate while clean (halve while not), then bisect between the highest clean
    and the lowest failed rate. Returns the highest clean rate and every step."""
    steps: list[Step] = []
    clean_rate: int | None = None
    failed_rate: int | None = None
    rate = start

    def attempt(rate: int) -> bool:
        step = run_step(world, rate=rate, window_s=window_s, purpose="search")
        steps.append(step)
        world.settle(after_failure=not step.clean)
        return step.clean

    while time.monotonic() < deadline:
        if attempt(rate):
            clean_rate = rate
            if failed_rate is not None or rate >= max_rate:
                break
            rate = min(max_rate, rate * 2)
        else:
            failed_rate = rate
            if clean_rate is not None or rate <= 10:
                break
            rate = round_rate(rate / 2)
    for _ in range(fine_steps):
        if clean_rate is None or failed_rate is None or time.monotonic() >= deadline:
            break
        if failed_rate - clean_rate <= max(10, clean_rate * 0.05):
            break
        rate = round_rate((clean_rate + failed_rate) / 2)
        if rate in (clean_rate, failed_rate):
            break
        if attempt(rate):
            clean_rate = rate
        else:
            failed_rate = rate
    return clean_rate, steps


def measure(
    world: World,
    *,
    options: argparse.Namespace,
    start: int,
    deadline: float,
) -> dict[str, Any]:
    log(f"{world.name}: warm-up")
    run_step(world, rate=50, window_s=2, purpose="warm-up")
    world.settle(after_failure=False)
    log(f"{world.name}: latency at {options.latency_rate} calls/s")
    latency = run_step(
        world, rate=options.latency_rate, window_s=options.window_s, purpose="latency", probe=True
    )
    world.settle(after_failure=not latency.clean)
    log(f"{world.name}: searching from {start} calls/s")
    best, steps = search(
        world,
        start=start,
        max_rate=options.max_rate,
        fine_steps=options.fine_steps,
        window_s=options.window_s,
        deadline=deadline,
    )
    best_step = next((s for s in reversed(steps) if s.clean and s.rate == best), None)
    return {
        "setup": world.name,
        "label": world.label,
        "clean_rate": best,
        "at_clean_rate": asdict(best_step) if best_step else None,
        "latency": asdict(latency) | {"clean": latency.clean},
        "steps": [
            asdict(s) | {"clean": s.clean, "retransmission_ratio": s.retransmission_ratio}
            for s in steps
        ],
    }


# -- report -----------------------------------------------------------------------------------
def cpu_per_call_ms(step: dict[str, Any]) -> float:
    """CPU of Kamailio and the brain per call, in ms, from a step's cores at its rate."""
    cpu = step["cpu"]
    return float((cpu.get("kamailio", 0) + cpu.get("brain", 0)) / step["rate"] * 1000)


def _ms(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _tool_version(command: list[str]) -> str:
    try:
        output = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (output.stdout + output.stderr).strip().splitlines()
    return text[0].strip() if text else "?"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"## SIP throughput: Kamailio alone vs the tawasol stack ({results['machine']})",
        "",
        f"{results['versions']}. Short calls (answered at once, BYE after "
        f"{results['options']['talk_ms']} ms), UDP on 127.0.0.1, SIPp caller and carrier on "
        f"the same cores. Clean = a {results['options']['window_s']:g}-second window with no "
        f"failed call, retransmissions under {MAX_RETRANSMISSIONS:.1%} of the calls and the "
        "caller keeping the pace. Kamailio: "
        f"{results['options']['children']} UDP workers, {results['options']['shm_mb']} MB "
        "shared memory, in both setups; memory manager "
        f"{results['options'].get('bare_memory_manager', MEMORY_MANAGER)} alone, "
        f"{MEMORY_MANAGER} for tawasol, whose Kamailio runs at nice {Settings().sip_nice} "
        "below the brain, as `tawasol up` runs it."
        + (
            f" Brain experiments: {', '.join(results['options']['experiments'])}."
            if results["options"]["experiments"]
            else ""
        )
        + (
            f" Edge run directory (event spool) under {results['options']['edge_run_dir']}."
            if results["options"]["edge_run_dir"]
            else ""
        ),
        "",
        "| setup | highest clean rate | CPU at that rate, cores: Kamailio / brain / SIPp / "
        "other / machine | CPU per call (Kamailio + brain) | INVITE -> 200 at "
        f"{results['options']['latency_rate']} calls/s, p50 / p99 (SIPp: whole ms) |",
        "|---|---:|---|---:|---|",
    ]
    for key in ("bare", "tawasol"):
        setup = results.get(key)
        if not setup:
            continue
        best = setup["at_clean_rate"]
        latency = setup["latency"]
        if best:
            cpu = best["cpu"]
            per_call = cpu_per_call_ms(best)
            cpu_text = (
                f"{cpu.get('kamailio', 0):.2f} / "
                + (f"{cpu['brain']:.2f}" if "brain" in cpu else "-")
                + f" / {cpu.get('sipp', 0):.2f} / {cpu.get('other', 0):.2f} / "
                f"{cpu.get('machine', 0):.2f}"
            )
            rate_text = f"{best['rate']:,} calls/s"
            per_call_text = f"{per_call:.2f} ms"
        else:
            cpu_text, rate_text, per_call_text = "-", "none clean", "-"
        lines.append(
            f"| {setup['label']} | {rate_text} | {cpu_text} | {per_call_text} | "
            f"{_ms(latency['answer_p50_ms'])} / {_ms(latency['answer_p99_ms'])} ms |"
        )
    ratio = results.get("ratio")
    if ratio is not None:
        lines += ["", f"**tawasol / bare = {ratio:.2f}** (target: at least 0.6)."]
    tawasol = results.get("tawasol")
    if tawasol:
        latency = tawasol["latency"]
        decision = latency["decision"]
        lines += [
            "",
            f"Decision latency at {results['options']['latency_rate']} calls/s "
            f"({'clean' if latency['clean'] else 'NOT clean'} window), target p99 under 5 ms:",
            "",
            "| measured | p50 | p99 | samples |",
            "|---|---:|---:|---:|",
            f"| inside the brain (`POST /sip/v1/authorize` in the ASGI app) | "
            f"{_ms(decision.get('p50_us', 0) / 1000, 2)} ms | "
            f"{_ms(decision.get('p99_us', 0) / 1000, 2)} ms | {decision.get('count', 0):,} |",
            f"| as an edge waits for it (probe on a kept connection, 20/s) | "
            f"{_ms(latency['probe_p50_ms'], 2)} ms | {_ms(latency['probe_p99_ms'], 2)} ms | "
            f"{latency['probe_count']:,} |",
        ]
    lines += steps_table(results, ("bare", "tawasol"))
    return "\n".join(lines)


def steps_table(results: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    """Markdown lines: every load step of the setups `keys` (the latency window first)."""
    lines = [
        "",
        "Every load step (rate in calls/s; retransmissions in % of the calls; CPU in cores):",
        "",
        "| setup | rate | calls | failed | retrans. | took | Kamailio | brain | SIPp | other |"
        " result |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key in keys:
        setup = results.get(key)
        if not setup:
            continue
        for step in [setup["latency"], *setup["steps"]]:
            cpu = step["cpu"]
            lines.append(
                f"| {key} ({step['purpose']}) | {step['rate']:,} | {step['calls']:,} | "
                f"{step['failed']:,} | {step['retransmissions'] / max(step['calls'], 1):.2%} | "
                f"{step['elapsed_s']:.1f} s | {cpu.get('kamailio', 0):.2f} | "
                + (f"{cpu['brain']:.2f}" if "brain" in cpu else "-")
                + f" | {cpu.get('sipp', 0):.2f} | {cpu.get('other', 0):.2f} | "
                f"{'clean' if step['clean'] else 'not clean'} |"
            )
    return lines


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def prepare_run() -> None:
    """Refuse to start without SIPp and Kamailio; make SIGTERM (a CI timeout, run_all.py
    giving up) stop every process the run started."""
    for tool in ("sipp", "kamailio"):
        if not (shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK)):
            raise SystemExit(f"{tool} is not installed: see docs/sip-edge.md")
    signal.signal(signal.SIGTERM, _interrupt)


def run_identity() -> dict[str, str]:
    """The machine, the time and the tools' versions, for a report's heading."""
    return {
        "machine": f"{platform.node()}, {os.cpu_count()} cores, loopback, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "versions": f"{_tool_version([_stack.kamailio_binary(), '-v'])}, "
        f"{_tool_version([_stack.SIPP, '-v'])}, Python {platform.python_version()}",
    }


def measure_setups(
    names: list[str],
    make_world: Callable[[str, SippCarrier], World],
    measure_world: Callable[[World, float], dict[str, Any]],
    scenarios: dict[str, Path],
    work: Path,
    ends_at: float,
) -> dict[str, Any]:
    """Each setup in turn, with an equal share of the time left until `ends_at` (monotonic):
    its carrier and world started, measured up to its deadline, and stopped whatever happens."""
    results: dict[str, Any] = {}
    for index, name in enumerate(names):
        remaining = ends_at - time.monotonic()
        deadline = time.monotonic() + remaining / (len(names) - index)
        carrier = SippCarrier(scenarios["carrier_answer"], free_port(), work)
        world = make_world(name, carrier)
        try:
            results[name] = measure_world(world, deadline)
        finally:
            carrier.stop()
            world.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=10)
    parser.add_argument("--talk-ms", type=int, default=200)
    parser.add_argument("--children", type=int, default=8, help="Kamailio UDP workers (both)")
    parser.add_argument("--shm-mb", type=int, default=1024, help="Kamailio shared memory (both)")
    parser.add_argument(
        "--bare-memory-manager",
        choices=("tlsf", "qm", "fm"),
        default=MEMORY_MANAGER,
        help=f"Kamailio alone's allocator (-x/-X); the tawasol edge always uses {MEMORY_MANAGER}",
    )
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--bare-start", type=int, default=1000)
    parser.add_argument("--tawasol-start", type=int, default=200)
    parser.add_argument("--max-rate", type=int, default=16000)
    parser.add_argument("--fine-steps", type=int, default=3)
    parser.add_argument("--latency-rate", type=int, default=200)
    parser.add_argument("--budget-s", type=float, default=480, help="for the whole run")
    parser.add_argument("--only", choices=("bare", "tawasol"), default=None)
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        help="brain experiment for the tawasol setup (see bench/_brain_server.py)",
    )
    parser.add_argument(
        "--edge-run-dir",
        type=Path,
        default=None,
        help="put the edge's run directory (and event spool) under this directory, "
        "e.g. /dev/shm (tmpfs)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()

    prepare_run()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="tawasol-bench-"))
    edge_base = Path(tempfile.mkdtemp(prefix="tawasol-bench-edge-", dir=options.edge_run_dir))
    scenarios = write_scenarios(work / "scenarios", talk_ms=options.talk_ms)
    results: dict[str, Any] = run_identity() | {
        "options": {
            "window_s": options.window_s,
            "talk_ms": options.talk_ms,
            "children": options.children,
            "shm_mb": options.shm_mb,
            "bare_memory_manager": options.bare_memory_manager,
            "subscribers": options.subscribers,
            "latency_rate": options.latency_rate,
            "experiments": options.experiment,
            "edge_run_dir": str(options.edge_run_dir) if options.edge_run_dir else None,
        },
    }
    setups = [options.only] if options.only else ["bare", "tawasol"]

    def make_world(name: str, carrier: SippCarrier) -> World:
        common: dict[str, Any] = {
            "work": work,
            "scenarios": scenarios,
            "carrier": carrier,
            "children": options.children,
            "shared_memory_mb": options.shm_mb,
        }
        if name == "bare":
            return BareWorld(**common, memory_manager=options.bare_memory_manager)
        return TawasolWorld(
            **common,
            subscribers=options.subscribers,
            experiments=options.experiment,
            edge_run_dir=edge_base / "edge",
        )

    def measure_world(world: World, deadline: float) -> dict[str, Any]:
        start = options.bare_start if world.name == "bare" else options.tawasol_start
        return measure(world, options=options, start=start, deadline=deadline)

    try:
        ends_at = started + options.budget_s
        results |= measure_setups(setups, make_world, measure_world, scenarios, work, ends_at)
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(edge_base, ignore_errors=True)
        else:
            log(f"work directories kept: {work} {edge_base}")
    bare_rate = (results.get("bare") or {}).get("clean_rate")
    tawasol_rate = (results.get("tawasol") or {}).get("clean_rate")
    results["ratio"] = tawasol_rate / bare_rate if bare_rate and tawasol_rate else None
    report(results, markdown, json_path=options.json, started=started)


def report(
    results: dict[str, Any],
    render: Callable[[dict[str, Any]], str],
    *,
    json_path: Path | None,
    started: float,
) -> None:
    """The run's duration into `results`, its Markdown on stdout, its figures in `json_path`."""
    results["elapsed_s"] = time.monotonic() - started
    print(render(results))
    if json_path:
        json_path.write_text(json.dumps(results, indent=2, default=str))
    log(f"done in {results['elapsed_s']:.0f}s")


if __name__ == "__main__":
    main()
