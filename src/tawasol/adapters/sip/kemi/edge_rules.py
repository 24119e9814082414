"""The edge's rules that do not need Kamailio: failover, replies, abuse checks, call events.

Runs inside Kamailio's workers under Debian's system Python (stdlib only, no tawasol import) and
in the unit tests under the project's virtualenv. Every function is pure: the Kamailio glue in
`tawasol_edge.py` reads the SIP message and the clock, these functions decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

# Scanners announce themselves: SIPVicious (friendly-scanner, sipvicious, sipcli, "VaxSIPUserAgent"
# is its default), sip-scan, sipsak floods, SIPp-based sweeps from botnets... A caller's phone
# never sends these, so the request is dropped without a reply (a reply confirms a live target).
SCANNER_USER_AGENT = re.compile(
    r"friendly-scanner|sipvicious|sipcli|sip-scan|vaxsipuseragent|sundayddr|iWar|"
    r"sipsak|smap|pplsip|sip-?scanner|nmap",
    re.IGNORECASE,
)

# RFC 3398 §8.2.6.1 / the field notes: a 408 carrying Q.850 cause 18 ("no user responding")
# is the callee's network saying nobody answers: trying another carrier would ring twice.
CALLEE_Q850_CAUSES = frozenset({1, 17, 18, 19, 21, 31})
_Q850_CAUSE = re.compile(r"q\.850\s*;(?:[^,]*;)?\s*cause\s*=\s*(\d+)", re.IGNORECASE)

# A reason code travels in a Warning header token (RFC 3261 §20.43: warn-text is a quoted
# string); keep it to the characters the brain's stable codes use.
_SAFE_TEXT = re.compile(r"[^A-Za-z0-9_.:+ -]")


def is_scanner(user_agent: str | None) -> bool:
    """True when the User-Agent names a known SIP scanner."""
    return bool(user_agent) and SCANNER_USER_AGENT.search(user_agent or "") is not None


def q850_cause(reason_header: str | None) -> int | None:
    """The Q.850 cause in a `Reason` header value (RFC 3326), if any."""
    if not reason_header:
        return None
    match = _Q850_CAUSE.search(reason_header)
    return int(match.group(1)) if match else None


def should_fail_over(
    sip_code: int,
    *,
    local_timeout: bool,
    provisional_seen: bool,
    reason_header: str | None,
    failover_codes: Iterable[int],
) -> bool:
    """Is this attempt's failure the network's (try the next carrier) or the callee's (stop)?

    - A local timeout with no reply at all: the carrier is silent, try the next one.
    - A local timeout after a provisional reply: the carrier took the call and the callee did
      not answer in time (RFC 3261 Timer C); ringing the callee again elsewhere is wrong.
    - A final reply in `failover_codes` (408, 500, 502, 503, 504 by default): network trouble,
      except a 408 carrying Q.850 cause 18 (no user responding), which is the callee.
    - Anything else (404, 480, 486, 600, 603 ...): the callee's answer, stop the hunt.
    """
    if local_timeout:
        return not provisional_seen
    if sip_code not in set(failover_codes):
        return False
    cause = q850_cause(reason_header)
    return not (cause is not None and cause in CALLEE_Q850_CAUSES)


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
) -> dict[str, Any]:
    """One try on one carrier: `at_ms` is when its INVITE left, `sip_code` how it ended (200
    if answered), `pdd_ms` the time to its first 18x (None if it never rang), `q850` the cause
    the carrier gave in its Reason header (RFC 3326), if any."""
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
    )
