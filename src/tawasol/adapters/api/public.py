"""What anyone may see without logging in: availability for the sales guard and the public
status page (plain HTML without JavaScript, JSON, Atom), in fr/ar/en.

The page has one line per destination the operator sells (a country and kind of line on some
plan on sale) with its status (operational / degraded / partial outage / major outage), the
open customer-facing incidents with their timelines, and the customer-facing incidents of the
last 90 days. Internal incidents (nobody affected) are not shown. Carrier names and codes never
appear: automatic carrier texts are left out and every carrier name or code an operator may
have typed is masked.
"""

from __future__ import annotations

import gettext
import html
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Literal

import pycountry
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from tawasol.adapters.api.services import ApiServices
from tawasol.domain.incidents import Incident
from tawasol.domain.outages import OutageImpact, OutageScope
from tawasol.services.sales_guard import overlaps

router = APIRouter(tags=["public"])

Language = Literal["fr", "ar", "en"]
HISTORY = timedelta(days=90)

_WORDS = {
    "fr": {
        "title": "État du service",
        "operational": "Opérationnel",
        "degraded": "Dégradé",
        "partial_outage": "Panne partielle",
        "major_outage": "Panne majeure",
        "mobile": "mobiles",
        "fixed": "fixes",
        "fixed_or_mobile": "fixes et mobiles",
        "open": "Incidents en cours",
        "history": "Historique (90 jours)",
        "none": "Aucun incident.",
        "resolved": "résolu",
    },
    "ar": {
        "title": "حالة الخدمة",
        "operational": "يعمل",
        "degraded": "متدهور",
        "partial_outage": "انقطاع جزئي",
        "major_outage": "انقطاع كبير",
        "mobile": "المحمول",
        "fixed": "الثابت",
        "fixed_or_mobile": "الثابت والمحمول",
        "open": "الحوادث الجارية",
        "history": "السجل (90 يومًا)",
        "none": "لا توجد حوادث.",
        "resolved": "تم الحل",
    },
    "en": {
        "title": "Service status",
        "operational": "Operational",
        "degraded": "Degraded",
        "partial_outage": "Partial outage",
        "major_outage": "Major outage",
        "mobile": "mobiles",
        "fixed": "landlines",
        "fixed_or_mobile": "phones",
        "open": "Current incidents",
        "history": "History (90 days)",
        "none": "No incidents.",
        "resolved": "resolved",
    },
}


@lru_cache(maxsize=512)
def country_name(country: str, language: str) -> str:
    """The country's name in `language` (ISO 3166 names translated by pycountry's catalogues)."""
    found = pycountry.countries.get(alpha_2=country)
    if found is None:
        return country
    if language == "en":
        return str(found.name)
    translation = gettext.translation(
        "iso3166-1", pycountry.LOCALES_DIR, languages=[language], fallback=True
    )
    return translation.gettext(found.name)


def scope_words(scope: OutageScope, language: str) -> str:
    words = country_name(scope.country, language)
    if scope.number_kind is not None:
        words += " " + _WORDS[language].get(scope.number_kind.value, scope.number_kind.value)
    if scope.range_holder:
        words += f" ({scope.range_holder})"
    return words


class DestinationStatus(BaseModel):
    country: str
    kind: str
    name: str
    status: str


class PublicUpdate(BaseModel):
    at: datetime
    state: str
    message: str


class PublicIncident(BaseModel):
    id: int
    title: str
    state: str
    impact: str | None
    started_at: datetime
    resolved_at: datetime | None
    updates: list[PublicUpdate]


class StatusPage(BaseModel):
    language: Language
    generated_at: datetime
    destinations: list[DestinationStatus]
    incidents: list[PublicIncident]


class AvailabilityOut(BaseModel):
    plan_code: str
    country: str
    kind: str
    status: str
    incident_ids: list[int]


def _brain(request: Request) -> ApiServices:
    brain: ApiServices = request.app.state.brain
    return brain


@router.get("/public/v1/availability", response_model=list[AvailabilityOut])
def availability(request: Request) -> list[AvailabilityOut]:
    """Per plan on sale and destination: operational, partial_outage or major_outage, and the
    incidents to acknowledge to buy it anyway."""
    return [
        AvailabilityOut(
            plan_code=row.plan_code,
            country=row.country,
            kind=row.kind,
            status=row.status,
            incident_ids=list(row.incident_ids),
        )
        for row in _brain(request).sales_guard.availability()
    ]


def _masker(brain: ApiServices) -> list[str]:
    names = set()
    for carrier in brain.authorizer.snapshot().carriers:
        names.update({carrier.code, carrier.name})
    return sorted((name for name in names if name), key=len, reverse=True)


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "—")
    return text


