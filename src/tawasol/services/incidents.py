"""The incidents service: detection run on live calls and carrier events, incidents kept.

- As a `CallListener` of the call event recorder it feeds every attempt's final answer and
  every finished call to `IncidentDetector`; as the authorizer's refusal hook it counts calls
  refused for lack of route (`no_route`: every carrier down, full or held off) as failed for
  the customer. As the carrier monitor's event hook it learns carriers marked down or up and
  capacities learned or restored.
- `tick()` (once a second, from the app's background `IncidentTicker`) turns the detector's
  findings into incidents: a new finding opens an automatic incident, a change of customer
  impact is recorded (opening or closing an outage period), and a finding gone for good (the
  detector already waited `recovery_hold`) resolves its automatic incident. Incidents opened by
  hand are never resolved automatically. Then `on_tick` is told the time (notices due by the
  clock: consumers told once an incident has been customer-facing long enough).
- The operator's actions (`open`, `update`, `resolve`, `reopen`, `merge`) go through the same
  store with optimistic locking and an audit entry naming the author.

Pure rules live in `domain.incident_detection` and `domain.incidents`; this module only keeps
state in memory, reads the clock it is given, and writes through `IncidentStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from tawasol.domain.calls import CallAttempt, CallRecord, CallStatus
from tawasol.domain.carrier_health import CarrierEvent
from tawasol.domain.decision import CallRequest, Decision, Reason
from tawasol.domain.errors import InvalidInput, InvalidNumber
from tawasol.domain.incident_detection import (
    DetectionSettings,
    Finding,
    FindingKind,
    IncidentDetector,
    describe_scope,
)
from tawasol.domain.incidents import (
    Incident,
    IncidentKind,
    IncidentState,
    add_update,
    merge_into,
    new_incident,
    record_impact,
    reopen,
    resolve,
)
from tawasol.domain.numbering import NumberKind, classify
from tawasol.domain.outages import OutageImpact, OutageScope
from tawasol.domain.quality import attempt_outcome as outcome_of
from tawasol.domain.sip_semantics import Outcome
from tawasol.services.incident_ports import AuditEntry, IncidentChange, IncidentStore

log = logging.getLogger(__name__)

DETECTION = "detection"  # the author of automatic changes in the timeline and the audit
# Refusals that mean the network could not carry the call (not the subscriber's plan or limits).
NETWORK_REFUSALS = frozenset({Reason.NO_ROUTE})
FindingKey = tuple[str, str | None, OutageScope | None]


def scope_of(e164: str, country: str, kind: str) -> OutageScope | None:
    """The finest scope of a called number: country x kind x original range holder."""
    if not country or not kind:
        return None
    try:
        number_kind = NumberKind(kind)
    except ValueError:
        return None
    range_holder = None
    if e164:
        try:
            range_holder = classify(e164).range_holder or None
        except InvalidNumber:
            range_holder = None
    return OutageScope(country, number_kind, range_holder)


def describe(scope: OutageScope | None) -> str:
    """A scope in words for titles ("MA mobile (Maroc Telecom)"); never a carrier name."""
    return "all destinations" if scope is None else describe_scope(scope)


def _finding_messages(finding: Finding) -> dict[str, str]:
    where = describe(finding.scope)
    if finding.kind is FindingKind.DESTINATION:
        return {
            "en": f"Calls to {where} fail on every carrier: the destination network is down.",
            "fr": f"Les appels vers {where} échouent chez tous les opérateurs : le réseau de "
            "destination est en panne.",
            "ar": f"تفشل المكالمات نحو {where} لدى جميع المشغلين: شبكة الوجهة معطلة.",
        }
    return {
        "en": f"Carrier {finding.carrier}: {finding.reason} ({where}).",
        "fr": f"Opérateur {finding.carrier} : {finding.reason} ({where}).",
        "ar": f"المشغل {finding.carrier}: {finding.reason} ({where}).",
    }


_IMPACT_MESSAGES = {
    OutageImpact.PARTIAL: {
        "en": "Some calls fail: customers are affected (partial outage).",
        "fr": "Une partie des appels échoue : des clients sont touchés (panne partielle).",
        "ar": "تفشل بعض المكالمات: بعض العملاء متأثرون (انقطاع جزئي).",
    },
    OutageImpact.MAJOR: {
        "en": "Calls fail: customers are affected (major outage).",
        "fr": "Les appels échouent : les clients sont touchés (panne majeure).",
        "ar": "تفشل المكالمات: العملاء متأثرون (انقطاع كبير).",
    },
}
_NO_IMPACT = {
    "en": "Calls succeed again for customers; we keep watching.",
    "fr": "Les appels aboutissent de nouveau ; nous restons vigilants.",
    "ar": "عادت المكالمات تنجح؛ نواصل المراقبة.",
}
_RECOVERED = {
    "en": "Recovered: calls have succeeded for the whole recovery period.",
    "fr": "Rétabli : les appels aboutissent depuis toute la période de rétablissement.",
    "ar": "تمت الاستعادة: المكالمات تنجح طوال فترة التعافي.",
}


class IncidentService:
    """Detection on live evidence, automatic incidents, and the operator's actions."""

    def __init__(
        self,
        *,
        store: IncidentStore,
        clock: Callable[[], datetime],
        settings: DetectionSettings | None = None,
        on_change: Callable[[Incident | None, Incident], object] | None = None,
        on_tick: Callable[[datetime], object] | None = None,
    ) -> None:
        self._store = store
        # Told of every stored change (before: None for a new incident); notices hang here.
        self._on_change = on_change
        # Told after every tick, with its time: notices due by the clock (consumers told
        # once an incident has been customer-facing long enough) hang here.
        self._on_tick = on_tick
        self._clock = clock
        self._lock = threading.Lock()
        self._detector = IncidentDetector(settings)
        self._automatic: dict[FindingKey, int] = {}
        self._restored = False

    @property
    def detection_settings(self) -> DetectionSettings:
        """The thresholds detection runs with."""
        return self._detector.settings

    # -- evidence (hooks; never raise into the caller's path) --------------------------------
    def on_attempt(self, *, record: CallRecord, attempt: CallAttempt) -> None:
        scope = scope_of(record.destination, record.country, record.kind)
        if scope is None:
            return
        outcome = outcome_of(
            sip_code=attempt.sip_code, q850_cause=attempt.q850_cause, answered=False
        )
        with self._lock:
            self._detector.observe_attempt(
                carrier=attempt.carrier,
                scope=scope,
                failed=outcome is Outcome.NETWORK_FAILURE,
                at=attempt.at,
            )

    def on_call_finished(self, record: CallRecord) -> None:
        scope = scope_of(record.destination, record.country, record.kind)
        if scope is None or record.status is CallStatus.REFUSED:
            return  # refusals are counted by on_refused, when they happen
        failed = record.status is CallStatus.FAILED and bool(record.attempts)
        if failed:
            last = record.attempts[-1]
            outcome = outcome_of(sip_code=last.sip_code, q850_cause=last.q850_cause, answered=False)
            failed = outcome is Outcome.NETWORK_FAILURE
        with self._lock:
            self._detector.observe_call(
                scope=scope, failed=failed, at=record.ended_at or record.started_at
            )

    def on_refused(self, request: CallRequest, decision: Decision, now: datetime) -> None:
        destination = decision.destination
        if decision.allowed or destination is None or not destination.routable:
            return
        if decision.reason not in NETWORK_REFUSALS:
            return
        scope = OutageScope(destination.country, destination.kind, destination.range_holder or None)
        with self._lock:
            self._detector.observe_call(scope=scope, failed=True, at=now)

    def on_carrier_event(self, event: CarrierEvent) -> None:
        with self._lock:
            self._detector.observe_carrier_event(event)

    # -- automatic incidents -------------------------------------------------------------------
    def tick(self) -> list[Incident]:
        """Turn what the detector sees now into incidents; returns the incidents changed."""
        now = self._clock()
        if not self._restored:
            self._restore()
        with self._lock:
            findings = {finding.key: finding for finding in self._detector.findings(now)}
        changed: list[Incident] = []
        for key, finding in findings.items():
            incident_id = self._automatic.get(key)
            if incident_id is None:
                changed.append(self._open_automatic(finding, now))
                continue
            current = self._store.get_incident(incident_id)
            if not current.open:  # the operator resolved it while the outage holds: reopen
                self._automatic.pop(key)
                changed.append(self._open_automatic(finding, now))
                continue
            updated = self._follow_impact(current, finding.impact, now)
            if updated is not current:
                changed.append(updated)
        for key in set(self._automatic) - set(findings):
            current = self._store.get_incident(self._automatic.pop(key))
            if current.open:
                closed = resolve(current, at=now, author=DETECTION, message=_RECOVERED)
                changed.append(self._save(current, closed, "resolved", now))
        if self._on_tick is not None:
            try:  # the incidents are stored; a listener's failure is logged, not raised
                self._on_tick(now)
            except Exception:
                log.exception("incident tick listener failed")
        return changed

    def _restore(self) -> None:
        """After a restart, open automatic incidents are followed again, not opened twice."""
        for incident in self._store.list_incidents(open_only=True, limit=1000):
            if incident.automatic:
                kind = (
                    FindingKind.DESTINATION
                    if incident.kind is IncidentKind.DESTINATION
                    else FindingKind.CARRIER
                )
                self._automatic[(kind.value, incident.carrier, incident.scope)] = incident.id
        self._restored = True

    def _open_automatic(self, finding: Finding, now: datetime) -> Incident:
        kind = (
            IncidentKind.DESTINATION
            if finding.kind is FindingKind.DESTINATION
            else IncidentKind.CARRIER
        )
        title = (
            f"Calls to {describe(finding.scope)} failing"
            if kind is IncidentKind.DESTINATION
            else f"Carrier {finding.carrier}: {finding.reason}"
        )
        opened = new_incident(
            kind=kind,
            title=title[:200],
            started_at=finding.since,
            author=DETECTION,
            message=_finding_messages(finding),
            carrier=finding.carrier,
            scope=finding.scope,
            automatic=True,
        )
        stored = self._add(opened, DETECTION)
        self._automatic[finding.key] = stored.id
        log.warning("incident %d opened: %s", stored.id, stored.title)
        return self._follow_impact(stored, finding.impact, now)

    def _follow_impact(
        self, incident: Incident, impact: OutageImpact | None, now: datetime
    ) -> Incident:
        changed = record_impact(incident, impact=impact, at=now)
        if changed is incident:
            return incident
        message = _IMPACT_MESSAGES[impact] if impact is not None else _NO_IMPACT
        changed = add_update(changed, at=now, author=DETECTION, message=message, automatic=True)
        return self._save(incident, changed, "impact", now)

    def _save(self, before: Incident, after: Incident, action: str, now: datetime) -> Incident:
        (stored,) = self._store.save_incidents(
            [IncidentChange(after, before.version)],
            author=after.updates[-1].author,
            action=action,
            at=now,
        )
        self._changed(before, stored)
        return stored

    def _add(self, incident: Incident, author: str) -> Incident:
        stored = self._store.add_incident(incident, author=author)
        self._changed(None, stored)
        return stored

    def _changed(self, before: Incident | None, after: Incident) -> None:
        if self._on_change is None:
            return
        try:  # the change is stored; a listener's failure (notices) is logged, not raised
            self._on_change(before, after)
        except Exception:
            log.exception("incident %d: change listener failed", after.id)

    # -- the operator's actions ----------------------------------------------------------------
    def open(
        self,
        *,
        author: str,
        kind: IncidentKind,
        title: str,
        message: Mapping[str, str],
        carrier: str | None = None,
        scope: OutageScope | None = None,
        started_at: datetime | None = None,
        impact: OutageImpact | None = None,
    ) -> Incident:
        """An incident opened by hand (maintenance announced, a contract ending...).

        Raises InvalidInput for bad values; `impact` makes it customer-facing from the start.
        """
        now = self._clock()
        opened = new_incident(
            kind=kind,
            title=title,
            started_at=started_at or now,
            author=author,
            message=message,
            carrier=carrier,
            scope=scope,
        )
        if impact is not None and scope is None:
            raise InvalidInput("a customer-facing incident needs a scope")
        stored = self._add(opened, author)
        if impact is None:
            return stored
        return self._save(
            stored, record_impact(stored, impact=impact, at=stored.started_at), "impact", now
        )

    def update(
        self,
        incident_id: int,
        *,
        author: str,
        message: Mapping[str, str],
        state: IncidentState | None = None,
        impact: OutageImpact | None = None,
        end_impact: bool = False,
        notify: bool = False,
    ) -> Incident:
        """A timeline entry, optionally a new state and a new customer impact; `notify` tells the
        affected subscribers (at most once per window, see `domain.notices.NoticePolicy`).
        Raises NotFound, Conflict (resolved: reopen first; changed meanwhile), InvalidInput."""
        now = self._clock()
        current = self._store.get_incident(incident_id)
        changed = add_update(
            current, at=now, author=author, message=message, state=state, notify=notify
        )
        if impact is not None or end_impact:
            changed = record_impact(changed, impact=None if end_impact else impact, at=now)
        return self._save(current, changed, "updated", now)

    def resolve(
        self,
        incident_id: int,
        *,
        author: str,
        message: Mapping[str, str],
        postmortem: str | None = None,
    ) -> Incident:
        now = self._clock()
        current = self._store.get_incident(incident_id)
        closed = resolve(current, at=now, author=author, message=message, postmortem=postmortem)
        return self._save(current, closed, "resolved", now)

    def reopen(self, incident_id: int, *, author: str, message: Mapping[str, str]) -> Incident:
        now = self._clock()
        current = self._store.get_incident(incident_id)
        return self._save(
            current, reopen(current, at=now, author=author, message=message), "reopened", now
        )

    def merge(self, incident_id: int, *, into: int, author: str) -> Incident:
        """Merge incident `incident_id` into `into`; returns the survivor."""
        now = self._clock()
        duplicate = self._store.get_incident(incident_id)
        survivor = self._store.get_incident(into)
        closed, carried = merge_into(duplicate, survivor, at=now, author=author)
        self._store.save_incidents(
            [
                IncidentChange(closed, duplicate.version),
                IncidentChange(carried, survivor.version),
            ],
            author=author,
            action="merged",
            at=now,
        )
        self._changed(duplicate, closed)
        self._changed(survivor, carried)
        with self._lock:
            for key, known in list(self._automatic.items()):
                if known == duplicate.id:
                    self._automatic[key] = survivor.id
        return carried

    def get(self, incident_id: int) -> Incident:
        return self._store.get_incident(incident_id)

    def list_incidents(self, *, open_only: bool = False, limit: int = 100) -> list[Incident]:
        return self._store.list_incidents(open_only=open_only, limit=limit)

    def audit(self, incident_id: int) -> list[AuditEntry]:
        self._store.get_incident(incident_id)
        return list(self._store.incident_audit(incident_id))


class IncidentTicker:
    """Runs `IncidentService.tick` every `interval_s` until cancelled (the app's lifespan
    starts it; a failed tick is logged and the next one tries again)."""

    name = "incident-detection"

    def __init__(self, service: IncidentService, *, interval_s: float = 1.0) -> None:
        self._service = service
        self._interval_s = interval_s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self._service.tick)
            except Exception:
                log.exception("incident detection tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
