"""Carriers at run time: status board, capacity caps, state-change history, rate decks (CSV)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from tawasol.adapters.api.admin import refuse_unknown_query, require_admin
from tawasol.adapters.api.schemas import Channels, Limit
from tawasol.adapters.rate_deck_csv import parse_rate_deck, rate_deck_to_csv
from tawasol.composition import Brain
from tawasol.domain.carriers import RateDeck
from tawasol.domain.errors import InvalidInput
from tawasol.services.carrier_monitor import QUALITY_WINDOWS, CarrierStatus, contracted_channels

router = APIRouter(
    prefix="/admin/v1/carriers",
    tags=["carriers"],
    dependencies=[Depends(require_admin), Depends(refuse_unknown_query)],
)

# A rate deck upload is at most this large (500,000 rows of ~40 bytes).
MAX_RATE_DECK_BYTES = 32 * 1024 * 1024


def _brain(request: Request) -> Brain:
    brain: Brain = request.app.state.brain
    return brain


class QualityOut(BaseModel):
    window_s: int
    country: str | None
    attempts: int
    answered: int
    asr: float | None
    ner: float | None
    acd_s: float | None
    pdd_p50_ms: int | None
    pdd_p95_ms: int | None


class CarrierStatusOut(BaseModel):
    code: str
    name: str
    state: str
    enabled: bool
    channels_in_use: int
    effective_channels: int | None
    contracted_channels: int | None
    operator_cap: int | None
    learned_capacity: int | None
    de_preferred: bool
    held_off_until: datetime | None = Field(
        default=None,
        description="the carrier answered 503 with Retry-After: no call is sent it until then",
    )
    billing: str
    rate_min_per_minute: str | None
    rate_max_per_minute: str | None
    currency: str | None
    quality: list[QualityOut]


class CapacityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    effective_channels: Channels | None = Field(
        description="most simultaneous calls to send this carrier, at most its contracted "
        "channels; null: as contracted"
    )


class CarrierEventOut(BaseModel):
    carrier: str
    at: datetime
    kind: str
    detail: str
    effective_channels: int | None


def status_rows(brain: Brain, now: datetime) -> list[CarrierStatusOut]:
    figures = brain.monitor.quality(window=QUALITY_WINDOWS[0], now=now)
    rows = []
    for status in brain.monitor.statuses():
        carrier = status.carrier
        rates = [r for r in carrier.rate_deck.rates() if r.effective_from <= now]
        amounts = sorted(r.per_minute.amount for r in rates)
        billing = " + ".join(
            part
            for part, present in (("flat_rate", carrier.flat_rate), ("per_minute", rates))
            if present
        )
        rows.append(
            CarrierStatusOut(
                code=carrier.code,
                name=carrier.name,
                state=_state(status),
                enabled=carrier.enabled,
                channels_in_use=status.channels_in_use,
                effective_channels=status.effective_channels,
                contracted_channels=contracted_channels(carrier),
                operator_cap=status.operator_cap,
                learned_capacity=status.learned_capacity,
                de_preferred=status.de_preferred,
                held_off_until=status.held_off_until,
                billing=billing,
                rate_min_per_minute=str(amounts[0]) if amounts else None,
                rate_max_per_minute=str(amounts[-1]) if amounts else None,
                currency=rates[0].per_minute.currency if rates else None,
                quality=[
                    QualityOut(
                        window_s=int(f.window.total_seconds()),
                        country=f.country,
                        attempts=f.attempts,
                        answered=f.answered,
                        asr=f.asr,
                        ner=f.ner,
                        acd_s=f.acd_seconds,
                        pdd_p50_ms=f.pdd_p50_ms,
                        pdd_p95_ms=f.pdd_p95_ms,
                    )
                    for f in figures
                    if f.carrier == carrier.code
                ],
            )
        )
    return rows


def _state(status: CarrierStatus) -> str:
    if not status.carrier.enabled:
        return "disabled"
    if not status.up:
        return "down"
    if status.operator_cap == 0:
        return "closed"  # an operator's cap of 0: not full of calls, shut on purpose
    if status.held_off_until is not None:
        return "held_off"
    if (
        status.effective_channels is not None
        and status.channels_in_use >= status.effective_channels
    ):
        return "full"
    return "up"


@router.get("/status", response_model=list[CarrierStatusOut])
def carriers_status(request: Request) -> list[CarrierStatusOut]:
    """Every carrier: state, channels in use / effective / contracted, quality over 5 minutes
    (overall, then per destination country), rates."""
    brain = _brain(request)
    return status_rows(brain, brain.clock())


@router.put("/{code}/capacity", response_model=CarrierStatusOut)
def put_capacity(code: str, body: CapacityIn, request: Request) -> CarrierStatusOut:
    """Cap (or uncap) a carrier's simultaneous calls now, on every brain, without a restart."""
    brain = _brain(request)
    brain.catalog.check_capacity(code, body.effective_channels)
    brain.monitor.set_capacity(code, body.effective_channels)
    return next(row for row in status_rows(brain, brain.clock()) if row.code == code)


@router.get("/{code}/events", response_model=list[CarrierEventOut])
def carrier_events(code: str, request: Request, limit: Limit = 100) -> list[CarrierEventOut]:
    """The carrier's state changes, newest first: down, up, capacity learned/raised/restored/
    set, held off (a 503 with Retry-After), each with its reason. 404 for an unknown carrier."""
    brain = _brain(request)
    brain.catalog.get_carrier(code)
    events = brain.store.list_carrier_events(carrier=code, limit=limit)
    return [
        CarrierEventOut(
            carrier=e.carrier,
            at=e.at,
            kind=e.kind.value,
            detail=e.detail,
            effective_channels=e.effective_channels,
        )
        for e in events
    ]


@router.get("/{code}/rates", response_class=PlainTextResponse)
def get_rates(code: str, request: Request) -> str:
    """The carrier's rate deck as CSV (prefix, rate, currency, effective_from, increment)."""
    return rate_deck_to_csv(_brain(request).catalog.get_carrier(code).rate_deck.rates())


@router.put("/{code}/rates")
async def put_rates(code: str, request: Request) -> dict[str, int]:
    """Replace the carrier's rate deck with a CSV body; all or nothing."""
    brain = _brain(request)
    body = await request.body()
    if len(body) > MAX_RATE_DECK_BYTES:
        raise InvalidInput("rate deck too large", limit_bytes=MAX_RATE_DECK_BYTES)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput("a rate deck is UTF-8 text") from error
    rates = parse_rate_deck(text)
    replaced = brain.catalog.replace_rate_deck(code, RateDeck(rates))
    return {"rates": len(rates), "replaced": replaced}
