"""The admin API's call detail records, the call report and `explain` (why a call would be
allowed or refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    Field,
    field_validator,
)

from tawasol.adapters.api.schemas.fields import (
    Instant,
    Strict,
)
from tawasol.adapters.api.schemas.sip import (
    RouteOut,
)
from tawasol.domain.calls import CallRecord
from tawasol.domain.decision import Decision
from tawasol.domain.money import Money


class CallAttemptOut(BaseModel):
    attempt: int
    carrier: str
    gateway: str
    sip_code: int | None
    pdd_ms: int | None
    at: datetime
    q850_cause: int | None = None
    billing: str | None = None


class CallOut(BaseModel):
    call_id: str
    status: str
    sip_username: str
    dialled: str
    subscriber_id: int | None
    subscription_id: int | None
    destination: str
    country: str
    kind: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_ms: int | None
    carrier: str | None
    final_sip_code: int | None
    hangup_cause: str | None
    pdd_ms: int | None
    attempts: list[CallAttemptOut]
    billing: str | None = None
    rate_per_minute: str | None = None
    increment: str | None = None
    cost: str | None = None
    currency: str | None = None
    refusal_reason: str | None = Field(
        default=None, description="the decision's reason code when the brain refused the call"
    )
    access: str = Field(
        default="softphone", description="how the call came in: softphone or direct_number"
    )
    inbound_trunk: str | None = Field(
        default=None, description="direct-number calls: the inbound trunk that brought it"
    )
    caller_id: str | None = Field(
        default=None, description="direct-number calls: the caller's number (E.164)"
    )
    inbound_cost: str | None = Field(
        default=None,
        description="direct-number calls: what the inbound trunk charges (its rate deck)",
    )
    inbound_cost_currency: str | None = None

    @classmethod
    def from_domain(cls, record: CallRecord) -> CallOut:
        # The domain's CallRecord (and its attempts) field for field, read by name; money
        # travels as its amount, the currency beside it.
        out = cls.model_validate(record, from_attributes=True)
        return out.model_copy(
            update={
                "currency": record.cost.currency if record.cost else None,
                "inbound_cost_currency": (
                    record.inbound_cost.currency if record.inbound_cost else None
                ),
            }
        )

    @field_validator("rate_per_minute", "cost", "inbound_cost", mode="before")
    @classmethod
    def _amount(cls, value: object) -> object:
        return str(value.amount) if isinstance(value, Money) else value


class CallReportOut(BaseModel):
    """Calls started in [since, until) by outcome; refused ones per reason code."""

    since: datetime
    until: datetime
    total: int
    answered: int
    not_answered: int
    refused: int
    refused_by_reason: dict[str, int]

    @classmethod
    def from_counts(cls, counts: dict[str, int], *, since: datetime, until: datetime) -> Self:
        return cls(
            since=since,
            until=until,
            total=counts["total"],
            answered=counts["answered"],
            not_answered=counts["not_answered"],
            refused=counts["refused"],
            refused_by_reason={
                key.removeprefix("refused:"): value
                for key, value in sorted(counts.items())
                if key.startswith("refused:")
            },
        )


class ExplainIn(Strict):
    sip_username: Annotated[str, Field(min_length=1, max_length=128)]
    dialled: Annotated[str, Field(min_length=1, max_length=128)]
    at: Instant | None = None


class ExplainOut(BaseModel):
    allow: bool
    reason: str
    sip_code: int
    sip_reason: str
    max_duration_s: int
    destination: str | None
    routes: list[RouteOut]
    explanation: list[str]

    @classmethod
    def from_domain(cls, decision: Decision) -> ExplainOut:
        return cls(
            allow=decision.allowed,
            reason=decision.reason.value,
            sip_code=decision.sip_code,
            sip_reason=decision.sip_reason,
            max_duration_s=decision.max_duration_seconds,
            destination=decision.destination.e164 if decision.destination else None,
            routes=[RouteOut.from_domain(route) for route in decision.routes],
            explanation=list(decision.explanation),
        )
