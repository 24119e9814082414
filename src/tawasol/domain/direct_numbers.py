"""Calling from any phone: inbound trunks, verified caller IDs and a direct number per contact.

A subscriber calls from their mobile or home phone, not a softphone. They register the numbers
they call from (*caller IDs*, each verified by a code before use) and their *contacts* abroad
(a name and a number their plan covers). Each contact gets a *direct number*: a local number
from the operator's *pool* of DIDs (numbers rented from DID providers, the *inbound trunks*).
Because the pair (caller's number, dialled direct number) identifies the contact, one pool
serves every subscriber: 100 pool numbers give each subscriber up to 100 contacts.

A call to a direct number arrives from an inbound trunk. Its caller ID is read from
P-Asserted-Identity when the trunk is trusted to set it (RFC 3325 §9.1: a network asserts an
identity only inside its trust domain), else from From, and normalised to E.164 with the trunk
country's numbering plan (libphonenumber). `resolve_inbound` then finds the subscriber and the
contact, or names the refusal; the call itself is decided exactly as a softphone call.

Pure rules: no I/O, no clock (every function takes `now`).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import phonenumbers

from tawasol.domain.calls import CallRecord
from tawasol.domain.carriers import RateDeck
from tawasol.domain.errors import InvalidInput, InvalidNumber
from tawasol.domain.money import Money
from tawasol.domain.rating import per_minute_cost

_TRUNK_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CONTACT_NAME_MAX = 64


class AccessPath(enum.StrEnum):
    """How a call came in: from a softphone (SIP account, digest) or to a direct number
    from a registered phone through an inbound trunk."""

    SOFTPHONE = "softphone"
    DIRECT_NUMBER = "direct_number"


class InboundRefusal(enum.StrEnum):
    """Stable reason codes of calls to a direct number refused before any decision."""

    UNTRUSTED_SOURCE = "inbound_untrusted_source"
    NOT_A_POOL_NUMBER = "inbound_not_a_pool_number"
    CALLER_ID_WITHHELD = "caller_id_withheld"
    CALLER_ID_UNKNOWN = "caller_id_unknown"
    CALLER_ID_UNVERIFIED = "caller_id_unverified"
    NOT_A_CONTACT = "direct_number_not_a_contact"


# The SIP reply to each refusal. RFC 3261 §21.4.3: 403 = understood and refused for good;
# §21.4.5: 404 = the number is not served here. RFC 3323 has no "anonymous rejected" code of
# its own in SIP (433 Anonymity Disallowed is RFC 5079: exactly this case).
INBOUND_SIP_REPLY: dict[InboundRefusal, tuple[int, str]] = {
    InboundRefusal.UNTRUSTED_SOURCE: (403, "Forbidden"),
    InboundRefusal.NOT_A_POOL_NUMBER: (404, "Not Found"),
    InboundRefusal.CALLER_ID_WITHHELD: (433, "Anonymity Disallowed"),
    InboundRefusal.CALLER_ID_UNKNOWN: (403, "Caller ID Not Registered"),
    InboundRefusal.CALLER_ID_UNVERIFIED: (403, "Caller ID Not Verified"),
    InboundRefusal.NOT_A_CONTACT: (404, "Direct Number Not Assigned"),
}


@dataclass(frozen=True)
class InboundTrunk:
    """A DID provider whose calls the edge accepts, only from its configured `addresses`
    (IP addresses or networks, matched on the packet's source, never on a header).

    `country` (ISO 3166 alpha-2) is the numbering plan its national numbers are read with;
    `number_ranges` are the E.164 prefixes (digits) of the numbers it routes to us;
    `trust_asserted_identity`: the provider sets P-Asserted-Identity from its own network's
    knowledge (RFC 3325), so it is read before From. `rate_deck` is what the provider charges
    per minute for a call it brings, by the caller's number (a carrier-style rate deck).
    """

    code: str
    name: str
    country: str
    addresses: tuple[str, ...]
    number_ranges: tuple[str, ...] = ()
    trust_asserted_identity: bool = False
    rate_deck: RateDeck = field(default_factory=lambda: RateDeck(()), compare=False)
    enabled: bool = True

    def __post_init__(self) -> None:
        if not _TRUNK_CODE.match(self.code):
            raise InvalidInput(
                "a trunk code is lower-case letters, digits, - and _", code=self.code
            )
        if phonenumbers.country_code_for_region(self.country) == 0:
            raise InvalidInput("unknown country for the trunk", country=self.country)
        if not self.addresses:
            raise InvalidInput("an inbound trunk needs at least one address", code=self.code)
        for address in self.addresses:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError as error:
                raise InvalidInput(
                    "a trunk address is an IP address or network", address=address
                ) from error
        for prefix in self.number_ranges:
            if not prefix.isdigit() or len(prefix) > 15 or prefix.startswith("0"):
                raise InvalidInput(
                    "a number range is E.164 digits without + (country code first)",
                    number_range=prefix,
                )

    def accepts_from(self, source_ip: str) -> bool:
        """True when `source_ip` is one of the trunk's addresses or inside its networks."""
        try:
            address = ipaddress.ip_address(source_ip)
        except ValueError:
            return False
        return any(
            address in ipaddress.ip_network(network, strict=False) for network in self.addresses
        )

    def owns(self, e164: str) -> bool:
        """True when the number is in one of the trunk's ranges (no ranges: its country's)."""
        digits = e164.lstrip("+")
        if not self.number_ranges:
            return region_of_number(e164) == self.country
        return any(digits.startswith(prefix) for prefix in self.number_ranges)

    def cost_of(self, caller_e164: str, *, started_at: datetime, duration_ms: int) -> Money | None:
        """What the provider charges for bringing this call (None: no rate for the caller)."""
        rate = self.rate_deck.lookup(caller_e164, started_at)
        if rate is None:
            return None
        talk_seconds = -(-max(0, duration_ms) // 1000)
        return per_minute_cost(rate.per_minute, rate.increment.billable_seconds(talk_seconds))


def region_of_number(e164: str) -> str | None:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def normalise_number(text: str, *, country: str) -> str:
    """`text` (a SIP URI user, a national or international number) as E.164, read with
    `country`'s numbering plan. Raises `InvalidNumber` when it is not a valid number."""
    cleaned = text.strip()
    for scheme in ("tel:", "sip:", "sips:"):
        if cleaned.lower().startswith(scheme):
            cleaned = cleaned[len(scheme) :]
    cleaned = cleaned.split("@", 1)[0].split(";", 1)[0]
    if not cleaned or len(cleaned) > 32:
        raise InvalidNumber("not a telephone number", number=text[:32])
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    try:
        number = phonenumbers.parse(cleaned, country)
    except phonenumbers.NumberParseException as error:
        raise InvalidNumber(f"not a telephone number: {error}", number=text[:32]) from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber("not a valid telephone number", number=text[:32])
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_format(e164: str) -> str:
    """The number as people of its country write it (`01 84 88 00 01`), for "call ... to
    reach Maman"."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def dialled_forms(e164: str) -> tuple[str, ...]:
    """The ways a DID provider may write one of our numbers in a Request-URI: `+33184...`,
    `33184...`, `0033184...`, the national `0184...` and the bare national number. The edge
    matches Request-URI users against these (it has no libphonenumber)."""
    number = phonenumbers.parse(e164, None)
    national = str(number.national_number)
    national_prefixed = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    digits = e164.lstrip("+")
    forms = {e164, digits, "00" + digits, national, re.sub(r"\D", "", national_prefixed)}
    return tuple(sorted(form for form in forms if form))


@dataclass(frozen=True)
class CallerId:
    """A number a subscriber calls from, in E.164. It is used only once `verified_at` is set:
    a code sent to that number (by SMS) was typed back. One number belongs to one subscriber."""

    number: str
    subscriber_id: int
    created_at: datetime
    verified_at: datetime | None = None
    code_hash: str = ""
    code_expires_at: datetime | None = None
    failed_attempts: int = 0

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


# A code can be tried this many times, then a new one must be asked for (a 6-digit code
# guessed at 5 tries has a 1 in 200,000 chance).
MAX_CODE_ATTEMPTS = 5

# The verification code's SMS, by the subscriber's language. Each fits in one SMS part:
# 160 GSM-7 characters (fr, en) or 70 UCS-2 characters (ar) (3GPP TS 23.038 / 23.040).
_CODE_TEXTS = {
    "fr": "Votre code tawasol : {code} (valable {minutes} min). Ne le donnez à personne.",
    "ar": "رمز tawasol الخاص بك: {code} (صالح {minutes} دقيقة). لا تعطه لأحد.",
    "en": "Your tawasol code: {code} (valid {minutes} min). Do not give it to anyone.",
}


def verification_code_text(code: str, *, locale: str, valid_minutes: int) -> str:
    """The SMS carrying a caller ID's verification `code`, in the subscriber's language
    (`locale` fr, ar or en; anything else gets English), saying how many minutes it is valid."""
    language = locale.split("_", maxsplit=1)[0].split("-", maxsplit=1)[0].lower()
    template = _CODE_TEXTS.get(language, _CODE_TEXTS["en"])
    return template.format(code=code, minutes=valid_minutes)


@dataclass(frozen=True)
class Contact:
    """Somebody a subscriber calls: a name, a number abroad their plan covers, and the direct
    number (from the pool) that rings them. `removed_at`: the contact was removed; its direct
    number stays unusable for the subscriber until the quarantine has passed."""

    id: int
    subscriber_id: int
    name: str
    number: str
    direct_number: str
    created_at: datetime
    removed_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.removed_at is None


def check_contact_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > _CONTACT_NAME_MAX or not cleaned.isprintable():
        raise InvalidInput(
            f"a contact name is 1 to {_CONTACT_NAME_MAX} printable characters", field="name"
        )
    return cleaned


@dataclass(frozen=True)
class PoolNumber:
    """A local number (DID) of the operator's pool, brought by inbound trunk `trunk`."""

    number: str
    trunk: str


def free_direct_numbers(
    pool: Sequence[PoolNumber],
    contacts: Iterable[Contact],
    *,
    now: datetime,
    quarantine: timedelta,
) -> list[str]:
    """The pool numbers a subscriber can be given now, in pool order: not one of their active
    contacts' numbers, nor a number of a contact they removed less than `quarantine` ago (a
    forgotten speed-dial must not ring somebody else)."""
    taken = {
        contact.direct_number
        for contact in contacts
        if contact.removed_at is None or now - contact.removed_at < quarantine
    }
    return [entry.number for entry in pool if entry.number not in taken]


@dataclass(frozen=True)
class CallerIdentity:
    """The caller of an inbound call as the trunk presented it: E.164, or None when withheld
    (RFC 3323 `Privacy: id` or an anonymous URI) or not a number."""

    number: str | None
    withheld: bool


_ANONYMOUS = {"anonymous", "unknown", "restricted", "unavailable", "private", "withheld"}


def caller_identity(
    trunk: InboundTrunk,
    *,
    asserted: str | None,
    from_user: str | None,
    privacy: str | None,
) -> CallerIdentity:
    """Who calls: P-Asserted-Identity when the trunk is trusted to set it, else From.

    `Privacy: id` (RFC 3325 §9.3) asks that the identity not be passed on: the caller
    withheld it, and it is not used to identify them either (the subscriber's choice is
    respected: a withheld call is refused, never guessed)."""
    privacy_values = {value.strip().lower() for value in (privacy or "").split(";")}
    source = (asserted if trunk.trust_asserted_identity and asserted else None) or from_user
    if not source or source.strip().lower() in _ANONYMOUS or "id" in privacy_values:
        return CallerIdentity(number=None, withheld=True)
    try:
        return CallerIdentity(normalise_number(source, country=trunk.country), withheld=False)
    except InvalidNumber:
        return CallerIdentity(number=None, withheld=False)


@dataclass(frozen=True)
class InboundCall:
    """A call to a direct number, resolved: the subscriber (their SIP username, so the
    decision is the softphone's) calls `contact`, through `trunk`, from `caller_id`."""

    trunk: InboundTrunk
    caller_id: str
    direct_number: str
    subscriber_id: int
    contact: Contact


@dataclass(frozen=True)
class InboundOutcome:
    """What `resolve_inbound` found: a call to decide, or a refusal with its SIP reply.
    `trunk`, `caller_id`, `direct_number` and `subscriber_id` are filled as far as known
    (a refusal is recorded with them)."""

    call: InboundCall | None
    refusal: InboundRefusal | None
    trunk: InboundTrunk | None = None
    caller_id: str | None = None
    direct_number: str | None = None
    subscriber_id: int | None = None

    @property
    def sip_reply(self) -> tuple[int, str]:
        return INBOUND_SIP_REPLY[self.refusal] if self.refusal else (200, "OK")


def trunk_for_source(trunks: Iterable[InboundTrunk], source_ip: str) -> InboundTrunk | None:
    for trunk in trunks:
        if trunk.enabled and trunk.accepts_from(source_ip):
            return trunk
    return None


def resolve_inbound(
    *,
    trunks: Sequence[InboundTrunk],
    pool: Mapping[str, PoolNumber],
    source_ip: str,
    dialled: str,
    asserted: str | None,
    from_user: str | None,
    privacy: str | None,
    caller_id_of: Callable[[str], CallerId | None],
    contact_of: Callable[[int, str], Contact | None],
) -> InboundOutcome:
    """Resolve a call to a direct number, in this order, the first failure naming the refusal:
    the source address is an inbound trunk's; the dialled number is a pool number; the caller
    ID is presented, registered and verified; the pool number is one of that subscriber's
    active contacts. `caller_id_of(e164)`: the registered caller ID; `contact_of(subscriber id,
    direct number)`: that subscriber's active contact on it."""
    trunk = trunk_for_source(trunks, source_ip)
    if trunk is None:
        return InboundOutcome(call=None, refusal=InboundRefusal.UNTRUSTED_SOURCE)
    try:
        direct_number = normalise_number(dialled, country=trunk.country)
    except InvalidNumber:
        direct_number = None
    if direct_number is None or direct_number not in pool:
        return InboundOutcome(call=None, refusal=InboundRefusal.NOT_A_POOL_NUMBER, trunk=trunk)
    identity = caller_identity(trunk, asserted=asserted, from_user=from_user, privacy=privacy)
    known = {"trunk": trunk, "direct_number": direct_number}
    if identity.number is None:
        reason = (
            InboundRefusal.CALLER_ID_WITHHELD
            if identity.withheld
            else InboundRefusal.CALLER_ID_UNKNOWN
        )
        return InboundOutcome(call=None, refusal=reason, **known)  # type: ignore[arg-type]
    caller = caller_id_of(identity.number)
    if caller is None:
        return InboundOutcome(
            call=None,
            refusal=InboundRefusal.CALLER_ID_UNKNOWN,
            caller_id=identity.number,
            **known,  # type: ignore[arg-type]
        )
    found = {**known, "caller_id": identity.number, "subscriber_id": caller.subscriber_id}
    if not caller.verified:
        return InboundOutcome(
            call=None,
            refusal=InboundRefusal.CALLER_ID_UNVERIFIED,
            **found,  # type: ignore[arg-type]
        )
    contact = contact_of(caller.subscriber_id, direct_number)
    if contact is None or not contact.active:
        return InboundOutcome(
            call=None,
            refusal=InboundRefusal.NOT_A_CONTACT,
            **found,  # type: ignore[arg-type]
        )
    return InboundOutcome(
        call=InboundCall(
            trunk=trunk,
            caller_id=identity.number,
            direct_number=direct_number,
            subscriber_id=caller.subscriber_id,
            contact=contact,
        ),
        refusal=None,
        **found,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class PoolUsage:
    """How the pool is used: its size, contacts per subscriber, how many subscribers have
    each number, and the subscribers with fewer than `alert_below` numbers left (the pool is
    running out for them: add numbers before they cannot add a contact)."""

    pool_size: int
    numbers_per_subscriber: dict[int, int]
    subscribers_per_number: dict[str, int]
    running_out: dict[int, int]
    alert_below: int

    @property
    def alert(self) -> bool:
        return bool(self.running_out)


def pool_usage(
    pool: Sequence[PoolNumber],
    contacts: Iterable[Contact],
    *,
    now: datetime,
    quarantine: timedelta,
    alert_below: int,
) -> PoolUsage:
    """The pool usage report; quarantined numbers count as used (they cannot be given)."""
    numbers = [entry.number for entry in pool]
    per_subscriber: dict[int, set[str]] = {}
    per_number: dict[str, int] = dict.fromkeys(numbers, 0)
    for contact in contacts:
        if contact.removed_at is not None and now - contact.removed_at >= quarantine:
            continue
        per_subscriber.setdefault(contact.subscriber_id, set()).add(contact.direct_number)
        if contact.active and contact.direct_number in per_number:
            per_number[contact.direct_number] += 1
    counts = {subscriber: len(used) for subscriber, used in sorted(per_subscriber.items())}
    running_out = {
        subscriber: len(numbers) - used
        for subscriber, used in counts.items()
        if len(numbers) - used < alert_below
    }
    return PoolUsage(
        pool_size=len(numbers),
        numbers_per_subscriber=counts,
        subscribers_per_number=dict(
            sorted(per_number.items(), key=lambda item: (-item[1], item[0]))
        ),
        running_out=running_out,
        alert_below=alert_below,
    )


def rate_inbound(record: CallRecord, trunks: Mapping[str, InboundTrunk]) -> CallRecord:
    """The record with `inbound_cost` once a call to a direct number is answered and over:
    the inbound trunk's per-minute rate for the caller's number (longest prefix, in effect
    when the call started) times the talk time rounded to the rate's increment. Set once;
    left empty when the trunk or a rate is missing (for an operator to look at)."""
    if (
        record.inbound_cost is not None
        or record.inbound_trunk is None
        or record.duration_ms is None
        or record.caller_id is None
    ):
        return record
    trunk = trunks.get(record.inbound_trunk)
    if trunk is None:
        return record
    cost = trunk.cost_of(
        record.caller_id, started_at=record.started_at, duration_ms=record.duration_ms
    )
    return record if cost is None else replace(record, inbound_cost=cost)
