"""Incidents in the admin API: list, show (timeline, impact, audit), open, update, resolve,
reopen, merge. Thin: parse, call `IncidentService`, serialise. Errors go through the shared
table (404 not_found, 409 conflict for a resolved incident or a stale change, 422 bad input).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from tawasol.adapters.api.admin import refuse_unknown_query, require_admin
from tawasol.adapters.api.services import ApiServices
from tawasol.domain.incidents import Incident, IncidentKind, IncidentState
from tawasol.domain.numbering import NumberKind
from tawasol.domain.outages import OutageImpact, OutageScope
from tawasol.services.incidents import IncidentService

router = APIRouter(
    prefix="/admin/v1/incidents",
    tags=["incidents"],
    dependencies=[Depends(require_admin), Depends(refuse_unknown_query)],
)

Author = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
IncidentId = Annotated[int, Field(ge=1, le=2**53)]


def _service(request: Request) -> IncidentService:
    brain: ApiServices = request.app.state.brain
    return brain.incidents


class Messages(BaseModel):
    """One message in one or more languages; at least one is needed."""

    model_config = ConfigDict(extra="forbid")

    fr: str | None = Field(default=None, max_length=4000)
    ar: str | None = Field(default=None, max_length=4000)
    en: str | None = Field(default=None, max_length=4000)

    def texts(self) -> dict[str, str]:
        return {lang: text for lang, text in self.model_dump().items() if text}


class ScopeIO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    number_kind: Literal["fixed", "mobile", "fixed_or_mobile"] | None = None
    range_holder: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None

    def scope(self) -> OutageScope:
        kind = NumberKind(self.number_kind) if self.number_kind else None
        return OutageScope(self.country, kind, self.range_holder)


class OpenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Author
    kind: IncidentKind
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    message: Messages
    carrier: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    scope: ScopeIO | None = None
    started_at: datetime | None = None
    impact: OutageImpact | None = Field(
        default=None, description="customer-facing from the start (partial or major)"
    )


class UpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Author
    message: Messages
    state: Literal["investigating", "identified", "monitoring"] | None = None
    impact: OutageImpact | Literal["none"] | None = Field(
        default=None, description="partial, major, or none (customers no longer affected)"
    )
    notify_customers: bool = Field(
        default=False,
        description="tell the affected subscribers (at most once per 6 h the first day, then "
        "once a day)",
    )


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Author
    message: Messages
    postmortem: str | None = Field(default=None, max_length=40000)


class ReopenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Author
    message: Messages


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Author
    into: IncidentId


class UpdateOut(BaseModel):
    at: datetime
    author: str
    state: IncidentState
    message: dict[str, str]
    automatic: bool
    notify: bool


class ImpactOut(BaseModel):
    start: datetime
    end: datetime | None
    impact: OutageImpact


class IncidentOut(BaseModel):
    id: int
    kind: IncidentKind
    title: str
    state: IncidentState
    started_at: datetime
    resolved_at: datetime | None
    carrier: str | None
    scope: ScopeIO | None
    automatic: bool
    customer_facing: bool
    postmortem: str | None
    merged_into: int | None
    version: int
    updates: list[UpdateOut]
    impact: list[ImpactOut]

    @classmethod
    def of(cls, incident: Incident) -> IncidentOut:
        # Field for field the domain's Incident, its scope, updates and impact stretches: read
        # by name (from_attributes), not copied out by hand a second time.
        return cls.model_validate(incident, from_attributes=True)


class AuditOut(BaseModel):
    at: datetime
    author: str
    action: str
    version: int


@router.get("", response_model=list[IncidentOut])
def list_incidents(
    request: Request,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IncidentOut]:
    """Incidents newest first; `open_only` leaves out resolved ones."""
    incidents = _service(request).list_incidents(open_only=open_only, limit=limit)
    return [IncidentOut.of(incident) for incident in incidents]


@router.post("", response_model=IncidentOut, status_code=201)
def open_incident(request: Request, body: OpenIn) -> IncidentOut:
    """Open an incident by hand (maintenance, a carrier's announced cut)."""
    incident = _service(request).open(
        author=body.author,
        kind=body.kind,
        title=body.title,
        message=body.message.texts(),
        carrier=body.carrier,
        scope=body.scope.scope() if body.scope else None,
        started_at=body.started_at,
        impact=body.impact,
    )
    return IncidentOut.of(incident)


@router.get("/{incident_id}", response_model=IncidentOut)
def show_incident(request: Request, incident_id: IncidentId) -> IncidentOut:
    return IncidentOut.of(_service(request).get(incident_id))


@router.get("/{incident_id}/audit", response_model=list[AuditOut])
def incident_audit(request: Request, incident_id: IncidentId) -> list[AuditOut]:
    """Every change: who, when, what, oldest first."""
    return [
        AuditOut(at=e.at, author=e.author, action=e.action, version=e.version)
        for e in _service(request).audit(incident_id)
    ]


@router.post("/{incident_id}/updates", response_model=IncidentOut)
def update_incident(request: Request, incident_id: IncidentId, body: UpdateIn) -> IncidentOut:
    """A timeline entry; 409 conflict on a resolved incident (reopen it first)."""
    incident = _service(request).update(
        incident_id,
        author=body.author,
        message=body.message.texts(),
        state=IncidentState(body.state) if body.state else None,
        impact=body.impact if isinstance(body.impact, OutageImpact) else None,
        end_impact=body.impact == "none",
        notify=body.notify_customers,
    )
    return IncidentOut.of(incident)


@router.post("/{incident_id}/resolve", response_model=IncidentOut)
def resolve_incident(request: Request, incident_id: IncidentId, body: ResolveIn) -> IncidentOut:
    incident = _service(request).resolve(
        incident_id, author=body.author, message=body.message.texts(), postmortem=body.postmortem
    )
    return IncidentOut.of(incident)


@router.post("/{incident_id}/reopen", response_model=IncidentOut)
def reopen_incident(request: Request, incident_id: IncidentId, body: ReopenIn) -> IncidentOut:
    incident = _service(request).reopen(
        incident_id, author=body.author, message=body.message.texts()
    )
    return IncidentOut.of(incident)


@router.post("/{incident_id}/merge", response_model=IncidentOut)
def merge_incident(request: Request, incident_id: IncidentId, body: MergeIn) -> IncidentOut:
    """Merge this incident into `into`; answers the incident that carries on."""
    return IncidentOut.of(_service(request).merge(incident_id, into=body.into, author=body.author))
