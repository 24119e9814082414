"""The scaled mode's settings and start-up (issue 19): `live_counters=redis` with `redis_url`,
checked before anything starts, and two brains on one PostgreSQL database and one Redis
deciding the sample operator's calls over their decision APIs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_support import decide, edge_headers
from fastapi.testclient import TestClient
from sample_brain import NOW, TOKEN

from support.stack import free_port, tawasol_command
from support.stores import REDIS_URL, postgres_schema, redis_prefix
from tawasol.adapters.api.app import create_app
from tawasol.adapters.redis import RedisLiveCounters
from tawasol.adapters.store import migrate
from tawasol.composition import Brain, build_brain, build_live_counters
from tawasol.config import Settings
from tawasol.domain.errors import InvalidConfiguration, Unavailable
from tawasol.services.live_counters import InProcessLiveCounters
from tawasol.services.sample_operator import seed_sample_operator

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCALED: dict[str, Any] = {
    "live_counters": "redis",
    "redis_url": "redis://127.0.0.1:6379/0",
    "database_url": POSTGRES,
    "edge_reconcile_interval_s": 0,
}


def test_the_embedded_mode_keeps_the_counters_in_process(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    settings.check()
    assert isinstance(build_live_counters(settings), InProcessLiveCounters)


def test_scaled_settings_that_agree_pass_the_check(tmp_path: Path) -> None:
    Settings(data_dir=tmp_path, **SCALED).check()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"redis_url": ""}, "live_counters=redis needs redis_url"),
        ({"redis_url": "http://127.0.0.1:6379"}, "redis_url must be a redis://"),
        ({"database_url": None}, "share one PostgreSQL database"),
        ({"edge_reconcile_interval_s": 60}, "set edge_reconcile_interval_s=0"),
        ({"redis_timeout_ms": 1000, "brain_timeout_ms": 1000}, "redis_timeout_ms must be"),
        ({"live_counters": "in_process"}, "redis_url is set but live_counters is in_process"),
    ],
)
def test_given_contradictory_scaled_settings_then_refused_saying_what_to_change(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    settings = Settings(data_dir=tmp_path, **{**SCALED, **changes})
    with pytest.raises(InvalidConfiguration, match=message):
        settings.check()


@pytest.mark.parametrize("value", ["memcached", "", "REDIS"])
def test_given_an_unknown_counters_backend_then_the_settings_are_refused(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ValueError, match="live_counters"):
        Settings(data_dir=tmp_path, live_counters=value)


def test_given_redis_unreachable_when_the_brain_is_built_then_unavailable_names_redis(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path, **{**SCALED, "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    with pytest.raises(Unavailable, match="Redis did not answer"):
        build_brain(settings)


def test_given_redis_unreachable_when_serve_starts_then_it_stops_with_a_clear_error(
    tmp_path: Path,
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TAWASOL_")}
    env.update(
        TAWASOL_DATA_DIR=str(tmp_path),
        TAWASOL_LIVE_COUNTERS="redis",
        TAWASOL_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        TAWASOL_DATABASE_URL=POSTGRES,
        TAWASOL_EDGE_RECONCILE_INTERVAL_S="0",
        TAWASOL_API_PORT=str(free_port()),
    )
    done = subprocess.run(
        [tawasol_command(), "serve"], env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 4  # Unavailable: an outage, not a typo
    assert b"Redis did not answer" in done.stderr
    assert b"Traceback" not in done.stderr + done.stdout


# -- two brains, one PostgreSQL database, one Redis ---------------------------------------------
@pytest.fixture
def two_brains(tmp_path: Path) -> Iterator[tuple[Brain, Brain]]:
    with postgres_schema() as url, redis_prefix() as prefix:
        migrate(url)
        brains: list[Brain] = []
        try:
            for name in ("a", "b"):
                settings = Settings(
                    data_dir=tmp_path / name,
                    admin_token=TOKEN,
                    catalog_refresh_ms=0,
                    grant_key="one-grant-key-for-the-cluster-0123",
                    **{**SCALED, "database_url": url, "redis_url": REDIS_URL},
                    redis_key_prefix=prefix,
                )
                brains.append(build_brain(settings, clock=lambda: NOW))
                if name == "a":
                    seed_sample_operator(brains[0].catalog, now=NOW)
            yield brains[0], brains[1]
        finally:
            for brain in brains:
                brain.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_given_two_brains_when_a_one_call_subscriber_calls_through_each_then_one_call(
    two_brains: tuple[Brain, Brain],
) -> None:
    first, second = two_brains
    assert isinstance(first.live_counters, RedisLiveCounters)
    with (
        TestClient(create_app(first)) as one,
        TestClient(create_app(second)) as two,
    ):
        one.headers.update(edge_headers(first))
        two.headers.update(edge_headers(second))
        allowed = decide(one, user="amina", dialled="00212661234567", call_id="via-a")
        refused = decide(two, user="amina", dialled="00212661234567", call_id="via-b")
        assert allowed["allow"] is True
        assert refused["allow"] is False
        assert refused["reason"] == "concurrent_limit"
        assert first.authorizer.active_calls() == second.authorizer.active_calls() == 1

        second.authorizer.forget_call("via-a")  # its end reached the other brain
        again = decide(one, user="amina", dialled="00212661234567", call_id="via-a-2")
        assert again["allow"] is True


def test_on_sqlite_the_one_brain_runs_every_job_itself(tmp_path: Path) -> None:
    from sample_brain import sample_brain

    from tawasol.runtime.jobs import brain_runtime

    brain = sample_brain(tmp_path)
    try:
        names = brain_runtime(brain).job_names
    finally:
        brain.close()
    assert "cluster-leader" not in names
    assert {"carrier-probing", "carrier-monitor-tick", "edge-reconciliation"} <= set(names)


@pytest.mark.postgres
@pytest.mark.redis
def test_on_postgresql_the_cluster_jobs_wait_for_the_lock(
    two_brains: tuple[Brain, Brain],
) -> None:
    from tawasol.runtime.jobs import brain_runtime
    from tawasol.runtime.leadership import LeaderOnly

    runtime = brain_runtime(two_brains[0])
    assert runtime.job_names == ("edge-reconciliation", "cluster-leader")
    leader = next(job for job in runtime._jobs if isinstance(job, LeaderOnly))
    assert set(leader.job_names) == {
        "carrier-probing",
        "carrier-monitor-tick",
        "incident-detection",
        "notice-sender",
    }
