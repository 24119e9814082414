"""The operator's API for calling from any phone (docs/direct-numbers.md): inbound trunks and
their rate decks, the direct-number pool (CSV, all or nothing) and its usage report, each
subscriber's caller IDs (verified by a code) and contacts (each with its direct number).

Handlers are thin: parse, call `DirectNumberService`, serialise. Admin token required.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from tawasol.adapters.api.admin import ADMIN_GUARDS
from tawasol.adapters.api.schemas import Id
from tawasol.adapters.api.services import ApiServices
from tawasol.adapters.pool_csv import MAX_BYTES, parse_pool_csv
from tawasol.adapters.rate_deck_csv import parse_rate_deck, rate_deck_to_csv
from tawasol.domain.direct_numbers import (
    CallerId,
    Contact,
    InboundTrunk,
    PoolUsage,
    national_format,
)
from tawasol.domain.errors import InvalidInput, NotFound

router = APIRouter(prefix="/admin/v1", tags=["direct numbers"], dependencies=ADMIN_GUARDS)


def _service(request: Request) -> ApiServices:
    brain: ApiServices = request.app.state.brain
    return brain


class InboundTrunkSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=64)]
    name: Annotated[str, Field(min_length=1, max_length=128)]
    country: Annotated[str, Field(min_length=2, max_length=2, description="ISO 3166 alpha-2")]
    addresses: list[Annotated[str, Field(max_length=64)]] = Field(
        min_length=1, max_length=64, description="IP addresses or networks (CIDR) it calls from"
    )
    number_ranges: list[Annotated[str, Field(max_length=15)]] = Field(
        default_factory=list,
        max_length=1000,
        description="E.164 prefixes (digits) of its numbers; empty: its whole country",
    )
    trust_asserted_identity: bool = Field(
        default=False, description="read the caller from P-Asserted-Identity (RFC 3325)"
    )
    enabled: bool = True

    def to_domain(self, rates: InboundTrunk | None = None) -> InboundTrunk:
        fields = {
            "code": self.code,
            "name": self.name,
            "country": self.country.upper(),
            "addresses": tuple(self.addresses),
            "number_ranges": tuple(self.number_ranges),
            "trust_asserted_identity": self.trust_asserted_identity,
            "enabled": self.enabled,
        }
        if rates is not None:
            return InboundTrunk(**fields, rate_deck=rates.rate_deck)  # type: ignore[arg-type]
        return InboundTrunk(**fields)  # type: ignore[arg-type]

    @classmethod
    def from_domain(cls, trunk: InboundTrunk) -> InboundTrunkSchema:
        return cls(
            code=trunk.code,
            name=trunk.name,
            country=trunk.country,
            addresses=list(trunk.addresses),
            number_ranges=list(trunk.number_ranges),
            trust_asserted_identity=trunk.trust_asserted_identity,
            enabled=trunk.enabled,
        )


class CallerIdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: Annotated[str, Field(min_length=1, max_length=32)]


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, Field(min_length=1, max_length=16)]


class CallerIdOut(BaseModel):
    number: str
    subscriber_id: int
    verified: bool
    verified_at: datetime | None
    code_sent: bool | None = Field(
        default=None, description="after registering: the code left by SMS"
    )
    code: str | None = Field(
        default=None,
        description="after registering, when no SMS channel could send it: the code for the "
        "operator to pass on (shown once, never stored in clear)",
    )

    @classmethod
    def from_domain(cls, caller: CallerId) -> CallerIdOut:
        return cls(
            number=caller.number,
            subscriber_id=caller.subscriber_id,
            verified=caller.verified,
            verified_at=caller.verified_at,
        )


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=64)]
    number: Annotated[str, Field(min_length=1, max_length=32)]


class ContactOut(BaseModel):
    id: int
    subscriber_id: int
    name: str
    number: str
    direct_number: str
    direct_number_national: str
    message: str = Field(description="what to tell the subscriber")
    created_at: datetime
    removed_at: datetime | None

    @classmethod
    def from_domain(cls, contact: Contact) -> ContactOut:
        national = national_format(contact.direct_number)
        return cls(
            id=contact.id,
            subscriber_id=contact.subscriber_id,
            name=contact.name,
            number=contact.number,
            direct_number=contact.direct_number,
            direct_number_national=national,
            message=f"call {national} to reach {contact.name}",
            created_at=contact.created_at,
            removed_at=contact.removed_at,
        )


class PoolUsageOut(BaseModel):
    pool_size: int
    numbers_per_subscriber: dict[int, int]
    most_used: list[tuple[str, int]] = Field(description="(pool number, active contacts), top 20")
    running_out: dict[int, int] = Field(description="subscriber id -> free numbers left")
    alert_below: int
    alert: bool

    @classmethod
    def from_domain(cls, usage: PoolUsage) -> PoolUsageOut:
        return cls(
            pool_size=usage.pool_size,
            numbers_per_subscriber=usage.numbers_per_subscriber,
            most_used=list(usage.subscribers_per_number.items())[:20],
            running_out=usage.running_out,
            alert_below=usage.alert_below,
            alert=usage.alert,
        )


# -- inbound trunks -----------------------------------------------------------------------------
@router.get("/inbound-trunks", response_model=list[InboundTrunkSchema])
def list_trunks(request: Request) -> list[InboundTrunkSchema]:
    return [InboundTrunkSchema.from_domain(t) for t in _service(request).direct_numbers.trunks()]


@router.put("/inbound-trunks/{code}", response_model=InboundTrunkSchema)
def put_trunk(code: str, body: InboundTrunkSchema, request: Request) -> InboundTrunkSchema:
    """Create or replace an inbound trunk (its rate deck is kept: `PUT .../rates`)."""
    if code != body.code:
        raise InvalidInput("the code in the path and in the body differ", code=code)
    service = _service(request).direct_numbers
    existing = service.trunks_by_code().get(code)
    return InboundTrunkSchema.from_domain(service.save_trunk(body.to_domain(existing)))


@router.get("/inbound-trunks/{code}/rates", response_class=PlainTextResponse)
def get_trunk_rates(code: str, request: Request) -> str:
    trunk = _service(request).direct_numbers.trunks_by_code().get(code)
    if trunk is None:
        raise NotFound("no such inbound trunk", trunk=code)
    return rate_deck_to_csv(trunk.rate_deck.rates())


@router.put("/inbound-trunks/{code}/rates")
async def put_trunk_rates(code: str, request: Request) -> dict[str, int]:
    """Replace the trunk's per-minute rate deck (by the caller's number) with a CSV body in
    the carriers' rate-deck format; all or nothing."""
    rates = parse_rate_deck(await _text(request))
    _service(request).direct_numbers.replace_trunk_rates(code, rates)
    return {"rates": len(rates)}


