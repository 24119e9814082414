"""Carriers: the licensed operators that terminate our calls in the destination country.

Calls to Morocco must end on a licensed Moroccan network (free VoIP apps were blocked there for
lack of a licence), so tawasol hands every call to a *carrier* through one of its *gateways*.
A carrier is paid in one or both of two ways:

- **flat rate**: N channels (simultaneous calls) for a monthly fee; a call on a free channel
  costs nothing more, so these are used first;
- **per minute**: a rate deck of prices per number prefix, each with the date it takes effect
  and a billing increment (60/60: whole minutes; 1/1: per second).

A carrier serves a set of destinations (country x kind of line), each with a priority.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from tawasol.domain.catalog import DestinationRule
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.money import Money
from tawasol.domain.numbering import Destination

# RFC 3261 §25.1: a host is a domain name, an IPv4 address or an IPv6 address (bracketed by
# `uri()`). Anything else (CR LF, ',', '?', ';', '@' ...) would be pasted into the Request-URI
# of every INVITE sent to the gateway.
_HOST = re.compile(r"[A-Za-z0-9._:-]+")


class Transport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


class NumberFormat(enum.StrEnum):
    """How a carrier wants the called number in the Request-URI."""

    E164 = "e164"  # +212661234567
    INTERNATIONAL_00 = "00"  # 00212661234567
    DIGITS = "digits"  # 212661234567

    def render(self, e164: str) -> str:
        digits = e164.lstrip("+")
        if self is NumberFormat.E164:
            return "+" + digits
        if self is NumberFormat.INTERNATIONAL_00:
            return "00" + digits
        return digits


@dataclass(frozen=True)
class Gateway:
    """One SIP address of a carrier (host:port over a transport)."""

    name: str
    host: str
    port: int = 5060
    transport: Transport = Transport.UDP

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise InvalidConfiguration("gateway port must be 1-65535", gateway=self.name)
        if not _HOST.fullmatch(self.host):
            raise InvalidConfiguration("gateway host is not a host name or address", host=self.host)

    def uri(self, user: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sip:{user}@{host}:{self.port};transport={self.transport.value}"


@dataclass(frozen=True)
class BillingIncrement:
    """How call time is counted: the first block, then each next block, in seconds (60/60, 1/1)."""

    first_seconds: int = 60
    next_seconds: int = 60

    def __post_init__(self) -> None:
        if self.first_seconds < 1 or self.next_seconds < 1:
            raise InvalidConfiguration("billing increments must be at least 1 second")

    def billable_seconds(self, duration_seconds: int) -> int:
        if duration_seconds <= 0:
            return 0
        if duration_seconds <= self.first_seconds:
            return self.first_seconds
        rest = duration_seconds - self.first_seconds
        blocks = -(-rest // self.next_seconds)
        return self.first_seconds + blocks * self.next_seconds

    def __str__(self) -> str:
        return f"{self.first_seconds}/{self.next_seconds}"


@dataclass(frozen=True)
class Rate:
    """A per-minute price for numbers starting with `prefix` (E.164 digits, no +), from a date."""

    prefix: str
    per_minute: Money
    effective_from: datetime
    increment: BillingIncrement = field(default_factory=BillingIncrement)

    def __post_init__(self) -> None:
        if not self.prefix.isdigit():
            raise InvalidConfiguration("a rate prefix is digits only", prefix=self.prefix)
        if self.per_minute.amount < 0:
            raise InvalidConfiguration("a rate cannot be negative", prefix=self.prefix)
        if self.effective_from.tzinfo is None:
            raise InvalidConfiguration("rate dates must be time-zone aware", prefix=self.prefix)


def rate_clash(
    seen: dict[tuple[str, datetime], tuple[int, Rate]], position: int, rate: Rate, *, where: str
) -> str | None:
    """The one rule for the rows of a rate deck, from a CSV file or the JSON API alike: one rate
    per prefix per `effective_from`. Adds `rate` (found at `position`) to `seen` when its pair is
    new; returns the problem when an earlier row for the pair has another price, currency or
    increment (an identical repeat is read once: None)."""
    earlier = seen.setdefault((rate.prefix, rate.effective_from), (position, rate))
    if earlier[1] == rate:
        return None
    return (
        f"prefix {rate.prefix} from {rate.effective_from.isoformat()} already has "
        f"a different rate, currency or increment on {where} {earlier[0]}"
    )


class RateDeck:
    """A carrier's rates, looked up by longest matching prefix among those in effect at a time.

    Built once per carrier; a lookup walks at most 15 prefix lengths, so it stays fast with tens
    of thousands of prefixes.
    """

    def __init__(self, rates: Iterable[Rate]) -> None:
        by_prefix: dict[str, list[Rate]] = {}
        for rate in rates:
            by_prefix.setdefault(rate.prefix, []).append(rate)
        self._by_prefix = {
            prefix: sorted(entries, key=lambda rate: rate.effective_from)
            for prefix, entries in by_prefix.items()
        }
        self._starts = {
            prefix: [rate.effective_from for rate in entries]
            for prefix, entries in self._by_prefix.items()
        }
        self._longest = max((len(prefix) for prefix in self._by_prefix), default=0)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._by_prefix.values())

    def __bool__(self) -> bool:
        return bool(self._by_prefix)

    def rates(self) -> list[Rate]:
        return [rate for entries in self._by_prefix.values() for rate in entries]

    def lookup(self, e164: str, at: datetime) -> Rate | None:
        digits = e164.lstrip("+")
        for length in range(min(len(digits), self._longest), 0, -1):
            prefix = digits[:length]
            starts = self._starts.get(prefix)
            if starts is None:
                continue
            index = bisect_right(starts, at)
            if index:
                return self._by_prefix[prefix][index - 1]
        return None


@dataclass(frozen=True)
class FlatRateContract:
    """N channels bought for a monthly fee: calls on free channels cost nothing more."""

    channels: int
    monthly_fee: Money

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise InvalidConfiguration("a flat-rate contract needs at least one channel")


@dataclass(frozen=True)
class CarrierDestination:
    """A destination a carrier terminates, with its priority (lower is preferred)."""

    rule: DestinationRule
    priority: int = 100


@dataclass(frozen=True)
class Carrier:
    """A licensed carrier we hand calls to, with its gateways, contract and destinations.

    `max_channels` is the trunk's hard limit on simultaneous calls of any kind (None: no limit
    beyond the flat-rate channels for flat-rate-only carriers). `enabled` False takes it out of
    routing by hand (maintenance, a dispute).
    """

    code: str
    name: str
    gateways: tuple[Gateway, ...]
    destinations: tuple[CarrierDestination, ...]
    flat_rate: FlatRateContract | None = None
    rate_deck: RateDeck = field(default_factory=lambda: RateDeck(()), compare=False)
    number_format: NumberFormat = NumberFormat.E164
    max_channels: int | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if not self.code or not self.code.replace("-", "").replace("_", "").isalnum():
            raise InvalidConfiguration("a carrier code is letters, digits, - and _", code=self.code)
        if not self.gateways:
            raise InvalidConfiguration("a carrier needs at least one gateway", code=self.code)
        if self.flat_rate is None and not self.rate_deck:
            raise InvalidConfiguration(
                "a carrier needs a flat-rate contract, per-minute rates or both", code=self.code
            )
        if self.max_channels is not None and self.max_channels < 1:
            raise InvalidConfiguration("max_channels must be at least 1", code=self.code)

    def priority_for(self, destination: Destination) -> int | None:
        """The priority for this destination, or None if the carrier does not serve it."""
        priorities = [
            entry.priority for entry in self.destinations if entry.rule.covers(destination)
        ]
        return min(priorities) if priorities else None


@dataclass(frozen=True)
class CarrierLiveState:
    """What is true of a carrier right now.

    - `up`: its gateways answer (probing) and nobody took it out of service;
    - `channels_in_use`: calls on it now, ringing or talking;
    - `effective_channels`: how many simultaneous calls it really carries when that is fewer
      than the contract says (learned from 503 / Q.850 cause 34 answers after a partial
      restoration, or set by an operator); None means "as contracted";
    - `de_preferred`: its network effectiveness (NER) fell below the threshold: it is tried
      after the others of its tier, not removed.
    """

    up: bool = True
    channels_in_use: int = 0
    effective_channels: int | None = None
    de_preferred: bool = False


def channel_limit(carrier: Carrier, state: CarrierLiveState) -> int | None:
    """The most calls the carrier takes at once now (None: no limit known)."""
    limits = [
        limit
        for limit in (
            carrier.max_channels,
            state.effective_channels,
            # A flat-rate-only carrier has nothing beyond its channels.
            carrier.flat_rate.channels if carrier.flat_rate and not carrier.rate_deck else None,
        )
        if limit is not None
    ]
    return min(limits) if limits else None


def flat_rate_channels_free(carrier: Carrier, state: CarrierLiveState) -> int:
    """Paid-for channels still free: the contract's, capped by what the carrier carries now."""
    if carrier.flat_rate is None:
        return 0
    limit = carrier.flat_rate.channels
    if state.effective_channels is not None:
        limit = min(limit, state.effective_channels)
    return max(0, limit - state.channels_in_use)
