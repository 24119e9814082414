"""An issued invoice or credit note as HTML and PDF, in the subscriber's language.

fr and en read left to right, ar right to left (`<html dir="rtl" lang="ar">`). Numbers,
amounts, dates and document numbers are isolated in `<bdi dir="ltr">`: without it a
right-to-left paragraph can reverse digit groups (WeasyPrint, Unicode bidirectional algorithm
UAX #9). The layout is plain tables (WeasyPrint's right-to-left support of floats and flex is
partial). Amounts use the locale's number format (Babel/CLDR; Arabic with Latin digits, as
ar_MA prints them). The mentions are those of CGI annexe II art. 242 nonies A (docs/billing.md).
"""

from __future__ import annotations

from html import escape

from babel.numbers import format_decimal

from tawasol.domain.billing.documents import Document, DocumentKind, IssuingEntity
from tawasol.domain.money import Money

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        DocumentKind.INVOICE: "Facture",
        DocumentKind.CREDIT_NOTE: "Avoir",
        "number": "Numéro",
        "date": "Date",
        "customer": "Client",
        "service": "Service",
        "period": "Période",
        "unit_net": "Prix unitaire HT",
        "rate": "Taux de TVA",
        "vat": "TVA",
        "net": "Total HT",
        "gross": "Total TTC",
        "corrects": "Rectifie",
        "siren": "SIREN",
        "vat_number": "N° TVA",
    },
    "en": {
        DocumentKind.INVOICE: "Invoice",
        DocumentKind.CREDIT_NOTE: "Credit note",
        "number": "Number",
        "date": "Date",
        "customer": "Customer",
        "service": "Service",
        "period": "Period",
        "unit_net": "Unit price excl. VAT",
        "rate": "VAT rate",
        "vat": "VAT",
        "net": "Total excl. VAT",
        "gross": "Total incl. VAT",
        "corrects": "Corrects",
        "siren": "SIREN",
        "vat_number": "VAT no.",
    },
    "ar": {
        DocumentKind.INVOICE: "فاتورة",
        DocumentKind.CREDIT_NOTE: "إشعار دائن",
        "number": "الرقم",
        "date": "التاريخ",
        "customer": "الزبون",
        "service": "الخدمة",
        "period": "الفترة",
        "unit_net": "سعر الوحدة دون ضريبة",
        "rate": "نسبة الضريبة",
        "vat": "الضريبة على القيمة المضافة",
        "net": "المجموع دون ضريبة",
        "gross": "المجموع مع الضريبة",
        "corrects": "يصحح",
        "siren": "SIREN",
        "vat_number": "رقم الضريبة",
    },
}
# Babel locale per document language: Arabic as printed in the Maghreb (Latin digits).
BABEL_LOCALES = {"fr": "fr_FR", "en": "en_GB", "ar": "ar_MA"}


def _ltr(text: str) -> str:
    return f'<bdi dir="ltr">{escape(text)}</bdi>'


def _isolated(text: str) -> str:
    """Text in whatever script (a French address on an Arabic invoice) kept in its own
    direction: "1 rue de la Paix" must not become "rue de la Paix 1"."""
    # WeasyPrint does not guess a direction (`dir="auto"`): tell it from the first strong
    # letter, Arabic script (U+0600-U+06FF) or not (UAX #9 rule P2, simplified).
    first = next((c for c in text if c.isalpha()), "a")
    direction = "rtl" if "\u0600" <= first <= "\u06ff" else "ltr"
    return f'<bdi dir="{direction}">{escape(text)}</bdi>'


def _amount(money: Money, locale: str) -> str:
    number = format_decimal(money.amount, format="#,##0.00", locale=BABEL_LOCALES[locale])
    return _ltr(f"{number} {money.currency}")


def render_html(document: Document, entity: IssuingEntity) -> str:
    """The document as a standalone HTML page in its locale (fr, en or ar)."""
    locale = document.locale if document.locale in LABELS else "en"
    label = LABELS[locale]
    direction = "rtl" if locale == "ar" else "ltr"
    rows = "".join(
        "<tr>"
        f"<td>{_isolated(line.description)}</td>"
        f"<td>{_ltr(f'{line.period_start:%Y-%m-%d} - {line.period_end:%Y-%m-%d}')}</td>"
        f"<td>{_amount(line.unit_price_net, locale)}</td>"
        f"<td>{_ltr(f'{line.split.rate * 100:.2f} %')}</td>"
        f"<td>{_amount(line.split.vat, locale)}</td>"
        f"<td>{_amount(line.split.gross, locale)}</td>"
        "</tr>"
        for line in document.lines
    )
    per_rate = "".join(
        f"<tr><th>{label['vat']} {_ltr(f'{rate * 100:.2f} %')}</th>"
        f"<td>{_amount(net, locale)}</td><td>{_amount(vat, locale)}</td></tr>"
        for rate, (net, vat) in sorted(document.vat_per_rate().items())
    )
    corrects = f"<p>{label['corrects']}: {_ltr(document.corrects)}</p>" if document.corrects else ""
    return f"""<!DOCTYPE html>
<html lang="{locale}" dir="{direction}"><head><meta charset="utf-8">
<title>{label[document.kind]} {escape(document.number)}</title>
<style>
body {{ font-family: "DejaVu Sans", sans-serif; font-size: 10pt; }}
table {{ border-collapse: collapse; width: 100%; margin: 1em 0; }}
th, td {{ border: 1px solid #999; padding: 4px; text-align: start; }}
</style></head><body>
<h1>{label[document.kind]} {_ltr(document.number)}</h1>
<p>{_isolated(entity.name)}<br>{_isolated(entity.address)}<br>
{label["siren"]}: {_ltr(entity.siren)} - {label["vat_number"]}: {_ltr(entity.vat_number)}</p>
<p>{label["date"]}: {_ltr(f"{document.issued_at:%Y-%m-%d}")}<br>
{label["customer"]}: {_isolated(document.customer_name)}<br>
{_isolated(document.customer_address)}</p>
{corrects}
<table><tr><th>{label["service"]}</th><th>{label["period"]}</th><th>{label["unit_net"]}</th>
<th>{label["rate"]}</th><th>{label["vat"]}</th><th>{label["gross"]}</th></tr>{rows}</table>
<table><tr><th></th><th>{label["net"]}</th><th>{label["vat"]}</th></tr>{per_rate}</table>
<table>
<tr><th>{label["net"]}</th><td>{_amount(document.total_net, locale)}</td></tr>
<tr><th>{label["vat"]}</th><td>{_amount(document.total_vat, locale)}</td></tr>
<tr><th>{label["gross"]}</th><td>{_amount(document.total_gross, locale)}</td></tr>
</table></body></html>
"""


def render_pdf(document: Document, entity: IssuingEntity) -> bytes:
    """The document as PDF (WeasyPrint, with the system's pango and DejaVu fonts)."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=render_html(document, entity)).write_pdf()
    return pdf


def document_pdf(document: Document, entity: IssuingEntity) -> bytes:
    """The PDF sent to the subscriber: Factur-X (XML embedded) for a business, plain for a
    consumer."""
    pdf = render_pdf(document, entity)
    if not document.business:
        return pdf
    from tawasol.adapters.documents.facturx import facturx_pdf

    return facturx_pdf(pdf, document, entity)
