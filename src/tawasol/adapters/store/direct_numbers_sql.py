"""`DirectNumberStore` on SQLAlchemy (SQLite or PostgreSQL), sharing `SqlStore`'s engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, select

from tawasol.adapters.store.direct_number_models import (
    CallerIdRow,
    ContactRow,
    InboundTrunkRow,
    PoolNumberRow,
)
from tawasol.adapters.store.mapping import rate_from_tuple
from tawasol.adapters.store.sessions import Transactions
from tawasol.domain.carriers import RateDeck
from tawasol.domain.direct_numbers import CallerId, Contact, InboundTrunk, PoolNumber
from tawasol.domain.errors import Conflict, NotFound


class SqlDirectNumberStore:
    """Thread-safe: each call checks out its own connection from the shared engine."""

    def __init__(self, engine: Engine) -> None:
        self._transactions = Transactions(engine)

    # -- trunks -------------------------------------------------------------------------------
    def save_trunk(self, trunk: InboundTrunk) -> InboundTrunk:
        with self._transactions.writing() as session:
            row = session.get(InboundTrunkRow, trunk.code)
            values = _trunk_columns(trunk)
            if row is None:
                session.add(InboundTrunkRow(**values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
        return trunk

    def list_trunks(self) -> list[InboundTrunk]:
        with self._transactions.reading() as session:
            rows = session.scalars(select(InboundTrunkRow).order_by(InboundTrunkRow.code))
            return [_trunk(row) for row in rows]

    # -- the pool -----------------------------------------------------------------------------
    def add_pool_numbers(self, numbers: Sequence[PoolNumber]) -> int:
        with self._transactions.writing() as session:
            trunks = set(session.scalars(select(InboundTrunkRow.code)))
            for entry in numbers:
                if entry.trunk not in trunks:
                    raise NotFound("no such inbound trunk", trunk=entry.trunk)
            wanted = [entry.number for entry in numbers]
            clash: set[str] = set()
            for start in range(0, len(wanted), 500):
                clash.update(
                    session.scalars(
                        select(PoolNumberRow.number).where(
                            PoolNumberRow.number.in_(wanted[start : start + 500])
                        )
                    )
                )
            if clash:
                raise Conflict("numbers already in the pool", numbers=sorted(clash)[:20])
            session.add_all(PoolNumberRow(number=e.number, trunk=e.trunk) for e in numbers)
        return len(numbers)

    def list_pool(self) -> list[PoolNumber]:
        with self._transactions.reading() as session:
            rows = session.execute(
                select(PoolNumberRow.number, PoolNumberRow.trunk).order_by(PoolNumberRow.id)
            )
            return [PoolNumber(number=number, trunk=trunk) for number, trunk in rows]

    # -- caller IDs ---------------------------------------------------------------------------
    def add_caller_id(self, caller_id: CallerId) -> CallerId:
        with self._transactions.writing() as session:
            if session.get(CallerIdRow, caller_id.number) is not None:
                raise Conflict("this number is already registered", number=caller_id.number)
            session.add(CallerIdRow(**_caller_columns(caller_id)))
        return caller_id

    def save_caller_id(self, caller_id: CallerId) -> CallerId:
        missing = NotFound("no such caller ID", number=caller_id.number)
        self._replace(CallerIdRow, caller_id.number, _caller_columns(caller_id), missing)
        return caller_id

    def remove_caller_id(self, number: str) -> None:
        with self._transactions.writing() as session:
            result = session.execute(delete(CallerIdRow).where(CallerIdRow.number == number))
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFound("no such caller ID", number=number)

    def get_caller_id(self, number: str) -> CallerId | None:
        with self._transactions.reading() as session:
            row = session.get(CallerIdRow, number)
            return _caller(row) if row is not None else None

    def list_caller_ids(self, subscriber_id: int | None = None) -> list[CallerId]:
        with self._transactions.reading() as session:
            query = select(CallerIdRow).order_by(CallerIdRow.number)
            if subscriber_id is not None:
                query = query.where(CallerIdRow.subscriber_id == subscriber_id)
            return [_caller(row) for row in session.scalars(query)]

    # -- contacts -----------------------------------------------------------------------------
    def add_contact(self, contact: Contact) -> Contact:
        with self._transactions.writing() as session:
            active = session.scalar(
                select(ContactRow.id).where(
                    ContactRow.subscriber_id == contact.subscriber_id,
                    ContactRow.direct_number == contact.direct_number,
                    ContactRow.removed_at.is_(None),
                )
            )
            if active is not None:
                raise Conflict(
                    "the subscriber already has a contact on this direct number",
                    direct_number=contact.direct_number,
                )
            row = ContactRow(**_contact_columns(contact))
            session.add(row)
            session.flush()
            return replace(contact, id=row.id)

    def save_contact(self, contact: Contact) -> Contact:
        missing = NotFound("no such contact", contact_id=contact.id)
        self._replace(ContactRow, contact.id, _contact_columns(contact), missing)
        return contact

    def _replace(
        self, row_type: type[Any], key: object, values: dict[str, Any], missing: NotFound
    ) -> None:
        """Overwrite the columns of the stored row `key` with `values`; `missing` if none."""
        with self._transactions.writing() as session:
            row = session.get(row_type, key)
            if row is None:
                raise missing
            for column, value in values.items():
                setattr(row, column, value)

    def list_contacts(self, subscriber_id: int | None = None) -> list[Contact]:
        with self._transactions.reading() as session:
            query = select(ContactRow).order_by(ContactRow.id)
            if subscriber_id is not None:
                query = query.where(ContactRow.subscriber_id == subscriber_id)
            return [_contact(row) for row in session.scalars(query)]


def _trunk_columns(trunk: InboundTrunk) -> dict[str, Any]:
    return {
        "code": trunk.code,
        "name": trunk.name,
        "country": trunk.country,
        "addresses": list(trunk.addresses),
        "number_ranges": list(trunk.number_ranges),
        "trust_asserted_identity": trunk.trust_asserted_identity,
        # (prefix, amount, currency, effective_from, first, next): `rate_from_tuple`'s order
        "rates": [
            [
                rate.prefix,
                str(rate.per_minute.amount),
                rate.per_minute.currency,
                rate.effective_from.isoformat(),
                rate.increment.first_seconds,
                rate.increment.next_seconds,
            ]
            for rate in trunk.rate_deck.rates()
        ],
        "enabled": trunk.enabled,
    }


def _trunk(row: InboundTrunkRow) -> InboundTrunk:
    return InboundTrunk(
        code=row.code,
        name=row.name,
        country=row.country,
        addresses=tuple(row.addresses),
        number_ranges=tuple(row.number_ranges),
        trust_asserted_identity=row.trust_asserted_identity,
        rate_deck=RateDeck(
            rate_from_tuple(
                (prefix, Decimal(amount), currency, datetime.fromisoformat(start), first, then)
            )
            for prefix, amount, currency, start, first, then in row.rates
        ),
        enabled=row.enabled,
    )


# Caller IDs and contacts have one column per field of their domain value, by the same name
# (a contact's `id` is the store's).
def _caller_columns(caller: CallerId) -> dict[str, Any]:
    return {item.name: getattr(caller, item.name) for item in fields(CallerId)}


def _caller(row: CallerIdRow) -> CallerId:
    return CallerId(**{item.name: getattr(row, item.name) for item in fields(CallerId)})


def _contact_columns(contact: Contact) -> dict[str, Any]:
    return {item.name: getattr(contact, item.name) for item in fields(Contact) if item.name != "id"}


def _contact(row: ContactRow) -> Contact:
    return Contact(**{item.name: getattr(row, item.name) for item in fields(Contact)})
