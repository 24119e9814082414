"""Incidents: outages as records the operator works with, from first sight to postmortem.

An *incident* is one outage of one carrier or one destination, opened automatically by
detection (`incident_detection`) or by hand (a carrier announces maintenance). It moves through
the states public status pages use (Atlassian Statuspage's vocabulary, which customers know):

    investigating -> identified -> monitoring -> resolved
    (any open state may go to any other open state; resolved only comes back by `reopen`)

It keeps a *timeline* of updates (automatic ones and the operator's, each message in fr/ar/en),
the stretches of time during which it was *customer-facing* with their impact (partial or
major: what billing credits and the status page shows), and a postmortem once resolved. One
incident can be merged into another (the same outage seen twice): it is then resolved and
points to the incident that carries on. Every change names who made it and when (the audit).

Pure: callers pass `now` and the author; functions return new values or raise from
`domain.errors` (`Conflict` for a change the state forbids, `InvalidInput` for bad values).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from tawasol.domain.errors import Conflict, InvalidInput
from tawasol.domain.outages import OutageImpact, OutagePeriod, OutageScope

__all__ = [
    "LANGUAGES",
    "ImpactStretch",
    "Incident",
    "IncidentKind",
    "IncidentState",
    "IncidentUpdate",
    "add_update",
    "merge_into",
    "new_incident",
    "record_impact",
    "reopen",
    "resolve",
]

# The languages every message may carry; at least one must be given. fr and ar are the
# subscribers' usual languages in the Maghreb, en the operator's fallback.
LANGUAGES = ("fr", "ar", "en")
MAX_MESSAGE_CHARS = 4000
MAX_TITLE_CHARS = 200


class IncidentState(enum.StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class IncidentKind(enum.StrEnum):
    """Whose outage: one of our carriers, the far network (a destination), or planned work."""

    CARRIER = "carrier"
    DESTINATION = "destination"
    MAINTENANCE = "maintenance"


@dataclass(frozen=True)
class IncidentUpdate:
    """One entry of the timeline: who (`author`: an operator's name, or "detection"), when,
    the state after it, and the message in one or more of `LANGUAGES`. `notify`: the operator
    asked for the affected subscribers to be told of it (a significant update)."""

    at: datetime
    author: str
    state: IncidentState
    message: Mapping[str, str]
    automatic: bool = False
    notify: bool = False


@dataclass(frozen=True)
class ImpactStretch:
    """A customer-facing stretch: from `start` to `end` (None: still going) at one impact."""

    start: datetime
    end: datetime | None
    impact: OutageImpact


@dataclass(frozen=True)
class Incident:
    """One outage as the operator manages it (see the module docstring).

    `id` is 0 until the store gives one. `carrier` is a carrier code (never shown publicly);
    `scope` the destinations concerned (None: every destination of the carrier). `started_at`
    is when the evidence began, `resolved_at` when it ended. `version` increases with every
    change so that two operators' concurrent edits cannot silently overwrite each other.
    """

    id: int
    kind: IncidentKind
    title: str
    state: IncidentState
    started_at: datetime
    carrier: str | None = None
    scope: OutageScope | None = None
    automatic: bool = False
    resolved_at: datetime | None = None
    postmortem: str | None = None
    merged_into: int | None = None
    updates: tuple[IncidentUpdate, ...] = ()
    impact: tuple[ImpactStretch, ...] = ()
    version: int = 1

    @property
    def open(self) -> bool:
        return self.state is not IncidentState.RESOLVED

    @property
    def customer_facing(self) -> bool:
        """True while calls towards its scope fail for customers (an open impact stretch)."""
        return bool(self.impact) and self.impact[-1].end is None

    def outage_periods(self) -> list[OutagePeriod]:
        """Its customer-facing stretches as billing reads them (needs a scope and an id)."""
        if self.scope is None or not self.id:
            return []
        return [
            OutagePeriod(
                incident_id=self.id,
                scope=self.scope,
                start=stretch.start,
                end=stretch.end,
                impact=stretch.impact,
            )
            for stretch in self.impact
        ]


def _check_time(at: datetime) -> None:
    if at.tzinfo is None:
        raise InvalidInput("incident times must be time-zone aware")


def _check_message(message: Mapping[str, str]) -> dict[str, str]:
    cleaned = {language: text.strip() for language, text in message.items() if text.strip()}
    unknown = sorted(set(cleaned) - set(LANGUAGES))
    if unknown:
        raise InvalidInput("messages are written in fr, ar or en", languages=unknown)
    if not cleaned:
        raise InvalidInput("an update needs a message in at least one of fr, ar, en")
    if any(len(text) > MAX_MESSAGE_CHARS for text in cleaned.values()):
        raise InvalidInput("a message is at most 4000 characters", limit=MAX_MESSAGE_CHARS)
    return cleaned


def _check_author(author: str) -> str:
    if not author.strip():
        raise InvalidInput("every change to an incident names its author")
    return author.strip()


def new_incident(
    *,
    kind: IncidentKind,
    title: str,
    started_at: datetime,
    author: str,
    message: Mapping[str, str],
    carrier: str | None = None,
    scope: OutageScope | None = None,
    automatic: bool = False,
    state: IncidentState = IncidentState.INVESTIGATING,
) -> Incident:
    """A new open incident whose first timeline entry is `message`.

    Raises InvalidInput for an empty or over-long title, a carrier incident without a carrier,
    a destination incident without a scope, or a resolved initial state.
    """
    _check_time(started_at)
    if not title.strip() or len(title) > MAX_TITLE_CHARS:
        raise InvalidInput("an incident title is 1-200 characters")
    if kind is IncidentKind.CARRIER and not carrier:
        raise InvalidInput("a carrier incident names its carrier")
    if kind is IncidentKind.DESTINATION and scope is None:
        raise InvalidInput("a destination incident names its scope (country, kind, range holder)")
    if state is IncidentState.RESOLVED:
        raise InvalidInput("an incident is opened in an open state")
    first = IncidentUpdate(
        at=started_at,
        author=_check_author(author),
        state=state,
        message=_check_message(message),
        automatic=automatic,
    )
    return Incident(
        id=0,
        kind=kind,
        title=title.strip(),
        state=state,
        started_at=started_at,
        carrier=carrier,
        scope=scope,
        automatic=automatic,
        updates=(first,),
    )


def add_update(
    incident: Incident,
    *,
    at: datetime,
    author: str,
    message: Mapping[str, str],
    state: IncidentState | None = None,
    automatic: bool = False,
    notify: bool = False,
) -> Incident:
    """A timeline entry, optionally moving to another open state.

    Raises Conflict on a resolved incident (reopen it first), InvalidInput for a message
    outside fr/ar/en, or `state` RESOLVED (use `resolve`, which closes the impact too).
    """
    _check_time(at)
    if not incident.open:
        raise Conflict(
            "the incident is resolved: reopen it before updating it",
            incident_id=incident.id,
            state=incident.state.value,
        )
    if state is IncidentState.RESOLVED:
        raise InvalidInput("resolve an incident with resolve, which also ends its impact")
    update = IncidentUpdate(
        at=at,
        author=_check_author(author),
        state=state or incident.state,
        message=_check_message(message),
        automatic=automatic,
        notify=notify,
    )
    return replace(
        incident,
        state=update.state,
        updates=(*incident.updates, update),
        version=incident.version + 1,
    )


def record_impact(incident: Incident, *, impact: OutageImpact | None, at: datetime) -> Incident:
    """The customer impact measured at `at` (None: customers are no longer affected).

    Opens, closes or changes the current stretch; the same impact again changes nothing.
    Raises Conflict on a resolved incident.
    """
    _check_time(at)
    if not incident.open:
        raise Conflict("a resolved incident's impact is closed", incident_id=incident.id)
    stretches = list(incident.impact)
    current = stretches[-1] if stretches and stretches[-1].end is None else None
    if current is not None and current.impact == impact:
        return incident
    if current is None and impact is None:
        return incident
    if current is not None:
        stretches[-1] = replace(current, end=at)
    if impact is not None:
        stretches.append(ImpactStretch(start=at, end=None, impact=impact))
    return replace(incident, impact=tuple(stretches), version=incident.version + 1)


def resolve(
    incident: Incident,
    *,
    at: datetime,
    author: str,
    message: Mapping[str, str],
    postmortem: str | None = None,
    automatic: bool = False,
) -> Incident:
    """Close the incident and its impact at `at`. Raises Conflict if already resolved."""
    if not incident.open:
        raise Conflict("the incident is already resolved", incident_id=incident.id)
    closed = record_impact(incident, impact=None, at=at)
    update = IncidentUpdate(
        at=at,
        author=_check_author(author),
        state=IncidentState.RESOLVED,
        message=_check_message(message),
        automatic=automatic,
    )
    if postmortem is not None and len(postmortem) > 10 * MAX_MESSAGE_CHARS:
        raise InvalidInput("a postmortem is at most 40000 characters")
    return replace(
        closed,
        state=IncidentState.RESOLVED,
        resolved_at=at,
        postmortem=postmortem.strip() if postmortem else incident.postmortem,
        updates=(*closed.updates, update),
        version=closed.version + 1,
    )


def reopen(
    incident: Incident, *, at: datetime, author: str, message: Mapping[str, str]
) -> Incident:
    """Back to investigating (the outage came back). Raises Conflict if it is open, or was
    merged into another incident (reopen that one)."""
    if incident.open:
        raise Conflict("the incident is open already", incident_id=incident.id)
    if incident.merged_into is not None:
        raise Conflict(
            "the incident was merged: reopen the one it was merged into",
            incident_id=incident.id,
            merged_into=incident.merged_into,
        )
    _check_time(at)
    update = IncidentUpdate(
        at=at,
        author=_check_author(author),
        state=IncidentState.INVESTIGATING,
        message=_check_message(message),
    )
    return replace(
        incident,
        state=IncidentState.INVESTIGATING,
        resolved_at=None,
        updates=(*incident.updates, update),
        version=incident.version + 1,
    )


def merge_into(
    duplicate: Incident, survivor: Incident, *, at: datetime, author: str
) -> tuple[Incident, Incident]:
    """Merge `duplicate` into `survivor`: the duplicate is resolved and points to the survivor,
    whose timeline notes the merge. Raises Conflict when either is resolved or they are the same.
    """
    if duplicate.id == survivor.id:
        raise Conflict("an incident cannot be merged into itself", incident_id=duplicate.id)
    if not survivor.open or not duplicate.open:
        raise Conflict("only open incidents are merged", incident_ids=[duplicate.id, survivor.id])
    note = {
        "en": f"Merged into incident {survivor.id}.",
        "fr": f"Fusionné dans l'incident {survivor.id}.",
        "ar": f"دُمج في الحادث {survivor.id}.",
    }
    closed = resolve(duplicate, at=at, author=author, message=note)
    # The duplicate's customer-facing stretches move to the survivor: counted once by billing.
    closed = replace(closed, merged_into=survivor.id, impact=())
    told = {
        "en": f"Incident {duplicate.id} merged into this one.",
        "fr": f"L'incident {duplicate.id} a été fusionné dans celui-ci.",
        "ar": f"دُمج الحادث {duplicate.id} في هذا الحادث.",
    }
    survivor = add_update(survivor, at=at, author=author, message=told)
    # The survivor's customer impact starts at the earlier of the two.
    if duplicate.impact and (
        not survivor.impact or duplicate.impact[0].start < survivor.impact[0].start
    ):
        survivor = replace(
            survivor,
            impact=tuple(sorted((*duplicate.impact, *survivor.impact), key=lambda s: s.start)),
        )
    return closed, survivor
