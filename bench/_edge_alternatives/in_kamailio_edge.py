"""Benchmark variant of the edge script: tawasol's decision core inside Kamailio (app_python3).

Kamailio loads this file instead of src/tawasol/adapters/sip/kemi/tawasol_edge.py when
bench/edge_alternatives.py starts its "in_kamailio" variant (the usual configuration, rendered
with this path as the `app_python3` script). It imports the
real edge (`tawasol_edge.Edge`) and changes one thing only: how a decision is obtained. Instead
of `POST /sip/v1/authorize` over a kept HTTP connection, `post("/sip/v1/authorize", body)` is
answered in-process by a `CallAuthorizer` wired by `tawasol.composition.build_brain` on the
brain's own SQLite database, and returns the document `tawasol.adapters.api.sip.authorize_answer`
builds (the very dict the brain would have sent, after the same `AuthorizeIn` validation). Every
other query, i.e. the call events (`POST /sip/v1/events`, shipped by the edge's spool timer),
still goes to the real brain over HTTP: the CDRs are written by the brain, exactly as today.

Where the authorizer is built: once, in `mod_init()`, which app_python3 calls in Kamailio's
main process before it forks its workers. The catalog snapshot (plans, subscribers, carriers,
fair-use usage) is loaded then, so every worker starts with it and shares its pages
copy-on-write; those objects are then moved to the garbage collector's permanent generation
(`gc.freeze()`), so the workers' collections neither scan nor dirty them (reference counting
still dirties the pages of the objects a decision reads). The SQLAlchemy pool is disposed of
before the fork, so no SQLite connection crosses it (SQLite forbids using a connection in a
forked child); each worker opens its own connection when its authorizer next checks the
catalog revision (every `catalog_refresh_ms`, 1 s by default).

Configuration: `in_kamailio.json` in Kamailio's working directory (the edge's run
directory; the launcher starts Kamailio with `cwd` and `-w` both set to it), or the file named
by the environment variable `TAWASOL_IN_KAMAILIO_CONFIG`: `{"settings": {...}}`, keyword
arguments for `tawasol.config.Settings` (at least `data_dir`, the brain's, and `sip_realm`).

What this variant gives up, compared with asking the brain (why it is a benchmark experiment):
- Calls in progress and carrier channels are not counted at all here. Each Kamailio process
  holds its own authorizer: a count kept there would be one worker's share only (not exact
  across workers), and a worker does not see the ends of the calls it decided (the BYE and the
  dialog's end may run in any other process; events go to the brain, not back here). Left as
  they are, the counts would only grow, until a plan's simultaneous-call limit or a flat-rate
  carrier's channels (bench-flat: 2,000) refused or re-routed calls that are long over. So
  every allowed call is forgotten by the local authorizer right after its decision: no limit
  of simultaneous calls is enforced, and routing always sees every carrier's channels free.
  (The brain still counts calls from the events, after the fact.) Enforcing them would need
  shared state across processes, e.g. Kamailio's dialog profiles or htables, and across edges.
- Fair-use usage (answered minutes, distinct numbers) is what the database held at the last
  catalog (re)load of this worker: the calls recorded since then are not seen here.
- Catalog changes reach each worker only through its own revision check and a full reload per
  worker (8 workers: 8 reloads); nothing is pushed.
- The carrier monitor's news (carrier down after failed probes, capacity caps, de-preference,
  quality-weighted order) lives in the brain: the authorizer here takes every carrier as up.
- The brain's decision latency statistics (`/sip/v1/stats`) and its `node` bookkeeping see
  none of these decisions.
For the benchmark none of this refuses a call: the plan has no limit of any kind, both SIPp
carriers stay up, and the catalog does not change during the run.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parents[1]
_KEMI_DIR = _ROOT / "src" / "tawasol" / "adapters" / "sip" / "kemi"
_SITE_PACKAGES = sorted((_ROOT / ".venv" / "lib").glob("python3.*/site-packages"))

# Kamailio runs Debian's system Python with the system sys.path: put the real edge's directory,
# the project's sources and the virtualenv's packages (same minor version) in front of it.
for _path in reversed([_KEMI_DIR, _ROOT / "src", *_SITE_PACKAGES]):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import edge_brain  # noqa: E402 - the edge's modules, imported as app_python3 does
import KSR  # noqa: E402 - provided by app_python3 inside Kamailio
import tawasol_edge  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from tawasol.adapters.api.schemas import AuthorizeIn  # noqa: E402
from tawasol.adapters.api.sip import authorize_answer  # noqa: E402
from tawasol.composition import build_brain  # noqa: E402
from tawasol.config import Settings  # noqa: E402
from tawasol.domain.decision import CallRequest  # noqa: E402
from tawasol.services.authorize_call import CallAuthorizer  # noqa: E402

CONFIG_NAME = "in_kamailio.json"
CONFIG_ENV = "TAWASOL_IN_KAMAILIO_CONFIG"
AUTHORIZE_PATH = "/sip/v1/authorize"


class InProcessBrain:
    """Stands where the edge's `BrainClient` stands: decisions in-process, the rest over HTTP."""

    def __init__(self, authorizer: CallAuthorizer, http: edge_brain.BrainClient) -> None:
        self.authorizer = authorizer
        self.http = http

    def close(self) -> None:
        self.http.close()

    def __getattr__(self, name: str) -> Any:  # anything else the edge asks of its client
        return getattr(self.http, name)

    def post(self, path: str, body: dict[str, Any], *, timeout_ms: int | None = None) -> Any:
        if path != AUTHORIZE_PATH:
            return self.http.post(path, body, timeout_ms=timeout_ms)
        try:
            request = AuthorizeIn.model_validate(body)
        except ValidationError as error:  # what the brain would answer: 422
            raise edge_brain.BrainUnavailable(
                f"{path}: HTTP 422: {error.errors()[:1]!r}", request_sent=True
            ) from error
        authorization = self.authorizer.authorize(
            CallRequest(sip_username=request.user, dialled=request.dialled, call_id=request.call_id)
        )
        if authorization.decision.allowed:
            # Not counted as in progress here: see the module's docstring.
            self.authorizer.forget_call(request.call_id)
        return authorize_answer(request.call_id, authorization.ha1, authorization.decision)


