"""The brain for bench/edge_alternatives.py's "evapi" variant: `tawasol serve` plus an evapi client.

The same wiring as bench/_brain_server.py (Settings from TAWASOL_* variables, `build_brain`,
`create_app`, uvicorn, the decision stopwatch), so call events still arrive over HTTP and are
filed in the CDRs; and, in the same event loop, a task that connects to Kamailio's evapi port
(`BENCH_EVAPI_HOST`:`BENCH_EVAPI_PORT`) as a client, reads netstring-framed JSON decision
requests (`{"tindex", "tlabel", "call_id", "user", "dialled", ...}`), decides with
`brain.authorizer.authorize` and answers `authorize_answer(...)` plus the transaction's
`tindex`/`tlabel`, netstring-framed, on the same connection. It reconnects (every 0.2 s) while
Kamailio is not up or after it went away. Each evapi decision (parse, decide, serialise) is timed
into the same stopwatch as the HTTP ones (`GET /_bench/decisions`).

What it gives up (bench only): the decision answered here skips the HTTP API's request
validation (`AuthorizeIn`) and its decision statistics (`/sip/v1/stats`); one evapi connection
(to one Kamailio) carries every decision, so the brain serves a single edge this way, and an
answer to a Kamailio that restarted meanwhile is lost (the call gets the timer's 503).

    TAWASOL_DATA_DIR=... BENCH_EVAPI_PORT=... \\
        .venv/bin/python bench/_edge_alternatives/brain_evapi.py
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench/, for _brain_server

from _brain_server import DecisionStopwatch, apply_experiments

RETRY_S = 0.2


def log(message: str) -> None:
    print(f"[brain-evapi {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def serve_evapi(brain: Any, host: str, port: int, stopwatch: DecisionStopwatch) -> None:
    """Connect to Kamailio's evapi, answer every decision request, reconnect forever."""
    from tawasol.adapters.api.sip import authorize_answer
    from tawasol.domain.decision import CallRequest

    authorize = brain.authorizer.authorize
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(RETRY_S)
            continue
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log(f"connected to evapi {host}:{port}")
        answered = 0
        try:
            while True:
                size = int((await reader.readuntil(b":"))[:-1].strip())
                frame = await reader.readexactly(size + 1)
                if frame[-1:] != b",":
                    raise ValueError("netstring without its trailing comma")
                started = time.perf_counter_ns()
                request = json.loads(frame[:-1])
                call_id = str(request.get("call_id", ""))
                authorization = authorize(
                    CallRequest(
                        sip_username=str(request.get("user", "")),
                        dialled=str(request.get("dialled", "-")),
                        call_id=call_id,
                    )
                )
                answer = authorize_answer(call_id, authorization.ha1, authorization.decision)
                answer["tindex"] = request["tindex"]
                answer["tlabel"] = request["tlabel"]
                payload = dumps(answer).encode()
                writer.write(b"%d:%s," % (len(payload), payload))
                stopwatch.samples_ns.append(time.perf_counter_ns() - started)
                answered += 1
                if writer.transport.get_write_buffer_size() > 256 * 1024:
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError, KeyError) as e:
            log(f"evapi connection ended after {answered} answers: {e!r}")
        finally:
            writer.close()
        await asyncio.sleep(RETRY_S)


async def serve(settings: Any, brain: Any, app: Any) -> None:
    import uvicorn

    stopwatch = DecisionStopwatch(app)
    server = uvicorn.Server(
        uvicorn.Config(
            stopwatch,
            host=settings.api_host,
            port=settings.api_port,
            log_level="warning",
            access_log=False,
        )
    )
    evapi = asyncio.create_task(
        serve_evapi(
            brain,
            os.environ.get("BENCH_EVAPI_HOST", "127.0.0.1"),
            int(os.environ["BENCH_EVAPI_PORT"]),
            stopwatch,
        )
    )
    try:
        await server.serve()
    finally:
        evapi.cancel()


def main() -> None:
    from tawasol.adapters.api.app import create_app
    from tawasol.composition import build_brain
    from tawasol.config import Settings

    settings = Settings()
    brain = build_brain(settings)
    brain.authorizer.snapshot()
    app = create_app(brain)
    apply_experiments(
        app, [name for name in os.environ.get("BENCH_BRAIN_EXPERIMENTS", "").split(",") if name]
    )
    try:
        import uvloop  # what `uvicorn.run` picks too when it is installed

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(serve(settings, brain, app))
    finally:
        brain.close()


if __name__ == "__main__":
    main()
