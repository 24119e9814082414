"""Who is calling: digest authentication against the brain's HA1, lock-outs, REGISTER.

Runs inside Kamailio (app_python3, KEMI). The HA1 comes from the brain with every decision (a
fake, stable one for unknown users), so an unknown user and a wrong password fail the same way
(RFC 3261 §22; no user enumeration). Failed attempts are counted per username in shared memory
per (username, source address) in shared memory ("authfail" htable, a sliding window): after
`auth_failures` within `auth_window_s` that pair is refused for `auth_lockout_s`, doubled for
each further lock-out within a day ("authlock", "authstrikes"), and the address is banned
("ipban") unless some subscriber authenticated from it before. An address a user succeeded
from ("authknown") is never locked out for that user: failures elsewhere cannot lock a
subscriber out of her own phone (docs/security.md, "Lock-out as a weapon").
"""

from __future__ import annotations

import KSR  # provided by app_python3 inside Kamailio

try:  # imported as part of the tawasol package (tests)
    from . import edge_brain, edge_peers, edge_rules
    from .edge_dialog import now_ms
    from .edge_settings import Settings
except ImportError:  # loaded by app_python3 from this directory
    import edge_brain  # type: ignore[no-redef]
    import edge_peers  # type: ignore[no-redef]
    import edge_rules  # type: ignore[no-redef]
    from edge_dialog import now_ms  # type: ignore[no-redef]
    from edge_settings import Settings  # type: ignore[no-redef]

# auth module return codes (src/modules/auth/api.h)
AUTH_STALE_NONCE = -4
AUTH_NO_CREDENTIALS = -5
AUTH_NONCE_REUSED = -6
STALE = (AUTH_STALE_NONCE, AUTH_NONCE_REUSED)  # challenge again with stale=true
RECHALLENGE = (*STALE, AUTH_NO_CREDENTIALS)  # no credentials for our realm: challenge again
QOP_AUTH = 1
CHALLENGE_STALE = 16
# An address a user authenticated from stays known this long (refreshed by each success).
KNOWN_ADDRESS_S = 30 * 86400
MAX_LOCKOUT_S = 86400


def _pair(user: str, source_ip: str) -> str:
    return f"{user}|{source_ip}"


def known_address(user: str, source_ip: str) -> bool:
    """The user authenticated from this address before (within `KNOWN_ADDRESS_S`)."""
    return KSR.htable.sht_get("authknown", _pair(user, source_ip)) is not None


def locked_out(user: str, source_ip: str) -> bool:
    """Refused for a while after failing from this address; never at a known address, so an
    attacker elsewhere cannot lock a subscriber out of her own phone."""
    if known_address(user, source_ip):
        return False
    return KSR.htable.sht_get("authlock", _pair(user, source_ip)) is not None


def failed(settings: Settings, user: str) -> None:
    """Count a failure for (user, source address); after N within the window, refuse that pair
    for the lock-out time, doubled for each lock-out of the pair within a day (capped at one
    day), and ban the address unless some subscriber authenticated from it before."""
    source_ip = KSR.kx.get_srcip()
    key = _pair(user, source_ip)
    KSR.htable.sht_lock("authfail", key)
    try:
        failures = edge_rules.record_auth_failure(
            edge_rules.parse_failures(KSR.htable.sht_get("authfail", key)),
            now_ms=now_ms(),
            window_ms=settings.auth_window_ms,
        )
        KSR.htable.sht_setxs(
            "authfail", key, edge_rules.format_failures(failures), settings.auth_window_ms // 1000
        )
    finally:
        KSR.htable.sht_unlock("authfail", key)
    if len(failures) < settings.auth_failures:
        return
    KSR.htable.sht_rm("authfail", key)
    if known_address(user, source_ip):
        KSR.warn(
            f"tawasol: {len(failures)} failed authentications for {user!r} from its known "
            f"address {source_ip}: not locked out\n"
        )
        return
    strikes = int(KSR.htable.sht_inc("authstrikes", key))
    lockout_s = lockout_seconds(settings.auth_lockout_s, strikes)
    KSR.htable.sht_setxs("authlock", key, str(now_ms()), lockout_s)
    # a subscriber's address (a shared NAT) or a carrier's is never banned for one user's failures
    banned = KSR.htable.sht_get("knownip", source_ip) is None and not edge_peers.is_peer(source_ip)
    if banned:
        KSR.htable.sht_setxi("ipban", source_ip, 1, max(settings.ban_s, lockout_s))
    KSR.warn(
        f"tawasol: {user!r} from {source_ip} locked out for {lockout_s}s after "
        f"{len(failures)} failed authentications (lock-out {strikes} today)"
        + (f"; {source_ip} banned" if banned else "")
        + "\n"
    )