class InKamailioEdge(tawasol_edge.Edge):
    """The real edge, with its decisions taken by an authorizer living in this process."""

    def __init__(self, authorizer: CallAuthorizer) -> None:
        super().__init__()
        self._authorizer = authorizer

    @property
    def brain(self) -> InProcessBrain:  # type: ignore[override]
        if self._brain is None:
            settings = self.settings
            self._brain = InProcessBrain(  # type: ignore[assignment]
                self._authorizer,
                edge_brain.BrainClient(
                    settings.brain_host, settings.brain_port, timeout_ms=settings.brain_timeout_ms
                ),
            )
        return self._brain  # type: ignore[return-value]


def _config() -> dict[str, Any]:
    path = Path(os.environ.get(CONFIG_ENV) or Path.cwd() / CONFIG_NAME)
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


def build_authorizer(settings: Settings) -> CallAuthorizer:
    """The brain's authorizer on the brain's database, its snapshot loaded, no connection open."""
    brain = build_brain(settings)
    authorizer = brain.authorizer
    snapshot = authorizer.snapshot()  # loads the catalog, usage and open calls now
    brain.store.close()  # dispose of the pool: nothing from SQLite crosses the fork
    KSR.info(
        f"tawasol (in-Kamailio decisions): catalog revision {snapshot.revision} loaded from "
        f"{settings.resolved_database_url} before the fork: {len(snapshot.subscribers)} "
        f"subscribers, {len(snapshot.carriers)} carriers\n"
    )
    return authorizer


def mod_init() -> InKamailioEdge:
    """Called by app_python3 once, in Kamailio's main process, before the workers are forked."""
    settings = Settings(**_config()["settings"])
    edge = InKamailioEdge(build_authorizer(settings))
    # Everything loaded so far (the snapshot, and fastapi/pydantic/SQLAlchemy imported for the
    # answer document and the store) goes to the collector's permanent generation: the
    # workers' collections then neither scan it nor dirty its pages (copy-on-write kept).
    gc.collect()
    gc.freeze()
    return edge
