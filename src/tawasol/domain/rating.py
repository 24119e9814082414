"""Rating: what a finished call cost the operator at the carrier that carried it.

A call on a free flat-rate channel costs nothing more (the channel is paid monthly). A call
billed per minute costs the carrier's rate for the number's longest matching prefix, in effect
when the call started, times the billable time: the talk time rounded up to whole seconds, then
to the rate's billing increment (60/60 bills whole minutes, 1/1 per second). Amounts are kept to
six decimal places, rounded half up, and never as float.

`rate_call` is the reference, written as the rule reads. `RatingTable` is the same rule for
many CDRs: each deck compiled once into a dictionary by prefix, the arithmetic in integers
(millionths of the currency), the rounding applied once; a property test holds it equal to
`rate_call`, Decimal for Decimal.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from tawasol.domain.calls import CallRecord
from tawasol.domain.carriers import Carrier, Rate, RateDeck
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.money import Money
from tawasol.domain.routing import CarrierTariff

_MICRO = Decimal("0.000001")


def per_minute_cost(per_minute: Money, billable_seconds: int) -> Money:
    amount = (per_minute.amount * billable_seconds / Decimal(60)).quantize(
        _MICRO, rounding=ROUND_HALF_UP
    )
    return Money(amount, per_minute.currency)


def billing_of(record: CallRecord, carrier: Carrier) -> CarrierTariff:
    """How the carrier that answered is paid for this call: as the edge reported it for the
    answering attempt, or, when it did not say, as the carrier's contract allows."""
    for attempt in reversed(record.attempts):
        if attempt.carrier == carrier.code and attempt.billing:
            return CarrierTariff(attempt.billing)
    if record.billing:
        return CarrierTariff(record.billing)
    return CarrierTariff.FLAT_RATE if not carrier.rate_deck else CarrierTariff.PER_MINUTE


# A per-minute price and cost for a call on a carrier (None: no rate in effect).
PerMinutePricing = Callable[[Carrier, CallRecord, int], tuple[Rate, Money] | None]


