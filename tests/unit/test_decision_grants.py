"""Decision grants: what an allowed call's events must show (docs/security.md)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from tawasol.domain.errors import InvalidConfiguration
from tawasol.services.verify_credentials import DecisionGrants

KEY = b"grant-key-for-tests"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def grants(remember_for: timedelta = timedelta(hours=5)) -> DecisionGrants:
    return DecisionGrants(key=KEY, clock=lambda: NOW, remember_for=remember_for)


def test_a_grant_is_the_maximum_duration_and_a_keyed_blake2b_of_the_call_rfc_7693():
    grant = grants().issue(call_id="call-1", username="amina", max_duration_s=7200)
    expected = hashlib.blake2b(b"call-1\namina\n7200", key=KEY, digest_size=16).hexdigest()
    assert grant == f"7200.{expected}"


def test_given_a_grant_of_0_1_0_hmac_sha256_then_it_still_proves_its_call_across_the_upgrade():
    legacy = hmac.new(KEY, b"call-7\namina\n600", hashlib.sha256).hexdigest()[:32]
    upgraded = grants()  # never decided call-7: a call in progress when the brain was upgraded
    assert upgraded.max_duration_s(call_id="call-7", username="amina", grant=f"600.{legacy}") == 600
    assert (
        upgraded.max_duration_s(call_id="call-7", username="amina", grant=f"900.{legacy}") is None
    )


def test_a_key_longer_than_blake2b_takes_is_hashed_not_cut_and_an_empty_key_is_refused():
    long_key = b"k" * 64 + b"tail"
    other_tail = b"k" * 64 + b"liat"
    issued = DecisionGrants(key=long_key, clock=lambda: NOW, remember_for=timedelta(0))
    grant = issued.issue(call_id="call-8", username="amina", max_duration_s=60)
    stranger = DecisionGrants(key=other_tail, clock=lambda: NOW, remember_for=timedelta(0))
    assert stranger.max_duration_s(call_id="call-8", username="amina", grant=grant) is None
    with pytest.raises(InvalidConfiguration):
        DecisionGrants(key=b"", clock=lambda: NOW, remember_for=timedelta(0))


def test_given_a_grant_from_another_brain_with_the_same_key_then_its_limit_is_taken():
    grant = grants().issue(call_id="call-2", username="amina", max_duration_s=600)
    other = grants()  # never decided call-2: only the grant can prove it
    assert other.max_duration_s(call_id="call-2", username="amina", grant=grant) == 600
    assert other.max_duration_s(call_id="call-2", username="karim", grant=grant) is None
    assert other.max_duration_s(call_id="call-3", username="amina", grant=grant) is None
    longer = "7200" + grant[3:]  # the same MAC claiming a longer call
    assert other.max_duration_s(call_id="call-2", username="amina", grant=longer) is None
    assert other.max_duration_s(call_id="call-2", username="amina", grant=None) is None


def test_given_a_call_this_brain_decided_then_its_remembered_limit_holds_whatever_the_grant_says():
    mine = grants()
    mine.issue(call_id="call-4", username="amina", max_duration_s=300)
    forged = "86400." + "0" * 32
    assert mine.max_duration_s(call_id="call-4", username="amina", grant=forged) == 300
    assert mine.max_duration_s(call_id="call-4", username="amina", grant=None) == 300
    # the memory is bound to the username as the grant is
    assert mine.max_duration_s(call_id="call-4", username="karim", grant=forged) is None


def test_given_a_decision_forgotten_then_only_a_valid_grant_proves_the_call():
    forgetful = grants(remember_for=timedelta(0))
    grant = forgetful.issue(call_id="call-5", username="amina", max_duration_s=900)
    forgetful.issue(call_id="call-6", username="amina", max_duration_s=900)  # evicts call-5
    assert forgetful.max_duration_s(call_id="call-5", username="amina", grant=None) is None
    assert forgetful.max_duration_s(call_id="call-5", username="amina", grant=grant) == 900
