"""Check a caller's digest before anything is counted against the subscriber, and grant
decisions that call events must show.

`CredentialVerifier` (docs/security.md, faults "Blocked without credentials", "replayable
Proxy-Authorization", "lock-out as a weapon"): the edge forwards the phone's digest answer with
its decision request; the brain checks the response against the subscriber's HA1 (RFC 2617
§3.2.2) and refuses an answer already used by another call (RFC 7616 §3.4.5: one nonce-count
per nonce), so a stale, wrong or replayed answer never holds a call slot. Repeated failures per
(username, source address) are kept as reports for the operator, and for the subscriber's
notices.

`DecisionGrants`: every allowed decision carries a grant, a MAC (keyed BLAKE2b, RFC 7693) over
(call id, username, maximum duration) with a key only the brain holds. Call events must show
it: a forged event for a call the brain never allowed is refused, and no event can make a call
last longer than its decision allowed. A call decided by this brain process is also known
without its grant (the edge reports a call it gave up waiting for, before it ever saw the
grant).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Protocol

from tawasol.domain.digest import parse_digest, response_matches
from tawasol.domain.errors import InvalidConfiguration

log = logging.getLogger(__name__)


class CredentialCheck(Enum):
    """The brain's verdict on a digest answer."""

    VERIFIED = "verified"
    MISSING = "credentials_missing"  # no digest answer, or not one the edge could have sent
    REJECTED = "credentials_rejected"  # wrong password, unknown username, other realm
    REPLAYED = "credentials_replayed"  # a digest answer another call already used


@dataclass(frozen=True)
class AuthFailureReport:
    """Repeated failed authentications for one username from one address: told to the operator
    (admin API, the brain's log) and kept so that the subscriber can be told too."""

    sip_username: str
    source_ip: str
    failures: int
    first_at: datetime
    last_at: datetime
    known_subscriber: bool


class AuthFailureLog(Protocol):
    """Where reports are kept across restarts, until the subscriber's notices send them."""

    def append(self, report: AuthFailureReport) -> None: ...

    def load(self) -> list[AuthFailureReport]: ...


class CredentialVerifier:
    """Digest answers checked by the brain; replays and repeated failures remembered."""

    def __init__(
        self,
        *,
        realm: str,
        clock: Callable[[], datetime],
        nonce_lifetime: timedelta = timedelta(seconds=300),
        report_after: int = 3,
        failure_window: timedelta = timedelta(minutes=15),
        max_remembered: int = 200_000,
        max_reports: int = 1000,
        report_log: AuthFailureLog | None = None,
    ) -> None:
        self._realm = realm
        self._clock = clock
        self._nonce_lifetime = nonce_lifetime
        self._report_after = report_after
        self._failure_window = failure_window
        self._max_remembered = max_remembered
        self._used: OrderedDict[str, tuple[str, datetime]] = OrderedDict()
        self._failures: dict[tuple[str, str], list[datetime]] = {}
        self._reports: deque[AuthFailureReport] = deque(maxlen=max_reports)
        self._report_log = report_log
        if report_log is not None:
            self._reports.extend(report_log.load())
        self._lock = threading.Lock()

    def verify(
        self,
        *,
        call_id: str,
        username: str,
        method: str,
        header: str,
        ha1: str,
        source_ip: str,
        known_subscriber: bool,
    ) -> CredentialCheck:
        """The verdict on `header` (the phone's digest answer) for this call."""
        credentials = parse_digest(header) if header else None
        if credentials is None:
            return CredentialCheck.MISSING
        now = self._clock()
        if not response_matches(
            credentials, ha1=ha1, method=method, username=username, realm=self._realm
        ):
            self._failed(username, source_ip, now, known_subscriber=known_subscriber)
            return CredentialCheck.REJECTED
        with self._lock:
            self._forget_expired(now)
            used = self._used.get(credentials.replay_key)
            if used is not None and used[0] != call_id:
                return CredentialCheck.REPLAYED  # the same INVITE retransmitted keeps its call id
            if used is None:
                self._used[credentials.replay_key] = (call_id, now + self._nonce_lifetime)
            self._failures.pop((username, source_ip), None)
        return CredentialCheck.VERIFIED

    def reports(self) -> list[AuthFailureReport]:
        """The reports of repeated failures, oldest first."""
        with self._lock:
            return list(self._reports)

    def _forget_expired(self, now: datetime) -> None:
        while self._used:
            key, (_, expires_at) = next(iter(self._used.items()))
            if expires_at > now and len(self._used) < self._max_remembered:
                break
            del self._used[key]

    def _failed(
        self, username: str, source_ip: str, now: datetime, *, known_subscriber: bool
    ) -> None:
        with self._lock:
            since = now - self._failure_window
            key = (username, source_ip)
            failures = [at for at in self._failures.get(key, []) if at > since]
            failures.append(now)
            if len(self._failures) >= self._max_remembered and key not in self._failures:
                self._failures.clear()  # a spray of usernames: start over rather than grow
            self._failures[key] = failures
            if len(failures) % self._report_after != 0:
                return
            report = AuthFailureReport(
                sip_username=username,
                source_ip=source_ip,
                failures=len(failures),
                first_at=failures[0],
                last_at=now,
                known_subscriber=known_subscriber,
            )
            self._reports.append(report)
        if self._report_log is not None:
            try:
                self._report_log.append(report)
            except OSError as error:
                log.error("auth failure report not kept: %s", error)
        log.warning(
            "%d failed authentications for %r from %s within %s (subscriber %s)",
            report.failures,
            username,
            source_ip,
            self._failure_window,
            "exists" if known_subscriber else "unknown",
        )