# -- the pool -----------------------------------------------------------------------------------
@router.get("/direct-numbers/pool")
def get_pool(request: Request) -> list[dict[str, str]]:
    return [
        {"number": entry.number, "trunk": entry.trunk}
        for entry in _service(request).direct_numbers.pool()
    ]


@router.post("/direct-numbers/pool")
async def post_pool(request: Request) -> dict[str, int]:
    """Add the numbers of a CSV body (`number;trunk`) to the pool: all or nothing."""
    rows = parse_pool_csv(await _text(request))
    return {"imported": _service(request).direct_numbers.import_pool(rows)}


@router.get("/direct-numbers/usage", response_model=PoolUsageOut)
def get_usage(request: Request) -> PoolUsageOut:
    """Pool usage: numbers per subscriber, the most used, subscribers running out (alert)."""
    return PoolUsageOut.from_domain(_service(request).direct_numbers.usage())


# -- caller IDs ---------------------------------------------------------------------------------
@router.get("/subscribers/{subscriber_id}/caller-ids", response_model=list[CallerIdOut])
def list_caller_ids(subscriber_id: Id, request: Request) -> list[CallerIdOut]:
    service = _service(request).direct_numbers
    return [CallerIdOut.from_domain(c) for c in service.caller_ids(subscriber_id)]


@router.post("/subscribers/{subscriber_id}/caller-ids", response_model=CallerIdOut, status_code=201)
def post_caller_id(subscriber_id: Id, body: CallerIdIn, request: Request) -> CallerIdOut:
    """Register a number the subscriber calls from and send it a verification code."""
    issued = _service(request).direct_numbers.register_caller_id(subscriber_id, body.number)
    answer = CallerIdOut.from_domain(issued.caller_id)
    answer.code_sent = issued.sent
    answer.code = issued.code
    return answer


@router.post("/subscribers/{subscriber_id}/caller-ids/{number}/verify", response_model=CallerIdOut)
def verify_caller_id(subscriber_id: Id, number: str, body: CodeIn, request: Request) -> CallerIdOut:
    service = _service(request).direct_numbers
    return CallerIdOut.from_domain(service.verify_caller_id(subscriber_id, number, body.code))


@router.delete("/subscribers/{subscriber_id}/caller-ids/{number}", status_code=204)
def delete_caller_id(subscriber_id: Id, number: str, request: Request) -> Response:
    _service(request).direct_numbers.remove_caller_id(subscriber_id, number)
    return Response(status_code=204)


# -- contacts -----------------------------------------------------------------------------------
@router.get("/subscribers/{subscriber_id}/contacts", response_model=list[ContactOut])
def list_contacts(subscriber_id: Id, request: Request) -> list[ContactOut]:
    service = _service(request).direct_numbers
    return [ContactOut.from_domain(c) for c in service.contacts(subscriber_id)]


@router.post("/subscribers/{subscriber_id}/contacts", response_model=ContactOut, status_code=201)
def post_contact(subscriber_id: Id, body: ContactIn, request: Request) -> ContactOut:
    """Add a contact (a number the subscriber's plan covers) and give it a direct number;
    409 `pool_exhausted` when none is free for this subscriber."""
    service = _service(request).direct_numbers
    contact = service.add_contact(subscriber_id, name=body.name, number=body.number)
    return ContactOut.from_domain(contact)


@router.delete("/subscribers/{subscriber_id}/contacts/{contact_id}", response_model=ContactOut)
def delete_contact(subscriber_id: Id, contact_id: Id, request: Request) -> ContactOut:
    """Remove a contact: its direct number stops ringing them now and stays quarantined."""
    contact = _service(request).direct_numbers.remove_contact(subscriber_id, contact_id)
    return ContactOut.from_domain(contact)


async def _text(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise InvalidInput("file too large", limit_bytes=MAX_BYTES)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidInput("a CSV file is UTF-8 text") from error
