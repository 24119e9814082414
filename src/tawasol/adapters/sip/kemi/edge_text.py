"""SIP text read bytes-safe (docs/security.md, fault 5).

Runs inside Kamailio (app_python3, KEMI). app_python3 hands every string to Python decoded as
UTF-8, so one byte that is not UTF-8 in any header (`User-Agent: \xff`, a From tag) makes the
KSR call raise UnicodeDecodeError wherever the script reads that header. RFC 3261 §25 allows
UTF-8 text only (§7.3.1 header values; tokens are ASCII), so such a new request is malformed:
it is answered 400 (dropped without an answer if it comes from a scanner, an ACK gets no
answer), once, before anything reads its headers or asks the brain. An in-dialog request (a
BYE, from the phone or the carrier) is still relayed, by Kamailio's C code only, so that the
call hangs up; the few values the script reads of it are read with `pv_text`. The body is not
checked: the edge never reads it, it relays it as it came.
"""

from __future__ import annotations

from typing import Any

import KSR  # provided by app_python3 inside Kamailio

try:  # imported as part of the tawasol package (tests)
    from . import edge_rules
except ImportError:  # loaded by app_python3 from this directory
    import edge_rules  # type: ignore[no-redef]


def unreadable_headers() -> bytes | None:
    """The request's header section when it is not UTF-8, else None (the usual, cheap case:
    the whole message decodes)."""
    try:
        KSR.kx.get_msgbuf()
        return None
    except UnicodeDecodeError:
        pass
    # Kamailio's hex transformation hands over the raw bytes as ASCII.
    raw = bytes.fromhex(str(KSR.pv.get("$(mb{s.encode.hexa})") or ""))
    head = raw.split(b"\r\n\r\n", 1)[0]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return head
    return None  # only the body is not UTF-8: relayed untouched


def user_agent(head: bytes) -> str:
    """The User-Agent of a raw header section, undecodable bytes replaced (RFC 3261 §20.41;
    compact forms do not exist for it)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"user-agent":
            return value.strip().decode("utf-8", "replace")
    return ""


def refuse_unreadable(head: bytes, source_ip: str) -> int:
    """A request whose headers are not UTF-8: 400, or silence for scanners and ACKs."""
    agent = user_agent(head)
    if edge_rules.is_scanner(agent):
        KSR.notice(f"tawasol: scanner from {source_ip} dropped ({agent!r})\n")
        return 1
    if head.startswith(b"ACK "):
        return 1  # RFC 3261 §17.2.3: an ACK is never answered
    KSR.notice(f"tawasol: request from {source_ip} with non-UTF-8 headers refused\n")
    KSR.sl.sl_send_reply(400, "Bad Request - Not UTF-8")
    return 1


def pv_text(spec: str) -> Any:
    """A pseudo-variable's value, None when it is not UTF-8 (replies from carriers)."""
    try:
        return KSR.pv.get(spec)
    except UnicodeDecodeError:
        return None
