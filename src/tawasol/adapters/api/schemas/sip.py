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
        )


class CallEventsIn(BaseModel):
    events: list[CallEventIn] = Field(min_length=1, max_length=1000)