def succeeded(user: str) -> None:
    """The digest verified: remember this address as the user's, forget its failures."""
    source_ip = KSR.kx.get_srcip()
    key = _pair(user, source_ip)
    KSR.htable.sht_rm("authfail", key)
    if not known_address(user, source_ip):
        KSR.htable.sht_setxi("authknown", key, 1, KNOWN_ADDRESS_S)
        KSR.htable.sht_setxi("knownip", source_ip, 1, KNOWN_ADDRESS_S)


def lockout_seconds(base_s: int, strikes: int) -> int:
    """The n-th lock-out of a pair within a day lasts base * 2^(n-1), at most a day."""
    return int(min(MAX_LOCKOUT_S, base_s * 2 ** max(0, min(strikes - 1, 16))))


def credentials(header: str) -> str:
    """The phone's digest answer as the brain checks it (empty when absent)."""
    return (KSR.hdr.get(header) or "")[:4096]


def check_digest(settings: Settings, ha1: str) -> int:
    """1 when the credentials match, else the auth module's (negative) code."""
    # flags 1: the value is an HA1; checks 1: the digest username is the From user.
    return int(KSR.auth.pv_auth_check(settings.realm, ha1, 1, 1))


def challenge(settings: Settings, *, stale: bool = False) -> int:
    """407 for an INVITE, 401 for a REGISTER (RFC 3261 §22.3), qop=auth."""
    flags = QOP_AUTH | (CHALLENGE_STALE if stale else 0)
    KSR.auth.auth_challenge(settings.realm, flags)
    return 1


def reply(code: int, phrase: str, reason: str | None = None) -> int:
    """Answer the request; a stable reason code goes into Warning and Reason headers."""
    if reason:
        KSR.hdr.append_to_reply(edge_rules.warning_header(reason))
        KSR.hdr.append_to_reply(edge_rules.reason_header(code, reason))
    KSR.sl.send_reply(code, phrase)  # stateful when a transaction exists
    return 1


def register(settings: Settings, brain: edge_brain.BrainClient | edge_brain.BrainPool) -> int:
    """REGISTER: authenticated against the brain's HA1, granted, not stored (tawasol places
    calls and takes none, so there is no location to keep)."""
    if KSR.auth.has_credentials(settings.realm) < 0:
        return challenge(settings)
    user = KSR.kx.get_au() or ""
    if locked_out(user, KSR.kx.get_srcip()):
        return reply(403, "Forbidden")
    try:
        # The brain's answer carries the HA1 for any username (a fake one for unknown
        # users); the decision itself is ignored here.
        answer = brain.post(
            "/sip/v1/authorize",
            {
                "call_id": KSR.kx.get_callid(),
                "user": user,
                "dialled": "register",
                "source_ip": KSR.kx.get_srcip(),
                "user_agent": (KSR.kx.get_ua() or "")[:256],
                "node": settings.node,
                "credentials": credentials("Authorization"),
                "method": "REGISTER",
            },
        )
    except edge_brain.BrainUnavailable as error:
        KSR.err(f"tawasol: brain unreachable for REGISTER: {error}\n")
        KSR.hdr.append_to_reply("Retry-After: 30\r\n")
        return reply(503, "Service Unavailable")
    result = check_digest(settings, str(answer.get("ha1", "")))
    if result in RECHALLENGE:
        return challenge(settings, stale=result in STALE)
    if result < 0:
        failed(settings, user)
        return reply(403, "Forbidden")
    succeeded(user)
    contact = KSR.hdr.get("Contact") or ""
    if contact.strip() == "*":
        return reply(200, "OK")
    uri, expires_param = edge_rules.parse_contact(contact)
    expires = edge_rules.register_expiry(expires_param or KSR.hdr.get("Expires"))
    if uri and expires:
        KSR.hdr.append_to_reply(f"Contact: <{uri}>;expires={expires}\r\n")
    return reply(200, "OK")
