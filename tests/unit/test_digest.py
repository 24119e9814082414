"""Digest answers checked by the brain (RFC 2617 §3.2.2; the worked example of §3.5)."""

from __future__ import annotations

import pytest

from tawasol.domain.digest import parse_digest, response_matches
from tawasol.domain.subscribers import digest_ha1

# RFC 2617 §3.5: user Mufasa, password "Circle Of Life", GET /dir/index.html
RFC_EXAMPLE = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
HA1 = digest_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")


def test_the_rfc_2617_example_verifies() -> None:
    credentials = parse_digest(RFC_EXAMPLE)
    assert credentials is not None
    assert response_matches(
        credentials, ha1=HA1, method="GET", username="Mufasa", realm="testrealm@host.com"
    )


@pytest.mark.parametrize(
    ("method", "username", "realm", "ha1"),
    [
        ("POST", "Mufasa", "testrealm@host.com", HA1),  # another method
        ("GET", "Simba", "testrealm@host.com", HA1),  # credentials of another user
        ("GET", "Mufasa", "other.realm", HA1),  # another realm
        ("GET", "Mufasa", "testrealm@host.com", "0" * 32),  # another password
    ],
)
def test_anything_else_does_not(method: str, username: str, realm: str, ha1: str) -> None:
    credentials = parse_digest(RFC_EXAMPLE)
    assert credentials is not None
    assert not response_matches(credentials, ha1=ha1, method=method, username=username, realm=realm)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        'Digest username="a", realm="r", nonce="n", uri="u"',  # no response
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=SHA-256',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth',  # no nc
        'Digest username="a" realm="r"',  # incomplete
    ],
)
def test_malformed_or_unsupported_answers_are_not_credentials(header: str) -> None:
    assert parse_digest(header) is None


def test_a_response_that_is_not_hex_never_matches() -> None:
    credentials = parse_digest(
        'Digest username="a", realm="r", nonce="n", uri="sip:x@y", response="x"'
    )
    assert credentials is not None
    assert not response_matches(credentials, ha1=HA1, method="INVITE", username="a", realm="r")
