"""How long decisions take inside the brain: a bounded ring of recent timings.

The SIP edge waits for every decision, so its latency is the brain's most important figure.
Each `POST /sip/v1/authorize` records the time spent deciding (from the parsed request to the
answer's model, the part the brain controls); `GET /sip/v1/stats` reports percentiles over the
last `capacity` decisions. Recording costs a perf_counter call and an array write.
"""

from __future__ import annotations

import threading
from array import array


class LatencyRing:
    """The last `capacity` durations, in nanoseconds."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._samples = array("q", [0]) * capacity
        self._capacity = capacity
        self._count = 0
        self._lock = threading.Lock()

    def record(self, nanoseconds: int) -> None:
        with self._lock:
            self._samples[self._count % self._capacity] = nanoseconds
            self._count += 1

    def summary(self) -> dict[str, float | int | None]:
        with self._lock:
            held = min(self._count, self._capacity)
            ordered = sorted(self._samples[:held])
            total = self._count
        if not ordered:
            return {"decisions": total, "window": 0, "p50_us": None, "p99_us": None, "max_us": None}

        def rank(fraction: float) -> float:
            # Nearest rank: the smallest sample with at least `fraction` of them at or below it.
            index = max(0, -(-int(fraction * len(ordered) * 1000) // 1000) - 1)
            return round(ordered[min(index, len(ordered) - 1)] / 1000, 1)

        return {
            "decisions": total,
            "window": len(ordered),
            "p50_us": rank(0.50),
            "p99_us": rank(0.99),
            "max_us": round(ordered[-1] / 1000, 1),
        }
