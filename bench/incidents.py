"""Incident detection on a seeded synthetic week: delay, classification accuracy, false alarms.

Replays seven days of traffic through `IncidentDetector` (no network, no clock: simulated time)
with a daily rhythm (quiet nights at a tenth of the day's rate), destinations at 50 and at 1
call per minute at their peak, two carriers sharing each destination, a background of network
failures (3-8% per carrier and destination, with short bursts of 2-3 failures), and injected:

- carrier cuts: a carrier's gateways stop answering; probes every 5 s, marked down after 3
  unanswered ones (the default `ProbeThresholds`); calls in flight fail over;
- partial capacity: a carrier answers half of its calls with congestion;
- range-holder outages: every call to one range holder fails on both carriers.

Prints, in Markdown: detection delay p50/p95 per kind of outage (from the first unanswered
probe for cuts, from the start of the fault otherwise), the share of outages classified right
(carrier vs destination) within 5 minutes where at least 5 calls were made to the scope in
that time, false incidents per destination per week, and the confusion table (kind of outage
injected x first finding: carrier, destination, late, missed). Run: `.venv/bin/python
bench/incidents.py [--seed N] [--debug]` (`--debug`: each outage and false finding on stderr);
about 40 s of CPU.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
from tawasol.domain.incident_detection import FindingKind, IncidentDetector
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageScope

START = datetime(2026, 11, 2, tzinfo=UTC)
WEEK_S = 7 * 24 * 3600
EVALUATE_EVERY_S = 5
PROBE_INTERVAL_S = 5
DOWN_AFTER = 3
CLASSIFY_WITHIN = timedelta(minutes=5)
MIN_CALLS_TO_CLASSIFY = 5

CARRIERS = ("flat", "per_minute")
# (scope, peak calls per minute)
DESTINATIONS: tuple[tuple[OutageScope, float], ...] = (
    (OutageScope("MA", NumberKind.MOBILE, "Maroc Telecom"), 50.0),
    (OutageScope("MA", NumberKind.MOBILE, "Orange"), 20.0),
    (OutageScope("MA", NumberKind.MOBILE, "Inwi"), 10.0),
    (OutageScope("MA", NumberKind.FIXED, "Maroc Telecom"), 5.0),
    (OutageScope("TN", NumberKind.MOBILE, "Ooredoo"), 1.0),
    (OutageScope("TN", NumberKind.FIXED, "Tunisie Telecom"), 1.0),
)


@dataclass
class Fault:
    kind: str  # "cut", "partial", "range_holder"
    start_s: float
    end_s: float
    carrier: str | None = None
    scope: OutageScope | None = None
    detected_at_s: float | None = None
    first_kind: FindingKind | None = None
    calls_in_classification_window: int = 0

    @property
    def expected(self) -> FindingKind:
        return FindingKind.DESTINATION if self.kind == "range_holder" else FindingKind.CARRIER

    def active(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


def daily_rate(peak_per_min: float, t: float) -> float:
    """Calls per second at time t: a day curve from a tenth of the peak at 04:00 to the peak."""
    hour = (t / 3600) % 24
    shape = 0.55 - 0.45 * math.cos((hour - 4) / 24 * 2 * math.pi)
    return peak_per_min / 60 * shape


def inject_faults(rng: random.Random) -> list[Fault]:
    faults: list[Fault] = []
    for day in range(7):
        base = day * 86400
        kinds = ["cut", "partial", "range_holder"]
        rng.shuffle(kinds)
        for slot, kind in enumerate(kinds):
            start = base + slot * 8 * 3600 + rng.uniform(3600, 6 * 3600)
            length = rng.uniform(20 * 60, 90 * 60)
            if kind == "range_holder":
                scope = rng.choice([d for d, _ in DESTINATIONS])
                faults.append(Fault(kind, start, start + length, scope=scope))
            else:
                faults.append(Fault(kind, start, start + length, carrier=rng.choice(CARRIERS)))
    return faults


def run(seed: int, *, debug: bool = False) -> dict[str, object]:
    rng = random.Random(seed)
    faults = inject_faults(rng)
    detector = IncidentDetector()
    noise = {
        (carrier, scope): rng.uniform(0.03, 0.08)
        for carrier in CARRIERS
        for scope, _ in DESTINATIONS
    }
    burst_left: dict[tuple[str, OutageScope], int] = {}

    # Event queue: (time, order, kind, payload)
    queue: list[tuple[float, int, str, object]] = []
    order = 0
    for index, (_, peak) in enumerate(DESTINATIONS):
        heapq.heappush(queue, (rng.expovariate(daily_rate(peak, 0)), order, "call", index))
        order += 1
    for t in range(0, WEEK_S, EVALUATE_EVERY_S):
        heapq.heappush(queue, (float(t), order, "tick", None))
        order += 1

    down: dict[str, bool] = dict.fromkeys(CARRIERS, False)
    failed_probes: dict[str, int] = dict.fromkeys(CARRIERS, 0)
    first_unanswered: dict[int, float] = {}
    open_keys: dict[tuple[str, str | None, OutageScope | None], float] = {}
    false_incidents = 0

    def fault_for(carrier: str, scope: OutageScope, t: float) -> str | None:
        for fault in faults:
            if not fault.active(t):
                continue
            if fault.kind == "range_holder" and fault.scope == scope:
                return "range_holder"
            if fault.carrier == carrier:
                return fault.kind
        return None

    while queue:
        t, _, kind, payload = heapq.heappop(queue)
        if t >= WEEK_S:
            break
        at = START + timedelta(seconds=t)
        if kind == "call":
            assert isinstance(payload, int)
            scope, peak = DESTINATIONS[payload]
            rate = max(daily_rate(peak, t), 1e-4)
            heapq.heappush(queue, (t + rng.expovariate(rate), order, "call", payload))
            order += 1
            for fault in faults:
                early = fault.active(t) and fault.start_s + CLASSIFY_WITHIN.total_seconds() > t
                if early and (fault.scope == scope or fault.scope is None):
                    fault.calls_in_classification_window += 1
            hunt = [c for c in rng.sample(CARRIERS, 2) if not down[c]]
            call_failed = True
            for carrier in hunt:
                fault = fault_for(carrier, scope, t)
                if fault in ("cut", "range_holder"):
                    failed = True
                elif fault == "partial":
                    failed = rng.random() < 0.5
                else:
                    key = (carrier, scope)
                    if burst_left.get(key, 0) > 0:
                        burst_left[key] -= 1
                        failed = True
                    else:
                        failed = rng.random() < noise[key]
                        if failed and rng.random() < 0.05:
                            burst_left[key] = rng.randint(1, 2)
                detector.observe_attempt(carrier=carrier, scope=scope, failed=failed, at=at)
                if not failed:
                    call_failed = False
                    break
            detector.observe_call(scope=scope, failed=call_failed, at=at)
        else:
            if int(t) % PROBE_INTERVAL_S == 0:
                for carrier in CARRIERS:
                    cut = any(
                        f.kind == "cut" and f.carrier == carrier and f.active(t) for f in faults
                    )
                    if cut:
                        for index, fault in enumerate(faults):
                            if fault.kind == "cut" and fault.carrier == carrier and fault.active(t):
                                first_unanswered.setdefault(index, t)
                        failed_probes[carrier] += 1
                        if failed_probes[carrier] == DOWN_AFTER and not down[carrier]:
                            down[carrier] = True
                            detector.observe_carrier_event(
                                CarrierEvent(carrier, at, CarrierEventKind.DOWN, "probes")
                            )
                    else:
                        failed_probes[carrier] = 0
                        if down[carrier]:
                            down[carrier] = False
                            detector.observe_carrier_event(
                                CarrierEvent(carrier, at, CarrierEventKind.UP, "probes")
                            )
            findings = detector.findings(at)
            current = {f.key: f for f in findings}
            for key, finding in current.items():
                if key in open_keys:
                    continue
                open_keys[key] = t
                matched = False
                for fault in faults:
                    # A finding belongs to a fault that is active, or ended less than the
                    # recovery hold plus a margin ago (the detector is still clearing it).
                    if not fault.start_s <= t < fault.end_s + 15 * 60:
                        continue
                    same_carrier = finding.carrier is not None and finding.carrier == fault.carrier
                    same_scope = (
                        fault.scope is not None
                        and finding.scope is not None
                        and (finding.scope.country == fault.scope.country)
                    )
                    if same_carrier or same_scope:
                        matched = True
                        if fault.detected_at_s is None and t >= fault.start_s:
                            fault.detected_at_s = t
                            fault.first_kind = finding.kind
                if not matched:
                    false_incidents += 1
                    if debug:
                        print("false", t, finding, file=sys.stderr)
            for key in set(open_keys) - set(current):
                del open_keys[key]

    delays: dict[str, list[float]] = {"cut": [], "partial": [], "range_holder": []}
    right = judged = missed = 0
    for index, fault in enumerate(faults):
        if fault.detected_at_s is None:
            missed += 1
            continue
        origin = first_unanswered.get(index, fault.start_s)
        delays[fault.kind].append(fault.detected_at_s - origin)
        if fault.calls_in_classification_window >= MIN_CALLS_TO_CLASSIFY or fault.kind == "cut":
            judged += 1
            in_time = fault.detected_at_s - fault.start_s <= CLASSIFY_WITHIN.total_seconds()
            right += int(in_time and fault.first_kind is fault.expected)
    return {
        "faults": len(faults),
        "missed": missed,
        "delays": delays,
        "judged": judged,
        "right": right,
        "false_per_destination_week": false_incidents / len(DESTINATIONS),
        "fault_list": faults,
    }


def verdict(fault: Fault) -> str:
    """How one injected outage was first classified: carrier, destination, or missed; "late"
    when the first finding came more than 5 minutes after the fault began."""
    if fault.detected_at_s is None or fault.first_kind is None:
        return "missed"
    if fault.detected_at_s - fault.start_s > CLASSIFY_WITHIN.total_seconds():
        return f"late {fault.first_kind.value}"
    return fault.first_kind.value


def print_confusion(faults: list[Fault], *, debug: bool = False) -> None:
    """The confusion table: injected kind of outage x first classification."""
    columns = ["carrier", "destination", "late carrier", "late destination", "missed"]
    print("\n| injected \\ first finding | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for kind in ("cut", "partial", "range_holder"):
        counts = {column: 0 for column in columns}
        for fault in faults:
            if fault.kind == kind:
                counts[verdict(fault)] += 1
        print(f"| {kind} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    if debug:
        for fault in faults:
            print(
                f"{fault.kind:13} {fault.carrier or fault.scope} start={fault.start_s / 3600:6.2f}h"
                f" hour={(fault.start_s / 3600) % 24:5.2f} calls5min="
                f"{fault.calls_in_classification_window:4} -> {verdict(fault)}"
                f" after {(fault.detected_at_s or 0) - fault.start_s:.0f}s",
                file=sys.stderr,
            )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--debug", action="store_true", help="each outage and false finding")
    args = parser.parse_args(argv)
    result = run(args.seed, debug=args.debug)
    delays = result["delays"]
    assert isinstance(delays, dict)
    print(f"# Incident detection, synthetic week (seed {args.seed})\n")
    print("| outage | injected | detection delay p50 | p95 |")
    print("|---|---|---|---|")
    for kind, values in delays.items():
        print(
            f"| {kind} | {len(values)} | {percentile(values, 0.5):.0f} s | "
            f"{percentile(values, 0.95):.0f} s |"
        )
    judged, right = result["judged"], result["right"]
    assert isinstance(judged, int) and isinstance(right, int)
    print(f"\n- outages injected: {result['faults']}, never detected: {result['missed']}")
    print(
        f"- classified right (carrier vs destination) within 5 min: {right}/{judged}"
        f" = {100 * right / max(judged, 1):.1f}%"
    )
    print(f"- false incidents per destination per week: {result['false_per_destination_week']:.2f}")
    faults = result["fault_list"]
    assert isinstance(faults, list)
    print_confusion(faults, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