def _reference_pricing(
    carrier: Carrier, record: CallRecord, duration_ms: int
) -> tuple[Rate, Money] | None:
    rate = carrier.rate_deck.lookup(record.destination, record.started_at)
    if rate is None:
        return None
    talk_seconds = -(-duration_ms // 1000)
    billable = rate.increment.billable_seconds(talk_seconds)
    return rate, per_minute_cost(rate.per_minute, billable)


def rate_call(record: CallRecord, carriers: Mapping[str, Carrier]) -> CallRecord:
    """The record with its billing, rate and cost once it is answered and over.

    A cost once set never changes (a replayed event cannot re-rate a call); an unanswered call
    costs nothing and gets no cost; a carrier or rate that cannot be found leaves the cost empty
    for an operator to look at rather than guessing.
    """
    return _rated(record, carriers, _reference_pricing)


def _rated(
    record: CallRecord, carriers: Mapping[str, Carrier], pricing: PerMinutePricing
) -> CallRecord:
    """`rate_call`'s rule, the per-minute price and cost given by `pricing`."""
    if record.cost is not None or record.duration_ms is None or record.carrier is None:
        return record
    carrier = carriers.get(record.carrier)
    if carrier is None:
        return record
    billing = billing_of(record, carrier)
    if billing is CarrierTariff.FLAT_RATE:
        currency = carrier.flat_rate.monthly_fee.currency if carrier.flat_rate else "EUR"
        return replace(record, billing=billing.value, cost=Money(Decimal(0), currency))
    found = pricing(carrier, record, record.duration_ms)
    if found is None:
        return replace(record, billing=billing.value)
    rate, cost = found
    return replace(
        record,
        billing=billing.value,
        rate_per_minute=rate.per_minute,
        increment=str(rate.increment),
        cost=cost,
    )


# -- the fast path: rate decks compiled once --------------------------------------------------
# One tariff of a compiled deck: (rate, first block s, next block s, numerator, denominator)
# where cost in millionths = round_half_up(numerator x billable seconds / denominator).
_Tariff = tuple[Rate, int, int, int, int]


def _tariff(rate: Rate) -> _Tariff:
    """`per_minute_cost` in integers: per_minute = digits x 10^exponent, so
    per_minute x seconds / 60 in millionths = digits x seconds x 10^(exponent + 6) / 60."""
    sign, digits, exponent = rate.per_minute.amount.as_tuple()
    if not isinstance(exponent, int):  # NaN or infinity: Rate refuses them already
        raise InvalidConfiguration("a rate is a finite amount", prefix=rate.prefix)
    coefficient = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    scale = exponent + 6
    numerator = coefficient * 10**scale if scale >= 0 else coefficient
    denominator = 60 if scale >= 0 else 60 * 10**-scale
    increment = rate.increment
    return (rate, increment.first_seconds, increment.next_seconds, numerator, denominator)


class CompiledRateDeck:
    """A carrier's rate deck compiled once for rating many CDRs: the same answer as
    `RateDeck.lookup` and `per_minute_cost` (longest prefix with a rate in effect at the call's
    start; billable time rounded up to the increment; cost in millionths rounded half up), in
    integer arithmetic on the deck's smallest unit (a millionth of the currency) and with one
    dictionary per deck keyed by every prefix, walked only at the prefix lengths it holds.
    """

    __slots__ = ("_lengths", "_table")

    def __init__(self, deck: RateDeck) -> None:
        by_prefix: dict[str, list[Rate]] = {}
        for rate in deck.rates():
            by_prefix.setdefault(rate.prefix, []).append(rate)
        self._table: dict[str, tuple[list[datetime], list[_Tariff]]] = {}
        for prefix, rates in by_prefix.items():
            rates.sort(key=lambda rate: rate.effective_from)
            self._table[prefix] = (
                [rate.effective_from for rate in rates],
                [_tariff(rate) for rate in rates],
            )
        self._lengths = tuple(sorted({len(prefix) for prefix in self._table}, reverse=True))

    def tariff(self, e164: str, at: datetime) -> _Tariff | None:
        """The tariff of the longest prefix of `e164` with a rate in effect at `at`."""
        digits = e164[1:] if e164[:1] == "+" else e164
        size = len(digits)
        table = self._table
        for length in self._lengths:
            if length > size:
                continue
            entry = table.get(digits[:length])
            if entry is None:
                continue
            starts, tariffs = entry
            index = bisect_right(starts, at)
            if index:
                return tariffs[index - 1]
        return None

    def cost_micro(self, e164: str, at: datetime, duration_ms: int) -> tuple[Rate, int] | None:
        """(rate, cost in millionths of its currency) of a call of `duration_ms` to `e164`
        started at `at`; None when no rate is in effect for the number then."""
        tariff = self.tariff(e164, at)
        if tariff is None:
            return None
        rate, first, following, numerator, denominator = tariff
        talk = -(-duration_ms // 1000)
        if talk <= 0:
            billable = 0
        elif talk <= first:
            billable = first
        else:
            billable = first - (-(talk - first) // following) * following
        quotient, remainder = divmod(numerator * billable, denominator)
        if 2 * remainder >= denominator:  # half up (amounts are never negative)
            quotient += 1
        return rate, quotient


def micro_amount(micro: int, currency: str) -> Money:
    """Millionths of `currency` as Money with six decimal places, as `per_minute_cost` gives."""
    return Money(Decimal(micro).scaleb(-6), currency)


class RatingTable:
    """`rate_call` for many CDRs: the carriers' rate decks compiled once (`CompiledRateDeck`).

    `rate(record)` returns exactly what `rate_call(record, carriers)` returns (a property test
    compares them over random decks, increments, effective dates and durations); `costs` rates
    a batch of plain (carrier, number, start, duration) tuples without building records, for
    re-rating CDRs in bulk.
    """

    __slots__ = ("_carriers", "_decks")

    def __init__(self, carriers: Mapping[str, Carrier]) -> None:
        self._carriers = dict(carriers)
        self._decks = {
            code: CompiledRateDeck(carrier.rate_deck)
            for code, carrier in carriers.items()
            if carrier.rate_deck
        }

    def rate(self, record: CallRecord) -> CallRecord:
        """As `rate_call(record, carriers)`."""
        return _rated(record, self._carriers, self._pricing)

    def _pricing(
        self, carrier: Carrier, record: CallRecord, duration_ms: int
    ) -> tuple[Rate, Money] | None:
        deck = self._decks.get(carrier.code)
        found = (
            None
            if deck is None
            else deck.cost_micro(record.destination, record.started_at, duration_ms)
        )
        if found is None:
            return None
        rate, micro = found
        return rate, micro_amount(micro, rate.per_minute.currency)

    def costs(
        self, calls: Iterable[tuple[str, str, datetime, int]]
    ) -> list[tuple[Rate, int] | None]:
        """For each (carrier code, E.164 number, start, duration in ms) of a per-minute call:
        (rate, cost in millionths of the rate's currency), or None when the carrier has no rate
        in effect for the number then (`rate_call` leaves such a cost empty)."""
        decks = self._decks
        found: list[tuple[Rate, int] | None] = []
        append = found.append
        for carrier, e164, at, duration_ms in calls:
            deck = decks.get(carrier)
            append(None if deck is None else deck.cost_micro(e164, at, duration_ms))
        return found
