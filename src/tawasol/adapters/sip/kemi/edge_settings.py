"""The edge's settings inside Kamailio, read from the rendered configuration's defines.

`render_config()` writes one `#!define TAWASOL_<NAME> value` line per setting the routing
script needs; `KSR.kx.get_def` reads them back. One instance per Kamailio process.
"""

from __future__ import annotations

from pathlib import Path

import KSR  # provided by app_python3 inside Kamailio

try:  # imported as part of the tawasol package (tests)
    from . import edge_brain
except ImportError:  # loaded by app_python3 from this directory
    import edge_brain  # type: ignore[no-redef]


class Settings:
    """The edge's settings, read once per process from the configuration's defines."""

    def __init__(self) -> None:
        def text(name: str) -> str:
            value = KSR.kx.get_def(name)
            if value is None or value == "":
                raise RuntimeError(f"tawasol: #!define {name} missing from kamailio.cfg")
            return str(value).strip('"')

        def number(name: str) -> int:
            return int(text(name))

        self.realm = text("TAWASOL_REALM")
        self.node = text("TAWASOL_NODE")
        self.brain_host = text("TAWASOL_BRAIN_HOST")
        self.brain_port = number("TAWASOL_BRAIN_PORT")
        # every brain this edge may ask, in order (the first is brain_host:brain_port)
        self.brain_addresses = edge_brain.parse_brain_addresses(text("TAWASOL_BRAIN_ADDRESSES"))
        self.brain_timeout_ms = number("TAWASOL_BRAIN_TIMEOUT_MS")
        self.edge_token = text("TAWASOL_EDGE_TOKEN")
        self.spool_dir = Path(text("TAWASOL_SPOOL_DIR"))
        self.ring_timeout_ms = number("TAWASOL_RING_TIMEOUT_MS")
        self.retry_after_max_s = number("TAWASOL_RETRY_AFTER_MAX_S")
        self.max_message_bytes = number("TAWASOL_MAX_MESSAGE_BYTES")
        self.auth_failures = number("TAWASOL_AUTH_FAILURES")
        self.auth_window_ms = number("TAWASOL_AUTH_WINDOW_S") * 1000
        self.auth_lockout_s = number("TAWASOL_AUTH_LOCKOUT_S")
        self.ban_s = number("TAWASOL_BAN_S")
