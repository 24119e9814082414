"""SEPA collections: one amount to debit under a mandate, its pre-notification and its fate.

A *collection* is created when a charge (an invoice) is to be paid by direct debit. Its
*pre-notification* tells the subscriber the amount and the date at least the mandate's
pre-notification period before the debit (14 calendar days unless agreed shorter: EPC SDD Core
Rulebook PT-04.03), in their language, through the notices outbox; a new one goes out whenever
the amount or the date changes (an amount lowered by a credit note, a re-presentation after
insufficient funds), and the date moves so that it again falls a full period after the notice.

States: *scheduled* (waiting for its date), *submitted* (sent to the bank in a pain.008 file,
recorded as paid on its date), *returned* (the bank took it back and it is not presented
again), *cancelled* (nothing left to collect, or the mandate ended before its date). Each
presentation to the bank has its own end-to-end id, which the bank's returns name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from babel.dates import format_date
from babel.numbers import format_currency

from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.notices import html_document
from tawasol.domain.payments.sepa import (
    BankAccount,
    CreditorIdentifier,
    Mandate,
    SequenceType,
    collection_date,
    sepa_text,
)

__all__ = [
    "BatchKind",
    "Collection",
    "CollectionState",
    "CreditTransfer",
    "Creditor",
    "Prenotification",
    "Presentation",
    "SepaBatch",
    "prenotification_text",
]


class CollectionState(enum.StrEnum):
    SCHEDULED = "scheduled"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Prenotification:
    """One pre-notification: what the subscriber was told (amount, date) and when it was
    queued (None until the notices outbox holds it). Its `id` keys the notices it gives, so
    queueing it again after a crash sends nothing twice."""

    collection_id: int
    amount: Money
    due_on: date
    queued_at: datetime | None = None
    id: int = 0


@dataclass(frozen=True)
class Collection:
    """An amount to debit under a mandate (see the module docstring). `reference` names what
    it pays for (the payment's idempotency key: one payment is collected once); `due_on` is the
    date announced; `presentations` counts the times it was sent to the bank."""

    subscriber_id: int
    mandate_reference: str
    amount: Money
    reference: str
    due_on: date
    created_at: datetime
    state: CollectionState = CollectionState.SCHEDULED
    presentations: int = 0
    notified_on: date | None = None  # when the last pre-notification was queued
    notified_amount: Money | None = None
    charge: str = ""  # the billing charge it pays (its ledger key), shared by its retries
    id: int = 0

    def __post_init__(self) -> None:
        if self.amount.currency != "EUR":
            raise InvalidInput("SEPA Direct Debit collects euros only", amount=str(self.amount))
        if self.amount.amount <= 0:
            raise InvalidInput("a collection is a positive amount", amount=str(self.amount))
        if not self.reference or len(self.reference) > 200:
            raise InvalidInput("a collection needs a reference of 1-200 characters")

    def end_to_end_id(self, presentation: int) -> str:
        """The id of its `presentation`-th presentation (pain.008 `EndToEndId`, at most 35
        characters of SEPA's set), which the bank's returns repeat."""
        return f"TWS-{self.id}-{presentation}"

    def ready_on(self, day: date, mandate: Mandate) -> bool:
        """Whether it goes into a batch collected on `day`: scheduled, its date reached, and
        the subscriber told this amount at least the mandate's pre-notification period
        before `day`."""
        return (
            self.state is CollectionState.SCHEDULED
            and self.due_on <= day
            and self.notified_on is not None
            and self.notified_amount == self.amount
            and self.notified_on + timedelta(days=mandate.prenotification_days) <= day
        )

    def renotified(self, *, amount: Money, on: date, mandate: Mandate) -> Collection:
        """This collection for `amount`, told again on `on`: its date moves to the earliest
        the mandate's period allows (never earlier than announced)."""
        due = max(
            self.due_on,
            collection_date(notified_on=on, prenotification_days=mandate.prenotification_days),
        )
        return replace(self, amount=amount, due_on=due)


@dataclass(frozen=True)
class Presentation:
    """One collection sent to the bank once, in one pain.008 batch: its end-to-end id (which
    the bank's returns name), sequence type, amount and collection date; `returned_reason` is
    the R-transaction's reason code once the bank took it back."""

    end_to_end_id: str
    collection_id: int
    batch_id: int
    mandate_reference: str
    sequence_type: SequenceType
    amount: Money
    collection_date: date
    returned_reason: str = ""
    returned_on: date | None = None


class BatchKind(enum.StrEnum):
    """A file for the operator's bank: direct debits to collect (pain.008) or credit
    transfers to pay out (pain.001, refunds)."""

    DIRECT_DEBIT = "pain.008"
    CREDIT_TRANSFER = "pain.001"


@dataclass(frozen=True)
class SepaBatch:
    """One file handed to the bank, kept as written (`xml`) so that writing it again after a
    crash gives the same file. `message_id` is the file's unique id (`GrpHdr/MsgId`);
    `execution_date` the collection date (pain.008) or the requested execution date
    (pain.001)."""

    kind: BatchKind
    message_id: str
    execution_date: date
    created_at: datetime
    transactions: int
    control_sum: Money
    xml: str
    id: int = 0


@dataclass(frozen=True)
class CreditTransfer:
    """Money paid back to a subscriber's bank account by SEPA credit transfer (a refund of a
    direct debit goes back to the account debited: the one of `collection_id`).
    `idempotency_key` is the refund's: asking twice pays once. `batch_id` is the pain.001 file
    that carries it (None: not written yet)."""

    idempotency_key: str
    subscriber_id: int
    collection_id: int
    account: BankAccount
    amount: Money
    remittance: str
    created_at: datetime
    batch_id: int | None = None
    id: int = 0

    def __post_init__(self) -> None:
        if self.amount.currency != "EUR" or self.amount.amount <= 0:
            raise InvalidInput(
                "a SEPA credit transfer is a positive amount in euros", amount=str(self.amount)
            )
        sepa_text(self.remittance, field="remittance information", max_length=140)

    @property
    def end_to_end_id(self) -> str:
        return f"TWR-{self.id}"


@dataclass(frozen=True)
class Creditor:
    """The operator as SEPA knows it: its name (SEPA text), the account collections are paid
    into and refunds paid from, and its creditor identifier."""

    name: str
    account: BankAccount
    identifier: CreditorIdentifier


_SUBJECTS = {
    "fr": "Prélèvement SEPA de {amount} le {date}",
    "en": "SEPA direct debit of {amount} on {date}",
    "ar": "اقتطاع SEPA بمبلغ {amount} في {date}",
}
_BODIES = {
    "fr": (
        "Bonjour {name},\n\nNous prélèverons {amount} sur votre compte {iban} le {date} "
        "(ou le jour ouvré suivant), pour votre abonnement ({what}).\n\nMandat {mandate}, "
        "identifiant créancier {creditor}. Pour toute question, répondez à ce message avant "
        "cette date."
    ),
    "en": (
        "Hello {name},\n\nWe will debit {amount} from your account {iban} on {date} (or the "
        "next business day), for your subscription ({what}).\n\nMandate {mandate}, creditor "
        "identifier {creditor}. If you have a question, reply to this message before that date."
    ),
    "ar": (
        "مرحبا {name}،\n\nسنقتطع مبلغ {amount} من حسابك {iban} بتاريخ {date} (أو يوم العمل "
        "التالي)، مقابل اشتراكك ({what}).\n\nالتفويض {mandate}، معرّف الدائن {creditor}. "
        "إذا كان لديك سؤال، يرجى الرد على هذه الرسالة قبل هذا التاريخ."
    ),
}
_LOCALES = {"fr": "fr_FR", "en": "en_GB", "ar": "ar_MA"}


def _language(locale: str) -> str:
    language = locale.split("_", maxsplit=1)[0].split("-", maxsplit=1)[0].lower()
    return language if language in _BODIES else "en"


def prenotification_text(
    *,
    locale: str,
    name: str,
    amount: Money,
    due_on: date,
    what: str,
    mandate: Mandate,
    creditor: str,
) -> tuple[str, str, str, str]:
    """(language, subject, plain text, HTML) of a pre-notification in the subscriber's
    language (fr, ar, en; other locales get English). The amount, the date, the account
    (masked), the mandate reference and the creditor identifier are what the Rulebook asks
    the debtor be told.
    Amounts and dates follow the language's conventions (CLDR, through Babel); in Arabic they
    are wrapped in Unicode isolates so a right-to-left reader keeps their digits in order."""
    language = _language(locale)
    cldr = _LOCALES[language]
    isolate = ("\u2066", "\u2069") if language == "ar" else ("", "")
    values = {
        "name": name,
        "amount": isolate[0]
        + format_currency(amount.amount, amount.currency, locale=cldr)
        + isolate[1],
        "date": isolate[0] + format_date(due_on, format="long", locale=cldr) + isolate[1],
        "iban": isolate[0] + mandate.account.masked_iban + isolate[1],
        "what": isolate[0] + what + isolate[1],
        "mandate": isolate[0] + mandate.reference + isolate[1],
        "creditor": isolate[0] + creditor + isolate[1],
    }
    subject = _SUBJECTS[language].format(**values)
    text = _BODIES[language].format(**values)
    return language, subject, text, html_document(language, subject, text)
