"""Billing's ports in memory: for unit tests, replays and the demo mode.

`InMemoryBillingStore` keeps the same promises as the SQL store (the contract tests in
tests/integration/test_billing_store.py run against both): a step is applied whole or not at
all, once per idempotency key, and documents are numbered without gaps per issuing entity.
`InMemoryOutageHistory` is a fixed list of outage periods (tests and the September replay).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime

from tawasol.domain.billing.documents import Document, document_number
from tawasol.domain.billing.ledger import Account
from tawasol.domain.billing.lifecycle import BillingTerms
from tawasol.domain.errors import NotFound
from tawasol.domain.outages import OutagePeriod
from tawasol.domain.subscribers import Subscription
from tawasol.services.billing.ports import (
    BillingCustomer,
    BillingItem,
    BillingStep,
    PaidPeriod,
)


class InMemoryBillingStore:
    """A BillingStore in memory (thread-safe: one lock around each call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._customers: dict[int, BillingCustomer] = {}
        self._subscriptions: dict[int, Subscription] = {}
        self._terms: dict[int, BillingTerms] = {}
        self._accounts: dict[tuple[int, str], Account] = {}
        self._account_keys: dict[int, tuple[int, str]] = {}
        self._documents: dict[str, list[Document]] = {}
        self._paid: list[PaidPeriod] = []
        self._applied: set[str] = set()
        self._outbox: list[tuple[str, str]] = []

    # -- seeding (what the catalog owns in the SQL store) -------------------------------------
    def add(self, customer: BillingCustomer, subscription: Subscription) -> None:
        with self._lock:
            self._customers[customer.subscriber_id] = customer
            self._subscriptions[subscription.id] = subscription

    def subscription(self, subscription_id: int) -> Subscription:
        return self._subscriptions[subscription_id]

    # -- BillingStore -------------------------------------------------------------------------
    def bulk_billing(self) -> None:
        """Memory bills one subscription at a time."""
        return None

    def items_due(
        self, *, before: datetime, subscription_ids: Collection[int] | None = None
    ) -> Sequence[BillingItem]:
        with self._lock:
            items = [
                BillingItem(s, self._customers[s.subscriber_id], self._terms.get(s.id))
                for s in self._subscriptions.values()
                if s.status.current
                and (s.period_end <= before or s.id not in self._terms)
                and (subscription_ids is None or s.id in subscription_ids)
            ]
        return sorted(items, key=lambda i: (i.subscription.period_end, i.subscription.id))

    def paid_periods(self, *, start: datetime, end: datetime) -> Sequence[PaidPeriod]:
        with self._lock:
            found = [p for p in self._paid if p.start < end and p.end > start]
        return sorted(found, key=lambda p: (p.subscription_id, p.start))

    def customer(self, subscriber_id: int) -> BillingCustomer:
        try:
            return self._customers[subscriber_id]
        except KeyError:
            raise NotFound("no such subscriber", subscriber_id=subscriber_id) from None

    def account(self, *, subscriber_id: int, currency: str) -> Account:
        with self._lock:
            return self._account(subscriber_id, currency)

    def _account(self, subscriber_id: int, currency: str) -> Account:
        key = (subscriber_id, currency)
        if key not in self._accounts:
            self._accounts[key] = Account(len(self._accounts) + 1, subscriber_id, currency)
            self._account_keys[len(self._accounts)] = key
        return self._accounts[key]

    def applied(self, idempotency_key: str) -> bool:
        with self._lock:
            return idempotency_key in self._applied

    def apply(self, step: BillingStep, *, entity_code: str, number_prefix: str) -> bool:
        with self._lock:
            if step.idempotency_key in self._applied:
                return False
            # Everything is checked before anything is written: all or nothing.
            accounts: dict[int, Account] = {}
            for entry in step.entries:
                account = (
                    accounts.get(entry.account_id)
                    or self._accounts[self._account_keys[entry.account_id]]
                )
                accounts[entry.account_id] = account.appended(entry)
            issued = self._documents.setdefault(entity_code, [])
            numbered = [
                replace(
                    document,
                    sequence=len(issued) + offset,
                    number=document_number(entity_code, number_prefix, len(issued) + offset),
                )
                for offset, document in enumerate(step.documents, start=1)
            ]
            for account in accounts.values():
                self._accounts[(account.subscriber_id, account.currency)] = account
            issued.extend(numbered)
            customer_emails = {
                d.subscriber_id: self._customers[d.subscriber_id].email
                for d in numbered
                if d.subscriber_id in self._customers
            }
            self._outbox.extend(
                (d.number, customer_emails[d.subscriber_id])
                for d in numbered
                if customer_emails.get(d.subscriber_id)
            )
            if step.subscription is not None:
                self._subscriptions[step.subscription.id] = step.subscription
            if step.terms is not None:
                self._terms[step.terms.subscription_id] = step.terms
            if step.paid is not None:
                self._paid.append(step.paid)
            self._applied.add(step.idempotency_key)
            return True

    def documents(self, *, entity_code: str) -> Sequence[Document]:
        with self._lock:
            return list(self._documents.get(entity_code, []))

    def current_items(self, *, subscriber_id: int) -> Sequence[BillingItem]:
        with self._lock:
            if subscriber_id not in self._customers:
                raise NotFound("no such subscriber", subscriber_id=subscriber_id)
            items = [
                BillingItem(s, self._customers[s.subscriber_id], self._terms.get(s.id))
                for s in self._subscriptions.values()
                if s.subscriber_id == subscriber_id and s.status.current
            ]
        return sorted(items, key=lambda i: (i.subscription.period_start, i.subscription.id))

    def accounts(self, *, subscriber_id: int) -> Sequence[Account]:
        with self._lock:
            found = [
                a
                for (owner, _), a in self._accounts.items()
                if owner == subscriber_id and a.entries
            ]
        return sorted(found, key=lambda a: a.currency)

    def subscriber_documents(self, *, subscriber_id: int) -> Sequence[Document]:
        with self._lock:
            found = [
                d
                for issued in self._documents.values()
                for d in issued
                if d.subscriber_id == subscriber_id
            ]
        return sorted(found, key=lambda d: (d.issued_at, d.entity_code, d.sequence))

    def document(self, number: str) -> Document:
        with self._lock:
            for issued in self._documents.values():
                for document in issued:
                    if document.number == number:
                        return document
        raise NotFound("no document with this number", number=number)

    # -- DocumentOutbox -----------------------------------------------------------------------
    def pending(self, *, limit: int = 100) -> Sequence[tuple[str, str]]:
        with self._lock:
            return list(self._outbox[:limit])

    def mark_sent(self, number: str) -> None:
        with self._lock:
            self._outbox = [item for item in self._outbox if item[0] != number]


class InMemoryOutageHistory:
    """An OutageHistory over a fixed list of periods, as known at `clock()` (a replay moves the
    clock): periods that start later are not known yet, ends after it are still open (None).
    An incident is closed when every one of its periods has ended, at the latest end."""

    def __init__(
        self, periods: Iterable[OutagePeriod], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._periods = sorted(periods, key=lambda p: p.start)
        self._clock = clock

    def _known(self) -> list[OutagePeriod]:
        if self._clock is None:
            return self._periods
        now = self._clock()
        return [
            p if p.end is None or p.end <= now else replace(p, end=None)
            for p in self._periods
            if p.start <= now
        ]

    def outage_periods(self, *, start: datetime, end: datetime) -> Sequence[OutagePeriod]:
        return [p for p in self._known() if p.start < end and (p.end is None or p.end > start)]

    def closed_incidents_since(self, since: datetime) -> Sequence[int]:
        closed: dict[int, datetime | None] = {}
        for period in self._known():
            previous = closed.get(period.incident_id, period.end)
            closed[period.incident_id] = (
                None if period.end is None or previous is None else max(previous, period.end)
            )
        return sorted(i for i, end in closed.items() if end is not None and end >= since)
