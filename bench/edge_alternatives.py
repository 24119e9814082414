"""How the SIP edge gets its decision: three ways measured in one run, on this machine.

- "http": the tawasol stack as `tawasol up` runs it (bench/sip_throughput.py's `TawasolWorld`):
  each Kamailio worker asks the brain `POST /sip/v1/authorize` on its kept HTTP connection and
  waits for the answer.
- "evapi": the same brain and edge, except that the INVITE's transaction is suspended and its
  decision asked asynchronously through Kamailio's `evapi` socket; the brain
  (bench/_edge_alternatives/brain_evapi.py) answers on it and `t_continue` resumes the call
  (bench/_edge_alternatives/evapi_edge.py).
- "in_kamailio": the same brain and edge, except that every Kamailio process runs the decision
  core itself (app_python3), built before the fork (bench/_edge_alternatives/in_kamailio_edge.py).
Each variant's script says what it gives up. Call events always go to the brain over HTTP and
are filed in the CDRs.

Each variant in turn (its own brain, database and edge, seeded alike), measured as
bench/sip_throughput.py measures its "tawasol" setup, with its functions: a warm-up, one
`--window-s` window at 200 calls/s (CPU and INVITE -> 200 OK latency, SIPp RTD in whole ms),
the same coarse-then-fine search for the highest clean rate (from 400 calls/s: its first window
gives the CPU at 400 calls/s; one more window is run if the search skipped that rate). CPU per
call = (Kamailio + brain) CPU, from /proc, / rate. Loopback only; the whole run is bounded by
`--budget-s` (the search of each variant by its share) and stops every process it started.
Prints one Markdown table (then every load step); `--json PATH` also writes the figures.

    flock /tmp/tawasol-load.lock .venv/bin/python bench/edge_alternatives.py [--window-s 6]
        [--budget-s 420] [--only evapi] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sip_throughput as st  # bench/ is not a package: found through sys.path above
from _stack import (
    LOCALHOST,
    REALM,
    BrainProcess,
    FullStack,
    SippCarrier,
    free_port,
    write_scenarios,
)

VARIANTS_DIR = Path(__file__).resolve().parent / "_edge_alternatives"
VARIANTS = ("http", "evapi", "in_kamailio")
LATENCY_RATE = 200
CPU_RATES = (LATENCY_RATE, 400)
IN_KAMAILIO_CONFIG = "in_kamailio.json"  # read by in_kamailio_edge.py from the edge's run dir
log = st.log


# -- the variants' edges: the tawasol configuration with another app_python3 script ------------
@contextlib.contextmanager
def edge_variant(script: Path, *, evapi_port: int | None = None) -> Iterator[None]:
    """While the edge starts, `start_edge` writes the tawasol configuration with `script` as the
    app_python3 script and, given `evapi_port`, evapi loaded (netstrings, events to the script)."""
    from tawasol.adapters.sip import launcher
    from tawasol.adapters.sip.render import KEMI_SCRIPT

    render = launcher.render_config
    original = f'modparam("app_python3", "load", "{KEMI_SCRIPT}")'
    module = 'loadmodule "app_python3.so"'

    def render_variant(settings: Any, *, run_dir: Path) -> str:
        text = render(settings, run_dir=run_dir)
        if original not in text or module not in text:
            raise RuntimeError("the kamailio.cfg template changed: update edge_variant()")
        replacement = f'modparam("app_python3", "load", "{script}")'
        if evapi_port is not None:
            text = text.replace(module, f'loadmodule "evapi.so"\n{module}')
            replacement = (
                f'modparam("evapi", "bind_addr", "{LOCALHOST}:{evapi_port}")\n'
                'modparam("evapi", "netstring_format", 1)\n'
                'modparam("evapi", "event_callback", "ksr_evapi_event")\n' + replacement
            )
        return text.replace(original, f"# bench/edge_alternatives.py\n{replacement}")

    launcher.render_config = render_variant  # type: ignore[assignment]
    try:
        yield
    finally:
        launcher.render_config = render  # type: ignore[assignment]


def wait_for_log(edge: Any, text: str, *, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if text in Path(edge.log).read_text(errors="replace"):
                return True
        time.sleep(0.1)
    return False


@dataclass
class EvapiBrain(BrainProcess):
    """The brain started through brain_evapi.py: HTTP as usual, decisions over evapi too."""

    evapi_port: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        return super().env() | {
            "BENCH_EVAPI_HOST": LOCALHOST,
            "BENCH_EVAPI_PORT": str(self.evapi_port),
        }

    def command(self) -> list[str]:
        return [sys.executable, str(VARIANTS_DIR / "brain_evapi.py")]


@dataclass
class EvapiStack(FullStack):
    """The edge with evapi and evapi_edge.py; started once the brain is connected to it."""

    def start(self) -> EvapiStack:
        assert isinstance(self.brain, EvapiBrain)
        with edge_variant(VARIANTS_DIR / "evapi_edge.py", evapi_port=self.brain.evapi_port):
            super().start()
        if not wait_for_log(self.edge, "evapi:connection-new", timeout_s=10):
            self.stop()
            raise RuntimeError(f"the brain did not connect to evapi: see {self.edge.log}")
        return self


@dataclass
class InKamailioStack(FullStack):
    """The edge with in_kamailio_edge.py, its authorizer on the brain's database."""

    def start(self) -> InKamailioStack:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        settings = {"data_dir": str(self.brain.data_dir), "sip_realm": REALM}
        (self.run_dir / IN_KAMAILIO_CONFIG).write_text(json.dumps({"settings": settings}))
        with edge_variant(VARIANTS_DIR / "in_kamailio_edge.py"):
            super().start()
        if not wait_for_log(self.edge, "before the fork", timeout_s=5):
            log("warning: the in-Kamailio edge did not report its authorizer")
        return self


