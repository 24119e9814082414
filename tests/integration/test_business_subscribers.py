"""Business subscribers (migration 0010) through every door: the admin API (create, show,
mark and unmark, bad input), the CLI (`subscriber add --business`, `set-business`, `show`), an
existing database upgraded from 0009 (everyone a consumer), and billing, which issues Factur-X
documents to business subscribers (the one-by-one path here; the bulk path in
test_billing_bulk.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import facturx
import pytest
from fastapi.testclient import TestClient
from sample_brain import AUTH, sample_brain
from sqlalchemy import text
from test_cli import plain, run

from support.operator import a_new_subscriber, a_plan
from support.stores import database_at, subscription_for
from tawasol.adapters.api.app import create_app
from tawasol.adapters.documents.render import document_pdf
from tawasol.adapters.store import SqlStore, migrate, sqlite_url_for
from tawasol.adapters.store.billing_memory import InMemoryOutageHistory
from tawasol.adapters.store.billing_sql import SqlBillingStore
from tawasol.domain.billing.documents import IssuingEntity
from tawasol.domain.billing.vat import VatTable
from tawasol.services.billing.run import BillingRun, BillingSettings

ENTITY = IssuingEntity("FR1", "Tawasol SAS", "1 rue de la Paix, Paris", "123456789", "FR1212")


def new_subscriber(username: str, phone: str, **extra: object) -> dict[str, object]:
    return {
        "name": f"{username.title()} SARL",
        "email": f"{username}@example.org",
        "phone": phone,
        "locale": "fr",
        "sip_username": username,
        **extra,
    }


def test_the_admin_api_creates_shows_and_changes_the_business_flag(tmp_path) -> None:
    brain = sample_brain(tmp_path)
    with TestClient(create_app(brain), raise_server_exceptions=False) as client:
        client.headers.update(AUTH)
        created = client.post(
            "/admin/v1/subscribers", json=new_subscriber("atlas", "+33612300001", business=True)
        )
        assert created.status_code == 201, created.text
        assert created.json()["business"] is True
        consumer = client.post("/admin/v1/subscribers", json=new_subscriber("amal", "+33612300002"))
        assert consumer.json()["business"] is False  # a consumer unless said otherwise
        atlas = created.json()["id"]
        assert client.get(f"/admin/v1/subscribers/{atlas}").json()["business"] is True

        unmarked = client.put(f"/admin/v1/subscribers/{atlas}/business", json={"business": False})
        assert unmarked.status_code == 200 and unmarked.json()["business"] is False
        assert brain.catalog.get_subscriber(atlas).business is False

        for body in ({"business": "maybe"}, {}, {"business": True, "vat": "FR1"}):
            refused = client.put(f"/admin/v1/subscribers/{atlas}/business", json=body)
            assert refused.status_code == 422, (body, refused.text)
        assert brain.catalog.get_subscriber(atlas).business is False  # nothing changed
        missing = client.put("/admin/v1/subscribers/999999/business", json={"business": True})
        assert missing.status_code == 404, missing.text
    brain.close()


@pytest.fixture
def data_dir(tmp_path):
    assert run(tmp_path, "init").exit_code == 0
    return tmp_path


def test_the_cli_adds_a_business_marks_and_unmarks_it_and_shows_it(data_dir) -> None:
    added = run(
        data_dir,
        "subscriber",
        "add",
        "atlas",
        "--name",
        "Atlas SARL",
        "--phone",
        "+33611113333",
        "--business",
    )
    assert added.exit_code == 0, added.output
    assert "business customer" in plain(run(data_dir, "subscriber", "show", "atlas").output)

    unmarked = run(data_dir, "subscriber", "set-business", "atlas", "--no-business")
    assert unmarked.exit_code == 0, unmarked.output
    assert "atlas: consumer" in plain(unmarked.output)
    assert "consumer" in plain(run(data_dir, "subscriber", "show", "atlas").output)
    marked = run(data_dir, "subscriber", "set-business", "atlas", "--business")
    assert "atlas: business customer" in plain(marked.output)

    unknown = run(data_dir, "subscriber", "set-business", "nobody", "--business")
    assert unknown.exit_code == 3 and "no subscriber" in plain(unknown.output)  # not found
    neither = run(data_dir, "subscriber", "set-business", "atlas")  # the choice is required
    assert neither.exit_code == 2


def test_given_a_database_at_0009_when_migrated_then_every_subscriber_is_a_consumer(
    tmp_path,
) -> None:
    url = sqlite_url_for(tmp_path)
    with database_at(url, "0009") as connection:
        connection.execute(
            text(
                "INSERT INTO subscribers (name, email, phone, locale, time_zone, sip_username, "
                "ha1, caller_ids, country) VALUES ('Amal', '', '+33612345678', 'fr', "
                "'Europe/Paris', 'amal', :ha1, '[]', 'FR')"
            ),
            {"ha1": "0" * 32},
        )

    migrate(url)
    migrate(url)  # again: nothing changes

    store = SqlStore.from_url(url)
    try:
        (amal,) = store.list_subscribers()
        assert amal.business is False
        store.update_subscriber(replace(amal, business=True))
        assert store.get_subscriber(amal.id).business is True
    finally:
        store.close()


NAMES = ("atlas", "amal")


def test_a_business_subscriber_is_invoiced_with_factur_x_a_consumer_with_a_plain_pdf(
    tmp_path,
) -> None:
    url = sqlite_url_for(tmp_path)
    migrate(url)
    store = SqlStore.from_url(url)
    plan = a_plan(time_windows=())
    store.save_plan(plan)
    store.add_subscriber(a_new_subscriber("atlas", business=True))
    period = {"start": datetime(2026, 9, 1, tzinfo=UTC), "end": datetime(2026, 9, 8, tzinfo=UTC)}
    ids = {name: subscription_for(store, name, **period).subscriber_id for name in NAMES}
    store.close()

    billing = SqlBillingStore.from_url(url)
    try:
        assert billing.customer(ids["atlas"]).business is True
        assert billing.customer(ids["amal"]).business is False
        at = datetime(2026, 9, 9, tzinfo=UTC)
        run_ = BillingRun(
            store=billing,
            plans=lambda: {plan.code: plan},
            outages=InMemoryOutageHistory((), clock=lambda: at),
            settings=BillingSettings(ENTITY, VatTable.parse("FR=20")),
        )
        summary = run_.run(at=at)
        assert not summary.errors, summary
        for username, business in (("atlas", True), ("amal", False)):
            documents = billing.subscriber_documents(subscriber_id=ids[username])
            assert documents, username
            for document in documents:
                assert document.business is business
                found, xml = facturx.get_xml_from_pdf(document_pdf(document, ENTITY))
                assert bool(found) is business, username
                if business:
                    assert b"<ram:Name>Amina Benali</ram:Name>" in xml  # the buyer, BT-44
    finally:
        billing.close()
