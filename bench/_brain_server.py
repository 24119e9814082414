"""`tawasol serve` with a stopwatch on the decision API, for bench/sip_throughput.py.

The brain publishes no latency figure of its own, so the benchmark starts it through this
script: the same wiring as `tawasol serve` (Settings from TAWASOL_* variables, `build_brain`,
`create_app`, uvicorn with the same options), with one pure ASGI wrapper around the app that
times every `POST /sip/v1/authorize` from the moment uvicorn hands the request to the
application until the last byte of the answer is handed back (JSON validation, the decision,
serialisation; not the HTTP parsing, nor the time the request waited for the event loop).
The wrapper costs ~2 µs per request. `GET /_bench/decisions` returns p50/p99/max in µs and the
count since the last `?reset=1`.

    TAWASOL_DATA_DIR=... .venv/bin/python bench/_brain_server.py
"""

from __future__ import annotations

import json
import os
import sys
import time
from array import array
from typing import Any

from tawasol.adapters.api.schemas import CallEventsIn

_TIMED_PATH = "/sip/v1/authorize"
_REPORT_PATH = "/_bench/decisions"


class DecisionStopwatch:
    """ASGI middleware: per-request time of the decision endpoint, kept in memory."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.samples_ns = array("q")

    def reset(self) -> None:
        self.samples_ns = array("q")

    def report(self) -> dict[str, float | int]:
        samples = sorted(self.samples_ns)
        if not samples:
            return {"count": 0}

        def at(fraction: float) -> float:
            return samples[min(len(samples) - 1, int(len(samples) * fraction))] / 1000

        return {
            "count": len(samples),
            "p50_us": at(0.50),
            "p90_us": at(0.90),
            "p99_us": at(0.99),
            "max_us": samples[-1] / 1000,
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == _REPORT_PATH:
            body = json.dumps(self.report()).encode()
            if b"reset=1" in scope.get("query_string", b""):
                self.reset()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if path != _TIMED_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter_ns()
        samples = self.samples_ns

        async def timed_send(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                samples.append(time.perf_counter_ns() - started)

        await self.app(scope, receive, timed_send)


EXPERIMENTS = ("switch_interval", "drop_events")


def apply_experiments(app: Any, names: list[str]) -> None:
    """Replace parts of the app for one benchmark run (see the module docstring)."""
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise SystemExit(f"unknown BENCH_BRAIN_EXPERIMENTS {unknown}; known: {EXPERIMENTS}")
    if "switch_interval" in names:
        sys.setswitchinterval(0.0005)

    def replace_route(path: str, endpoint: Any, **options: Any) -> None:
        app.router.routes[:] = [
            route for route in app.router.routes if getattr(route, "path", None) != path
        ]
        app.add_api_route(path, endpoint, methods=["POST"], **options)

    if "drop_events" in names:

        async def events(body: CallEventsIn) -> dict[str, int]:
            return {"accepted": len(body.events), "calls": 0}

        replace_route("/sip/v1/events", events)


def main() -> None:
    import uvicorn

    from tawasol.adapters.api.app import create_app
    from tawasol.composition import build_brain
    from tawasol.config import Settings

    settings = Settings()
    brain = build_brain(settings)
    brain.authorizer.snapshot()
    app = create_app(brain)
    experiments = [
        name for name in os.environ.get("BENCH_BRAIN_EXPERIMENTS", "").split(",") if name
    ]
    apply_experiments(app, experiments)
    try:
        uvicorn.run(
            DecisionStopwatch(app),
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            access_log=False,
        )
    finally:
        brain.close()


if __name__ == "__main__":
    main()
