"""Calling from any phone: inbound trunks, the pool, caller IDs, contacts, and inbound calls.

`DirectNumberService` is what the admin API, the CLI and the decision API use:
- trunks and the pool (imported all or nothing, like rate decks);
- caller IDs, each verified by a 6-digit code before use. The code goes out through the
  `VerificationCodeSender` port (`SmsCodeSender`, by SMS, when an SMSC is configured); a
  sender that cannot deliver (`OperatorRelay` without an SMSC, or an SMSC that is down) leaves
  the code for the operator's CLI or admin API to show;
- contacts, each given a direct number free for that subscriber, quarantined on removal;
- `resolve_inbound`: a call to a pool number turned into the softphone's `CallRequest` for the
  subscriber and the contact, or a refusal recorded as a refused call;
- the pool usage report and its exhaustion alert.

The service never reads the clock or the environment: `clock` and `new_code` are given.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

from tawasol.domain.calls import CallRecord
from tawasol.domain.carriers import Rate, RateDeck
from tawasol.domain.decision import CallRequest
from tawasol.domain.direct_numbers import (
    MAX_CODE_ATTEMPTS,
    AccessPath,
    CallerId,
    Contact,
    InboundOutcome,
    InboundTrunk,
    PoolNumber,
    PoolUsage,
    check_contact_name,
    dialled_forms,
    free_direct_numbers,
    normalise_number,
    pool_usage,
    resolve_inbound,
)
from tawasol.domain.errors import Conflict, InvalidInput, InvalidNumber, NotFound
from tawasol.domain.numbering import classify, region_of
from tawasol.domain.subscribers import Subscriber, Subscription
from tawasol.services.ports import CatalogSnapshot
from tawasol.services.ports.direct_numbers import DirectNumberStore

log = logging.getLogger(__name__)

CODE_LIFETIME = timedelta(minutes=15)
MAX_POOL_ROWS = 100_000


class PoolExhausted(Conflict):
    """Every pool number is already used (or quarantined) by this subscriber."""

    error_id = "pool_exhausted"


class VerificationCodeSender(Protocol):
    """Sends a caller ID's verification code to that number (SMS). Returns True when the code
    left for the phone, False when it could not be sent by this channel (the operator passes
    it on: `tawasol direct caller-id add` prints it)."""

    def send_code(self, *, number: str, code: str, subscriber: Subscriber) -> bool: ...


class OperatorRelay:
    """No SMS channel configured: nothing is sent, the operator reads the code out to the
    subscriber."""

    def send_code(self, *, number: str, code: str, subscriber: Subscriber) -> bool:
        return False


class Catalog(Protocol):
    """What the service needs of the decider (`CallAuthorizer`): subscribers and plans."""

    def snapshot(self) -> CatalogSnapshot: ...

    def current_subscription(self, subscriber_id: int, now: datetime) -> Subscription | None: ...


@dataclass(frozen=True)
class CodeIssued:
    """A caller ID waiting for its code. `code` is set only when no channel delivered it
    (the operator must pass it on); never stored in clear."""

    caller_id: CallerId
    sent: bool
    code: str | None


@dataclass(frozen=True)
class InboundResolution:
    """A call to a direct number: the request to decide (softphone's decision), or the
    refusal with its SIP reply; `outcome` holds what was found either way."""

    outcome: InboundOutcome
    request: CallRequest | None
    subscriber: Subscriber | None


@dataclass(frozen=True)
class DirectNumberSettings:
    quarantine: timedelta = timedelta(days=30)
    pool_alert_below: int = 5


class DirectNumberService:
    def __init__(
        self,
        *,
        store: DirectNumberStore,
        catalog: Catalog,
        clock: Callable[[], datetime],
        new_code: Callable[[], str],
        code_key: bytes,
        sender: VerificationCodeSender | None = None,
        settings: DirectNumberSettings | None = None,
        on_refused: Callable[[CallRecord], None] | None = None,
    ) -> None:
        """`new_code`: a fresh 6-digit code (secrets-based in production); `code_key`: the key
        codes are hashed with (HMAC-SHA256), never stored in clear; `on_refused`: told of every
        inbound call refused before a decision (the refusal recorder)."""
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._new_code = new_code
        self._code_key = code_key
        self._sender = sender or OperatorRelay()
        self.settings = settings or DirectNumberSettings()
        self._on_refused = on_refused

    # -- inbound trunks and the pool ----------------------------------------------------------
    def save_trunk(self, trunk: InboundTrunk) -> InboundTrunk:
        return self._store.save_trunk(trunk)

    def replace_trunk_rates(self, code: str, rates: Sequence[Rate]) -> InboundTrunk:
        """Replace an inbound trunk's per-minute rate deck (what the provider charges for the
        calls it brings, by the caller's number), all of it at once."""
        trunk = self.trunks_by_code().get(code)
        if trunk is None:
            raise NotFound("no such inbound trunk", trunk=code)
        return self._store.save_trunk(replace(trunk, rate_deck=RateDeck(rates)))

    def trunks(self) -> list[InboundTrunk]:
        return self._store.list_trunks()

    def pool(self) -> list[PoolNumber]:
        return self._store.list_pool()

    def import_pool(self, rows: Sequence[tuple[int, str, str]]) -> int:
        """Add `(line, number, trunk code)` rows to the pool, all or none.

        Every row is checked first: the trunk exists; the number is valid in the trunk's
        country (libphonenumber) and inside its number ranges; no number twice in the file,
        nor in the pool under another trunk. One problem refuses the whole file (`InvalidInput`,
        every problem in `details["problems"]` with its line); nothing is half-imported. A
        number already in the pool with the same trunk is left as it is, so importing a file
        again (after a crash, or a provider's full list) adds only what is new. Returns how
        many numbers were added."""
        if not rows:
            raise InvalidInput("the pool file has no numbers")
        if len(rows) > MAX_POOL_ROWS:
            raise InvalidInput(f"a pool file has at most {MAX_POOL_ROWS} numbers")
        trunks = {trunk.code: trunk for trunk in self._store.list_trunks()}
        known = {entry.number: entry.trunk for entry in self._store.list_pool()}
        problems: list[str] = []
        seen: dict[str, int] = {}
        numbers: list[PoolNumber] = []
        for line, text, code in rows:
            trunk = trunks.get(code)
            if trunk is None:
                problems.append(f"line {line}: no inbound trunk {code!r}")
                continue
            try:
                number = normalise_number(text, country=trunk.country)
            except InvalidNumber:
                problems.append(f"line {line}: {text!r} is not a valid number in {trunk.country}")
                continue
            if not trunk.owns(number):
                problems.append(
                    f"line {line}: {number} is outside trunk {code}'s country or ranges"
                )
            elif number in seen:
                problems.append(f"line {line}: {number} repeats line {seen[number]}")
            elif number in known and known[number] != code:
                problems.append(f"line {line}: {number} is in the pool under {known[number]}")
            elif number in known:
                seen[number] = line  # already there, as the file says: nothing to do
            else:
                seen[number] = line
                numbers.append(PoolNumber(number=number, trunk=code))
        if problems:
            raise InvalidInput(
                f"pool file refused, nothing imported: {len(problems)} problem(s)",
                problems=problems[:100],
            )
        return self._store.add_pool_numbers(numbers) if numbers else 0

    def edge_numbers(self) -> dict[str, list[str]]:
        """What the SIP edge needs to send a call to the direct-number path: the inbound
        trunks' addresses, and every way a Request-URI may write a pool number."""
        trunks = [trunk for trunk in self._store.list_trunks() if trunk.enabled]
        forms: set[str] = set()
        for entry in self._store.list_pool():
            forms.update(dialled_forms(entry.number))
        return {
            "addresses": sorted({address for trunk in trunks for address in trunk.addresses}),
            "numbers": sorted(forms),
        }

    # -- caller IDs ---------------------------------------------------------------------------
    def _subscriber(self, subscriber_id: int) -> Subscriber:
        for subscriber in self._catalog.snapshot().subscribers.values():
            if subscriber.id == subscriber_id:
                return subscriber
        raise NotFound("no such subscriber", subscriber_id=subscriber_id)

    def _own_number(self, subscriber: Subscriber, text: str, *, field: str) -> str:
        region = region_of(subscriber.phone) or "FR"
        try:
            return normalise_number(text, country=region)
        except InvalidNumber as error:
            raise InvalidNumber(error.message, field=field, number=text[:32]) from error

    def _hash(self, number: str, code: str) -> str:
        return hmac.new(self._code_key, f"{number}:{code}".encode(), hashlib.sha256).hexdigest()

    def register_caller_id(self, subscriber_id: int, number_text: str) -> CodeIssued:
        """Register a number the subscriber calls from and send it a verification code.

        Registering again a number of one's own not yet verified sends a new code; a number
        another subscriber holds is a Conflict (one number, one subscriber)."""
        subscriber = self._subscriber(subscriber_id)
        number = self._own_number(subscriber, number_text, field="number")
        now = self._clock()
        existing = self._store.get_caller_id(number)
        if existing is not None and existing.subscriber_id != subscriber_id:
            raise Conflict("this number is registered by another subscriber", number=number)
        if existing is not None and existing.verified:
            raise Conflict("this number is already verified", number=number)
        code = self._new_code()
        pending = CallerId(
            number=number,
            subscriber_id=subscriber_id,
            created_at=existing.created_at if existing else now,
            code_hash=self._hash(number, code),
            code_expires_at=now + CODE_LIFETIME,
        )
        if existing is None:
            self._store.add_caller_id(pending)
        else:
            self._store.save_caller_id(pending)
        sent = self._sender.send_code(number=number, code=code, subscriber=subscriber)
        return CodeIssued(caller_id=pending, sent=sent, code=None if sent else code)

    def verify_caller_id(self, subscriber_id: int, number_text: str, code: str) -> CallerId:
        """The code typed back: the number is verified. A wrong code counts; after
        `MAX_CODE_ATTEMPTS` wrong codes, or once the code expired, a new one must be asked."""
        subscriber = self._subscriber(subscriber_id)
        number = self._own_number(subscriber, number_text, field="number")
        caller = self._store.get_caller_id(number)
        if caller is None or caller.subscriber_id != subscriber_id:
            raise NotFound("no such caller ID for this subscriber", number=number)
        if caller.verified:
            return caller
        now = self._clock()
        if caller.failed_attempts >= MAX_CODE_ATTEMPTS:
            raise Conflict("too many wrong codes: ask for a new code", number=number)
        if caller.code_expires_at is None or now >= caller.code_expires_at:
            raise Conflict("the code has expired: ask for a new code", number=number)
        if not hmac.compare_digest(caller.code_hash, self._hash(number, code.strip())):
            self._store.save_caller_id(replace(caller, failed_attempts=caller.failed_attempts + 1))
            raise InvalidInput("wrong verification code", field="code")
        verified = replace(caller, verified_at=now, code_hash="", code_expires_at=None)
        return self._store.save_caller_id(verified)

    def remove_caller_id(self, subscriber_id: int, number_text: str) -> None:
        subscriber = self._subscriber(subscriber_id)
        number = self._own_number(subscriber, number_text, field="number")
        caller = self._store.get_caller_id(number)
        if caller is None or caller.subscriber_id != subscriber_id:
            raise NotFound("no such caller ID for this subscriber", number=number)
        self._store.remove_caller_id(number)

    def caller_ids(self, subscriber_id: int) -> list[CallerId]:
        return self._store.list_caller_ids(subscriber_id)

    # -- contacts -----------------------------------------------------------------------------
    def add_contact(self, subscriber_id: int, *, name: str, number: str) -> Contact:
        """A contact abroad, given a direct number free for this subscriber.

        The number must be one the subscriber's current plan covers (its destinations);
        PoolExhausted when every pool number is taken or quarantined for them."""
        subscriber = self._subscriber(subscriber_id)
        cleaned_name = check_contact_name(name)
        now = self._clock()
        region = region_of(subscriber.phone) or "FR"
        destination = classify(number, calling_region=region)
        subscription = self._catalog.current_subscription(subscriber_id, now)
        if subscription is None:
            raise Conflict("the subscriber has no current subscription", field="number")
        plan = self._catalog.snapshot().plans.get(subscription.plan_code)
        if plan is None or not plan.covers(destination):
            raise InvalidInput(
                f"{destination.e164} ({destination.country} {destination.kind.value}) is not "
                f"covered by the subscriber's plan",
                field="number",
                number=destination.e164,
            )
        contacts = self._store.list_contacts(subscriber_id)
        free = free_direct_numbers(
            self._store.list_pool(), contacts, now=now, quarantine=self.settings.quarantine
        )
        if not free:
            log.warning("direct-number pool exhausted for subscriber %s", subscriber_id)
            raise PoolExhausted(
                "no direct number is free for this subscriber: the pool needs more numbers",
                subscriber_id=subscriber_id,
            )
        contact = Contact(
            id=0,
            subscriber_id=subscriber_id,
            name=cleaned_name,
            number=destination.e164,
            direct_number=free[0],
            created_at=now,
        )
        return self._store.add_contact(contact)

    def remove_contact(self, subscriber_id: int, contact_id: int) -> Contact:
        """Remove a contact: its direct number stops ringing them at once, and is not given
        to this subscriber again before the quarantine has passed."""
        for contact in self._store.list_contacts(subscriber_id):
            if contact.id == contact_id:
                if not contact.active:
                    return contact
                return self._store.save_contact(replace(contact, removed_at=self._clock()))
        raise NotFound("no such contact for this subscriber", contact_id=contact_id)

    def contacts(self, subscriber_id: int, *, include_removed: bool = False) -> list[Contact]:
        return [
            contact
            for contact in self._store.list_contacts(subscriber_id)
            if include_removed or contact.active
        ]

    def usage(self) -> PoolUsage:
        return pool_usage(
            self._store.list_pool(),
            self._store.list_contacts(),
            now=self._clock(),
            quarantine=self.settings.quarantine,
            alert_below=self.settings.pool_alert_below,
        )

    # -- inbound calls ------------------------------------------------------------------------
    def resolve_inbound(
        self,
        *,
        call_id: str,
        source_ip: str,
        dialled: str,
        asserted: str | None,
        from_user: str | None,
        privacy: str | None,
    ) -> InboundResolution:
        """A call from an inbound trunk to a pool number, resolved (docs/direct-numbers.md).

        Allowed so far: the `CallRequest` the softphone path decides (the subscriber's SIP
        username, the contact's number), marked with the access path, trunk and caller ID.
        Refused: recorded as a refused call (reason code, SIP reply) before returning."""
        trunks = self._store.list_trunks()
        pool = {entry.number: entry for entry in self._store.list_pool()}
        outcome = resolve_inbound(
            trunks=trunks,
            pool=pool,
            source_ip=source_ip,
            dialled=dialled,
            asserted=asserted,
            from_user=from_user,
            privacy=privacy,
            caller_id_of=self._store.get_caller_id,
            contact_of=self._active_contact,
        )
        subscriber = None
        if outcome.subscriber_id is not None:
            try:
                subscriber = self._subscriber(outcome.subscriber_id)
            except NotFound:
                subscriber = None
        if outcome.call is None or subscriber is None:
            self._record_refusal(call_id, dialled, outcome, subscriber)
            return InboundResolution(outcome=outcome, request=None, subscriber=subscriber)
        request = CallRequest(
            sip_username=subscriber.sip_username,
            dialled=outcome.call.contact.number,
            call_id=call_id,
            access=AccessPath.DIRECT_NUMBER.value,
            inbound_trunk=outcome.call.trunk.code,
            caller_id=outcome.call.caller_id,
        )
        return InboundResolution(outcome=outcome, request=request, subscriber=subscriber)

    def _active_contact(self, subscriber_id: int, direct_number: str) -> Contact | None:
        for contact in self._store.list_contacts(subscriber_id):
            if contact.active and contact.direct_number == direct_number:
                return contact
        return None

    def _record_refusal(
        self,
        call_id: str,
        dialled: str,
        outcome: InboundOutcome,
        subscriber: Subscriber | None,
    ) -> None:
        if outcome.refusal is None:  # a caller ID of a subscriber since deleted
            return
        code, _phrase = outcome.sip_reply
        log.info(
            "call %s to %s refused: %s (trunk %s, caller %s)",
            call_id,
            dialled[:32],
            outcome.refusal.value,
            outcome.trunk.code if outcome.trunk else "-",
            outcome.caller_id or "-",
        )
        if self._on_refused is None or not call_id:
            return
        now = self._clock()
        self._on_refused(
            CallRecord(
                call_id=call_id,
                started_at=now,
                sip_username=subscriber.sip_username if subscriber else "",
                dialled=(outcome.direct_number or dialled)[:128],
                subscriber_id=subscriber.id if subscriber else None,
                ended_at=now,
                final_sip_code=code,
                refusal_reason=outcome.refusal.value,
                access=AccessPath.DIRECT_NUMBER.value,
                inbound_trunk=outcome.trunk.code if outcome.trunk else None,
                caller_id=outcome.caller_id,
            )
        )

    def trunks_by_code(self) -> dict[str, InboundTrunk]:
        return {trunk.code: trunk for trunk in self._store.list_trunks()}
