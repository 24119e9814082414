"""Who is calling: digest authentication against the brain's HA1, lock-outs, REGISTER.

Runs inside Kamailio (app_python3, KEMI). The HA1 comes from the brain with every decision (a
fake, stable one for unknown users), so an unknown user and a wrong password fail the same way
(RFC 3261 §22; no user enumeration). Failed attempts are counted per username in shared memory
("authfail" htable, a sliding window); after `auth_failures` within `auth_window_s` the username
is refused for `auth_lockout_s` ("authlock").
"""

from __future__ import annotations

import KSR  # provided by app_python3 inside Kamailio

try:  # imported as part of the tawasol package (tests)
    from . import edge_brain, edge_rules
    from .edge_dialog import now_ms
    from .edge_settings import Settings
except ImportError:  # loaded by app_python3 from this directory
    import edge_brain  # type: ignore[no-redef]
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


def locked_out(user: str) -> bool:
    return KSR.htable.sht_get("authlock", user) is not None


def failed(settings: Settings, user: str) -> None:
    """Count a failure; after N within the window, refuse the user for the lock-out time."""
    KSR.htable.sht_lock("authfail", user)
    try:
        failures = edge_rules.record_auth_failure(
            edge_rules.parse_failures(KSR.htable.sht_get("authfail", user)),
            now_ms=now_ms(),
            window_ms=settings.auth_window_ms,
        )
        KSR.htable.sht_setxs(
            "authfail",
            user,
            edge_rules.format_failures(failures),
            settings.auth_window_ms // 1000,
        )
    finally:
        KSR.htable.sht_unlock("authfail", user)
    if len(failures) >= settings.auth_failures:
        KSR.htable.sht_setxs("authlock", user, str(now_ms()), settings.auth_lockout_s)
        KSR.htable.sht_rm("authfail", user)
        KSR.warn(
            f"tawasol: user {user!r} locked out for {settings.auth_lockout_s}s after "
            f"{len(failures)} failed authentications (last from {KSR.kx.get_srcip()})\n"
        )


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


def register(settings: Settings, brain: edge_brain.BrainClient) -> int:
    """REGISTER: authenticated against the brain's HA1, granted, not stored (tawasol places
    calls and takes none, so there is no location to keep)."""
    if KSR.auth.has_credentials(settings.realm) < 0:
        return challenge(settings)
    user = KSR.kx.get_au() or ""
    if locked_out(user):
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
                "user_agent": KSR.kx.get_ua() or "",
                "node": settings.node,
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
    KSR.htable.sht_rm("authfail", user)
    contact = KSR.hdr.get("Contact") or ""
    if contact.strip() == "*":
        return reply(200, "OK")
    uri, expires_param = edge_rules.parse_contact(contact)
    expires = edge_rules.register_expiry(expires_param or KSR.hdr.get("Expires"))
    if uri and expires:
        KSR.hdr.append_to_reply(f"Contact: <{uri}>;expires={expires}\r\n")
    return reply(200, "OK")
