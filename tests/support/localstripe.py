"""localstripe (PyPI `localstripe`, a stateful fake Stripe server) as a child process for tests.

`LocalStripe.start()` runs localstripe (through `localstripe_server.py`: loopback only, state in
memory, and the few Stripe behaviours localstripe lacks) on a free port and waits until it
answers; the payments adapter is pointed at `api_base` and talks HTTP to it as
to Stripe. `register_webhook(url, secret)` makes localstripe POST its events, signed, to `url`
(its `/_config/webhooks/<id>` API). `WebhookInbox` is such a URL: a small HTTP server that keeps
every delivery (body and headers) for the test to hand to the brain, once or several times.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.stack import LOCALHOST, free_port, wait_until

SECRET_KEY = "sk_test_tawasol_localstripe"
WEBHOOK_SECRET = "whsec_tawasol_localstripe_secret"


@dataclass
class LocalStripe:
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "support.localstripe_server", "--port", str(self.port)],
                cwd=Path(__file__).parent.parent,  # tests/: `support` importable, not shadowed
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_until(self._answers, timeout_s=30, every_s=0.1):
            self.stop()
            raise RuntimeError(f"localstripe did not start; see {self.log_path}")

    def _answers(self) -> bool:
        try:
            answer = httpx.get(f"{self.api_base}/v1/customers", auth=(SECRET_KEY, ""), timeout=1.0)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def api(self, method: str, path: str, **data: Any) -> Any:
        """A raw request to localstripe (form-encoded like Stripe's), its JSON answer."""
        answer = httpx.request(
            method,
            f"{self.api_base}{path}",
            auth=(SECRET_KEY, ""),
            data=_form(data) if method != "GET" else None,
            params=_form(data) if method == "GET" else None,
            timeout=10.0,
        )
        answer.raise_for_status()
        return answer.json()

    def run_out_of_funds(self, payment_method: str, *, out: bool = True) -> None:
        """Later charges of this saved card fail with `insufficient_funds` (see
        localstripe_server.py), or work again with `out=False`."""
        answer = httpx.post(
            f"{self.api_base}/_config/payment_methods/{payment_method}/funds",
            data={"available": "false" if out else "true"},
            timeout=10.0,
        )
        answer.raise_for_status()

    def register_webhook(self, url: str, secret: str = WEBHOOK_SECRET) -> None:
        answer = httpx.post(
            f"{self.api_base}/_config/webhooks/tawasol",
            data={"url": url, "secret": secret},
            timeout=10.0,
        )
        answer.raise_for_status()


def _form(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Stripe's form encoding: card[number]=..., metadata[key]=..."""
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            flat.update(_form(value, name))
        elif isinstance(value, bool):
            flat[name] = "true" if value else "false"
        else:
            flat[name] = str(value)
    return flat


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]

    @property
    def type(self) -> str:
        import json

        return str(json.loads(self.body)["type"])


class WebhookInbox:
    """An HTTP server on a free loopback port keeping every POST it receives."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        inbox = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                inbox.deliveries.append(
                    Delivery(body, {k.lower(): v for k, v in self.headers.items()})
                )
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer((LOCALHOST, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}/events"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, event_type: str, *, count: int = 1, timeout_s: float = 15) -> list[Delivery]:
        """The deliveries of `event_type` once there are `count` of them (AssertionError after
        `timeout_s`: localstripe sends each about a second after the change)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [d for d in self.deliveries if d.type == event_type]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"no {count} {event_type} event(s) within {timeout_s} s: "
            f"{[d.type for d in self.deliveries]}"
        )


@contextmanager
def localstripe_with_inbox(log_path: Path) -> Iterator[tuple[LocalStripe, WebhookInbox]]:
    server = LocalStripe(log_path)
    inbox = WebhookInbox()
    inbox.start()
    server.start()
    try:
        server.register_webhook(inbox.url)
        yield server, inbox
    finally:
        server.stop()
        inbox.stop()
