"""`make bench`: the in-process decision benchmark, then SIP throughput against bare Kamailio.

Runs bench/decision.py and bench/sip_throughput.py one after the other (each in its own
process, each bounded in time), prints their Markdown, then one table of the targets:
- the full stack at least 0.6 x bare Kamailio's clean calls per second;
- decision latency p99 under 5 ms at 200 calls/s;
- at least 20,000 in-process decisions per second per core (decision.py is single-threaded,
  so its service-level figure is per core).
Targets are reported, not asserted: the exit code is 0 unless a benchmark itself failed.

    .venv/bin/python bench/run_all.py [--budget-s 540] [any sip_throughput.py option after --]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SERVICE_ROW = re.compile(r"^\| service CallAuthorizer\.authorize[^|]*\| ([\d,]+) \|")


def run(command: list[str], *, timeout_s: float) -> str:
    """Run a benchmark, its stderr (progress) passed through; return its stdout."""
    print(f"$ {' '.join(command)}", file=sys.stderr, flush=True)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.terminate()  # sip_throughput.py stops what it started on SIGTERM
        try:
            output, _ = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        raise SystemExit(f"{command[1]} did not finish within {timeout_s:.0f}s") from None
    if process.returncode != 0:
        raise SystemExit(f"{command[1]} failed with exit code {process.returncode}")
    return output


def verdict(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "**no**")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=540, help="for both benchmarks")
    parser.add_argument("sip_options", nargs="*", help="passed to sip_throughput.py")
    options = parser.parse_args()
    started = time.monotonic()

    decision_md = run(
        [sys.executable, str(BENCH_DIR / "decision.py")], timeout_s=min(120, options.budget_s)
    )
    remaining = options.budget_s - (time.monotonic() - started)
    with tempfile.TemporaryDirectory(prefix="tawasol-bench-json-") as directory:
        figures_path = Path(directory) / "sip.json"
        sip_md = run(
            [
                sys.executable,
                str(BENCH_DIR / "sip_throughput.py"),
                "--budget-s",
                f"{max(60.0, remaining - 60):.0f}",  # leaves time to start and stop things
                "--json",
                str(figures_path),
                *options.sip_options,
            ],
            timeout_s=remaining,
        )
        figures = json.loads(figures_path.read_text())

    per_second = next(
        (
            int(match.group(1).replace(",", ""))
            for line in decision_md.splitlines()
            if (match := SERVICE_ROW.match(line))
        ),
        None,
    )
    ratio = figures.get("ratio")
    tawasol = figures.get("tawasol") or {}
    latency = tawasol.get("latency") or {}
    inside_p99 = (latency.get("decision") or {}).get("p99_us")
    inside_p99_ms = inside_p99 / 1000 if inside_p99 is not None else None
    probe_p99_ms = latency.get("probe_p99_ms")
    bare_rate = (figures.get("bare") or {}).get("clean_rate")
    tawasol_rate = tawasol.get("clean_rate")

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} ms"

    print(decision_md.rstrip())
    print()
    print(sip_md.rstrip())
    print()
    print(f"## Targets (reported, not asserted; {figures['machine']})")
    print()
    print("| target | measured | met |")
    print("|---|---|---|")
    print(
        "| full stack >= 0.6 x bare Kamailio's clean calls/s | "
        + (f"{ratio:.2f} ({tawasol_rate:,} / {bare_rate:,} calls/s)" if ratio is not None else "-")
        + f" | {verdict(None if ratio is None else ratio >= 0.6)} |"
    )
    print(
        f"| decision p99 < 5 ms at {figures['options']['latency_rate']} calls/s | "
        f"{ms(inside_p99_ms)} inside the brain, {ms(probe_p99_ms)} as the edge waits | "
        f"{verdict(None if inside_p99_ms is None else inside_p99_ms < 5)} inside, "
        f"{verdict(None if probe_p99_ms is None else probe_p99_ms < 5)} at the edge |"
    )
    print(
        "| >= 20,000 in-process decisions/s per core (service level) | "
        + (f"{per_second:,}/s" if per_second is not None else "-")
        + f" | {verdict(None if per_second is None else per_second >= 20_000)} |"
    )
    print()
    print(f"Total: {time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()
