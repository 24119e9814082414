"""The edge's rules that do not need Kamailio: failover, replies, abuse checks, call events.

Runs inside Kamailio's workers under Debian's system Python (stdlib only, no tawasol import) and
in the unit tests under the project's virtualenv. Every function is pure: the Kamailio glue in
`tawasol_edge.py` reads the SIP message and the clock, these functions decide.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any


def _load_semantics() -> ModuleType:
    """The one table of what carriers' answers mean: `tawasol/domain/sip_semantics.py`.

    Inside the package (tests, the brain) it is imported as usual; inside Kamailio, where
    tawasol is not importable, the very same file is loaded by its path from this one (it
    imports only the standard library), so the edge and the brain cannot disagree.
    """
    if __package__:
        return importlib.import_module("tawasol.domain.sip_semantics")
    name = "tawasol_sip_semantics"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[3] / "domain" / "sip_semantics.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"tawasol: cannot load the SIP semantics table from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


semantics = _load_semantics()

# Scanners announce themselves: SIPVicious (friendly-scanner, sipvicious, sipcli, "VaxSIPUserAgent"
# is its default), sip-scan, sipsak floods, SIPp-based sweeps from botnets... A caller's phone
# never sends these, so the request is dropped without a reply (a reply confirms a live target).
SCANNER_USER_AGENT = re.compile(
    r"friendly-scanner|sipvicious|sipcli|sip-scan|vaxsipuseragent|sundayddr|iWar|"
    r"sipsak|smap|pplsip|sip-?scanner|nmap",
    re.IGNORECASE,
)

# A reason code travels in a Warning header token (RFC 3261 §20.43: warn-text is a quoted
# string); keep it to the characters the brain's stable codes use.
_SAFE_TEXT = re.compile(r"[^A-Za-z0-9_.:+ -]")


def is_scanner(user_agent: str | None) -> bool:
    """True when the User-Agent names a known SIP scanner."""
    return bool(user_agent) and SCANNER_USER_AGENT.search(user_agent or "") is not None


def q850_cause(reason_header: str | None) -> int | None:
    """The Q.850 cause in a `Reason` header value (RFC 3326), if any: the brain's parser."""
    return semantics.q850_cause_from_reason(reason_header)  # type: ignore[no-any-return]


def attempt_meaning(
    sip_code: int, *, local_timeout: bool, rang: bool, q850: int | None
) -> tuple[int, int | None, Any]:
    """How an attempt ended, as (SIP code, Q.850 cause, meaning) in the one table's terms.

    - Our own timer with no 18x from the carrier: it is silent (a `100 Trying` is hop-by-hop
      and says nothing about the callee): 408 without cause, the carrier's failure, hunt on.
    - Our own timer after an 18x: the callee's phone rang and nobody answered (RFC 3261
      Timer C): 408 with cause 19, "no answer from user", the callee's: stop.
    - A final answer: `sip_semantics.meaning_of(code, cause)`.
    """
    if local_timeout:
        code, cause = 408, (semantics.RING_TIMEOUT_CAUSE if rang else None)
    else:
        code, cause = (sip_code if 300 <= sip_code <= 699 else 500), q850
    return code, cause, semantics.meaning_of(code, cause)


def held_off(value: object, *, now_ms: int) -> bool:
    """A carrier's hold-off (kept as "until_ms" in shared memory) still runs at `now_ms`."""
    text = str(value or "")
    return text.isdigit() and int(text) > now_ms


def warning_header(reason: str) -> str:
    """`Warning: 399 tawasol "destination_not_in_plan"` (RFC 3261 §20.43, code 399 =
    miscellaneous warning), with CRLF, for a reply built by the edge."""
    return f'Warning: 399 tawasol "{_SAFE_TEXT.sub("", reason)[:64]}"\r\n'


def reason_header(sip_code: int, reason: str) -> str:
    """`Reason: SIP;cause=403;text="..."` (RFC 3326), with CRLF."""
    return f'Reason: SIP;cause={int(sip_code)};text="{_SAFE_TEXT.sub("", reason)[:64]}"\r\n'


