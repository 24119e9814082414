"""Calls from inbound trunks (DID providers) to direct numbers (docs/direct-numbers.md).

Runs inside Kamailio (app_python3, KEMI), stdlib only. A new INVITE goes to the direct-number
path, instead of the softphone's digest challenge, when it comes from an inbound trunk's
address or asks for a pool number. The brain decides everything (`POST /sip/v1/inbound`):
whether the source is a trunk (else 403, recorded: a spoofing attempt), who calls (the caller
ID from P-Asserted-Identity or From) and whom (the contact behind the pool number). The edge
only reads the headers and applies the answer with the softphone path's routing.

The event-shipping timer asks the brain for the list (`GET /sip/v1/inbound-numbers`: trunk
addresses and the written forms of every pool number) every `REFRESH_S` and files it in the
"inbound" htable; each SIP worker parses it again only when its version moved. No brain query
on a SIP worker's path; a brain that does not answer leaves the last list in place.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

import KSR  # provided by app_python3 inside Kamailio

try:  # imported as part of the tawasol package (tests)
    from . import edge_brain
except ImportError:  # loaded by app_python3 from this directory
    import edge_brain  # type: ignore[no-redef]

REFRESH_S = 2.0
# The timer asks with this deadline: a brain that does not answer delays event shipping by at
# most this much; the workers keep using the last list.
REFRESH_TIMEOUT_MS = 200
INBOUND = "inbound"  # the htable (templates/kamailio.cfg): "list" (JSON) and "version"
# The user part of a SIP or tel URI in a header value: `<sip:+33612345678@host>`,
# `"Amina" <tel:+33612345678>`, `sip:0612345678@host;user=phone`.
_URI_USER = re.compile(r"(?:sips?|tel):([^@;>\s]+)", re.IGNORECASE)


def uri_user(header_value: str | None) -> str:
    """The user part of the first SIP/tel URI of a header value ("" if none)."""
    if not header_value:
        return ""
    match = _URI_USER.search(header_value)
    return match.group(1)[:128] if match else ""


class InboundNumbers:
    """The trunk addresses and pool numbers as a SIP worker knows them: read from the
    "inbound" htable when its version moved (one integer read per new INVITE otherwise)."""

    def __init__(self) -> None:
        self._networks: list[Any] = []
        self._numbers: frozenset[str] = frozenset()
        self._version: object = None

    def load(self, answer: dict[str, Any]) -> None:
        networks = []
        for text in answer.get("addresses") or []:
            try:
                networks.append(ipaddress.ip_network(str(text), strict=False))
            except ValueError:
                continue
        self._networks = networks
        self._numbers = frozenset(str(number) for number in answer.get("numbers") or [])

    def _current(self) -> None:
        version = KSR.htable.sht_get(INBOUND, "version")
        if version is None or version == self._version:
            return
        try:
            self.load(json.loads(str(KSR.htable.sht_get(INBOUND, "list") or "{}")))
        except ValueError:
            return
        self._version = version

    def from_trunk(self, source_ip: str) -> bool:
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def is_direct_number(self, ruser: str) -> bool:
        return ruser in self._numbers

    def wanted(self, source_ip: str, ruser: str) -> bool:
        """The INVITE takes the direct-number path (no digest challenge)."""
        self._current()
        return self.from_trunk(source_ip) or self.is_direct_number(ruser)


class InboundRefresher:
    """The timer's side: ask the brain every `REFRESH_S` and file a changed list."""

    def __init__(self) -> None:
        self._every = edge_brain.Every(REFRESH_S)
        self._text = ""
        self._version = 0

    def refresh(self, brain: edge_brain.BrainClient | edge_brain.BrainPool) -> None:
        if not self._every.due():
            return
        try:
            answer = brain.get("/sip/v1/inbound-numbers", timeout_ms=REFRESH_TIMEOUT_MS)
        except edge_brain.BrainUnavailable as error:
            KSR.warn(f"tawasol: inbound numbers not refreshed: {error}\n")
            return
        text = json.dumps(answer, separators=(",", ":"), sort_keys=True)
        if text == self._text and KSR.htable.sht_get(INBOUND, "version") is not None:
            return
        self._text = text
        self._version += 1
        KSR.htable.sht_sets(INBOUND, "list", text)
        KSR.htable.sht_seti(INBOUND, "version", self._version)


def request_body(*, node: str) -> dict[str, Any]:
    """The body of `POST /sip/v1/inbound` for the INVITE being routed."""
    return {
        "call_id": KSR.kx.get_callid(),
        "source_ip": KSR.kx.get_srcip(),
        "dialled": KSR.kx.get_ruser() or "-",
        "asserted_identity": uri_user(_header("P-Asserted-Identity")),
        "from_user": (KSR.kx.get_fuser() or "")[:128],
        "privacy": (_header("Privacy") or "")[:64],
        "user_agent": (KSR.kx.get_ua() or "")[:256],
        "node": node,
    }


def present_caller(caller_id: str | None) -> None:
    """The callee sees the subscriber's own number: the verified caller ID is asserted to the
    carrier (RFC 3325), replacing whatever identity the inbound trunk asserted. Whether it is
    shown is the outbound carrier's policy."""
    if KSR.hdr.is_present("P-Asserted-Identity") > 0:
        KSR.hdr.remove("P-Asserted-Identity")
    if caller_id and re.fullmatch(r"\+[0-9]{6,15}", caller_id):
        KSR.hdr.append(f"P-Asserted-Identity: <tel:{caller_id}>\r\n")


def _header(name: str) -> str | None:
    if KSR.hdr.is_present(name) <= 0:
        return None
    value = KSR.pv.get(f"$hdr({name})")
    return str(value) if value is not None else None