def _public_incident(incident: Incident, language: str, secrets: list[str]) -> PublicIncident:
    assert incident.scope is not None
    words = _WORDS[language]
    impact = incident.impact[-1].impact.value if incident.impact else None
    status = f"{impact}_outage" if impact else "degraded"
    updates = []
    for update in incident.updates:
        if update.automatic and incident.carrier and update is incident.updates[0]:
            continue  # the detection's first words name the carrier
        text = update.message.get(language) or next(iter(update.message.values()))
        updates.append(
            PublicUpdate(at=update.at, state=update.state.value, message=_mask(text, secrets))
        )
    return PublicIncident(
        id=incident.id,
        title=f"{scope_words(incident.scope, language)}: {words[status]}",
        state=incident.state.value,
        impact=impact,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        updates=updates,
    )


def status_page(brain: ApiServices, language: Language) -> StatusPage:
    now = brain.clock()
    incidents = [
        incident
        for incident in brain.incidents.list_incidents(limit=1000)
        if incident.impact
        and incident.scope is not None
        and incident.merged_into is None
        and (incident.resolved_at is None or incident.resolved_at >= now - HISTORY)
    ]
    sold = sorted(
        {
            (rule.country, rule.kind.value, rule)
            for plan in brain.catalog.list_plans()
            if plan.on_sale
            for rule in plan.destinations
        },
        key=lambda item: (item[0], item[1]),
    )
    destinations = []
    for country, kind, rule in sold:
        behind = [i for i in incidents if i.customer_facing and i.scope and overlaps(i.scope, rule)]
        impacts = {i.impact[-1].impact for i in behind}
        status = (
            "major_outage"
            if OutageImpact.MAJOR in impacts
            else "partial_outage"
            if impacts
            else "operational"
        )
        name = f"{country_name(country, language)} {_WORDS[language].get(kind, kind)}"
        destinations.append(DestinationStatus(country=country, kind=kind, name=name, status=status))
    secrets = _masker(brain)
    return StatusPage(
        language=language,
        generated_at=now,
        destinations=destinations,
        incidents=[_public_incident(i, language, secrets) for i in incidents],
    )


LangQuery = Annotated[Language, Query(description="fr, ar or en")]


@router.get("/public/v1/status", response_model=StatusPage)
def status_json(request: Request, lang: LangQuery = "fr") -> StatusPage:
    """The status page as JSON."""
    return status_page(_brain(request), lang)


@router.get("/status", response_class=HTMLResponse)
def status_html(request: Request, lang: LangQuery = "fr") -> HTMLResponse:
    """The status page: plain HTML, no JavaScript, right-to-left in Arabic."""
    page = status_page(_brain(request), lang)
    words = _WORDS[lang]
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(d.name)}</td><td class='{d.status}'>{esc(words[d.status])}</td></tr>"
        for d in page.destinations
    )

    def block(incident: PublicIncident) -> str:
        items = "".join(
            f"<li><time>{u.at:%Y-%m-%d %H:%M} UTC</time> {esc(u.message)}</li>"
            for u in incident.updates
        )
        return f"<section><h3>{esc(incident.title)}</h3><ul>{items}</ul></section>"

    current = [i for i in page.incidents if i.resolved_at is None]
    past = [i for i in page.incidents if i.resolved_at is not None]
    links = " · ".join(f'<a href="?lang={code}">{code}</a>' for code in ("fr", "ar", "en"))
    body = (
        f'<!DOCTYPE html><html lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}">'
        f'<head><meta charset="utf-8"><title>{esc(words["title"])}</title>'
        f'<link rel="alternate" type="application/atom+xml" href="/status/feed.atom?lang={lang}">'
        f"</head><body><h1>{esc(words['title'])}</h1><p>{links}</p>"
        f"<table>{rows}</table>"
        f"<h2>{esc(words['open'])}</h2>"
        + ("".join(block(i) for i in current) or f"<p>{esc(words['none'])}</p>")
        + f"<h2>{esc(words['history'])}</h2>"
        + ("".join(block(i) for i in past) or f"<p>{esc(words['none'])}</p>")
        + "</body></html>"
    )
    return HTMLResponse(body)


@router.get("/status/feed.atom")
def status_atom(request: Request, lang: LangQuery = "fr") -> Response:
    """The incidents as an Atom feed (RFC 4287), newest first."""
    brain = _brain(request)
    page = status_page(brain, lang)
    esc = html.escape
    base = str(request.base_url).rstrip("/")
    entries = "".join(
        "<entry>"
        f"<id>{esc(base)}/status#incident-{i.id}</id>"
        f"<title>{esc(i.title)}</title>"
        f"<updated>{(i.updates[-1].at if i.updates else i.started_at).isoformat()}</updated>"
        f'<link href="{esc(base)}/status?lang={lang}"/>'
        f'<content type="text">{esc(" / ".join(u.message for u in i.updates))}</content>'
        "</entry>"
        for i in page.incidents
    )
    feed = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">'
        f"<id>{esc(base)}/status</id><title>{esc(_WORDS[lang]['title'])}</title>"
        f"<updated>{page.generated_at.isoformat()}</updated>"
        f"{entries}</feed>"
    )
    return Response(feed, media_type="application/atom+xml")
