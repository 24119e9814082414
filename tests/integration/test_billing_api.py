"""The billing admin API on a real SQLite store with the sample operator: ledger, documents
(JSON, HTML, PDF), payments and refunds, lifecycle commands, runs, reports; and must-show 5's
bad input through the one error table: a clear error, nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sample_brain import AUTH, sample_brain

from tawasol.adapters.api.app import create_app
from tawasol.composition import Brain

BILLING = {
    "billing_entity_code": "FR1",
    "billing_entity_name": "Tawasol SAS",
    "billing_entity_address": "1 rue de la Paix, 75002 Paris",
    "billing_entity_siren": "123456789",
    "billing_entity_vat_number": "FR12123456789",
    "billing_vat_rates": "FR=20",
}
AMINA, YOUSSEF, KARIM = 1, 2, 3  # FR on maroc-illimite-mois; CA; BE (no VAT rate for either)


@pytest.fixture
def brain(tmp_path) -> Iterator[Brain]:
    brain = sample_brain(tmp_path, **BILLING)
    yield brain
    brain.close()


@pytest.fixture
def client(brain) -> Iterator[TestClient]:
    with TestClient(create_app(brain), raise_server_exceptions=False) as client:
        yield client


def call(client, method, path, body=None, **params):
    return client.request(
        method, f"/admin/v1/billing{path}", json=body, params=params, headers=AUTH
    )


def refused(response, status, error_id, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_id"] == error_id, body
    for word in words:
        assert word in body["message"], body


def ledger(client, subscriber_id):
    response = call(client, "GET", f"/subscribers/{subscriber_id}/ledger")
    assert response.status_code == 200, response.text
    return response.json()


def test_given_billing_not_set_up_then_its_routes_answer_a_clear_422(tmp_path):
    brain = sample_brain(tmp_path)
    try:
        with TestClient(create_app(brain), raise_server_exceptions=False) as client:
            refused(call(client, "GET", f"/subscribers/{AMINA}/ledger"), 422, "invalid_input")
            assert call(client, "GET", f"/subscribers/{AMINA}/ledger").json()["message"]
    finally:
        brain.close()


def test_given_a_dry_run_then_it_reports_and_writes_nothing(client):
    response = call(client, "POST", "/runs", {"dry_run": True})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True
    assert int(body["summary"]["first invoices"]) >= 2  # Amina and Sami (FR)
    # Youssef (CA) and Karim (BE) live where no VAT rate is configured: named, not billed at 0 %.
    messages = " ".join(error["message"] for error in body["errors"])
    assert "no VAT rate is configured for CA" in messages
    assert "no VAT rate is configured for BE" in messages
    assert ledger(client, AMINA) == []


def test_given_a_plan_change_now_then_credit_charge_documents_and_one_subscription(client):
    response = call(
        client, "POST", f"/subscribers/{AMINA}/plan-change", {"plan_code": "maroc-illimite-an"}
    )

    assert response.status_code == 200, response.text
    outcome = response.json()
    # Paid 21 Nov 10:00 -> 21 Dec 10:00 (30 days); changed 24 Nov 10:00: 27 days unused:
    # 9.99 x 27/30 = 8.991 -> 8.99 credited; the yearly plan 99.00 charged.
    assert (outcome["credited"], outcome["charged"]) == ("8.99", "99.00")
    assert (outcome["plan_code"], outcome["status"]) == ("maroc-illimite-an", "active")
    (account,) = ledger(client, AMINA)
    assert account["balance"] == "100.00"  # 9.99 - 8.99 + 99.00
    subscriptions = client.get(f"/admin/v1/subscribers/{AMINA}/subscriptions", headers=AUTH)
    assert [s["status"] for s in subscriptions.json()] == ["active"]

    documents = call(client, "GET", f"/subscribers/{AMINA}/documents").json()
    assert [d["kind"] for d in documents] == ["invoice", "credit_note", "invoice"]
    assert documents[1]["total_gross"] == "8.99"
    assert outcome["documents"] == [documents[1]["number"], documents[2]["number"]]
    number = documents[2]["number"]
    assert call(client, "GET", f"/documents/{number}").json()["total_gross"] == "99.00"
    html = call(client, "GET", f"/documents/{number}/html")
    assert html.status_code == 200
    assert number in html.text
    assert "99,00" in html.text  # fr: decimal comma
    pdf = call(client, "GET", f"/documents/{number}/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    refused(call(client, "GET", "/documents/F-FR1-99999999"), 404, "not_found")


def test_given_a_plan_in_another_currency_then_422_and_nothing_written(client):
    plan = client.get("/admin/v1/plans/maroc-illimite-mois", headers=AUTH).json()
    plan.update(code="maroc-dirham", price="99.00", currency="MAD")
    plan["cost_ceilings"] = []  # a MAD ceiling would contradict the EUR carriers
    created = client.post("/admin/v1/plans", json=plan, headers=AUTH)
    assert created.status_code == 201, created.text
    call(client, "POST", "/runs", {"dry_run": False})
    before = (ledger(client, AMINA), call(client, "GET", f"/subscribers/{AMINA}/documents").json())

    response = call(
        client, "POST", f"/subscribers/{AMINA}/plan-change", {"plan_code": "maroc-dirham"}
    )

    refused(response, 422, "invalid_input", "MAD", "EUR")
    after = (ledger(client, AMINA), call(client, "GET", f"/subscribers/{AMINA}/documents").json())
    assert after == before


def test_given_payments_and_refunds_then_once_per_reference_and_never_more_than_owed(client):
    call(client, "POST", "/runs", {"dry_run": False})
    paid = call(
        client,
        "POST",
        f"/subscribers/{AMINA}/payments",
        {"amount": "9.99", "currency": "EUR", "reference": "VIR-42"},
    )
    assert paid.json() == {"recorded": True, "balance": "0.00", "currency": "EUR"}
    again = call(
        client,
        "POST",
        f"/subscribers/{AMINA}/payments",
        {"amount": "9.99", "currency": "EUR", "reference": "VIR-42"},
    )
    assert again.json()["recorded"] is False
    before = ledger(client, AMINA)

    refused(
        call(
            client,
            "POST",
            f"/subscribers/{AMINA}/refunds",
            {"amount": "0.01", "currency": "EUR", "reference": "REMB-1"},
        ),
        422,
        "invalid_input",
        "more than",
    )
    # Bad money: a negative amount, an unknown currency.
    for bad in ({"amount": "-5", "currency": "EUR"}, {"amount": "5", "currency": "XQZ"}):
        response = call(
            client, "POST", f"/subscribers/{AMINA}/payments", {**bad, "reference": "VIR-43"}
        )
        refused(response, 422, "invalid_input")
    assert ledger(client, AMINA) == before


def test_given_a_subscriber_without_a_vat_rate_then_lifecycle_refused_until_country_fixed(
    client,
):
    refused(
        call(client, "POST", f"/subscribers/{KARIM}/cancellation", {"reason": "operator"}),
        422,
        "invalid_configuration",
        "BE",
    )
    assert ledger(client, KARIM) == []
    subscriptions = client.get(f"/admin/v1/subscribers/{KARIM}/subscriptions", headers=AUTH)
    assert [s["status"] for s in subscriptions.json()] == ["active"]

    moved = client.put(
        f"/admin/v1/subscribers/{KARIM}/country", json={"country": "FR"}, headers=AUTH
    )
    assert moved.json()["country"] == "FR"
    refused(
        client.put(f"/admin/v1/subscribers/{KARIM}/country", json={"country": "XQ"}, headers=AUTH),
        422,
        "invalid_input",
    )
    cancelled = call(client, "POST", f"/subscribers/{KARIM}/cancellation", {"reason": "operator"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"


def test_given_pause_and_resume_then_nonsense_transitions_are_409(client):
    paused = call(client, "POST", f"/subscribers/{AMINA}/pause", {})
    assert paused.json()["status"] == "paused"
    refused(call(client, "POST", f"/subscribers/{AMINA}/pause", {}), 409, "conflict", "paused")
    resumed = call(client, "POST", f"/subscribers/{AMINA}/resume", {})
    assert resumed.json()["status"] == "active"
    refused(call(client, "POST", f"/subscribers/{AMINA}/resume", {}), 409, "conflict")


def test_reports_over_the_api(client):
    call(client, "POST", "/runs", {"dry_run": False})
    period = {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z"}

    revenue = call(client, "GET", "/reports/revenue", **period)
    assert revenue.status_code == 200, revenue.text
    rows = {row["plan_code"]: row for row in revenue.json()}
    # 9.99 incl. 20 % VAT: VAT 1.665 -> 1.66 (half to even), net 8.33; Amina and Leila? Leila
    # expired: only running subscriptions are invoiced (Amina on the monthly plan).
    assert rows["maroc-illimite-mois"]["vat"] == "1.66"
    assert rows["maroc-illimite-mois"]["net"] == "8.33"
    margins = call(client, "GET", "/reports/margins", **period)
    assert margins.status_code == 200, margins.text
    assert call(client, "GET", "/reports/credits").json() == []
    refused(
        call(client, "GET", "/reports/revenue", start=period["end"], end=period["start"]),
        422,
        "invalid_input",
        "ends after it starts",
    )


@pytest.mark.parametrize(
    ("change", "word"),
    [({"price": "-1.00"}, "price"), ({"currency": "XQZ"}, "currency")],
)
def test_given_a_negative_price_or_an_unknown_currency_then_the_plan_is_refused(
    client, change, word
):
    plan = client.get("/admin/v1/plans/maroc-illimite-mois", headers=AUTH).json()
    plan.update(code="maroc-bad", cost_ceilings=[], **change)

    response = client.post("/admin/v1/plans", json=plan, headers=AUTH)

    refused(response, 422, "invalid_input", word)
    assert client.get("/admin/v1/plans/maroc-bad", headers=AUTH).status_code == 404


def test_given_billing_set_up_then_a_bare_status_patch_cannot_pause_or_cancel(client):
    (subscription,) = client.get(
        f"/admin/v1/subscribers/{AMINA}/subscriptions", headers=AUTH
    ).json()
    for status in ("paused", "cancelled"):
        response = client.patch(
            f"/admin/v1/subscriptions/{subscription['id']}", json={"status": status}, headers=AUTH
        )
        refused(response, 409, "conflict", "/admin/v1/billing/subscribers/1/")
    response = client.patch(
        f"/admin/v1/subscriptions/{subscription['id']}", json={"status": "past_due"}, headers=AUTH
    )
    assert response.json()["status"] == "past_due"
