"""Factur-X for business subscribers: the PDF with its invoice data as CII XML inside.

Factur-X 1.0 (FNFE-MPE / ZUGFeRD 2, EN 16931 syntax UN/CEFACT CII D16B) lets the customer's
accounting software read the invoice without retyping it. This writes the MINIMUM profile
(seller, buyer, totals and VAT total; type code 380 invoice, 381 credit note, UNTDID 1001) and
embeds it with the `factur-x` library, which checks it against the profile's XSD.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from facturx import generate_from_binary

from tawasol.domain.billing.documents import Document, DocumentKind, IssuingEntity

_NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
}
TYPE_CODES = {DocumentKind.INVOICE: "380", DocumentKind.CREDIT_NOTE: "381"}  # UNTDID 1001


def _element(
    parent: ET.Element, tag: str, text: str | None = None, **attributes: str
) -> ET.Element:
    prefix, name = tag.split(":")
    element = ET.SubElement(parent, f"{{{_NS[prefix]}}}{name}", attributes)
    if text is not None:
        element.text = text
    return element


def cii_xml(document: Document, entity: IssuingEntity) -> bytes:
    """The document as Factur-X MINIMUM CII XML."""
    for prefix, uri in _NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(f"{{{_NS['rsm']}}}CrossIndustryInvoice")
    context = _element(root, "rsm:ExchangedDocumentContext")
    guideline = _element(context, "ram:GuidelineSpecifiedDocumentContextParameter")
    _element(guideline, "ram:ID", "urn:factur-x.eu:1p0:minimum")
    header = _element(root, "rsm:ExchangedDocument")
    _element(header, "ram:ID", document.number)
    _element(header, "ram:TypeCode", TYPE_CODES[document.kind])
    issued = _element(header, "ram:IssueDateTime")
    _element(issued, "udt:DateTimeString", f"{document.issued_at:%Y%m%d}", format="102")
    transaction = _element(root, "rsm:SupplyChainTradeTransaction")
    agreement = _element(transaction, "ram:ApplicableHeaderTradeAgreement")
    seller = _element(agreement, "ram:SellerTradeParty")
    _element(seller, "ram:Name", entity.name)
    legal = _element(seller, "ram:SpecifiedLegalOrganization")
    _element(legal, "ram:ID", entity.siren, schemeID="0002")  # ISO 6523: SIREN
    address = _element(seller, "ram:PostalTradeAddress")
    _element(address, "ram:CountryID", "FR")
    registration = _element(seller, "ram:SpecifiedTaxRegistration")
    _element(registration, "ram:ID", entity.vat_number, schemeID="VA")
    buyer = _element(agreement, "ram:BuyerTradeParty")
    _element(buyer, "ram:Name", document.customer_name)
    _element(transaction, "ram:ApplicableHeaderTradeDelivery")
    settlement = _element(transaction, "ram:ApplicableHeaderTradeSettlement")
    _element(settlement, "ram:InvoiceCurrencyCode", document.currency)
    totals = _element(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    _element(totals, "ram:TaxBasisTotalAmount", str(document.total_net.amount))
    _element(
        totals, "ram:TaxTotalAmount", str(document.total_vat.amount), currencyID=document.currency
    )
    _element(totals, "ram:GrandTotalAmount", str(document.total_gross.amount))
    _element(totals, "ram:DuePayableAmount", str(document.total_gross.amount))
    xml: bytes = ET.tostring(root, xml_declaration=True, encoding="UTF-8")
    return xml


def facturx_pdf(pdf: bytes, document: Document, entity: IssuingEntity) -> bytes:
    """`pdf` (the rendered document) with its Factur-X XML embedded, checked against the XSD."""
    result = generate_from_binary(
        pdf,
        cii_xml(document, entity),
        flavor="factur-x",
        level="minimum",
        check_xsd=True,
        lang=document.locale,
    )
    if not isinstance(result, bytes):  # pragma: no cover - the library's contract
        raise TypeError("factur-x returned no PDF")
    return result
