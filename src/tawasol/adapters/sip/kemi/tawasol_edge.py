"""tawasol's SIP routing script, run by Kamailio's app_python3 (KEMI) in every Kamailio process.

Kamailio loads this file by path (see templates/kamailio.cfg): it runs under Debian's system
Python 3.11 with the system `sys.path`, not the project's virtualenv, so it imports only the
standard library and its siblings, which app_python3 makes importable by putting this directory
first on `sys.path`: `edge_settings` (the rendered configuration's `#!define TAWASOL_*`),
`edge_auth` (digest, lock-outs, REGISTER), `edge_brain` (decision API client, event spool),
`edge_dialog` (per-call state, the cut at the maximum duration) and `edge_rules` (pure rules).

The call flow (docs/sip-edge.md has the picture):
1. every request: banned source IP -> drop (never a carrier's, `edge_peers`); headers not
   UTF-8 -> 400 (`edge_text`); flood (pike) -> ban + drop; scanner User-Agent -> drop; too
   large -> 513; Max-Forwards; sanity checks.
2. a new INVITE without credentials -> 407 challenge (no brain query).
3. with credentials: refused for a while if the user failed too often from this address;
   else one `POST /sip/v1/authorize` carrying the digest answer, which the brain verifies
   before it counts anything (fail closed: no answer in time -> 503); the nonce is checked
   against the HA1 in the answer *before* the decision is used, so an unknown user and a wrong
   password get the same 403, and a call the brain counted but the edge refuses is reported
   failed at once (docs/security.md).
4. a denial -> the decision's SIP code with `Warning: 399 tawasol "<reason>"`; nothing is sent
   to any carrier.
5. allowed -> a dialog cut at the decision's max duration (BYE both ways), routes tried in
   order (serial forking) with a timer per route; the failure route moves on only on network
   failures.
6. every attempt, answer, end and failure is written to the event spool; a timer process ships
   it to `POST /sip/v1/events`.
"""

from __future__ import annotations

from typing import Any

import KSR  # provided by app_python3 inside Kamailio

try:  # imported as part of the tawasol package (tests)
    from . import (
        edge_auth,
        edge_brain,
        edge_dialog,
        edge_inbound,
        edge_peers,
        edge_rules,
        edge_settings,
        edge_text,
    )
    from .edge_dialog import now_ms
except ImportError:  # loaded by app_python3 from this directory
    import edge_auth  # type: ignore[no-redef]
    import edge_brain  # type: ignore[no-redef]
    import edge_dialog  # type: ignore[no-redef]
    import edge_inbound  # type: ignore[no-redef]
    import edge_peers  # type: ignore[no-redef]
    import edge_rules  # type: ignore[no-redef]
    import edge_settings  # type: ignore[no-redef]
    import edge_text  # type: ignore[no-redef]
    from edge_dialog import now_ms  # type: ignore[no-redef]

# The dialog module's timer ticks once a second, so a call it cuts lasts anywhere between the
# limit minus one second and the limit plus one. The edge cuts calls itself from a 100 ms timer
# and keeps the dialog timeout, a little later, as a safety net.
CUT_SAFETY_NET_S = 2

# Shared memory (htable): carrier code -> until when (ms since the epoch) it is left alone
# after its 503 with Retry-After.
HOLD_OFF = "holdoff"


