"""Translation between table rows and the domain's frozen values, both ways, in one place.

Every function here is pure: rows in, values out (or the reverse). Keeping them apart from the
queries lets `sql_store` read as a list of transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

from tawasol.adapters.store.models import (
    CarrierDestinationRow,
    CarrierEventRow,
    CarrierGatewayRow,
    CarrierRow,
    PlanRow,
    SubscriberRow,
    SubscriptionRow,
)
from tawasol.adapters.store.types import amount_fits, canonical_amount
from tawasol.domain.calls import CallAttempt, CallRecord
from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
from tawasol.domain.carriers import (
    BillingIncrement,
    Carrier,
    CarrierDestination,
    FlatRateContract,
    Gateway,
    NumberFormat,
    Rate,
    RateDeck,
    Transport,
)
from tawasol.domain.catalog import (
    CostCeiling,
    DestinationRule,
    FairUse,
    Period,
    Plan,
    TimeWindow,
)
from tawasol.domain.errors import InvalidInput
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import Subscriber, Subscription, SubscriptionStatus

Value = TypeVar("Value", bound="DataclassInstance")


def values_of(
    value: DataclassInstance, *, leave_out: Iterable[str] = (), **converted: Any
) -> dict[str, Any]:
    """The fields of a domain value by name, as the values of a row whose columns bear the
    fields' names: `converted` replace some (an enum by its text, a column the domain does not
    have), `leave_out` drop others (an id the database gives)."""
    dropped = set(leave_out)
    by_name = {field.name: getattr(value, field.name) for field in fields(value)}
    return {name: item for name, item in by_name.items() if name not in dropped} | converted


def from_row(kind: type[Value], row: object, /, **converted: Any) -> Value:
    """The domain value `kind` read from a row whose columns bear its fields' names,
    `converted` replacing some (an enum from its text...)."""
    by_name = {
        field.name: getattr(row, field.name)
        for field in fields(kind)
        if field.init and field.name not in converted
    }
    return kind(**(by_name | converted))


def checked_amount(money: Money) -> Decimal:
    """The amount to store, refused (not rounded) beyond 6 decimals or 12 integer digits."""
    if not amount_fits(money.amount):
        raise InvalidInput(
            "amounts are stored with at most 6 decimal places and 12 integer digits",
            amount=str(money.amount),
        )
    return money.amount


def money_columns(money: Money | None) -> tuple[Decimal | None, str | None]:
    """(amount, currency) to store, both None for no money at all (which is not zero)."""
    if money is None:
        return None, None
    return checked_amount(money), money.currency


def money_from_columns(
    amount: Decimal | None, currency: str | None, *, what: str, **context: Any
) -> Money | None:
    if amount is None and currency is None:
        return None
    if amount is None or currency is None:
        raise InvalidInput(f"{what}: an amount without a currency or the reverse", **context)
    return Money(amount, currency)


# -- plans ------------------------------------------------------------------------------------
def plan_values(plan: Plan) -> dict[str, Any]:
    fair_use = plan.fair_use
    duration = fair_use.max_call_duration
    return {
        "code": plan.code,
        "names": dict(plan.names),
        "period": plan.period.value,
        "price_amount": checked_amount(plan.price),
        "price_currency": plan.price.currency,
        "destinations": [
            {"country": rule.country, "kind": rule.kind.value} for rule in sorted(plan.destinations)
        ],
        "time_windows": [
            {
                "weekdays": sorted(window.weekdays),
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
            }
            for window in plan.time_windows
        ],
        "max_call_duration_seconds": None if duration is None else _whole_seconds(duration),
        "minutes_per_period": fair_use.minutes_per_period,
        "distinct_numbers_per_period": fair_use.distinct_numbers_per_period,
        "concurrent_calls": fair_use.concurrent_calls,
        "on_sale": plan.on_sale,
        "window_grace_minutes": plan.window_grace // timedelta(minutes=1),
        "cost_ceilings": [
            {
                "country": ceiling.country,
                "kind": None if ceiling.kind is None else ceiling.kind.value,
                # Text, not a JSON number: a JSON number is read back as a float.
                "max_per_minute": str(canonical_amount(checked_amount(ceiling.max_per_minute))),
                "currency": ceiling.max_per_minute.currency,
            }
            for ceiling in plan.cost_ceilings
        ],
    }


def _whole_seconds(duration: timedelta) -> int:
    if duration % timedelta(seconds=1):
        raise InvalidInput("max_call_duration is stored in whole seconds", value=str(duration))
    return duration // timedelta(seconds=1)


def plan_from_row(row: PlanRow) -> Plan:
    seconds = row.max_call_duration_seconds
    return Plan(
        code=row.code,
        names={str(locale): str(name) for locale, name in row.names.items()},
        period=Period(row.period),
        price=Money(row.price_amount, row.price_currency),
        destinations=frozenset(
            DestinationRule(country=item["country"], kind=NumberKind(item["kind"]))
            for item in row.destinations
        ),
        fair_use=FairUse(
            max_call_duration=None if seconds is None else timedelta(seconds=seconds),
            minutes_per_period=row.minutes_per_period,
            distinct_numbers_per_period=row.distinct_numbers_per_period,
            concurrent_calls=row.concurrent_calls,
        ),
        time_windows=tuple(
            TimeWindow(
                weekdays=frozenset(int(day) for day in item["weekdays"]),
                start=time.fromisoformat(item["start"]),
                end=time.fromisoformat(item["end"]),
            )
            for item in row.time_windows
        ),
        on_sale=row.on_sale,
        window_grace=timedelta(minutes=row.window_grace_minutes),
        cost_ceilings=tuple(
            CostCeiling(
                country=item["country"],
                max_per_minute=Money(Decimal(str(item["max_per_minute"])), item["currency"]),
                kind=None if item.get("kind") is None else NumberKind(item["kind"]),
            )
            for item in row.cost_ceilings
        ),
    )


# -- subscribers and subscriptions -----------------------------------------------------------
def subscriber_from_row(row: SubscriberRow) -> Subscriber:
    return Subscriber(
        id=row.id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        locale=row.locale,
        time_zone=row.time_zone,
        sip_username=row.sip_username,
        ha1=row.ha1,
        caller_ids=tuple(str(number) for number in row.caller_ids),
        country=row.country,
        business=row.business,
    )


def subscription_from_row(row: SubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        subscriber_id=row.subscriber_id,
        plan_code=row.plan_code,
        status=SubscriptionStatus(row.status),
        period_start=row.period_start,
        period_end=row.period_end,
        created_at=row.created_at,
    )


# -- carriers ---------------------------------------------------------------------------------
def carrier_values(carrier: Carrier) -> dict[str, Any]:
    flat_rate = carrier.flat_rate
    return {
        "code": carrier.code,
        "name": carrier.name,
        "number_format": carrier.number_format.value,
        "max_channels": carrier.max_channels,
        "enabled": carrier.enabled,
        "flat_rate_channels": flat_rate.channels if flat_rate else None,
        "flat_rate_fee_amount": checked_amount(flat_rate.monthly_fee) if flat_rate else None,
        "flat_rate_fee_currency": flat_rate.monthly_fee.currency if flat_rate else None,
    }


def gateway_values(carrier: Carrier) -> list[dict[str, Any]]:
    return [
        {
            "carrier_code": carrier.code,
            "position": position,
            "name": gateway.name,
            "host": gateway.host,
            "port": gateway.port,
            "transport": gateway.transport.value,
        }
        for position, gateway in enumerate(carrier.gateways)
    ]


def destination_values(carrier: Carrier) -> list[dict[str, Any]]:
    return [
        {
            "carrier_code": carrier.code,
            "position": position,
            "country": entry.rule.country,
            "kind": entry.rule.kind.value,
            "priority": entry.priority,
        }
        for position, entry in enumerate(carrier.destinations)
    ]


def rate_values(carrier: Carrier) -> list[dict[str, Any]]:
    return [
        {
            "carrier_code": carrier.code,
            "prefix": rate.prefix,
            "per_minute_amount": checked_amount(rate.per_minute),
            "currency": rate.per_minute.currency,
            "effective_from": rate.effective_from,
            "increment_first_seconds": rate.increment.first_seconds,
            "increment_next_seconds": rate.increment.next_seconds,
        }
        for rate in carrier.rate_deck.rates()
    ]


def rate_from_tuple(values: Sequence[Any]) -> Rate:
    """From (prefix, amount, currency, effective_from, first, next): rate decks are read as
    plain tuples, ORM objects cost too much at tens of thousands of rows."""
    prefix, amount, currency, effective_from, first_seconds, next_seconds = values
    return Rate(
        prefix=prefix,
        per_minute=Money(amount, currency),
        effective_from=effective_from,
        increment=BillingIncrement(first_seconds=first_seconds, next_seconds=next_seconds),
    )


def carrier_from_rows(
    row: CarrierRow,
    gateways: Iterable[CarrierGatewayRow],
    destinations: Iterable[CarrierDestinationRow],
    rates: Iterable[Rate],
) -> Carrier:
    flat_rate = None
    if row.flat_rate_channels is not None:
        if row.flat_rate_fee_amount is None or row.flat_rate_fee_currency is None:
            raise InvalidInput("flat-rate contract without a fee", carrier=row.code)
        flat_rate = FlatRateContract(
            channels=row.flat_rate_channels,
            monthly_fee=Money(row.flat_rate_fee_amount, row.flat_rate_fee_currency),
        )
    return Carrier(
        code=row.code,
        name=row.name,
        gateways=tuple(
            Gateway(
                name=item.name, host=item.host, port=item.port, transport=Transport(item.transport)
            )
            for item in sorted(gateways, key=lambda item: item.position)
        ),
        destinations=tuple(
            CarrierDestination(
                rule=DestinationRule(country=item.country, kind=NumberKind(item.kind)),
                priority=item.priority,
            )
            for item in sorted(destinations, key=lambda item: item.position)
        ),
        flat_rate=flat_rate,
        rate_deck=RateDeck(rates),
        number_format=NumberFormat(row.number_format),
        max_channels=row.max_channels,
        enabled=row.enabled,
    )


# -- calls ------------------------------------------------------------------------------------
CALL_FIELDS = (
    "call_id",
    "started_at",
    "sip_username",
    "dialled",
    "subscriber_id",
    "subscription_id",
    "destination",
    "country",
    "kind",
    "answered_at",
    "ended_at",
    "duration_ms",
    "carrier",
    "final_sip_code",
    "hangup_cause",
    "billing",
    "increment",
    "refusal_reason",
    "inbound_trunk",
    "caller_id",
)


def call_values(record: CallRecord) -> dict[str, Any]:
    rate_amount, rate_currency = money_columns(record.rate_per_minute)
    cost_amount, cost_currency = money_columns(record.cost)
    inbound_amount, inbound_currency = money_columns(record.inbound_cost)
    return {
        **{name: getattr(record, name) for name in CALL_FIELDS},
        # NULL: a softphone call (every call before direct numbers existed)
        "access": None if record.access == "softphone" else record.access,
        "inbound_cost_amount": inbound_amount,
        "inbound_cost_currency": inbound_currency,
        "rate_per_minute_amount": rate_amount,
        "rate_currency": rate_currency,
        "cost_amount": cost_amount,
        "cost_currency": cost_currency,
    }


def attempt_values(record: CallRecord) -> list[dict[str, Any]]:
    return [
        {
            "call_id": record.call_id,
            "attempt": attempt.attempt,
            "carrier": attempt.carrier,
            "gateway": attempt.gateway,
            "sip_code": attempt.sip_code,
            "pdd_ms": attempt.pdd_ms,
            "at": attempt.at,
            "q850_cause": attempt.q850_cause,
            "billing": attempt.billing,
        }
        for attempt in record.attempts
    ]


def call_from_row(row: Mapping[Any, Any], attempts: Sequence[CallAttempt]) -> CallRecord:
    """From a `calls` row read with SQLAlchemy Core, as a mapping (`Row._mapping`)."""
    call_id = row["call_id"]
    return CallRecord(
        **{name: row[name] for name in CALL_FIELDS},
        attempts=tuple(sorted(attempts, key=lambda item: item.attempt)),
        rate_per_minute=money_from_columns(
            row["rate_per_minute_amount"], row["rate_currency"], what="call rate", call_id=call_id
        ),
        cost=money_from_columns(
            row["cost_amount"], row["cost_currency"], what="call cost", call_id=call_id
        ),
        access=row["access"] or "softphone",
        inbound_cost=money_from_columns(
            row["inbound_cost_amount"],
            row["inbound_cost_currency"],
            what="inbound cost",
            call_id=call_id,
        ),
    )


def attempts_by_call(rows: Iterable[Any]) -> Mapping[str, list[CallAttempt]]:
    """Group attempt rows (with the call_attempts columns) by call id."""
    grouped: dict[str, list[CallAttempt]] = {}
    for row in rows:
        grouped.setdefault(row.call_id, []).append(
            CallAttempt(
                attempt=row.attempt,
                carrier=row.carrier,
                gateway=row.gateway,
                sip_code=row.sip_code,
                pdd_ms=row.pdd_ms,
                at=row.at,
                q850_cause=row.q850_cause,
                billing=row.billing,
            )
        )
    return grouped


# -- carrier events ---------------------------------------------------------------------------
def carrier_event_values(event: CarrierEvent) -> dict[str, Any]:
    try:
        kind = CarrierEventKind(event.kind)
    except ValueError as error:
        raise InvalidInput("unknown carrier event kind", kind=str(event.kind)) from error
    return {
        "carrier_code": event.carrier,
        "at": event.at,
        "kind": kind.value,
        "detail": event.detail,
        "effective_channels": event.effective_channels,
    }


def carrier_event_from_row(row: CarrierEventRow) -> CarrierEvent:
    return CarrierEvent(
        carrier=row.carrier_code,
        at=row.at,
        kind=CarrierEventKind(row.kind),
        detail=row.detail,
        effective_channels=row.effective_channels,
    )
