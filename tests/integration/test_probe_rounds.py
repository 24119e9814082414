"""Probing rounds right after a start (issue 10, fault 6): the first rounds follow each other
at once, so carriers' states are confirmed in seconds, then one round per interval."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tawasol.adapters.probing import ProbeResult, probe_forever
from tawasol.domain.carriers import Carrier


class CountingProber:
    """A prober whose every round finds the carrier silent; stops the loop after `rounds`."""

    def __init__(self, stop: asyncio.Event, rounds: int) -> None:
        self.stop = stop
        self.rounds = rounds
        self.done = 0

    async def probe_round(self, carriers: Sequence[Carrier]) -> list[ProbeResult]:
        self.done += 1
        if self.done >= self.rounds:
            self.stop.set()
        return [ProbeResult(carrier="atlas", answered=False, detail="no answer")]


def _run(*, quick_rounds: int, rounds: int) -> tuple[int, list[ProbeResult]]:
    async def main() -> tuple[int, list[ProbeResult]]:
        stop = asyncio.Event()
        prober = CountingProber(stop, rounds)
        results: list[ProbeResult] = []
        # An hour between rounds: only the quick start-up rounds can come within 2 s.
        loop = probe_forever(
            prober=prober,  # type: ignore[arg-type]
            carriers=list,
            on_result=results.append,
            interval_s=3600,
            stop=stop,
            quick_rounds=quick_rounds,
        )
        try:
            await asyncio.wait_for(loop, timeout=2)
        except TimeoutError:
            stop.set()
        return prober.done, results

    return asyncio.run(main())


def test_given_a_start_then_the_first_rounds_follow_each_other_at_once() -> None:
    done, results = _run(quick_rounds=3, rounds=3)
    assert done == 3  # three missed probes: a dead carrier is down within seconds of a start
    assert [result.answered for result in results] == [False, False, False]


def test_after_the_quick_rounds_the_interval_applies() -> None:
    done, _ = _run(quick_rounds=2, rounds=3)
    assert done == 2  # the third round waits the hour; the 2 s bound ends the test first
