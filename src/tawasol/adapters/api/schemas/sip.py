"""The contracts with the edge, frozen by tests/integration/test_api.py: the decision asked
(`AuthorizeIn`) and answered (`AuthorizeOut`, a Route as JSON in one place: `route_document`),
and the call events the edge reports (`CallEventIn`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

from tawasol.domain.calls import CallEvent, CallEventType
from tawasol.domain.routing import Route


# -- the SIP decision API ---------------------------------------------------------------------
class AuthorizeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    call_id: Annotated[str, Field(min_length=1, max_length=256)]
    user: Annotated[str, Field(min_length=1, max_length=128)]
    dialled: Annotated[str, Field(min_length=1, max_length=128)]
    source_ip: Annotated[str, Field(max_length=64)] = ""
    user_agent: Annotated[str, Field(max_length=256)] = ""
    node: Annotated[str, Field(max_length=64)] = ""
    # The phone's digest answer (the Proxy-Authorization or Authorization value) and the
    # request's method: the brain checks them before it counts anything (docs/security.md).
    credentials: Annotated[str, Field(max_length=4096)] = ""
    method: Literal["INVITE", "REGISTER"] = "INVITE"


class RouteOut(BaseModel):
    carrier: str
    gateway: str
    uri: str
    timeout_ms: int
    billing: str
    cost_per_minute: str | None = None
    currency: str | None = None

    @classmethod
    def from_domain(cls, route: Route) -> RouteOut:
        return cls(**route_document(route))


def route_document(route: Route) -> dict[str, Any]:
    """A Route as JSON (`RouteOut`'s fields): the one translation, used by the decision API's
    fast path (no model validation) and by `RouteOut`."""
    cost = route.cost_per_minute
    return {
        "carrier": route.carrier,
        "gateway": route.gateway,
        "uri": route.uri,
        "timeout_ms": route.timeout_ms,
        "billing": route.billing.value,
        "cost_per_minute": str(cost.amount) if cost else None,
        "currency": cost.currency if cost else None,
    }


class AuthorizeOut(BaseModel):
    call_id: str
    ha1: str
    allow: bool
    reason: str
    sip_code: int
    sip_reason: str
    max_duration_s: int
    destination: str | None
    routes: list[RouteOut]
    failover_codes: list[int]
    grant: str | None = Field(
        default=None, description="allowed calls: the grant every call event must carry"
    )


class InboundIn(BaseModel):
    """A call from an inbound trunk (DID provider) to a direct number, as the edge saw it:
    no credentials; the source address and the caller's identity headers instead."""

    model_config = ConfigDict(extra="ignore")

    call_id: Annotated[str, Field(min_length=1, max_length=256)]
    source_ip: Annotated[str, Field(min_length=1, max_length=64)]
    dialled: Annotated[str, Field(min_length=1, max_length=128)]
    asserted_identity: Annotated[str, Field(max_length=128)] = Field(
        default="", description="the P-Asserted-Identity URI's user part (RFC 3325), if any"
    )
    from_user: Annotated[str, Field(max_length=128)] = ""
    privacy: Annotated[str, Field(max_length=64)] = Field(
        default="", description="the Privacy header (RFC 3323), e.g. `id`"
    )
    user_agent: Annotated[str, Field(max_length=256)] = ""
    node: Annotated[str, Field(max_length=64)] = ""


class InboundOut(AuthorizeOut):
    """`AuthorizeOut` for a call to a direct number, plus who and what it became: the edge
    files the call's events under `user` (the subscriber) and `dialled` (the contact). `ha1`
    is empty: an inbound trunk is known by its address, not by a digest."""

    user: str = Field(description="the subscriber's SIP username; empty when refused unknown")
    dialled: str = Field(description="the contact's number (E.164) when resolved")
    access: Literal["direct_number"] = "direct_number"
    inbound_trunk: str | None = None
    caller_id: str | None = Field(default=None, description="the caller's number, E.164")


# The earliest and latest event times accepted: a clock gone wrong must not file a call in 1970.
_EARLIEST_MS = 1_577_836_800_000  # 2020-01-01
_LATEST_MS = 4_102_444_800_000  # 2100-01-01


class CallEventIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    call_id: Annotated[str, Field(min_length=1, max_length=256)]
    type: CallEventType
    at_ms: int = Field(ge=_EARLIEST_MS, le=_LATEST_MS)
    user: Annotated[str, Field(max_length=128)] = ""
    dialled: Annotated[str, Field(max_length=128)] = ""
    attempt: int | None = Field(default=None, ge=1, le=100)
    carrier: Annotated[str, Field(max_length=64)] | None = None
    gateway: Annotated[str, Field(max_length=64)] | None = None
    sip_code: int | None = Field(default=None, ge=100, le=699)
    pdd_ms: int | None = Field(default=None, ge=0, le=600_000)
    duration_ms: int | None = Field(default=None, ge=0, le=7 * 86_400_000)
    hangup_cause: Annotated[str, Field(max_length=64)] | None = None
    q850_cause: int | None = Field(default=None, ge=0, le=127)
    billing: Literal["flat_rate", "per_minute"] | None = None
    retry_after_s: int | None = Field(default=None, ge=0, le=86_400)
    # Calls to a direct number (absent for a softphone's call): the access path, the inbound
    # trunk that brought the call and the caller's number, as the inbound decision gave them.
    access: Literal["softphone", "direct_number"] | None = None
    inbound_trunk: Annotated[str, Field(max_length=64)] | None = None
    caller_id: Annotated[str, Field(max_length=32)] | None = None

    grant: Annotated[str, Field(max_length=128)] | None = None

    def to_domain(self) -> CallEvent:
        return CallEvent(
            call_id=self.call_id,
            type=self.type,
            at=datetime.fromtimestamp(self.at_ms / 1000, tz=UTC),
            sip_username=self.user,
            dialled=self.dialled,
            attempt=self.attempt,
            carrier=self.carrier,
            gateway=self.gateway,
            sip_code=self.sip_code,
            pdd_ms=self.pdd_ms,
            duration_ms=self.duration_ms,
            hangup_cause=self.hangup_cause,
            q850_cause=self.q850_cause,
            billing=self.billing,
            retry_after_s=self.retry_after_s,
            access=self.access,
            inbound_trunk=self.inbound_trunk,
            caller_id=self.caller_id,
        )


class CallEventsIn(BaseModel):
    events: list[CallEventIn] = Field(min_length=1, max_length=1000)
