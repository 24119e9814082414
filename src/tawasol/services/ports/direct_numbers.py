"""The `DirectNumberStore` port: inbound trunks, the pool, caller IDs and contacts.

One aggregate (calling from any phone, `tawasol.domain.direct_numbers`); implemented in
memory (`adapters/memory/direct_numbers.py`) and on SQL (`adapters/store/direct_numbers_sql.py`),
both held to `tests/contract/test_direct_number_store.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tawasol.domain.direct_numbers import CallerId, Contact, InboundTrunk, PoolNumber


class DirectNumberStore(Protocol):
    def save_trunk(self, trunk: InboundTrunk) -> InboundTrunk:
        """Create or replace the trunk with this code (its rate deck included)."""
        ...

    def list_trunks(self) -> list[InboundTrunk]: ...

    def add_pool_numbers(self, numbers: Sequence[PoolNumber]) -> int:
        """Add every number or none: a number already in the pool raises Conflict and
        nothing is added. Returns how many were added."""
        ...

    def list_pool(self) -> list[PoolNumber]:
        """The pool in the order it was imported."""
        ...

    def add_caller_id(self, caller_id: CallerId) -> CallerId:
        """Register a number; Conflict when it already belongs to a subscriber."""
        ...

    def save_caller_id(self, caller_id: CallerId) -> CallerId:
        """Replace a registered number's state (code, attempts, verification); NotFound."""
        ...

    def remove_caller_id(self, number: str) -> None: ...

    def get_caller_id(self, number: str) -> CallerId | None: ...

    def list_caller_ids(self, subscriber_id: int | None = None) -> list[CallerId]: ...

    def add_contact(self, contact: Contact) -> Contact:
        """Store a new contact (its `id` is given by the store); Conflict when the subscriber
        already has an active contact on that direct number."""
        ...

    def save_contact(self, contact: Contact) -> Contact: ...

    def list_contacts(self, subscriber_id: int | None = None) -> list[Contact]:
        """Contacts, removed ones included (their quarantine), oldest first."""
        ...