class HttpWorld(st.TawasolWorld):
    name = "http"
    label = "http: blocking HTTP decision per worker, kept connection (today)"


class EvapiWorld(st.TawasolWorld):
    name = "evapi"
    label = "evapi: transaction suspended, decision over evapi, t_continue"
    brain_class = EvapiBrain
    stack_class = EvapiStack


class InKamailioWorld(st.TawasolWorld):
    name = "in_kamailio"
    label = "in_kamailio: decision core inside Kamailio (app_python3)"
    stack_class = InKamailioStack


WORLDS: dict[str, type[st.TawasolWorld]] = {
    world.name: world for world in (HttpWorld, EvapiWorld, InKamailioWorld)
}


# -- the run --------------------------------------------------------------------------------------
def measure(world: st.World, options: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """sip_throughput.py's measure (warm-up, latency window, search), plus a window at each
    CPU rate the search did not visit."""
    result = st.measure(world, options=options, start=options.start, deadline=deadline)
    result["at_rate"] = {LATENCY_RATE: result["latency"]}
    for rate in CPU_RATES[1:]:
        found = next((s for s in result["steps"] if s["rate"] == rate), None)
        if found is None:
            step = st.run_step(world, rate=rate, window_s=options.window_s, purpose=f"cpu-{rate}")
            world.settle(after_failure=not step.clean)
            found = asdict(step) | {"clean": step.clean}
            result["steps"].append(found)
        result["at_rate"][rate] = found
    return result


def _per_call(step: dict[str, Any] | None) -> str:
    if not step:
        return "-"
    cpu = step["cpu"]
    kamailio, brain = (cpu.get(key, 0) / step["rate"] * 1000 for key in ("kamailio", "brain"))
    verdict = "" if step["clean"] else ", NOT clean"
    return f"{st.cpu_per_call_ms(step):.2f} ms ({kamailio:.2f} + {brain:.2f}{verdict})"


def markdown(results: dict[str, Any]) -> str:
    options = results["options"]
    lines = [
        f"## How the edge gets its decision: HTTP, evapi, in Kamailio ({results['machine']})",
        "",
        f"{results['versions']}. Short calls (407, INVITE with credentials, 200, ACK, BYE after "
        f"{options['talk_ms']} ms), UDP on 127.0.0.1, SIPp caller and carrier on the same "
        f"cores; Kamailio {options['children']} UDP workers, brain on SQLite with "
        f"{options['subscribers']:,} subscribers; {options['window_s']:g}-second windows. "
        "CPU per call = (Kamailio + brain) CPU / rate, shown as total (Kamailio + brain). "
        "Clean = no failed call, retransmissions under "
        f"{st.MAX_RETRANSMISSIONS:.1%} and the caller keeping the pace (sip_throughput.py).",
        "",
        "| variant | "
        + " | ".join(f"CPU per call at {rate} calls/s" for rate in CPU_RATES)
        + f" | INVITE -> 200 at {LATENCY_RATE} calls/s, p50 / p99 | highest clean rate |",
        "|---|" + "---|" * len(CPU_RATES) + "---|---:|",
    ]
    for key in VARIANTS:
        setup = results.get(key)
        if not setup:
            continue
        latency = setup["latency"]
        best = setup["clean_rate"]
        cells = [_per_call(setup["at_rate"].get(rate)) for rate in CPU_RATES]
        lines.append(
            f"| {setup['label']} | {' | '.join(cells)} | "
            f"{st._ms(latency['answer_p50_ms'])} / {st._ms(latency['answer_p99_ms'])} ms | "
            f"{f'{best:,} calls/s' if best else 'none clean'} |"
        )
    lines += st.steps_table(results, VARIANTS)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=6)
    parser.add_argument("--budget-s", type=float, default=420, help="for the whole run")
    parser.add_argument("--only", choices=VARIANTS, action="append", help="repeatable")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--talk-ms", type=int, default=200)
    parser.add_argument("--children", type=int, default=8, help="Kamailio UDP workers")
    parser.add_argument("--shm-mb", type=int, default=1024, help="Kamailio shared memory")
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--start", type=int, default=400, help="first rate of the search")
    parser.add_argument("--max-rate", type=int, default=16000)
    parser.add_argument("--fine-steps", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    options.latency_rate = LATENCY_RATE  # read by sip_throughput.measure
    st.prepare_run()

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="tawasol-edge-alt-"))
    scenarios = write_scenarios(work / "scenarios", talk_ms=options.talk_ms)
    results: dict[str, Any] = st.run_identity() | {
        "options": {
            key: getattr(options, key)
            for key in ("window_s", "budget_s", "talk_ms", "children", "subscribers", "start")
        },
    }

    def make_world(name: str, carrier: SippCarrier) -> st.World:
        (work / name).mkdir()
        return WORLDS[name](
            work=work / name,
            scenarios=scenarios,
            carrier=carrier,
            children=options.children,
            shared_memory_mb=options.shm_mb,
            subscribers=options.subscribers,
            experiments=[],
            edge_run_dir=work / name / "edge",
        )

    def measure_world(world: st.World, deadline: float) -> dict[str, Any]:
        return measure(world, options, deadline)

    names = [name for name in VARIANTS if not options.only or name in options.only]
    try:
        ends_at = started + options.budget_s
        results |= st.measure_setups(names, make_world, measure_world, scenarios, work, ends_at)
    finally:
        if options.keep:
            log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    st.report(results, markdown, json_path=options.json, started=started)


if __name__ == "__main__":
    main()
