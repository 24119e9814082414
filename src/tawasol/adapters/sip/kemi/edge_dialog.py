"""What the edge keeps about a call while it lasts: dialog variables and the cut timer.

Runs inside Kamailio (app_python3, KEMI). A call's state lives in its dialog's variables, in
shared memory, because the request route, the reply and failure routes, the dialog callbacks
and the timers that touch one call run in different Kamailio processes:

- `tw_call`: the decision as JSON (user, dialled, routes, max duration, the
  caller's From tag); `tw_attempt`: the route being tried (1-based); `tw_sent_ms`: when its
  INVITE left; `tw_pdd`: "attempt:ms" of the attempt's first 18x; `tw_carrier`: the carrier
  of the attempt relayed last; `tw_answer_ms`; `tw_cut_key`,
  `tw_cut_ms`: the call's cell in the cut schedule and when it was cut.

Cutting at the maximum duration: the dialog module's own timer ticks once a second (a call
would last between the limit minus one second and the limit plus one), so answered calls are
filed in the "cuts" htable under the second their time runs out, and one timer process looks
every 100 ms at the seconds that are due. "n<second>" counts the calls filed for a second,
"c<second>#<i>" holds "deadline_ms|call-id|from-tag|to-tag"; a call that ends earlier removes
its cell, so the timer's work is proportional to the calls it cuts, not to the calls up.
"""

from __future__ import annotations

import json
import time
from typing import Any

import KSR  # provided by app_python3 inside Kamailio

CUTS = "cuts"


def now_ms() -> int:
    return int(time.time() * 1000)


# -- the call's variables ------------------------------------------------------------------------
def save_call(state: dict[str, Any]) -> None:
    KSR.dialog.var_sets("tw_call", json.dumps(state, separators=(",", ":")))


def load_call() -> dict[str, Any] | None:
    raw = KSR.dialog.var_get("tw_call")
    return json.loads(raw) if raw else None


def set_var(name: str, value: object) -> None:
    KSR.dialog.var_sets(name, str(value))


def get_int(name: str) -> int | None:
    raw = KSR.dialog.var_get(name)
    return int(raw) if raw not in (None, "") else None


def start_attempt(attempt: int) -> None:
    set_var("tw_attempt", attempt)
    set_var("tw_sent_ms", now_ms())


def get_var(name: str) -> str:
    return str(KSR.dialog.var_get(name) or "")


def note_ringing() -> bool:
    """On an 18x: PDD of the attempt, from sending its INVITE. True on the attempt's first."""
    attempt = str(get_int("tw_attempt") or "")
    if get_var("tw_pdd").partition(":")[0] == attempt:
        return False
    sent = get_int("tw_sent_ms")
    if sent is None:
        return False
    set_var("tw_pdd", f"{attempt}:{max(0, now_ms() - sent)}")
    return True


def pdd(attempt: int) -> int | None:
    raw = KSR.dialog.var_get("tw_pdd") or ""
    number, _, value = str(raw).partition(":")
    return int(value) if number == str(attempt) and value.isdigit() else None


# -- the cut schedule ----------------------------------------------------------------------------
def schedule_cut(deadline_ms: int) -> None:
    """File the answered call (current message: its 200 OK) to be cut at `deadline_ms`."""
    second = deadline_ms // 1000
    index = KSR.htable.sht_inc(CUTS, f"n{second}")
    key = f"c{second}#{index}"
    callid = KSR.kx.get_callid()
    tags = (KSR.pv.get("$ft") or "", KSR.pv.get("$tt") or "")
    KSR.htable.sht_sets(CUTS, key, "|".join((str(deadline_ms), callid, *tags)))
    set_var("tw_cut_key", key)


def unschedule_cut() -> None:
    key = KSR.dialog.var_get("tw_cut_key")
    if key:
        KSR.htable.sht_rm(CUTS, str(key))


class CallCutter:
    """The timer's side: BYE both legs of every call whose time is up."""

    def __init__(self) -> None:
        self._next_second: int | None = None

    def run(self, now: int) -> None:
        second = now // 1000
        first = self._next_second if self._next_second is not None else second - 3
        for due_second in range(max(first, second - 120), second + 1):
            if not self._cut_second(due_second, now):
                break  # calls of this second are not all due yet: come back next tick
            self._next_second = due_second + 1

    def _cut_second(self, second: int, now: int) -> bool:
        """Cut the due calls filed under `second`; True when none is left there."""
        count = KSR.htable.sht_get(CUTS, f"n{second}")
        if not count:
            return True
        left = 0
        for index in range(1, int(count) + 1):
            key = f"c{second}#{index}"
            entry = KSR.htable.sht_get(CUTS, key)
            if not entry:
                continue  # ended before its time
            deadline, callid, from_tag, to_tag = [*str(entry).split("|"), "", "", ""][:4]
            if deadline.isdigit() and int(deadline) > now:
                left += 1
                continue
            KSR.htable.sht_rm(CUTS, key)
            if KSR.dialog.dlg_get(callid, from_tag, to_tag) < 0:
                continue  # already over
            set_var("tw_cut_ms", now)
            if KSR.dialog.dlg_bye("all") < 0:
                # Kamailio 5.6 (GH #4169): when the caller answers the first BYE before the
                # second one leaves, the carrier's BYE is not sent. Seen on loopback only.
                KSR.warn(f"tawasol: {callid} cut at its maximum duration, a BYE failed\n")
            else:
                KSR.info(f"tawasol: {callid} reached its maximum duration: BYE sent\n")
        if left == 0:
            KSR.htable.sht_rm(CUTS, f"n{second}")
        return left == 0
