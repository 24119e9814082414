"""Background jobs run once across brains sharing PostgreSQL (issue 19): the brain holding the
advisory lock runs them; kill it and another takes over within a bounded time."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.stack import wait_until
from support.stores import postgres_schema
from tawasol.adapters.store.advisory_lock import PostgresAdvisoryLock, advisory_key
from tawasol.runtime import Runtime
from tawasol.runtime.leadership import LeaderOnly

# A brain's runtime reduced to one cluster job that writes its pid ten times a second; the
# process lives at most `lifetime` seconds whatever the test does.
RUNTIME_SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys
    from tawasol.adapters.store.advisory_lock import PostgresAdvisoryLock
    from tawasol.runtime import Runtime
    from tawasol.runtime.leadership import LeaderOnly

    url, out, lifetime = sys.argv[1], sys.argv[2], float(sys.argv[3])

    class Tick:
        name = "tick"

        async def run(self, stop):
            while not stop.is_set():
                with open(out, "a") as handle:
                    handle.write(f"{os.getpid()}\\n")
                try:
                    await asyncio.wait_for(stop.wait(), 0.1)
                except TimeoutError:
                    pass

    async def main():
        lock = PostgresAdvisoryLock(url)
        runtime = Runtime([LeaderOnly([Tick()], lock=lock, retry_s=0.2, check_s=0.2)])
        await runtime.start()
        await asyncio.sleep(lifetime)
        await runtime.stop()

    asyncio.run(main())
    """
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def database() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


def _writers(out: Path, since_line: int = 0) -> list[int]:
    if not out.exists():
        return []
    return [int(line) for line in out.read_text().split()[since_line:]]


def _runtime_process(url: str, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", RUNTIME_SCRIPT, url, str(out), "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_given_two_brains_then_one_runs_the_jobs_and_the_other_takes_over_when_it_is_killed(
    database: str, tmp_path: Path
) -> None:
    out = tmp_path / "ticks"
    first = _runtime_process(database, out)
    second: subprocess.Popen[bytes] | None = None
    try:
        assert wait_until(lambda: first.pid in _writers(out), 20), "the first brain never led"
        second = _runtime_process(database, out)
        time.sleep(2.0)  # the second has tried to take the lock several times by now
        assert set(_writers(out)) == {first.pid}

        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        seen = len(_writers(out))
        assert wait_until(lambda: second.pid in _writers(out, seen), 10), "nobody took over"
        assert time.monotonic() - killed_at < 10
        time.sleep(0.5)
        assert set(_writers(out, seen)) == {second.pid}
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


class _Counting:
    name = "counting"

    def __init__(self) -> None:
        self.rounds = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.rounds += 1
            await asyncio.sleep(0.02)


def test_given_the_leader_stops_then_the_other_runtime_leads_and_jobs_never_overlap(
    database: str,
) -> None:
    async def scenario() -> None:
        jobs = [_Counting(), _Counting()]
        leaders = [
            LeaderOnly([job], lock=PostgresAdvisoryLock(database), retry_s=0.05, check_s=0.05)
            for job in jobs
        ]
        runtimes = [Runtime([leader]) for leader in leaders]
        for runtime in runtimes:
            await runtime.start()
        for _ in range(200):
            if any(leader.leading for leader in leaders):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        first = next(index for index, leader in enumerate(leaders) if leader.leading)
        other = 1 - first
        assert not leaders[other].leading
        assert jobs[first].rounds > 0 and jobs[other].rounds == 0

        await runtimes[first].stop()  # the lock is released on stop
        for _ in range(200):
            if leaders[other].leading:
                break
            await asyncio.sleep(0.02)
        assert leaders[other].leading
        await asyncio.sleep(0.2)
        assert jobs[other].rounds > 0
        await runtimes[other].stop()

    asyncio.run(scenario())


def test_the_lock_key_differs_per_schema_and_ignores_the_password() -> None:
    base = "postgresql+psycopg://postgres:secret@127.0.0.1:5432/test"
    assert advisory_key(base) == advisory_key(base.replace("secret", "other"))
    assert advisory_key(base) != advisory_key(base + "?options=-csearch_path%3Dt_1")
    assert advisory_key(base) != advisory_key(base, "billing")


def test_given_postgres_unreachable_then_the_lock_is_simply_not_taken(tmp_path: Path) -> None:
    from support.stack import free_port

    lock = PostgresAdvisoryLock(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test")
    try:
        assert lock.try_acquire() is False
        assert lock.held() is False
    finally:
        lock.close()
