"""The carriers' addresses, which floods never get banned (docs/security.md, fault 8).

Runs inside Kamailio (app_python3, KEMI). The timer process that ships call events also asks
the brain for the configured carriers' gateway addresses (`GET /sip/v1/peers`) every
`REFRESH_S` and files each in the "peers" htable. Its autoexpire (`render.PEERS_TTL_S`, reset
by each write) is how long an address stays trusted: a carrier removed from the catalog stops
being trusted after that, and a brain outage shorter than it changes nothing. A request is a
carrier's when the packet came from one of those addresses (`$si`, the socket's source), never
because a header says so.
"""

from __future__ import annotations

import KSR  # provided by app_python3 inside Kamailio

try:  # imported as part of the tawasol package (tests)
    from . import edge_brain
except ImportError:  # loaded by app_python3 from this directory
    import edge_brain  # type: ignore[no-redef]

REFRESH_S = 5.0
PEERS = "peers"


def is_peer(source_ip: str) -> bool:
    return KSR.htable.sht_get(PEERS, source_ip) is not None


class PeerList:
    """The timer's side: refresh the "peers" htable from the brain every `REFRESH_S`."""

    def __init__(self) -> None:
        self._every = edge_brain.Every(REFRESH_S)

    def refresh(self, brain: edge_brain.BrainClient | edge_brain.BrainPool) -> None:
        if not self._every.due():
            return
        try:
            answer = brain.get("/sip/v1/peers")
        except edge_brain.BrainUnavailable as error:
            KSR.warn(f"tawasol: carrier addresses not refreshed: {error}\n")
            return
        for address in answer.get("addresses") or []:
            KSR.htable.sht_seti(PEERS, str(address), 1)
