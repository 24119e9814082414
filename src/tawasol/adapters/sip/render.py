"""Render the Kamailio configuration shipped in this package from Settings.

The template (`templates/kamailio.cfg`) holds `{{NAME}}` placeholders; Kamailio's own syntax
(`$var`, `#!define`) is left alone. Every value that lands in a `#!define` line must be a single
token, so values are checked here rather than discovered broken when Kamailio starts.
"""

from __future__ import annotations

import re
import socket
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from tawasol.domain.errors import InvalidConfiguration

if TYPE_CHECKING:
    from tawasol.config import Settings

#: After the first 18x the callee may ring this long before the edge gives up (RFC 3261
#: Timer C is "> 3 min"; carriers usually answer 408/480 themselves well before).
RING_TIMEOUT_MS = 120_000

#: How long a digest nonce the edge issues stays usable (Kamailio auth `nonce_expire`); the
#: brain remembers digest answers this long to refuse a second call carrying one.
NONCE_LIFETIME_S = 300

#: How long a carrier's address stays exempt from flood bans after the brain last listed it
#: (the edge asks every 5 s): a brain outage shorter than this changes nothing.
PEERS_TTL_S = 600

#: The routing script Kamailio runs (app_python3), next to its two helper modules.
KEMI_SCRIPT = Path(__file__).resolve().parent / "kemi" / "tawasol_edge.py"

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
_TOKEN = re.compile(r"^[A-Za-z0-9_.:/+@\[\]-]+$")
# sockaddr_un.sun_path is 108 bytes on Linux, with the terminating NUL
_MAX_UNIX_SOCKET_PATH = 107


def template_text() -> str:
    return resources.files(__package__).joinpath("templates/kamailio.cfg").read_text("utf-8")


def ctl_socket(run_dir: Path) -> Path:
    """Kamailio's control socket (binrpc) for this run directory; `kamcmd -s unix:PATH`."""
    return run_dir.resolve() / "kamailio_ctl"


def spool_dir(run_dir: Path) -> Path:
    """Where call events wait until the brain has them."""
    return run_dir.resolve() / "spool"


def node_name(settings: Settings) -> str:
    return f"{socket.gethostname()}-{settings.sip_port}"


def render_config(settings: Settings, *, run_dir: Path) -> str:
    """The Kamailio configuration for these settings, with its files under `run_dir`."""
    run_dir = run_dir.resolve()
    control = ctl_socket(run_dir)
    if len(str(control)) > _MAX_UNIX_SOCKET_PATH:
        raise InvalidConfiguration(
            f"run directory {run_dir} is too long for a control socket path "
            f"({len(str(control))} > {_MAX_UNIX_SOCKET_PATH} bytes): choose a shorter one"
        )
    brains = settings.edge_brain_addresses
    values = {
        "RUN_DIR": str(run_dir),
        "REALM": settings.sip_realm,
        "NODE": node_name(settings),
        "BRAIN_HOST": brains[0][0],
        "BRAIN_PORT": str(brains[0][1]),
        # the brains this edge asks, in order (edge_brain.BrainPool), "/" between them
        "BRAIN_ADDRESSES": "/".join(f"{host}:{port}" for host, port in brains),
        "BRAIN_TIMEOUT_MS": str(settings.brain_timeout_ms),
        # the edge's credential for the brain (docs/security.md): the rendered file is 0600
        "EDGE_TOKEN": settings.resolved_edge_token(),
        "SPOOL_DIR": str(spool_dir(run_dir)),
        "RING_TIMEOUT_MS": str(RING_TIMEOUT_MS),
        "NONCE_LIFETIME_S": str(NONCE_LIFETIME_S),
        "PEERS_TTL_S": str(PEERS_TTL_S),
        "ROUTE_TIMEOUT_MS": str(settings.route_timeout_ms),
        "RETRY_AFTER_MAX_S": str(settings.sip_retry_after_max_s),
        "MAX_MESSAGE_BYTES": str(settings.sip_max_message_bytes),
        "AUTH_FAILURES": str(settings.sip_auth_failures),
        "AUTH_WINDOW_S": str(settings.sip_auth_window_s),
        "AUTH_LOCKOUT_S": str(settings.sip_auth_lockout_s),
        "BAN_S": str(settings.sip_ban_s),
        "PIKE_INTERVAL_S": str(settings.sip_pike_interval_s),
        "PIKE_REQUESTS": str(settings.sip_pike_requests),
        "PLATFORM_MAX_S": str(settings.platform_max_call_duration_s),
        "CHILDREN": str(settings.sip_children),
        "TCP_CHILDREN": str(max(1, min(4, settings.sip_children))),
        # RFC 3261 §19.1.1 / Kamailio's listen syntax: an IPv6 address goes in brackets
        "LISTEN": f"[{settings.sip_listen}]" if ":" in settings.sip_listen else settings.sip_listen,
        "PORT": str(settings.sip_port),
        "CTL_SOCKET": str(control),
        "KEMI_SCRIPT": str(KEMI_SCRIPT),
    }
    for name, value in values.items():
        if not _TOKEN.match(value):
            shown = "(secret)" if name == "EDGE_TOKEN" else repr(value)
            raise InvalidConfiguration(
                f"{name.lower()} {shown} cannot go into the Kamailio configuration: "
                "use letters, digits and . _ - : / + @ only (no spaces or quotes)"
            )

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise InvalidConfiguration(f"kamailio.cfg template names unknown value {name}")
        return values[name]

    return _PLACEHOLDER.sub(substitute, template_text())