class DecisionGrants:
    """Grants for allowed decisions, and the calls this process allowed."""

    def __init__(
        self,
        *,
        key: bytes,
        clock: Callable[[], datetime],
        remember_for: timedelta,
        max_remembered: int = 200_000,
    ) -> None:
        if not key:
            raise InvalidConfiguration("the grant key is empty")
        self._key = key
        # BLAKE2b takes a key of at most 64 bytes; a longer one is hashed first, as HMAC does
        self._blake2_key = key if len(key) <= 64 else hashlib.blake2b(key).digest()
        self._clock = clock
        self._remember_for = remember_for
        self._max_remembered = max_remembered
        self._decided: OrderedDict[str, tuple[str, int, datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def _mac(self, call_id: str, username: str, max_duration_s: int) -> str:
        """Keyed BLAKE2b (RFC 7693 §2.9: BLAKE2 with a key is a MAC), 128 bits as 32 hex.

        Not HMAC-SHA256: OpenSSL's one-shot HMAC releases the GIL on every call, and on a
        brain whose events are written by a worker thread each decision then waited for that
        thread's turn (a few milliseconds at the 99th percentile). CPython's own BLAKE2 keeps
        the GIL for short messages and costs a third of the time."""
        message = f"{call_id}\n{username}\n{max_duration_s}".encode()
        return hashlib.blake2b(message, key=self._blake2_key, digest_size=16).hexdigest()

    def _legacy_mac(self, call_id: str, username: str, max_duration_s: int) -> str:
        """HMAC-SHA256 (RFC 2104), truncated to 128 bits: the grants that calls in progress
        across an upgrade from 0.1.0 still carry (checked only when the
        BLAKE2b one does not match)."""
        message = f"{call_id}\n{username}\n{max_duration_s}".encode()
        return hmac.digest(self._key, message, hashlib.sha256).hex()[:32]

    def issue(self, *, call_id: str, username: str, max_duration_s: int) -> str:
        """The grant for an allowed call: `<max duration s>.<mac>`."""
        now = self._clock()
        with self._lock:
            while self._decided:
                oldest, (_, _, at) = next(iter(self._decided.items()))
                if at > now - self._remember_for and len(self._decided) < self._max_remembered:
                    break
                del self._decided[oldest]
            self._decided[call_id] = (username, max_duration_s, now)
        return f"{max_duration_s}.{self._mac(call_id, username, max_duration_s)}"

    def max_duration_s(self, *, call_id: str, username: str, grant: str | None) -> int | None:
        """The longest the call may last if the brain allowed it, else None.

        A call this process decided is known from its memory of the decision (what the grant
        would prove, without computing an HMAC for each of the call's events); any other call
        must show a grant whose HMAC verifies."""
        with self._lock:
            decided = self._decided.get(call_id)
        if decided is not None and decided[0] == username:
            return decided[1]
        if grant:
            limit, _, mac = grant.partition(".")
            if limit.isdigit() and any(
                hmac.compare_digest(mac.encode(), expected(call_id, username, int(limit)).encode())
                for expected in (self._mac, self._legacy_mac)
            ):
                return int(limit)
        return None
