"""Rating: what a finished call cost the operator at the carrier that carried it.

A call on a free flat-rate channel costs nothing more (the channel is paid monthly). A call
billed per minute costs the carrier's rate for the number's longest matching prefix, in effect
when the call started, times the billable time: the talk time rounded up to whole seconds, then
to the rate's billing increment (60/60 bills whole minutes, 1/1 per second). Amounts are kept to
six decimal places, rounded half up, and never as float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from tawasol.domain.calls import CallRecord
from tawasol.domain.carriers import Carrier
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


def rate_call(record: CallRecord, carriers: Mapping[str, Carrier]) -> CallRecord:
    """The record with its billing, rate and cost once it is answered and over.

    A cost once set never changes (a replayed event cannot re-rate a call); an unanswered call
    costs nothing and gets no cost; a carrier or rate that cannot be found leaves the cost empty
    for an operator to look at rather than guessing.
    """
    if record.cost is not None or record.duration_ms is None or record.carrier is None:
        return record
    carrier = carriers.get(record.carrier)
    if carrier is None:
        return record
    billing = billing_of(record, carrier)
    if billing is CarrierTariff.FLAT_RATE:
        currency = carrier.flat_rate.monthly_fee.currency if carrier.flat_rate else "EUR"
        return replace(record, billing=billing.value, cost=Money(Decimal(0), currency))
    rate = carrier.rate_deck.lookup(record.destination, record.started_at)
    if rate is None:
        return replace(record, billing=billing.value)
    talk_seconds = -(-record.duration_ms // 1000)
    billable = rate.increment.billable_seconds(talk_seconds)
    return replace(
        record,
        billing=billing.value,
        rate_per_minute=rate.per_minute,
        increment=str(rate.increment),
        cost=per_minute_cost(rate.per_minute, billable),
    )
