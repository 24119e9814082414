"""The calls the SIP edge holds right now: Kamailio's dialog list over its control socket.

After the brain restarts (or Kamailio does), the brain's count of calls in progress is rebuilt
from the call records, which may hold calls whose end never arrived. The edge is the truth for
what is up: `dialog_call_ids(ctl_socket)` runs `kamcmd -s unix:SOCKET dlg.list` (the dialog
module's RPC, over the `ctl` module's binrpc socket) and returns the Call-IDs of every dialog,
early (ringing) or confirmed. `kamcmd` prints one `call-id: VALUE` line per dialog.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

_CALL_ID_FIELD = "call-id:"


class DialogListUnavailable(Exception):
    """Kamailio's control socket is missing or did not answer `dlg.list`."""


def kamcmd_binary() -> str | None:
    return shutil.which("kamcmd") or next(
        (path for path in ("/usr/sbin/kamcmd", "/usr/local/sbin/kamcmd") if os.access(path, 1)),
        None,
    )


def parse_dialog_list(text: str) -> set[str]:
    """The Call-IDs in `kamcmd dlg.list` output (`call-id: VALUE` lines, any indentation)."""
    found = set()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(_CALL_ID_FIELD):
            call_id = stripped[len(_CALL_ID_FIELD) :].strip()
            if call_id:
                found.add(call_id)
    return found


def dialog_call_ids(ctl_socket: Path, *, timeout_s: float = 10) -> set[str]:
    """Call-IDs of the dialogs Kamailio holds now; raises `DialogListUnavailable`."""
    binary = kamcmd_binary()
    if binary is None:
        raise DialogListUnavailable("kamcmd is not installed (Debian package kamailio)")
    if not ctl_socket.exists():
        raise DialogListUnavailable(f"no Kamailio control socket at {ctl_socket}")
    try:
        result = subprocess.run(
            [binary, "-s", f"unix:{ctl_socket}", "dlg.list"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DialogListUnavailable(f"kamcmd dlg.list: {error}") from error
    if result.returncode != 0:
        report = (result.stderr or result.stdout).strip()[-300:]
        raise DialogListUnavailable(f"kamcmd dlg.list failed ({result.returncode}): {report}")
    return parse_dialog_list(result.stdout)
