"""Benchmark variant of the edge script: the decision is asked through `evapi`, asynchronously.

Kamailio (app_python3, KEMI) loads this file instead of `kemi/tawasol_edge.py` when
bench/edge_alternatives.py starts its "evapi" variant. It subclasses `tawasol_edge.Edge` and
changes only how a new INVITE with credentials gets its decision (`Edge._request_decision`):

1. in the SIP worker, after `Edge.invite`'s transaction, 100 Trying and lock-out check: the
   dialog (before suspending: see below), a timer of `brain_timeout_ms` and the failure route on
   the transaction, then `KSR.evapi.async_relay(request)`: tm suspends the transaction and the
   request (`Edge._decision_request` plus the transaction's `tindex`/`tlabel`, netstring-framed
   JSON) goes to the brain (bench/_edge_alternatives/brain_evapi.py) through evapi's dispatcher
   process. The worker is free for the next request.
2. the brain's answer arrives on the same evapi connection; evapi runs `ksr_evapi_event` (in
   its dispatcher process), which calls `KSR.tmx.t_continue(tindex, tlabel,
   "ksr_evapi_resume")`; that hands the answer to `Edge._apply_decision` (digest against the
   HA1, denial, dialog, Record-Route, routes), exactly as the blocking edge does.
3. fail closed: no answer within `brain_timeout_ms` -> the suspended transaction's timer fires,
   the failure route sees the `$avp(tw_wait)` mark and answers 503 (the same reply and the same
   `brain_timeout` event as the blocking edge). A late answer finds no suspended transaction:
   `t_continue` does not run the callback and the answer is dropped.

What this variant gives up, compared with the blocking HTTP decision (why it is a benchmark
experiment, and measured no faster here):
- one more moving part: evapi's dispatcher process and one TCP connection carry every decision;
  the brain must speak evapi (netstrings, `tindex`/`tlabel`) besides HTTP.
- suspended transactions pile up in shared memory when the brain slows down (nothing bounds
  how many are in flight but the timer); the blocking edge is bounded by its workers.
- a denied call costs a dialog (created before the decision, see below) until its negative reply.
- the continuations of every call run in the one dispatcher process, serially.

Why the dialog is created before suspending: `t_continue` runs the callback in evapi's
dispatcher process as a failure route, where the dialog module (Kamailio 5.6) never resets its
per-process "current dialog" (its reset hooks run for request routes only), so `dlg_manage`
there would see the previous call's dialog and refuse. Created in the SIP worker, the dialog is
found again in the continuation with `dlg_get(call-id, from-tag, "-")` (an unconfirmed dialog
matches on call-id and From tag): `_open_dialog` below.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import KSR  # provided by app_python3 inside Kamailio

_KEMI_DIR = Path(__file__).resolve().parents[2] / "src" / "tawasol" / "adapters" / "sip" / "kemi"
if str(_KEMI_DIR) not in sys.path:
    sys.path.insert(0, str(_KEMI_DIR))

import edge_auth  # noqa: E402
import tawasol_edge  # noqa: E402

WAITING = "$avp(tw_wait)"  # on the transaction while its decision is awaited


class EvapiEdge(tawasol_edge.Edge):
    """The tawasol edge, with the decision asked through evapi (t_suspend / t_continue)."""

    def __init__(self) -> None:
        super().__init__()
        self._answer: dict[str, Any] | None = None  # handed from the event to the continuation
        self.late_answers = 0

    # -- in the SIP worker: ask and suspend ------------------------------------------------------
    def _request_decision(self, *, call_id: str, user: str, dialled: str) -> int:
        settings = self.settings
        if KSR.dialog.dlg_manage() < 0:  # here, not after t_continue: see the docstring
            return edge_auth.reply(500, "Server Internal Error", "no_dialog")
        request = self._decision_request(call_id=call_id, user=user, dialled=dialled) | {
            "tindex": int(KSR.pv.get("$T(id_index)")),
            "tlabel": int(KSR.pv.get("$T(id_label)")),
        }
        # The suspended transaction's only timer: no answer in time -> failure route -> 503.
        KSR.tm.t_set_fr(settings.ring_timeout_ms, settings.brain_timeout_ms)
        KSR.tm.t_on_failure("ksr_failure_route")
        KSR.pv.seti(WAITING, 1)
        if KSR.evapi.async_relay(json.dumps(request, separators=(",", ":"))) == -1:
            KSR.pv.unset(WAITING)  # not suspended: answer now
            return edge_auth.reply(503, "Service Unavailable", "brain_unavailable")
        return 1  # suspended (a relay that failed after suspending ends in the timer's 503)

    # -- in evapi's dispatcher process: the answer ------------------------------------------------
    def ksr_evapi_event(self, msg: Any, name: str) -> int:
        if name != "evapi:message-received":
            KSR.info(f"tawasol-evapi: {name} {KSR.pv.get('$evapi(srcaddr)')}\n")
            return 1
        try:
            answer = json.loads(KSR.pv.get("$evapi(msg)") or "")
            tindex, tlabel = int(answer.pop("tindex")), int(answer.pop("tlabel"))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            KSR.err(f"tawasol-evapi: unreadable answer: {error!r}\n")
            return 1
        self._answer = answer
        KSR.tmx.t_continue(tindex, tlabel, "ksr_evapi_resume")
        if self._answer is not None:  # not continued: timed out (503 sent) or cancelled
            self._answer = None
            self.late_answers += 1
            KSR.notice(
                f"tawasol-evapi: late answer for {answer.get('call_id')} dropped "
                f"({self.late_answers} in this process)\n"
            )
        return 1

    def ksr_evapi_resume(self, msg: Any) -> int:
        decision, self._answer = self._answer, None
        if decision is None:
            return 1
        try:
            KSR.pv.unset(WAITING)
            return self._apply_decision(
                decision,
                call_id=KSR.kx.get_callid(),
                user=KSR.kx.get_au() or "",
                dialled=KSR.kx.get_ruser() or "",
            )
        except Exception as error:  # a bug must cost one call a 500, not a hung transaction
            KSR.err(f"tawasol-evapi: continuation failed: {error!r}\n")
            KSR.tm.t_reply(500, "Server Internal Error")
            return 1

    def _open_dialog(self, call_id: str) -> bool:
        # The dialog was created in the SIP worker before suspending; make it this (dispatcher)
        # process's current dialog again, for the timeout, the call state and the profiles.
        return bool(KSR.dialog.dlg_get(call_id, KSR.pv.get("$ft") or "", "-") >= 0)

    # -- fail closed ------------------------------------------------------------------------------
    def _failure_route(self) -> int:
        if KSR.pv.get(WAITING) is None:
            return super()._failure_route()  # a carrier's failure: failover as usual
        KSR.pv.unset(WAITING)
        call_id = KSR.kx.get_callid()
        KSR.err(f"tawasol-evapi: no decision for {call_id} in time: 503\n")
        # The brain may still decide (late) and count the call: tell it the call failed.
        self._failed(call_id, KSR.kx.get_au() or "", KSR.kx.get_ruser() or "", 503, "brain_timeout")
        return edge_auth.reply(503, "Service Unavailable", "brain_unavailable")


def mod_init() -> EvapiEdge:
    return EvapiEdge()
