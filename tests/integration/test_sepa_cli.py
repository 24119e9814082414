"""`tawasol payments sepa ...` as an operator types it: real processes on a real SQLite
database. Bad input gets a clear message and a non-zero exit, never a traceback, and nothing
is stored; a good mandate is listed masked."""

from __future__ import annotations

from pathlib import Path

from test_billing_cli import ENV, tawasol

from support.operator import a_new_subscriber
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for

SEPA_ENV = {
    **ENV,
    "TAWASOL_PAYMENTS_SEPA_CREDITOR_ID": "DE98ZZZ09999999999",
    "TAWASOL_PAYMENTS_SEPA_CREDITOR_NAME": "Tawasol SAS",
    "TAWASOL_PAYMENTS_SEPA_CREDITOR_IBAN": "FR7630006000011234567890189",
    "TAWASOL_PAYMENTS_SEPA_CREDITOR_BIC": "AGRIFRPP",
    "COLUMNS": "200",  # rich tables whole
}


def test_given_an_operator_at_the_shell_then_mandates_are_checked_recorded_and_revoked(
    tmp_path: Path,
):
    url = sqlite_url_for(tmp_path)
    migrate(url)
    store = SqlStore.from_url(url)
    subscriber = store.add_subscriber(a_new_subscriber("amina"))
    store.close()

    def sepa(*arguments: str, env: dict[str, str] = SEPA_ENV):  # type: ignore[no-untyped-def]
        return tawasol(tmp_path, "payments", "sepa", *arguments, env=env)

    base = ["mandate", "add", str(subscriber.id), "--holder", "Amina Benali"]
    bad_checksum = sepa(*base, "--iban", "DE89 3704 0044 0532 0130 01", "--signed-on", "2026-11-15")
    assert bad_checksum.returncode != 0
    assert "check digits are wrong" in bad_checksum.stderr
    moroccan = sepa(*base, "--iban", "MA64011519000001205000534921", "--signed-on", "2026-11-15")
    assert moroccan.returncode != 0 and "outside the SEPA zone" in moroccan.stderr
    future = sepa(*base, "--iban", "DE89370400440532013000", "--signed-on", "2999-01-01")
    assert future.returncode != 0 and "future" in future.stderr
    for result in (bad_checksum, moroccan, future):
        assert "Traceback" not in result.stderr

    added = sepa(*base, "--iban", "DE89 3704 0044 0532 0130 00", "--signed-on", "2026-11-15")
    assert added.returncode == 0, added.stderr
    assert f"TWS-{subscriber.id}-M1" in added.stdout
    listed = sepa("mandate", "list")
    assert "DE89 **** 3000" in listed.stdout and "DE89370400440532013000" not in listed.stdout
    assert "active" in listed.stdout

    revoked = sepa("mandate", "revoke", f"TWS-{subscriber.id}-M1", "--reason", "by phone")
    assert revoked.returncode == 0, revoked.stderr
    twice = sepa("mandate", "revoke", f"TWS-{subscriber.id}-M1")
    assert twice.returncode != 0 and "revoked already" in twice.stderr
    assert "revoked" in sepa("mandate", "list").stdout

    holiday = sepa("batch", "--collection-date", "2026-12-25")
    assert holiday.returncode != 0 and "TARGET2" in holiday.stderr
    not_xml = tmp_path / "returns.xml"
    not_xml.write_text("this is not a bank file")
    refused = sepa("returns", str(not_xml))
    assert refused.returncode != 0 and "well-formed" in refused.stderr
    assert "Traceback" not in refused.stderr + holiday.stderr

    off = {k: v for k, v in SEPA_ENV.items() if not k.startswith("TAWASOL_PAYMENTS_SEPA")}
    unset = sepa("mandate", "list", env=off)
    assert unset.returncode != 0 and "not set up" in unset.stderr
    # set up for SEPA, not for billing: the message names what is really missing
    no_billing = {k: v for k, v in SEPA_ENV.items() if not k.startswith("TAWASOL_BILLING")}
    unbilled = sepa("mandate", "list", env=no_billing)
    assert unbilled.returncode != 0 and "issuing entity" in unbilled.stderr
    assert "SEPA Direct Debit is not set up" not in unbilled.stderr
    assert "Traceback" not in unbilled.stderr
