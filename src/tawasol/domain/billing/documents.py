"""Invoices and credit notes: numbered without gaps, immutable once issued.

French law (Code général des impôts, annexe II art. 242 nonies A; BOI-TVA-DECLA-30-20-20)
requires invoice numbers "based on a chronological and continuous sequence without gaps" per
issuing entity; a credit note (facture rectificative, avoir) is itself an invoice document and
takes the next number of the same sequence. An issued document is never changed: a mistake is
corrected by a credit note. The mentions every invoice carries (art. 242 nonies A): seller's
name, address, SIREN and VAT number; the customer's name and address; date; number; the service
and its period; unit price net of VAT; VAT rate and amount per rate; totals.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tawasol.domain.billing.vat import VatSplit
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money


class DocumentKind(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


@dataclass(frozen=True)
class IssuingEntity:
    """The company that issues the documents (the operator), with its legal identifiers."""

    code: str  # the sequence's name, e.g. "FR1"
    name: str
    address: str
    siren: str
    vat_number: str
    number_prefix: str = "F"

    def __post_init__(self) -> None:
        if not self.code or not self.name or not self.address:
            raise InvalidInput("an issuing entity needs a code, a name and an address")
        if not (len(self.siren) == 9 and self.siren.isdigit()):
            raise InvalidInput("a SIREN is 9 digits", siren=self.siren)


def document_number(entity_code: str, prefix: str, sequence: int) -> str:
    """The printed number, e.g. "F-FR1-00000042": prefix, entity code, then the sequence. The
    sequence is never reset (not at a year's turn either), so no gap can hide there."""
    if sequence < 1:
        raise InvalidInput("document sequences start at 1", sequence=sequence)
    return f"{prefix}-{entity_code}-{sequence:08d}"


@dataclass(frozen=True)
class DocumentLine:
    """One service on a document: what, for which period, at which VAT-inclusive price."""

    description: str
    period_start: datetime
    period_end: datetime
    quantity: int
    split: VatSplit  # the line's total (unit price x quantity), net and VAT

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise InvalidInput("a document line has a quantity of 1 or more")
        if self.period_end < self.period_start:
            raise InvalidInput("a service period ends after it starts")

    @property
    def unit_price_net(self) -> Money:
        net = self.split.net
        return Money(net.amount / self.quantity, net.currency)


@dataclass(frozen=True)
class Document:
    """An invoice or credit note. A draft has `sequence` 0; the store issues it by giving it the
    entity's next sequence number and its printed `number` in the same transaction as its
    ledger entry. `corrects` names the invoice a credit note corrects, if any;
    `idempotency_key` is the key of the billing step that made it (one document per step)."""

    kind: DocumentKind
    entity_code: str
    issued_at: datetime
    account_id: int
    subscriber_id: int
    customer_name: str
    customer_address: str
    customer_country: str
    locale: str
    lines: tuple[DocumentLine, ...]
    idempotency_key: str
    corrects: str = ""
    business: bool = False
    sequence: int = 0
    number: str = ""

    def __post_init__(self) -> None:
        if not self.lines:
            raise InvalidInput("a document has at least one line")
        currencies = {line.split.gross.currency for line in self.lines}
        if len(currencies) != 1:
            raise InvalidInput("a document is in one currency", currencies=sorted(currencies))

    @property
    def currency(self) -> str:
        return self.lines[0].split.gross.currency

    def _sum(self, amounts: Sequence[Money]) -> Money:
        return Money(sum((m.amount for m in amounts), Decimal(0)), self.currency)

    @property
    def total_net(self) -> Money:
        return self._sum([line.split.net for line in self.lines])

    @property
    def total_vat(self) -> Money:
        return self._sum([line.split.vat for line in self.lines])

    @property
    def total_gross(self) -> Money:
        return self._sum([line.split.gross for line in self.lines])

    def vat_per_rate(self) -> dict[Decimal, tuple[Money, Money]]:
        """Net and VAT per rate, as the law asks for each rate."""
        table: dict[Decimal, tuple[Money, Money]] = {}
        for line in self.lines:
            net, vat = table.get(
                line.split.rate,
                (Money(Decimal(0), self.currency), Money(Decimal(0), self.currency)),
            )
            table[line.split.rate] = (net + line.split.net, vat + line.split.vat)
        return table


def check_gap_free(sequences: Sequence[int]) -> None:
    """Raises InvalidInput unless `sequences` (one entity's, any order) are exactly 1..n."""
    ordered = sorted(sequences)
    if ordered != list(range(1, len(ordered) + 1)):
        missing = sorted(set(range(1, (ordered[-1] if ordered else 0) + 1)) - set(ordered))
        raise InvalidInput(
            "the document sequence has gaps or duplicates",
            missing=missing[:20],
            duplicates=sorted({n for n in ordered if ordered.count(n) > 1})[:20],
        )
