"""The SEPA files exchanged with the operator's bank (ISO 20022 XML).

Written with `sepaxml` (which validates each file against the ISO 20022 schema it ships):

- pain.008.001.02, customer direct debit initiation (SDD Core): one payment block per
  sequence type (FRST, RCUR) and collection date;
- pain.001.001.03, customer credit transfer initiation: refunds paid back to subscribers.

Read with `defusedxml` (a bank's file is outside input: no entity expansion, no external
entities):

- camt.054.001.02 (bank-to-customer debit notification): how banks report R-transactions
  after settlement (returns AM04, AC04, MD01; refunds MD06) to the creditor; the French,
  German and Dutch banks' SDD return reports use it;
- pain.002.001.03 (payment status report): rejects before settlement, which some banks send
  instead for the same codes.

Both give `SepaReturn`s; anything else is refused with a message saying which formats are
read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sepaxml import SepaDD, SepaTransfer
from sepaxml.validation import ValidationError

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.payments.sepa import Mandate
from tawasol.domain.payments.sepa_collections import Creditor, CreditTransfer, Presentation
from tawasol.domain.payments.sepa_returns import SepaReturn
from tawasol.services.payments.sepa_ports import SepaFiles

DIRECT_DEBIT_SCHEMA = "pain.008.001.02"
CREDIT_TRANSFER_SCHEMA = "pain.001.001.03"


def _cents(money: Money) -> int:
    """Euro cents, exactly: sepaxml takes integer minor units."""
    cents = money.amount * 100
    if money.currency != "EUR" or cents != cents.to_integral_value():
        raise InvalidInput("SEPA amounts are euros with at most 2 decimals", amount=str(money))
    return int(cents)


class SepaXmlFiles:
    """`SepaFiles` with sepaxml; every file is checked against its XSD before it is returned
    (a file the bank would refuse is an InvalidInput here, nothing stored)."""

    def direct_debits(
        self,
        *,
        creditor: Creditor,
        message_id: str,
        created_at: datetime,
        debits: Sequence[tuple[Presentation, Mandate]],
    ) -> str:
        if not creditor.account.bic:
            raise InvalidInput(
                "pain.008.001.02 needs the creditor's BIC: set TAWASOL_PAYMENTS_SEPA_CREDITOR_BIC"
            )
        config = {
            "msg_id": message_id,
            "name": creditor.name,
            "IBAN": creditor.account.iban,
            "BIC": creditor.account.bic,
            "batch": True,
            "creditor_id": creditor.identifier.value,
            "currency": "EUR",
            "instrument": "CORE",
        }
        document = SepaDD(config, schema=DIRECT_DEBIT_SCHEMA, clean=True)
        for presentation, mandate in debits:
            payment: dict[str, object] = {
                "name": mandate.account.holder,
                "IBAN": mandate.account.iban,
                "amount": _cents(presentation.amount),
                "type": presentation.sequence_type.value,
                "collection_date": presentation.collection_date,
                "mandate_id": mandate.reference,
                "mandate_date": mandate.signed_on,
                "description": f"tawasol {presentation.end_to_end_id}",
                "endtoend_id": presentation.end_to_end_id,
            }
            if mandate.account.bic:
                payment["BIC"] = mandate.account.bic
            document.add_payment(payment)
        return _exported(document, message_id, created_at)

    def credit_transfers(
        self,
        *,
        creditor: Creditor,
        message_id: str,
        created_at: datetime,
        execution_date: date,
        transfers: Sequence[CreditTransfer],
    ) -> str:
        config: dict[str, object] = {
            "msg_id": message_id,
            "name": creditor.name,
            "IBAN": creditor.account.iban,
            "batch": True,
            "currency": "EUR",
        }
        if creditor.account.bic:
            config["BIC"] = creditor.account.bic
        document = SepaTransfer(config, schema=CREDIT_TRANSFER_SCHEMA, clean=True)
        for transfer in transfers:
            payment: dict[str, object] = {
                "name": transfer.account.holder,
                "IBAN": transfer.account.iban,
                "amount": _cents(transfer.amount),
                "execution_date": execution_date,
                "description": transfer.remittance,
                "endtoend_id": transfer.end_to_end_id,
            }
            if transfer.account.bic:
                payment["BIC"] = transfer.account.bic
            document.add_payment(payment)
        return _exported(document, message_id, created_at)


def _exported(document: SepaDD | SepaTransfer, message_id: str, created_at: datetime) -> str:
    """The file, its group header carrying our message id and creation time (sepaxml 2.7
    draws its own otherwise), checked against the XSD."""
    header = document._xml.find(document.root_el).find("GrpHdr")
    header.find("MsgId").text = message_id
    header.find("CreDtTm").text = created_at.replace(microsecond=0, tzinfo=None).isoformat()
    try:
        return bytes(document.export(validate=True)).decode("utf-8")
    except ValidationError as error:
        cause = error.__cause__
        raise InvalidInput(
            f"the SEPA file does not validate against its schema: {cause or error}"
        ) from error


# -- the bank's returns ---------------------------------------------------------------------------
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element | None, *path: str) -> Element | None:
    for name in path:
        if element is None:
            return None
        element = next((c for c in element if _local(c.tag) == name), None)
    return element


def _children(element: Element, name: str) -> Iterator[Element]:
    return (c for c in element.iter() if _local(c.tag) == name)


def _text(element: Element | None, *path: str) -> str:
    found = _child(element, *path)
    return (found.text or "").strip() if found is not None else ""


def _money(element: Element | None, where: str) -> Money:
    if element is None:
        raise InvalidInput(f"a return without an amount ({where})")
    try:
        return Money(Decimal((element.text or "").strip()), element.get("Ccy", "").upper())
    except (InvalidOperation, InvalidInput) as error:
        raise InvalidInput(f"a return's amount is not an amount ({where})") from error


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError as error:
        raise InvalidInput(f"a return's date is not a date ({where}): {text!r}") from error


def read_returns(content: bytes) -> list[SepaReturn]:
    """The R-transactions in a camt.054.001.02 or pain.002.001.03 file. Raises InvalidInput
    for anything else, or a malformed file (naming what is wrong); nothing is applied then."""
    try:
        root = SafeET.fromstring(content)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as error:
        raise InvalidInput(f"the returns file is not well-formed XML: {error}") from error
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if "camt.054" in namespace:
        return _camt054(root)
    if "pain.002" in namespace:
        return _pain002(root)
    raise InvalidInput(
        "the returns file is neither camt.054 (debit notification) nor pain.002 (payment "
        f"status report): its namespace is {namespace or 'missing'}"
    )


def _camt054(root: Element) -> list[SepaReturn]:
    returns = []
    for entry in _children(root, "Ntry"):
        if _text(entry, "CdtDbtInd") != "DBIT":
            continue  # a return debits the creditor's account; credits are collections
        booked = _text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm")
        details = list(_children(entry, "TxDtls"))
        for transaction in details:
            code = _text(transaction, "RtrInf", "Rsn", "Cd")
            if not code:
                continue
            end_to_end_id = _text(transaction, "Refs", "EndToEndId")
            where = f"entry {end_to_end_id or '?'}"
            if not end_to_end_id:
                raise InvalidInput("a return without its end-to-end id in camt.054 Refs")
            amount_element = _child(transaction, "AmtDtls", "TxAmt", "Amt") or _child(
                transaction, "AmtDtls", "InstdAmt", "Amt"
            )
            if amount_element is None and len(details) == 1:
                amount_element = _child(entry, "Amt")
            returns.append(
                SepaReturn(
                    end_to_end_id=end_to_end_id,
                    amount=_money(amount_element, where),
                    reason_code=code,
                    booked_on=_date(booked, where),
                    mandate_reference=_text(transaction, "Refs", "MndtId"),
                    bank_reference=_text(transaction, "Refs", "TxId")
                    or _text(entry, "AcctSvcrRef"),
                )
            )
    return returns


def _pain002(root: Element) -> list[SepaReturn]:
    created = _text(_child(root, "CstmrPmtStsRpt", "GrpHdr"), "CreDtTm")
    returns = []
    for transaction in _children(root, "TxInfAndSts"):
        if _text(transaction, "TxSts") != "RJCT":
            continue
        end_to_end_id = _text(transaction, "OrgnlEndToEndId")
        where = f"transaction {end_to_end_id or '?'}"
        if not end_to_end_id:
            raise InvalidInput("a reject without its OrgnlEndToEndId in pain.002")
        code = _text(transaction, "StsRsnInf", "Rsn", "Cd")
        if not code:
            raise InvalidInput(f"a reject without its reason code ({where})")
        collected = _text(transaction, "OrgnlTxRef", "ReqdColltnDt")
        returns.append(
            SepaReturn(
                end_to_end_id=end_to_end_id,
                amount=_money(_child(transaction, "OrgnlTxRef", "Amt", "InstdAmt"), where),
                reason_code=code,
                booked_on=_date(collected or created, where),
                mandate_reference=_text(transaction, "OrgnlTxRef", "MndtRltdInf", "MndtId"),
                bank_reference=_text(transaction, "StsId"),
            )
        )
    return returns


def _implements_the_port(files: SepaXmlFiles) -> SepaFiles:
    return files