def safe_reason_phrase(phrase: str, default: str) -> str:
    """A reason phrase fit for a status line: printable, short, never empty."""
    cleaned = _SAFE_TEXT.sub("", phrase or "").strip()[:64]
    return cleaned or default


def record_auth_failure(failures_ms: Sequence[int], *, now_ms: int, window_ms: int) -> list[int]:
    """The failure times still inside the window, plus this one (oldest first)."""
    recent = [at for at in failures_ms if now_ms - at < window_ms]
    recent.append(now_ms)
    return recent[-32:]


def parse_failures(value: str | None) -> list[int]:
    """Failure times kept in shared memory as "t1,t2,..." (ms since the epoch)."""
    if not value:
        return []
    times = []
    for item in value.split(","):
        if item.isdigit():
            times.append(int(item))
    return times


def format_failures(failures_ms: Sequence[int]) -> str:
    return ",".join(str(at) for at in failures_ms)


_ANGLE_URI = re.compile(r"<([^>]+)>")
_BARE_URI = re.compile(r"^\s*([^;,\s]+)")
_EXPIRES_PARAM = re.compile(r";\s*expires\s*=\s*(\d+)", re.IGNORECASE)


def parse_contact(contact: str | None) -> tuple[str | None, str | None]:
    """(URI, expires parameter) of the first Contact value (RFC 3261 §20.10)."""
    if not contact:
        return None, None
    match = _ANGLE_URI.search(contact) or _BARE_URI.search(contact)
    if match is None:
        return None, None
    rest = contact[match.end() :].split(",", 1)[0]
    expires = _EXPIRES_PARAM.search(rest)
    return match.group(1), expires.group(1) if expires else None


def register_expiry(requested: str | None, *, minimum: int = 60, maximum: int = 3600) -> int:
    """The registration lifetime granted (RFC 3261 §10.3 step 7: the registrar may shorten
    it; 423 would be the answer to a too short one, we simply raise it)."""
    try:
        wanted = int(requested) if requested else 600
    except ValueError:
        wanted = 600
    if wanted == 0:
        return 0
    return max(minimum, min(maximum, wanted))


def event(
    kind: str,
    *,
    call_id: str,
    at_ms: int,
    user: str,
    dialled: str,
    **fields: Any,
) -> dict[str, Any]:
    """One call event as `POST /sip/v1/events` takes it (docs/sip-decision-api.md).

    `user` and `dialled` ride on every event so that a brain which restarted in between can
    still file the call.
    """
    body: dict[str, Any] = {
        "call_id": call_id,
        "type": kind,
        "at_ms": int(at_ms),
        "user": user,
        "dialled": dialled,
    }
    body.update({key: value for key, value in fields.items() if value is not None})
    return body


def attempt_event(
    *,
    call_id: str,
    at_ms: int,
    user: str,
    dialled: str,
    attempt: int,
    route: dict[str, Any],
    sip_code: int,
    pdd_ms: int | None,
    q850: int | None = None,
    retry_after_s: int | None = None,
) -> dict[str, Any]:
    """One try on one carrier: `at_ms` is when its INVITE left, `sip_code` how it ended (200
    if answered), `pdd_ms` the time to its first 18x (None if it never rang), `q850` the cause
    the carrier gave in its Reason header (RFC 3326), if any, `retry_after_s` how long the
    edge leaves the carrier alone after its 503 with Retry-After (RFC 3261 §21.5.4)."""
    billing = route.get("billing")
    return event(
        "attempt",
        call_id=call_id,
        at_ms=at_ms,
        user=user,
        dialled=dialled,
        attempt=attempt,
        carrier=str(route.get("carrier", "")),
        gateway=str(route.get("gateway", "")),
        sip_code=int(sip_code),
        pdd_ms=pdd_ms,
        q850_cause=q850 if q850 is not None and 0 <= q850 <= 127 else None,
        billing=billing if billing in ("flat_rate", "per_minute") else None,
        retry_after_s=retry_after_s,
    )
