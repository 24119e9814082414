"""Decision grants: what an allowed call's events must show (docs/security.md)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from tawasol.services.verify_credentials import DecisionGrants

KEY = b"grant-key-for-tests"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def grants(remember_for: timedelta = timedelta(hours=5)) -> DecisionGrants:
    return DecisionGrants(key=KEY, clock=lambda: NOW, remember_for=remember_for)


def test_a_grant_is_the_maximum_duration_and_an_hmac_sha256_of_the_call_rfc_2104():
    grant = grants().issue(call_id="call-1", username="amina", max_duration_s=7200)
    expected = hmac.new(KEY, b"call-1\namina\n7200", hashlib.sha256).hexdigest()[:32]
    assert grant == f"7200.{expected}"


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
