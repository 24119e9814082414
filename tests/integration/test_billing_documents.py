"""Invoices as PDF in fr, en and ar, read back with `pdftotext` (must-show 4 of issue 14)."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tawasol.adapters.documents.render import document_pdf, render_html, render_pdf
from tawasol.domain.billing.documents import Document, DocumentKind, DocumentLine, IssuingEntity
from tawasol.domain.billing.vat import VatTable
from tawasol.domain.money import Money

ENTITY = IssuingEntity(
    "FR1", "Tawasol SAS", "1 rue de la Paix, 75002 Paris", "123456789", "FR12123456789"
)
VAT = VatTable.parse("FR=20")


def invoice(locale: str) -> Document:
    lines = tuple(
        DocumentLine(
            name,
            datetime(2026, 9, 1, tzinfo=UTC),
            datetime(2026, 10, 1, tzinfo=UTC),
            1,
            VAT.split(Money(Decimal(price), "EUR"), "FR"),
        )
        for name, price in (("Maroc Illimité", "1234.99"), ("Soirées Maghreb", "4.99"))
    )
    return Document(
        DocumentKind.INVOICE,
        "FR1",
        datetime(2026, 9, 1, 6, tzinfo=UTC),
        1,
        7,
        "Amina Benali",
        "3 rue Oberkampf, 75011 Paris",
        "FR",
        locale,
        lines,
        "renew:7:2026-09-01",
        sequence=42,
        number="F-FR1-00000042",
    )


def pdf_text(tmp_path: Path, locale: str) -> str:
    path = tmp_path / f"invoice-{locale}.pdf"
    path.write_bytes(render_pdf(invoice(locale), ENTITY))
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # pdftotext marks embedded directions (U+202A-U+202E); spaces may be narrow or no-break.
    for mark in "\u202a\u202b\u202c\u202d\u202e":
        text = text.replace(mark, "")
    return text.replace("\u202f", " ").replace("\xa0", " ")


@pytest.mark.parametrize(
    ("locale", "gross_label", "total", "vat"),
    [
        ("fr", "Total TTC", "1 239,98 EUR", "206,66 EUR"),
        ("en", "Total incl. VAT", "1,239.98 EUR", "206.66 EUR"),
        ("ar", "المجموع مع الضريبة", "1.239,98 EUR", "206,66 EUR"),
    ],  # ar_MA: CLDR's separators
)
def test_the_pdf_holds_the_mentions_and_the_right_totals(tmp_path, locale, gross_label, total, vat):
    text = pdf_text(tmp_path, locale)
    # 1234.99 -> VAT 205.83, net 1029.16; 4.99 -> VAT 0.83, net 4.16; totals 1033.32 / 206.66
    for expected in ("F-FR1-00000042", "123456789", "FR12123456789", "2026-09-01", total, vat):
        assert expected in text
    assert vat in text  # 205.83 + 0.83
    if locale == "ar":
        # Right to left: on the total's line the label is to the right of the amount.
        line = next(row for row in text.splitlines() if total in row and gross_label in row)
        assert line.index(total) < line.index(gross_label)
    else:
        assert gross_label in text


def test_arabic_html_is_right_to_left_with_numbers_isolated():
    html = render_html(invoice("ar"), ENTITY)
    assert '<html lang="ar" dir="rtl">' in html
    assert '<bdi dir="ltr">1.239,98 EUR</bdi>' in html
    assert '<bdi dir="ltr">F-FR1-00000042</bdi>' in html


def test_latin_addresses_keep_their_order_on_an_arabic_invoice(tmp_path):
    text = pdf_text(tmp_path, "ar")
    assert "1 rue de la Paix, 75002 Paris" in text
    assert "3 rue Oberkampf, 75011 Paris" in text


@pytest.mark.parametrize(
    ("kind", "type_code"), [(DocumentKind.INVOICE, "380"), (DocumentKind.CREDIT_NOTE, "381")]
)
def test_a_business_gets_factur_x_with_the_totals(kind, type_code):
    from xml.etree import ElementTree as ET

    import facturx

    document = replace(invoice("fr"), business=True, kind=kind)
    name, xml = facturx.get_xml_from_pdf(document_pdf(document, ENTITY))
    assert name == "factur-x.xml"
    root = ET.fromstring(xml)
    ram = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
    assert root.find(f".//{ram}TypeCode").text == type_code
    rsm = "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}"
    assert root.find(f"{rsm}ExchangedDocument/{ram}ID").text == "F-FR1-00000042"
    assert root.find(f".//{ram}GrandTotalAmount").text == "1239.98"
    assert root.find(f".//{ram}TaxTotalAmount").text == "206.66"
    assert root.find(f".//{ram}TaxBasisTotalAmount").text == "1033.32"


def test_a_consumer_gets_a_plain_pdf():
    import facturx

    assert facturx.get_xml_from_pdf(document_pdf(invoice("fr"), ENTITY)) == (False, False)
