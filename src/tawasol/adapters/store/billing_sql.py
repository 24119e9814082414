"""Billing's ports on SQLAlchemy (SQLite and PostgreSQL), tables from migration 0005.

`apply` is one transaction: the step's key, its ledger entries, its documents numbered from the
entity's sequence row (locked with SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN
IMMEDIATE serialises writers), the subscription's new period and status, its terms, its paid
period and the documents to send. A process killed at any point leaves either all of it or
none: numbers are only ever taken by committed documents, so the sequence has no gap.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Select, and_, or_, select, update
from sqlalchemy.orm import Session

from tawasol.adapters.store.billing_bulk import PostgresBulkBilling
from tawasol.adapters.store.billing_models import (
    BillingAccountRow,
    BillingDocumentRow,
    BillingStepRow,
    BillingTermsRow,
    DocumentOutboxRow,
    DocumentSequenceRow,
    LedgerEntryRow,
    PaidPeriodRow,
)
from tawasol.adapters.store.engine import (
    SQLITE_BEGIN,
    create_store_engine,
    describe_url,
    translated,
)
from tawasol.adapters.store.mapping import subscription_from_row
from tawasol.adapters.store.models import SubscriberRow, SubscriptionRow
from tawasol.adapters.store.sql_store import bump_catalog_revision
from tawasol.domain.billing.documents import (
    Document,
    DocumentKind,
    DocumentLine,
    document_number,
)
from tawasol.domain.billing.ledger import Account, EntryKind, LedgerEntry
from tawasol.domain.billing.lifecycle import BillingTerms
from tawasol.domain.billing.vat import VatSplit
from tawasol.domain.errors import NotFound
from tawasol.domain.money import Money
from tawasol.domain.subscribers import SubscriptionStatus
from tawasol.services.billing.ports import (
    BillingCustomer,
    BillingItem,
    BillingStep,
    PaidPeriod,
)

_CURRENT = tuple(status.value for status in SubscriptionStatus if status.current)
_IDS_PER_QUERY = 10_000


class SqlBillingStore:
    """BillingStore and DocumentOutbox on SQLAlchemy. Thread-safe: a connection per call."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._database = describe_url(engine.url)
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = (
            engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) if self._sqlite else engine
        )

    def bulk_billing(self) -> PostgresBulkBilling | None:
        """Set-based billing on this store's database (PostgreSQL; see billing_bulk)."""
        if self._engine.dialect.name != "postgresql":
            return None
        return PostgresBulkBilling(self._engine)

    @classmethod
    def from_url(cls, url: str) -> SqlBillingStore:
        with translated(describe_url(url)):
            return cls(create_store_engine(url))

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        with (
            translated(self._database),
            Session(self._writer if write else self._engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    # -- reads ----------------------------------------------------------------------------------
    def items_due(
        self, *, before: datetime, subscription_ids: Collection[int] | None = None
    ) -> Sequence[BillingItem]:
        query = self._items().where(
            or_(SubscriptionRow.period_end <= before, BillingTermsRow.subscription_id.is_(None))
        )
        # A few ids are asked for by id; many (beyond what one statement may bind) are sifted.
        wanted = None if subscription_ids is None else set(subscription_ids)
        if wanted is not None and len(wanted) <= _IDS_PER_QUERY:
            query = query.where(SubscriptionRow.id.in_(sorted(wanted)))
        with self._session() as session:
            items = self._read_items(session, query.order_by(SubscriptionRow.period_end))
        return items if wanted is None else [i for i in items if i.subscription.id in wanted]

    @staticmethod
    def _items() -> Select[SubscriptionRow, SubscriberRow, BillingTermsRow]:
        """Running subscriptions with their subscriber and terms (None until billed)."""
        return (
            select(SubscriptionRow, SubscriberRow, BillingTermsRow)
            .join(SubscriberRow, SubscriberRow.id == SubscriptionRow.subscriber_id)
            .outerjoin(BillingTermsRow, BillingTermsRow.subscription_id == SubscriptionRow.id)
            .where(SubscriptionRow.status.in_(_CURRENT))
        )

    @staticmethod
    def _read_items(
        session: Session, query: Select[SubscriptionRow, SubscriberRow, BillingTermsRow]
    ) -> list[BillingItem]:
        return [
            BillingItem(
                subscription_from_row(subscription),
                _customer(subscriber),
                None if terms is None else _terms(terms),
            )
            for subscription, subscriber, terms in session.execute(
                query.order_by(SubscriptionRow.id)
            )
        ]

    def paid_periods(self, *, start: datetime, end: datetime) -> Sequence[PaidPeriod]:
        query = (
            select(PaidPeriodRow)
            .where(and_(PaidPeriodRow.start < end, PaidPeriodRow.end > start))
            .order_by(PaidPeriodRow.subscription_id, PaidPeriodRow.start)
        )
        with self._session() as session:
            return [
                PaidPeriod(
                    row.subscription_id,
                    row.subscriber_id,
                    row.plan_code,
                    row.period_index,
                    row.start,
                    row.end,
                    Money(row.price_paid, row.currency),
                    row.charge_key,
                )
                for row in session.scalars(query)
            ]

    def customer(self, subscriber_id: int) -> BillingCustomer:
        with self._session() as session:
            row = session.get(SubscriberRow, subscriber_id)
            if row is None:
                raise NotFound("no such subscriber", subscriber_id=subscriber_id)
            return _customer(row)

    def account(self, *, subscriber_id: int, currency: str) -> Account:
        with self._session(write=True) as session:
            row = self._account_row(session, subscriber_id, currency)
            entries = session.scalars(
                select(LedgerEntryRow)
                .where(LedgerEntryRow.account_id == row.id)
                .order_by(LedgerEntryRow.id)
            )
            return Account(
                row.id, subscriber_id, currency, tuple(_entry(e, currency) for e in entries)
            )

    def _account_row(
        self, session: Session, subscriber_id: int, currency: str
    ) -> BillingAccountRow:
        row = session.scalars(
            select(BillingAccountRow).where(
                BillingAccountRow.subscriber_id == subscriber_id,
                BillingAccountRow.currency == currency,
            )
        ).one_or_none()
        if row is None:
            row = BillingAccountRow(subscriber_id=subscriber_id, currency=currency)
            session.add(row)
            session.flush()
        return row

    def applied(self, idempotency_key: str) -> bool:
        with self._session() as session:
            return session.get(BillingStepRow, idempotency_key) is not None

    def documents(self, *, entity_code: str) -> Sequence[Document]:
        with self._session() as session:
            rows = session.scalars(
                select(BillingDocumentRow)
                .where(BillingDocumentRow.entity_code == entity_code)
                .order_by(BillingDocumentRow.sequence)
            )
            return [_document(row) for row in rows]

    def current_items(self, *, subscriber_id: int) -> Sequence[BillingItem]:
        query = self._items().where(SubscriptionRow.subscriber_id == subscriber_id)
        with self._session() as session:
            if session.get(SubscriberRow, subscriber_id) is None:
                raise NotFound("no such subscriber", subscriber_id=subscriber_id)
            return self._read_items(session, query.order_by(SubscriptionRow.period_start))

    def accounts(self, *, subscriber_id: int) -> Sequence[Account]:
        with self._session() as session:
            rows = session.scalars(
                select(BillingAccountRow)
                .where(BillingAccountRow.subscriber_id == subscriber_id)
                .order_by(BillingAccountRow.currency)
            ).all()
            accounts = []
            for row in rows:
                entries = session.scalars(
                    select(LedgerEntryRow)
                    .where(LedgerEntryRow.account_id == row.id)
                    .order_by(LedgerEntryRow.id)
                )
                accounts.append(
                    Account(
                        row.id,
                        subscriber_id,
                        row.currency,
                        tuple(_entry(e, row.currency) for e in entries),
                    )
                )
            return [account for account in accounts if account.entries]

    def subscriber_documents(self, *, subscriber_id: int) -> Sequence[Document]:
        with self._session() as session:
            rows = session.scalars(
                select(BillingDocumentRow)
                .where(BillingDocumentRow.subscriber_id == subscriber_id)
                .order_by(BillingDocumentRow.issued_at, BillingDocumentRow.id)
            )
            return [_document(row) for row in rows]

    def document(self, number: str) -> Document:
        with self._session() as session:
            row = session.scalars(
                select(BillingDocumentRow).where(BillingDocumentRow.number == number)
            ).one_or_none()
            if row is None:
                raise NotFound("no document with this number", number=number)
            return _document(row)

    # -- the one write ----------------------------------------------------------------------
    def apply(self, step: BillingStep, *, entity_code: str, number_prefix: str) -> bool:
        now = datetime.now(UTC)
        with self._session(write=True) as session:
            if session.get(BillingStepRow, step.idempotency_key, with_for_update=True):
                return False
            # One billing run at a time (the run takes no lock itself): a second process
            # applying the same key at the same moment fails on the primary key, whole.
            session.add(BillingStepRow(idempotency_key=step.idempotency_key, applied_at=now))
            for entry in step.entries:
                account = self._account_by_id(session, entry.account_id)
                account.check_new(entry)  # refunds bounded, keys unique: raises before commit
                session.add(_entry_row(entry))
            if step.documents:
                sequence = self._take_numbers(session, entity_code, len(step.documents))
                for offset, document in enumerate(step.documents):
                    number = document_number(entity_code, number_prefix, sequence + offset)
                    session.add(
                        BillingDocumentRow(
                            entity_code=entity_code,
                            sequence=sequence + offset,
                            number=number,
                            kind=document.kind.value,
                            subscriber_id=document.subscriber_id,
                            issued_at=document.issued_at,
                            idempotency_key=document.idempotency_key,
                            content=_document_content(document),
                        )
                    )
                    recipient = session.get(SubscriberRow, document.subscriber_id)
                    if recipient is not None and recipient.email:
                        session.add(
                            DocumentOutboxRow(
                                number=number, recipient=recipient.email, queued_at=now
                            )
                        )
            if step.subscription is not None:
                # A new period, plan or status is a catalog change: the deciders reload it.
                bump_catalog_revision(session)
                subscription = step.subscription
                changed = session.execute(
                    update(SubscriptionRow)
                    .where(SubscriptionRow.id == subscription.id)
                    .values(
                        plan_code=subscription.plan_code,
                        status=subscription.status.value,
                        period_start=subscription.period_start,
                        period_end=subscription.period_end,
                    )
                )
                if changed.rowcount != 1:  # type: ignore[attr-defined]
                    raise NotFound("no such subscription", subscription_id=subscription.id)
            if step.terms is not None:
                session.merge(_terms_row(step.terms))
            if step.paid is not None:
                paid = step.paid
                session.add(
                    PaidPeriodRow(
                        subscription_id=paid.subscription_id,
                        subscriber_id=paid.subscriber_id,
                        plan_code=paid.plan_code,
                        period_index=paid.index,
                        start=paid.start,
                        end=paid.end,
                        price_paid=paid.price_paid.amount,
                        currency=paid.price_paid.currency,
                        charge_key=paid.charge_key,
                    )
                )
            return True

    def _account_by_id(self, session: Session, account_id: int) -> Account:
        row = session.get(BillingAccountRow, account_id, with_for_update=True)
        if row is None:
            raise NotFound("no such billing account", account_id=account_id)
        entries = session.scalars(
            select(LedgerEntryRow).where(LedgerEntryRow.account_id == account_id)
        )
        return Account(
            row.id, row.subscriber_id, row.currency, tuple(_entry(e, row.currency) for e in entries)
        )

    def _take_numbers(self, session: Session, entity_code: str, count: int) -> int:
        """Reserve `count` numbers of the entity's sequence in this transaction; the first."""
        row = session.get(DocumentSequenceRow, entity_code, with_for_update=True)
        if row is None:
            row = DocumentSequenceRow(entity_code=entity_code, last_sequence=0)
            session.add(row)
        first = row.last_sequence + 1
        row.last_sequence += count
        session.flush()
        return first

    # -- DocumentOutbox -----------------------------------------------------------------------
    def pending(self, *, limit: int = 100) -> Sequence[tuple[str, str]]:
        with self._session() as session:
            rows = session.scalars(
                select(DocumentOutboxRow).order_by(DocumentOutboxRow.queued_at).limit(limit)
            )
            return [(row.number, row.recipient) for row in rows]

    def mark_sent(self, number: str) -> None:
        with self._session(write=True) as session:
            row = session.get(DocumentOutboxRow, number)
            if row is not None:
                session.delete(row)


# -- mapping --------------------------------------------------------------------------------
def _customer(row: SubscriberRow) -> BillingCustomer:
    return BillingCustomer(
        subscriber_id=row.id,
        name=row.name,
        email=row.email,
        country=row.country or "",  # of residence; "" unknown: VatTable refuses it
        time_zone=row.time_zone,
        locale=row.locale,
        business=row.business,  # Factur-X for a business customer
    )


def _terms(row: BillingTermsRow) -> BillingTerms:
    return BillingTerms(
        row.subscription_id,
        row.anchor,
        row.period_index,
        Money(row.price_paid, row.currency),
        row.next_plan_code,
        row.cancel_at_period_end,
        row.paused_at,
    )


def _terms_row(terms: BillingTerms) -> BillingTermsRow:
    return BillingTermsRow(
        subscription_id=terms.subscription_id,
        anchor=terms.anchor,
        period_index=terms.period_index,
        price_paid=terms.price_paid.amount,
        currency=terms.price_paid.currency,
        next_plan_code=terms.next_plan_code,
        cancel_at_period_end=terms.cancel_at_period_end,
        paused_at=terms.paused_at,
    )


def _entry(row: LedgerEntryRow, currency: str) -> LedgerEntry:
    return LedgerEntry(
        row.account_id,
        EntryKind(row.kind),
        Money(row.amount, currency),
        row.idempotency_key,
        row.recorded_at,
        row.reference,
        row.description,
    )


def _entry_row(entry: LedgerEntry) -> LedgerEntryRow:
    return LedgerEntryRow(
        account_id=entry.account_id,
        kind=entry.kind.value,
        amount=entry.amount.amount,
        idempotency_key=entry.idempotency_key,
        recorded_at=entry.recorded_at,
        reference=entry.reference,
        description=entry.description,
    )


def _document_content(document: Document) -> dict[str, Any]:
    return {
        "account_id": document.account_id,
        "customer_name": document.customer_name,
        "customer_address": document.customer_address,
        "customer_country": document.customer_country,
        "locale": document.locale,
        "corrects": document.corrects,
        "business": document.business,
        "currency": document.currency,
        "lines": [
            {
                "description": line.description,
                "period_start": line.period_start.isoformat(),
                "period_end": line.period_end.isoformat(),
                "quantity": line.quantity,
                "rate": str(line.split.rate),
                "net": str(line.split.net.amount),
                "vat": str(line.split.vat.amount),
                "gross": str(line.split.gross.amount),
            }
            for line in document.lines
        ],
    }


def _document(row: BillingDocumentRow) -> Document:
    content = row.content
    currency = content["currency"]

    def money(text: str) -> Money:
        return Money(Decimal(text), currency)

    lines = tuple(
        DocumentLine(
            description=line["description"],
            period_start=datetime.fromisoformat(line["period_start"]),
            period_end=datetime.fromisoformat(line["period_end"]),
            quantity=line["quantity"],
            split=VatSplit(
                Decimal(line["rate"]), money(line["net"]), money(line["vat"]), money(line["gross"])
            ),
        )
        for line in content["lines"]
    )
    return Document(
        kind=DocumentKind(row.kind),
        entity_code=row.entity_code,
        issued_at=row.issued_at,
        account_id=content["account_id"],
        subscriber_id=row.subscriber_id,
        customer_name=content["customer_name"],
        customer_address=content["customer_address"],
        customer_country=content["customer_country"],
        locale=content["locale"],
        lines=lines,
        idempotency_key=row.idempotency_key,
        corrects=content["corrects"],
        business=content["business"],
        sequence=row.sequence,
        number=row.number,
    )
