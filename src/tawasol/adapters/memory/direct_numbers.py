"""`DirectNumberStore` in memory: the tests' fake, held to the SQL store's contract."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from tawasol.domain.direct_numbers import CallerId, Contact, InboundTrunk, PoolNumber
from tawasol.domain.errors import Conflict, NotFound


class MemoryDirectNumberStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trunks: dict[str, InboundTrunk] = {}
        self._pool: dict[str, PoolNumber] = {}
        self._caller_ids: dict[str, CallerId] = {}
        self._contacts: dict[int, Contact] = {}
        self._next_contact = 1

    def save_trunk(self, trunk: InboundTrunk) -> InboundTrunk:
        with self._lock:
            self._trunks[trunk.code] = trunk
        return trunk

    def list_trunks(self) -> list[InboundTrunk]:
        with self._lock:
            return sorted(self._trunks.values(), key=lambda trunk: trunk.code)

    def add_pool_numbers(self, numbers: Sequence[PoolNumber]) -> int:
        with self._lock:
            for entry in numbers:
                if entry.trunk not in self._trunks:
                    raise NotFound("no such inbound trunk", trunk=entry.trunk)
            clash = sorted({entry.number for entry in numbers} & set(self._pool))
            if clash:
                raise Conflict("numbers already in the pool", numbers=clash[:20])
            for entry in numbers:
                self._pool[entry.number] = entry
        return len(numbers)

    def list_pool(self) -> list[PoolNumber]:
        with self._lock:
            return list(self._pool.values())

    def add_caller_id(self, caller_id: CallerId) -> CallerId:
        with self._lock:
            if caller_id.number in self._caller_ids:
                raise Conflict("this number is already registered", number=caller_id.number)
            self._caller_ids[caller_id.number] = caller_id
        return caller_id

    def save_caller_id(self, caller_id: CallerId) -> CallerId:
        with self._lock:
            if caller_id.number not in self._caller_ids:
                raise NotFound("no such caller ID", number=caller_id.number)
            self._caller_ids[caller_id.number] = caller_id
        return caller_id

    def remove_caller_id(self, number: str) -> None:
        with self._lock:
            if self._caller_ids.pop(number, None) is None:
                raise NotFound("no such caller ID", number=number)

    def get_caller_id(self, number: str) -> CallerId | None:
        with self._lock:
            return self._caller_ids.get(number)

    def list_caller_ids(self, subscriber_id: int | None = None) -> list[CallerId]:
        with self._lock:
            return sorted(
                (
                    caller
                    for caller in self._caller_ids.values()
                    if subscriber_id is None or caller.subscriber_id == subscriber_id
                ),
                key=lambda caller: caller.number,
            )

    def add_contact(self, contact: Contact) -> Contact:
        with self._lock:
            for known in self._contacts.values():
                if (
                    known.active
                    and known.subscriber_id == contact.subscriber_id
                    and known.direct_number == contact.direct_number
                ):
                    raise Conflict(
                        "the subscriber already has a contact on this direct number",
                        direct_number=contact.direct_number,
                    )
            stored = replace(contact, id=self._next_contact)
            self._next_contact += 1
            self._contacts[stored.id] = stored
        return stored

    def save_contact(self, contact: Contact) -> Contact:
        with self._lock:
            if contact.id not in self._contacts:
                raise NotFound("no such contact", contact_id=contact.id)
            self._contacts[contact.id] = contact
        return contact

    def list_contacts(self, subscriber_id: int | None = None) -> list[Contact]:
        with self._lock:
            return [
                contact
                for _, contact in sorted(self._contacts.items())
                if subscriber_id is None or contact.subscriber_id == subscriber_id
            ]
