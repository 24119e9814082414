"""`PaymentStore`, `ProviderEventLog` and `DunningStore` in memory: the tests' fake, held to
the SQL store's contract (tests/contract/test_payment_store.py)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from tawasol.adapters.memory._aware import utc
from tawasol.domain.errors import Conflict, NotFound
from tawasol.domain.payments.dunning import DunningCase
from tawasol.domain.payments.events import ProviderEvent, StoredEvent
from tawasol.domain.payments.methods import PaymentMethod
from tawasol.domain.payments.payments import Payment, Refund


class MemoryPaymentStore:
    """The three payments ports in memory, thread-safe (one lock around each call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._methods: dict[int, PaymentMethod] = {}
        self._payments: dict[int, Payment] = {}
        self._refunds: dict[int, Refund] = {}
        self._events: dict[tuple[str, str], StoredEvent] = {}
        self._cases: dict[str, DunningCase] = {}

    # -- PaymentStore -------------------------------------------------------------------------
    def add_method(self, method: PaymentMethod) -> PaymentMethod:
        with self._lock:
            if any(
                (m.provider, m.method_reference) == (method.provider, method.method_reference)
                for m in self._methods.values()
            ):
                raise Conflict(
                    "this payment method is known already",
                    provider=method.provider,
                    method_reference=method.method_reference,
                )
            stored = replace(method, id=len(self._methods) + 1)
            self._methods[stored.id] = stored
            return stored

    def save_method(self, method: PaymentMethod) -> PaymentMethod:
        with self._lock:
            known = self._methods.get(method.id)
            if known is None:
                raise NotFound("no such payment method", payment_method_id=method.id)
            stored = replace(
                known,
                status=method.status,
                label=method.label,
                expires=method.expires,
                details=dict(method.details),
            )
            self._methods[method.id] = stored
            return stored

    def method(self, method_id: int) -> PaymentMethod:
        with self._lock:
            if method_id not in self._methods:
                raise NotFound("no such payment method", payment_method_id=method_id)
            return self._methods[method_id]

    def find_method(self, *, provider: str, method_reference: str) -> PaymentMethod | None:
        with self._lock:
            return next(
                (
                    m
                    for m in self._methods.values()
                    if (m.provider, m.method_reference) == (provider, method_reference)
                ),
                None,
            )

    def methods(self, *, subscriber_id: int | None = None) -> Sequence[PaymentMethod]:
        with self._lock:
            return [
                m
                for m in self._methods.values()
                if subscriber_id is None or m.subscriber_id == subscriber_id
            ]

    def start_payment(self, payment: Payment) -> tuple[Payment, bool]:
        with self._lock:
            for known in self._payments.values():
                if known.idempotency_key == payment.idempotency_key:
                    return known, False
            stored = replace(
                payment, id=len(self._payments) + 1, created_at=utc(payment.created_at)
            )
            self._payments[stored.id] = stored
            return stored, True

    def save_payment(self, payment: Payment) -> Payment:
        with self._lock:
            known = self._payments.get(payment.id)
            if known is None:
                raise NotFound("no such payment", payment_id=payment.id)
            stored = replace(
                known,
                status=payment.status,
                provider_reference=payment.provider_reference,
                action_url=payment.action_url,
                failure_code=payment.failure_code,
                failure_message=payment.failure_message,
            )
            self._payments[payment.id] = stored
            return stored

    def payment(self, payment_id: int) -> Payment:
        with self._lock:
            if payment_id not in self._payments:
                raise NotFound("no such payment", payment_id=payment_id)
            return self._payments[payment_id]

    def find_payment(
        self, *, idempotency_key: str = "", provider: str = "", provider_reference: str = ""
    ) -> Payment | None:
        with self._lock:
            for payment in self._payments.values():
                if idempotency_key and payment.idempotency_key == idempotency_key:
                    return payment
                if provider_reference and (payment.provider, payment.provider_reference) == (
                    provider,
                    provider_reference,
                ):
                    return payment
            return None

    def payments(
        self, *, subscriber_id: int | None = None, reference: str | None = None
    ) -> Sequence[Payment]:
        with self._lock:
            return [
                p
                for p in self._payments.values()
                if (subscriber_id is None or p.subscriber_id == subscriber_id)
                and (reference is None or p.reference == reference)
            ]

    def start_refund(self, refund: Refund) -> tuple[Refund, bool]:
        with self._lock:
            if refund.payment_id not in self._payments:
                raise NotFound("no such payment", payment_id=refund.payment_id)
            for known in self._refunds.values():
                if known.idempotency_key == refund.idempotency_key:
                    return known, False
            stored = replace(refund, id=len(self._refunds) + 1, created_at=utc(refund.created_at))
            self._refunds[stored.id] = stored
            return stored, True

    def save_refund(self, refund: Refund) -> Refund:
        with self._lock:
            known = self._refunds.get(refund.id)
            if known is None:
                raise NotFound("no such refund", refund_id=refund.id)
            stored = replace(
                known, status=refund.status, provider_reference=refund.provider_reference
            )
            self._refunds[refund.id] = stored
            return stored

    def refunds(self, *, payment_id: int) -> Sequence[Refund]:
        with self._lock:
            return [r for r in self._refunds.values() if r.payment_id == payment_id]

    def find_refund(self, *, provider_reference: str) -> Refund | None:
        with self._lock:
            return next(
                (
                    r
                    for r in self._refunds.values()
                    if provider_reference and r.provider_reference == provider_reference
                ),
                None,
            )

    # -- ProviderEventLog ---------------------------------------------------------------------
    def keep(self, event: ProviderEvent, *, at: datetime) -> StoredEvent:
        with self._lock:
            key = (event.provider, event.event_id)
            known = self._events.get(key)
            if known is not None:
                known = replace(known, deliveries=known.deliveries + 1)
            else:
                known = StoredEvent(event, utc(at), id=len(self._events) + 1)
            self._events[key] = known
            return known

    def mark_applied(self, *, provider: str, event_id: str, at: datetime, outcome: str) -> None:
        with self._lock:
            known = self._events.get((provider, event_id))
            if known is None:
                raise NotFound("no such provider event", provider=provider, event_id=event_id)
            if known.applied_at is None:
                self._events[(provider, event_id)] = replace(
                    known, applied_at=utc(at), outcome=outcome
                )

    def unapplied(self, *, limit: int = 100) -> Sequence[StoredEvent]:
        with self._lock:
            return sorted(
                (e for e in self._events.values() if e.applied_at is None), key=lambda e: e.id
            )[:limit]

    def events(self, *, provider: str | None = None, limit: int = 100) -> Sequence[StoredEvent]:
        with self._lock:
            return sorted(
                (e for e in self._events.values() if provider in (None, e.event.provider)),
                key=lambda e: -e.id,
            )[:limit]

    # -- DunningStore -------------------------------------------------------------------------
    def open_case(self, case: DunningCase) -> tuple[DunningCase, bool]:
        with self._lock:
            known = self._cases.get(case.reference)
            if known is not None:
                return known, False
            stored = replace(case, id=len(self._cases) + 1, opened_at=utc(case.opened_at))
            self._cases[case.reference] = stored
            return stored, True

    def save_case(self, case: DunningCase) -> DunningCase:
        with self._lock:
            known = self._cases.get(case.reference)
            if known is None or known.id != case.id:
                raise NotFound("no such dunning case", reference=case.reference)
            self._cases[case.reference] = case
            return case

    def case(self, reference: str) -> DunningCase | None:
        with self._lock:
            return self._cases.get(reference)

    def cases(
        self, *, subscriber_id: int | None = None, open_only: bool = True
    ) -> Sequence[DunningCase]:
        with self._lock:
            return sorted(
                (
                    c
                    for c in self._cases.values()
                    if (subscriber_id is None or c.subscriber_id == subscriber_id)
                    and not (open_only and c.status.closed)
                ),
                key=lambda c: c.id,
            )
