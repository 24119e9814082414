"""SIP digest credentials: what a phone proves when it answers a 407/401 challenge.

A subscriber's phone answers the edge's challenge with a `Proxy-Authorization` (INVITE) or
`Authorization` (REGISTER) header: `Digest username="amina", realm="...", nonce="...",
uri="sip:...", response="<32 hex>", qop=auth, nc=00000001, cnonce="..."`. The response is
MD5 over the subscriber's HA1 (MD5 of `username:realm:password`, the only form in which the
brain keeps the password), the nonce and the request (RFC 2617 §3.2.2, RFC 3261 §22.4,
RFC 8760 for SIP's use of RFC 7616). The brain checks the response itself before it counts a
call against anyone (docs/security.md, "Blocked without credentials"); the edge still checks
the nonce's freshness and single use, which only it can.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

# RFC 7616 §3.4 / RFC 2617 §3.2.2: auth-param = token "=" ( token / quoted-string ), read in
# one pass (this runs once per call on the decision path)
_PARAMETER = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s,"]*))')
_HEX32 = re.compile(r"[0-9a-f]{32}")
_NONCE_COUNT = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True)
class DigestCredentials:
    """The parameters of one digest answer (RFC 2617 §3.2.2), as the phone sent them."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    qop: str = ""
    nonce_count: str = ""
    cnonce: str = ""
    algorithm: str = "MD5"

    @property
    def replay_key(self) -> str:
        """What makes this answer unique: a second request carrying the same one is a replay
        (RFC 7616 §3.4.5: a nonce-count is used once per nonce)."""
        return f"{self.nonce}\n{self.nonce_count}\n{self.cnonce}\n{self.response}"


def parse_digest(header: str) -> DigestCredentials | None:
    """The credentials in a `Proxy-Authorization`/`Authorization` value; None when it is not
    a complete MD5 digest answer (a missing parameter, another scheme, another algorithm)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    values = {
        name.lower(): (quoted.replace('\\"', '"') if "\\" in quoted else quoted) or token
        for name, quoted, token in _PARAMETER.findall(rest)
    }
    required = ("username", "realm", "nonce", "uri", "response")
    if any(not values.get(name) for name in required):
        return None
    algorithm = values.get("algorithm", "MD5")
    if algorithm.upper() != "MD5":
        return None
    qop = values.get("qop", "")
    if qop and (qop != "auth" or not _NONCE_COUNT.fullmatch(values.get("nc", ""))):
        return None  # auth-int is never offered by the edge; nc is 8 hex digits
    return DigestCredentials(
        username=values["username"],
        realm=values["realm"],
        nonce=values["nonce"],
        uri=values["uri"],
        response=values["response"].lower(),
        qop=qop,
        nonce_count=values.get("nc", ""),
        cnonce=values.get("cnonce", ""),
        algorithm="MD5",
    )


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def expected_response(credentials: DigestCredentials, *, ha1: str, method: str) -> str:
    """RFC 2617 §3.2.2.1: the response a phone knowing the password computes."""
    ha2 = _md5(f"{method}:{credentials.uri}")
    if credentials.qop:
        return _md5(
            f"{ha1}:{credentials.nonce}:{credentials.nonce_count}:{credentials.cnonce}:"
            f"{credentials.qop}:{ha2}"
        )
    return _md5(f"{ha1}:{credentials.nonce}:{ha2}")


def response_matches(
    credentials: DigestCredentials, *, ha1: str, method: str, username: str, realm: str
) -> bool:
    """True when the credentials are this username's, for this realm, and the response is the
    one the subscriber's password gives (compared in constant time)."""
    if credentials.username != username or credentials.realm != realm:
        return False
    if not _HEX32.fullmatch(credentials.response):
        return False
    expected = expected_response(credentials, ha1=ha1, method=method)
    return hmac.compare_digest(expected, credentials.response)