class Edge:
    """The routing logic. One instance per Kamailio process (created before the fork)."""

    def __init__(self) -> None:
        self._settings: edge_settings.Settings | None = None
        self._brain: edge_brain.BrainPool | None = None
        self._spool: edge_brain.EventSpool | None = None
        self._cutter = edge_dialog.CallCutter()
        self._peers = edge_peers.PeerList()
        self._inbound = edge_inbound.InboundNumbers()
        self._inbound_refresher = edge_inbound.InboundRefresher()

    def _failed(
        self,
        call_id: str,
        user: str,
        dialled: str,
        sip_code: int,
        cause: str,
        grant: str | None = None,
    ) -> None:
        """Tell the brain a call it allowed never happened, so the subscriber's slot is freed."""
        failure = edge_rules.event(
            "failure",
            call_id=call_id,
            at_ms=now_ms(),
            user=user,
            dialled=dialled,
            sip_code=sip_code,
            hangup_cause=cause,
        )
        self._emit(_granted(failure, grant))

    # -- per-process state, created lazily after the fork -------------------------------------
    @property
    def settings(self) -> edge_settings.Settings:
        if self._settings is None:
            self._settings = edge_settings.Settings()
        return self._settings

    @property
    def brain(self) -> edge_brain.BrainPool:
        if self._brain is None:
            settings = self.settings
            self._brain = edge_brain.BrainPool(
                settings.brain_addresses,
                timeout_ms=settings.brain_timeout_ms,
                token=settings.edge_token,
            )
        return self._brain

    @property
    def spool(self) -> edge_brain.EventSpool:
        if self._spool is None:
            self._spool = edge_brain.EventSpool(self.settings.spool_dir)
            self._spool.ensure()
        return self._spool

    def child_init(self, rank: int) -> int:
        return 0

    # -- request route ----------------------------------------------------------------------
    def ksr_request_route(self, msg: Any) -> int:
        try:
            return self._request_route()
        except Exception as error:  # a bug must cost one request a 500, not a hung call
            KSR.err(f"tawasol: request route failed: {error!r}\n")
            if not KSR.is_ACK():
                KSR.sl.send_reply(500, "Server Internal Error")
            return 1

    def _request_route(self) -> int:
        settings = self.settings
        source_ip = KSR.kx.get_srcip()
        # A carrier is known by the packet's source address, never by a header; it is never
        # banned, so its hang-ups always get through (docs/security.md).
        peer = edge_peers.is_peer(source_ip)
        if not peer and KSR.htable.sht_get("ipban", source_ip) is not None:
            return 1  # banned: no reply at all
        in_dialog = KSR.siputils.has_totag() > 0
        # Headers that are not UTF-8: a new request is refused; an in-dialog one (a BYE) is
        # still relayed, by C code only, so that a call always hangs up (edge_text).
        unreadable = edge_text.unreadable_headers()
        if unreadable is not None and not in_dialog:
            return edge_text.refuse_unreadable(unreadable, source_ip)
        if not in_dialog and KSR.pike.pike_check_req() < 0:
            if peer:
                return 1  # a flood "from" a carrier (spoofable over UDP): dropped, no ban
            KSR.htable.sht_seti("ipban", source_ip, 1)
            KSR.warn(f"tawasol: {source_ip} above the request rate: banned {settings.ban_s}s\n")
            return 1
        user_agent = KSR.kx.get_ua() if unreadable is None else edge_text.user_agent(unreadable)
        if edge_rules.is_scanner(user_agent):
            KSR.notice(f"tawasol: scanner from {source_ip} dropped ({user_agent!r})\n")
            return 1
        if KSR.kx.get_msglen() > settings.max_message_bytes:
            KSR.sl.sl_send_reply(513, "Message Too Large")
            return 1
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.sanity.sanity_check_defaults() < 0:
            return 1  # sanity has replied (400 ...) where a reply makes sense

        KSR.force_rport()
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if in_dialog:
            return self.within_dialog()
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.tmx.t_precheck_trans() > 0:  # a retransmission being processed now
            KSR.tm.t_check_trans()
            return 1
        if KSR.tm.t_check_trans() == 0:  # a retransmission already answered
            return 1
        KSR.hdr.remove("Route")

        if KSR.is_INVITE():
            return self.invite()
        if KSR.is_REGISTER():
            return self.register()
        if KSR.is_OPTIONS() and not KSR.kx.get_ruser():
            KSR.sl.sl_send_reply(200, "OK")  # keep-alive pings from phones and carriers
            return 1
        KSR.hdr.append_to_reply("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER\r\n")
        KSR.sl.sl_send_reply(405, "Method Not Allowed")
        return 1

    def within_dialog(self) -> int:
        if KSR.rr.loose_route() > 0:
            # A phone may put its credentials on ACK, BYE, re-INVITE ...: carriers never see
            # them (the subscriber's digest is for this edge only).
            _strip_credentials()
            KSR.dialog.dlg_manage()
            if KSR.is_INVITE():
                KSR.rr.record_route()  # re-INVITE: stay on the path
            KSR.tm.t_relay()
            return 1
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1  # an ACK for nothing we know: absorb
        KSR.sl.sl_send_reply(404, "Not Here")
        return 1

    # -- REGISTER: authenticated, granted, not stored (tawasol places calls; it takes none) ---
    def register(self) -> int:
        return edge_auth.register(self.settings, self.brain)

    # -- a new call ---------------------------------------------------------------------------
    def invite(self) -> int:
        settings = self.settings
        if KSR.auth.has_credentials(settings.realm) < 0 and self._direct_number_call():
            return self.inbound_invite()
        if KSR.auth.has_credentials(settings.realm) < 0:
            return edge_auth.challenge(settings)
        user = KSR.kx.get_au() or ""
        # One transaction from now on: retransmissions are absorbed while the brain answers,
        # and the 100 stops the phone retransmitting at all (RFC 3261 §17.1.1.2). Sent before
        # the lock-out check too, so that a locked user gets the same replies as a wrong
        # password.
        if KSR.tm.t_newtran() < 0:
            KSR.sl.sl_reply_error()  # out of memory: 500, the phone may retry elsewhere
            return 1
        KSR.tm.t_reply(100, "Trying")
        if edge_auth.locked_out(user, KSR.kx.get_srcip()):
            return edge_auth.reply(403, "Forbidden")
        call_id = KSR.kx.get_callid()
        dialled = KSR.kx.get_ruser() or ""
        return self._request_decision(call_id=call_id, user=user, dialled=dialled)

    # -- a call from an inbound trunk to a direct number (docs/direct-numbers.md) ---------------
    def _direct_number_call(self) -> bool:
        """From an inbound trunk's address, or to a pool number: no digest challenge, the
        brain's inbound decision instead (which refuses a pool number from anywhere else)."""
        return self._inbound.wanted(KSR.kx.get_srcip(), KSR.kx.get_ruser() or "")

    def inbound_invite(self) -> int:
        if KSR.tm.t_newtran() < 0:
            KSR.sl.sl_reply_error()
            return 1
        KSR.tm.t_reply(100, "Trying")
        call_id = KSR.kx.get_callid()
        try:
            decision = self.brain.post(
                "/sip/v1/inbound", edge_inbound.request_body(node=self.settings.node)
            )
        except edge_brain.BrainUnavailable as error:
            # Fail closed. A decision the brain took too late holds the subscriber's slot
            # until its ring time runs out (the edge does not know who the caller was).
            KSR.err(f"tawasol: no inbound decision for {call_id}: {error}\n")
            return edge_auth.reply(503, "Service Unavailable", "brain_unavailable")
        user = str(decision.get("user") or "")
        dialled = str(decision.get("dialled") or "")
        if KSR.tm.t_is_canceled() > 0:
            if decision.get("allow"):
                self._failed(call_id, user, dialled, 487, "caller_cancelled", decision.get("grant"))
            return 1
        access = {
            "access": "direct_number",
            "inbound_trunk": decision.get("inbound_trunk"),
            "caller_id": decision.get("caller_id"),
        }
        if decision.get("allow"):
            edge_inbound.present_caller(decision.get("caller_id"))
        try:
            return self._route_decision(
                decision, call_id=call_id, user=user, dialled=dialled, access=access
            )
        except Exception:
            if decision.get("allow") and not edge_dialog.load_call():
                self._failed(call_id, user, dialled, 500, "edge_error", decision.get("grant"))
            raise

    def _decision_request(self, *, call_id: str, user: str, dialled: str) -> dict[str, Any]:
        """The body of `POST /sip/v1/authorize` for the INVITE being routed."""
        return {
            "call_id": call_id,
            "user": user,
            "dialled": dialled or "-",
            "source_ip": KSR.kx.get_srcip(),
            "user_agent": (KSR.kx.get_ua() or "")[:256],
            "node": self.settings.node,
            # checked by the brain before it counts the call (docs/security.md)
            "credentials": edge_auth.credentials("Proxy-Authorization"),
            "method": "INVITE",
        }

    def _request_decision(self, *, call_id: str, user: str, dialled: str) -> int:
        """Ask the brain (blocking, on this worker's kept connection), then apply its answer."""
        try:
            decision = self.brain.post(
                "/sip/v1/authorize",
                self._decision_request(call_id=call_id, user=user, dialled=dialled),
            )
        except edge_brain.BrainUnavailable as error:
            # Fail closed (docs/sip-decision-api.md): no decision, no call.
            KSR.err(f"tawasol: no decision for {call_id}: {error}\n")
            if error.request_sent:
                # The brain may still decide (late) and count the call as in progress: tell
                # it the call failed, so that the subscriber's slot is freed.
                self._failed(call_id, user, dialled, 503, "brain_timeout")
            return edge_auth.reply(503, "Service Unavailable", "brain_unavailable")
        try:
            return self._apply_decision(decision, call_id=call_id, user=user, dialled=dialled)
        except Exception:
            # Whatever failed, a call the brain counted must not hold the subscriber's slot.
            if decision.get("allow") and not edge_dialog.load_call():
                self._failed(call_id, user, dialled, 500, "edge_error", decision.get("grant"))
            raise

    def _apply_decision(
        self, decision: dict[str, Any], *, call_id: str, user: str, dialled: str
    ) -> int:
        """The brain's answer applied to the INVITE's transaction: digest against the HA1 in
        it, then the denial, or the dialog and the routes."""
        settings = self.settings
        grant = decision.get("grant")
        if KSR.tm.t_is_canceled() > 0:  # the caller gave up while the brain answered
            if decision.get("allow"):
                self._failed(call_id, user, dialled, 487, "caller_cancelled", grant)
            return 1
        # The brain counted the call only if the digest's response verified; the nonce's
        # freshness, binding and single use are checked here. A call the brain counted and the
        # edge refuses is reported failed, so the subscriber's slot is freed.
        result = edge_auth.check_digest(settings, str(decision.get("ha1", "")))
        if result in edge_auth.RECHALLENGE:
            if decision.get("allow"):
                self._failed(call_id, user, dialled, 407, "stale_nonce", grant)
            return edge_auth.challenge(settings, stale=result in edge_auth.STALE)
        if result < 0:
            edge_auth.failed(settings, user)
            if decision.get("allow"):
                self._failed(call_id, user, dialled, 403, "auth_failed", grant)
            return edge_auth.reply(403, "Forbidden")
        edge_auth.succeeded(user)
        _strip_credentials()  # carriers never see the subscriber's credentials
        return self._route_decision(decision, call_id=call_id, user=user, dialled=dialled)

    def _route_decision(
        self,
        decision: dict[str, Any],
        *,
        call_id: str,
        user: str,
        dialled: str,
        access: dict[str, Any] | None = None,
    ) -> int:
        """A decision applied once the caller is known: the denial, or the dialog and the
        routes. `access`: how a call to a direct number came in, put on its every event."""
        grant = decision.get("grant")
        if not decision.get("allow"):
            code = int(decision.get("sip_code") or 403)
            reason = str(decision.get("reason") or "denied")
            phrase = edge_rules.safe_reason_phrase(
                str(decision.get("sip_reason") or ""), "Forbidden"
            )
            KSR.info(f"tawasol: {call_id} from {user} to {dialled} denied: {reason}\n")
            return edge_auth.reply(code if 400 <= code < 700 else 403, phrase, reason)

        routes = [route for route in decision.get("routes") or [] if route.get("uri")]
        if not routes:
            return edge_auth.reply(503, "No Route Available", "no_route")
        if not self._open_dialog(call_id):
            return edge_auth.reply(500, "Server Internal Error", "no_dialog")
        max_duration_s = max(1, int(decision.get("max_duration_s") or 1))
        # The cut itself comes from the "cuts" timer (100 ms precision, see _answered); the
        # dialog module's own timeout (1 s ticks) is the safety net behind it.
        KSR.dialog.dlg_set_timeout(max_duration_s + CUT_SAFETY_NET_S)
        state = {
            "user": user,
            "dialled": dialled,
            "routes": routes,
            "max_s": max_duration_s,
            "ftag": KSR.pv.get("$ft") or "",
            "grant": grant,
            **{key: value for key, value in (access or {}).items() if value},
        }
        edge_dialog.save_call(state)
        KSR.dialog.set_dlg_profile("subscriber", user)
        KSR.rr.record_route()
        if self._next_route(state, first_attempt=1):
            return 1
        # No route took the INVITE (every carrier held off by Retry-After, or unreachable):
        # the brain counted the call as in progress, tell it the call failed.
        self._failed(call_id, user, dialled, 503, "all_routes_failed", grant)
        return edge_auth.reply(503, "All Routes Failed", "all_routes_failed")

    def _open_dialog(self, call_id: str) -> bool:
        """Make the allowed call this process's current dialog; False refuses it with 500.
        `dlg_manage`'s result is not checked: a call it could not track still goes through."""
        KSR.dialog.dlg_manage()
        return True

    def _next_route(self, state: dict[str, Any], *, first_attempt: int) -> bool:
        """Relay to the first route from `first_attempt` (1-based) that takes the INVITE.

        A carrier that answered 503 with Retry-After is skipped until that time has passed
        (RFC 3261 §21.5.4: do not send it requests for that long), on every call of this edge.
        """
        routes = state["routes"]
        for attempt in range(first_attempt, len(routes) + 1):
            route = routes[attempt - 1]
            carrier = str(route.get("carrier", ""))
            if edge_rules.held_off(KSR.htable.sht_get(HOLD_OFF, carrier), now_ms=now_ms()):
                KSR.info(f"tawasol: {carrier} asked for a pause (Retry-After): route skipped\n")
                continue
            KSR.seturi(str(route["uri"]))
            timeout_ms = int(route.get("timeout_ms") or 3000)
            # Until the carrier's first 18x, only the route's own timer runs, whatever 100
            # Trying came (hop-by-hop, it says nothing about the callee): a silent carrier is
            # left after `timeout_ms`. The reply route gives a ringing callee the ring timeout.
            KSR.tm.t_set_fr(timeout_ms, timeout_ms)
            KSR.tm.t_on_failure("ksr_failure_route")
            KSR.tm.t_on_reply("ksr_onreply_route")
            edge_dialog.start_attempt(attempt)
            if KSR.tm.t_relay() > 0:
                previous = edge_dialog.get_var("tw_carrier")
                if previous:
                    KSR.dialog.unset_dlg_profile("carrier", previous)
                KSR.dialog.set_dlg_profile("carrier", carrier)
                edge_dialog.set_var("tw_carrier", carrier)
                return True
            KSR.err(f"tawasol: could not send to {route['uri']}\n")
            self._emit(self._attempt_event(state, attempt, sip_code=503, pdd_ms=None))
        return False

    def _attempt_event(
        self,
        state: dict[str, Any],
        attempt: int,
        *,
        sip_code: int,
        pdd_ms: int | None,
        q850: int | None = None,
        retry_after_s: int | None = None,
    ) -> dict[str, Any]:
        attempt_event = edge_rules.attempt_event(
            call_id=KSR.kx.get_callid(),
            at_ms=edge_dialog.get_int("tw_sent_ms") or now_ms(),
            user=state["user"],
            dialled=state["dialled"],
            attempt=attempt,
            route=state["routes"][attempt - 1],
            sip_code=sip_code,
            pdd_ms=pdd_ms,
            q850=q850,
            retry_after_s=retry_after_s,
        )
        return _granted(attempt_event, state.get("grant"), state)

    # -- replies from the carrier -------------------------------------------------------------
    def ksr_onreply_route(self, msg: Any) -> int:
        try:
            self._note_progress()
        except Exception as error:
            KSR.err(f"tawasol: reply route failed: {error!r}\n")
        return 1

    def _note_progress(self) -> None:
        if 180 <= int(KSR.kx.get_status()) < 190 and edge_dialog.note_ringing():
            # The callee's phone rings: from now on it may ring the ring timeout (RFC 3261
            # Timer C), not the route's timer; 0 leaves fr_timer as it is.
            KSR.tm.t_set_fr(self.settings.ring_timeout_ms, 0)

    def ksr_failure_route(self, msg: Any) -> int:
        try:
            return self._failure_route()
        except Exception as error:  # tm then relays the best answer it has
            KSR.err(f"tawasol: failure route failed: {error!r}\n")
            return 1

    def _failure_route(self) -> int:
        state = edge_dialog.load_call()
        attempt = edge_dialog.get_int("tw_attempt") or 1
        if state is None:
            return 1
        timed_out = KSR.tm.t_branch_timeout() > 0
        pdd = edge_dialog.pdd(attempt)
        reason = None if timed_out else edge_text.pv_text("$T_rpl($hdr(Reason))")
        carrier_code = int(KSR.pv.get("$T_reply_code") or 500)
        code, cause, meaning = edge_rules.attempt_meaning(
            carrier_code,
            local_timeout=timed_out,
            rang=pdd is not None,
            q850=edge_rules.q850_cause(reason),
        )
        retry_after = self._hold_off(state, attempt) if meaning.honours_retry_after else None
        self._emit(
            self._attempt_event(
                state, attempt, sip_code=code, pdd_ms=pdd, q850=cause, retry_after_s=retry_after
            )
        )
        call_id = KSR.kx.get_callid()
        if KSR.tm.t_is_canceled() > 0:
            self._emit(self._failure(state, 487))
            return 1
        if meaning.fails_over:
            KSR.info(f"tawasol: {call_id} attempt {attempt} failed with {code}: next route\n")
            if self._next_route(state, first_attempt=attempt + 1):
                return 1
            self._emit(self._failure(state, meaning.reply_code))
            KSR.hdr.append_to_reply('Reason: Q.850;cause=34;text="all routes failed"\r\n')
            KSR.hdr.append_to_reply(edge_rules.warning_header("all_routes_failed"))
            KSR.tm.t_reply(meaning.reply_code, meaning.reply_phrase)
            return 1
        # The callee's answer ends the call. tm relays the carrier's own reply when the table
        # gives the caller that code (486, 404, 480, 603 ...); otherwise (a 503 carrying cause
        # 17, our ring timeout) the caller gets the table's reply (486, 480 ...).
        self._emit(self._failure(state, meaning.reply_code))
        if meaning.reply_code != carrier_code:
            KSR.tm.t_reply(meaning.reply_code, meaning.reply_phrase)
        return 1

    def _hold_off(self, state: dict[str, Any], attempt: int) -> int | None:
        """A 503 with Retry-After: leave its carrier alone that long (capped by the settings)."""
        seconds = edge_rules.semantics.retry_after_seconds(
            edge_text.pv_text("$T_rpl($hdr(Retry-After))"),
            maximum_s=self.settings.retry_after_max_s,
        )
        if seconds is not None:
            carrier = str(state["routes"][attempt - 1].get("carrier", ""))
            KSR.htable.sht_sets(HOLD_OFF, carrier, str(now_ms() + seconds * 1000))
        return seconds  # type: ignore[no-any-return]

    def _failure(self, state: dict[str, Any], sip_code: int) -> dict[str, Any]:
        failure = edge_rules.event(
            "failure",
            call_id=KSR.kx.get_callid(),
            at_ms=now_ms(),
            user=state["user"],
            dialled=state["dialled"],
            sip_code=sip_code,
        )
        return _granted(failure, state.get("grant"), state)

    # -- dialog events: answered, ended ---------------------------------------------------------
    def ksr_dialog_event(self, msg: Any, name: str) -> int:
        try:
            if name == "dialog:start":
                self._answered()
            elif name == "dialog:end":
                self._ended()
        except Exception as error:  # an event must never break the call
            KSR.err(f"tawasol: dialog event {name} failed: {error!r}\n")
        return 1

    def _answered(self) -> None:
        state = edge_dialog.load_call()
        if state is None or KSR.dialog.var_get("tw_answer_ms"):
            return
        at = now_ms()
        edge_dialog.set_var("tw_answer_ms", at)
        try:
            edge_dialog.schedule_cut(at + int(state["max_s"]) * 1000)
        except UnicodeDecodeError:  # a carrier's To tag that is not UTF-8 (edge_text)
            KSR.warn("tawasol: answer not filed for the cut: the dialog's timeout cuts it\n")
        attempt = edge_dialog.get_int("tw_attempt") or 1
        route = state["routes"][attempt - 1]
        answered = self._attempt_event(
            state, attempt, sip_code=200, pdd_ms=edge_dialog.pdd(attempt)
        )
        answer = edge_rules.event(
            "answer",
            call_id=KSR.pv.get("$dlg(callid)") or KSR.kx.get_callid(),
            at_ms=at,
            user=state["user"],
            dialled=state["dialled"],
            carrier=str(route.get("carrier", "")),
        )
        answered["call_id"] = answer["call_id"]
        self._emit(answered, _granted(answer, state.get("grant"), state))

    def _ended(self) -> None:
        state = edge_dialog.load_call()
        answered_at = edge_dialog.get_int("tw_answer_ms")
        if state is None or answered_at is None:
            return
        at = now_ms()
        edge_dialog.unschedule_cut()
        cut_at = edge_dialog.get_int("tw_cut_ms")
        if cut_at is not None:
            at, cause = cut_at, "max_duration"
        elif KSR.siputils.is_request() > 0 and KSR.kx.get_method() == "BYE":
            # RFC 3261 §12: the caller's requests carry its own tag in From
            # (a From tag that is not UTF-8 is not the caller's: its INVITE was checked)
            cause = "caller" if edge_text.pv_text("$ft") == state.get("ftag") else "callee"
        else:
            cause = "max_duration"  # the dialog module's own timeout (the safety net)
        end = edge_rules.event(
            "end",
            call_id=KSR.pv.get("$dlg(callid)") or KSR.kx.get_callid(),
            at_ms=at,
            user=state["user"],
            dialled=state["dialled"],
            duration_ms=max(0, at - answered_at),
            hangup_cause=cause,
        )
        self._emit(_granted(end, state.get("grant"), state))

    def ksr_cut_calls(self, msg: Any, name: str = "") -> int:
        """rtimer, every 100 ms in its own process: BYE both sides of calls whose time is up."""
        try:
            self._cutter.run(now_ms())
        except Exception as error:
            KSR.err(f"tawasol: cutting calls failed: {error!r}\n")
        return 1

    # -- the event outbox -----------------------------------------------------------------------
    def _emit(self, *events: dict[str, Any]) -> None:
        try:
            self.spool.write(list(events))
        except OSError as error:
            KSR.crit(f"tawasol: cannot spool call events {events!r}: {error}\n")

    def ksr_ship_events(self, msg: Any, name: str = "") -> int:
        """rtimer: ship spooled events to the brain (one dedicated timer process), and keep
        the carriers' addresses and the inbound trunks' list fresh."""
        try:
            self.spool.ship(self.brain)
        except Exception as error:
            KSR.err(f"tawasol: shipping events failed: {error!r}\n")
        try:
            self._peers.refresh(self.brain)
        except Exception as error:
            KSR.err(f"tawasol: refreshing carrier addresses failed: {error!r}\n")
        try:
            self._inbound_refresher.refresh(self.brain)
        except Exception as error:
            KSR.err(f"tawasol: refreshing inbound numbers failed: {error!r}\n")
        return 1


# What a call to a direct number carries on its every event (docs/sip-decision-api.md).
ACCESS_FIELDS = ("access", "inbound_trunk", "caller_id")


def _granted(
    event: dict[str, Any], grant: str | None, state: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The event with the decision's grant, which the brain requires (docs/security.md), and
    for a call to a direct number how it came in (from the call's state)."""
    if grant:
        event["grant"] = grant
    for key in ACCESS_FIELDS:
        if state and state.get(key):
            event[key] = state[key]
    return event


def _strip_credentials() -> None:
    """Remove every Proxy-Authorization and Authorization header from the request relayed."""
    for name in ("Proxy-Authorization", "Authorization"):
        if KSR.hdr.is_present(name) > 0:
            KSR.hdr.remove(name)


def mod_init() -> Edge:
    return Edge()
