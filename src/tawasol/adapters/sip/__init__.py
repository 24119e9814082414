"""The SIP edge: Kamailio (Debian packages) in front of the brain.

- `render_config(settings, run_dir=...)`: the Kamailio configuration for these settings.
- `write_config(settings, run_dir)`, `check_config(path)`: render to `run_dir/kamailio.cfg`,
  and have `kamailio -c` check it.
- `start_edge(settings, run_dir) -> EdgeProcess`, `EdgeProcess.stop()`, `stop_edge(run_dir)`:
  run Kamailio as a child process with its own run directory (pid file, control socket, log,
  event spool).

The routing script Kamailio runs is `kemi/tawasol_edge.py` (Python, stdlib only: it runs under
the system Python inside Kamailio). docs/sip-edge.md explains the choices.
"""

from tawasol.adapters.sip.launcher import (
    EdgeError,
    EdgeProcess,
    check_config,
    running_pid,
    sip_ping,
    start_edge,
    stop_edge,
    write_config,
)
from tawasol.adapters.sip.render import KEMI_SCRIPT, ctl_socket, render_config, spool_dir

__all__ = [
    "KEMI_SCRIPT",
    "EdgeError",
    "EdgeProcess",
    "check_config",
    "ctl_socket",
    "render_config",
    "running_pid",
    "sip_ping",
    "spool_dir",
    "start_edge",
    "stop_edge",
    "write_config",
]
