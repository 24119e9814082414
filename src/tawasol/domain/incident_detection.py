"""Incident detection: telling a carrier outage from a destination outage, from what calls do.

Three streams of evidence arrive, each with its time (the domain never reads a clock):

- **attempts**: how each attempt of a call on one carrier towards one destination ended. A
  *failure* is an attempt the network did not deliver (`Outcome.NETWORK_FAILURE` of ITU-T E.425:
  the callee's busy, unanswered or rejected calls prove the network worked and are not
  failures).
- **calls, as the customer saw them**: whether the call as a whole failed for network reasons
  (every attempt failed) or was refused for lack of route or capacity. This is *customer
  impact*: a carrier cut that failover absorbs leaves it untouched.
- **carrier events** from probing and capacity learning (`carrier_health`): a carrier marked
  down after unanswered probes, a capacity learned below contract.

**Method.** For every (carrier, destination) pair, every (carrier, country) pair (all of the
carrier's destinations there pooled) and every destination as customers see it, a two-sided
Bernoulli CUSUM (`incident_cusum.FailureCusum`; Page, 1954; the form of Reynolds & Stoumbos,
1999) compares the share of failures with the stream's own baseline. The baseline `p0` is an
EWMA of the failure share, learned only while no outage is suspected and clamped to
[`baseline_floor`, `baseline_ceiling`]; the outage hypothesis is `p1` (`outage_failure_share`).
Every failure adds log(p1/p0), every success log((1-p1)/(1-p0)); the statistic never goes below
zero, and an alarm is raised when it reaches `alarm_threshold`. After an alarm a mirror CUSUM
(p1 against p0) gathers evidence of recovery; the alarm clears when that evidence has held for
`recovery_hold`. A CUSUM needs several failures in a row, or a clear excess of them, before it
alarms: noise does not open incidents, and a destination with one call per minute waits for
enough calls rather than guessing.

**Classification** (`IncidentDetector.findings`):

- *Carrier*: its probes went unanswered (marked down), its capacity was learned below contract,
  or its attempts towards a destination fail while another carrier's attempts towards the same
  destination, seen within `agreement_window`, hold.
- *Destination*: attempts towards one destination fail on every carrier that carried some within
  `agreement_window` (at least `min_carriers_for_destination` of them, or a single carrier whose
  other destinations in the same country hold): the far network is down, not ours. Carriers
  failing the same destination together are independent witnesses: when every one of them is
  suspect (at `healthy_share` of the threshold), customers' calls fail too, and their evidence
  added up reaches the threshold, they all alarm at once (a destination with a call a minute
  is found after about four failed calls instead of six or more). A
  destination is a country x kind of line x original range holder (`OutageScope`); when every
  range holder of a kind (or every kind of a country) is down, the finding is widened to it.
  Number portability makes the range holder approximate: a ported number fails with its new
  network.
- Customer impact turns either into a customer-facing finding; a customer-facing failure that no
  carrier explains (every carrier full or down) is a destination finding too.

Every threshold is a field of `DetectionSettings`, with the defaults documented in
docs/incidents.md and measured by bench/incidents.py.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from tawasol.domain.carrier_health import CarrierEvent, CarrierEventKind
from tawasol.domain.incident_cusum import DetectionSettings, FailureCusum
from tawasol.domain.outages import OutageImpact, OutageScope

__all__ = [
    "DetectionSettings",
    "FailureCusum",
    "Finding",
    "FindingKind",
    "IncidentDetector",
    "describe_scope",
]


class FindingKind(enum.StrEnum):
    """Whose fault an outage is: one of our carriers', or the far network's."""

    CARRIER = "carrier"
    DESTINATION = "destination"


@dataclass(frozen=True)
class Finding:
    """One outage the detector sees now, the raw material of an incident.

    `carrier` is set for carrier findings (None for destinations); `scope` is the destination
    affected (for a carrier down by probes: its country, or None when it carried no calls
    yet). `since` is when the evidence first crossed its threshold. `customer_facing` is True
    when customers' calls towards the scope fail; `impact` then says how badly.
    """

    kind: FindingKind
    carrier: str | None
    scope: OutageScope | None
    since: datetime
    reason: str
    customer_facing: bool = False
    impact: OutageImpact | None = None

    @property
    def key(self) -> tuple[str, str | None, OutageScope | None]:
        """What identifies the same outage from one evaluation to the next."""
        return (self.kind.value, self.carrier, self.scope)


@dataclass
class _CarrierCondition:
    down_since: datetime | None = None
    capacity_short_since: datetime | None = None
    up_since: datetime | None = None
    restored_since: datetime | None = None


class IncidentDetector:
    """Keeps the CUSUMs and carrier conditions, and says which outages hold now.

    Feed it with `observe_attempt`, `observe_call` and `observe_carrier_event` in time order,
    then ask `findings(now)`. Memory is bounded by the number of (carrier, destination) pairs.
    """

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self._attempts: dict[tuple[str, OutageScope], FailureCusum] = {}
        # Every attempt of a carrier towards a country, pooled: a carrier failing a share of
        # all its calls (partial capacity) shows there long before any single destination
        # gathers enough evidence, at night above all.
        self._carrier_countries: dict[tuple[str, str], FailureCusum] = {}
        self._customers: dict[OutageScope, FailureCusum] = {}
        self._carriers: dict[str, _CarrierCondition] = {}

    # -- evidence ---------------------------------------------------------------------------
    def observe_attempt(
        self, *, carrier: str, scope: OutageScope, failed: bool, at: datetime
    ) -> None:
        """One attempt on `carrier` towards `scope` (finest: country x kind x range holder)."""
        cusum = self._attempts.get((carrier, scope))
        if cusum is None:
            cusum = self._attempts[(carrier, scope)] = FailureCusum(self.settings)
        cusum.observe(failed=failed, at=at)
        pooled = self._carrier_countries.get((carrier, scope.country))
        if pooled is None:
            pooled = self._carrier_countries[(carrier, scope.country)] = FailureCusum(self.settings)
        pooled.observe(failed=failed, at=at)

    def observe_call(self, *, scope: OutageScope, failed: bool, at: datetime) -> None:
        """One call as its caller saw it: `failed` when it failed for network reasons or was
        refused for lack of route or capacity (a callee's busy or no answer is not a failure)."""
        cusum = self._customers.get(scope)
        if cusum is None:
            cusum = self._customers[scope] = FailureCusum(self.settings)
        cusum.observe(failed=failed, at=at)

    def observe_carrier_event(self, event: CarrierEvent) -> None:
        """A carrier marked down or up by probing, or its capacity learned or restored."""
        condition = self._carriers.setdefault(event.carrier, _CarrierCondition())
        if event.kind is CarrierEventKind.DOWN:
            condition.down_since = condition.down_since or event.at
            condition.up_since = None
        elif event.kind is CarrierEventKind.UP and condition.down_since is not None:
            condition.up_since = condition.up_since or event.at
        elif event.kind is CarrierEventKind.CAPACITY_LEARNED:
            condition.capacity_short_since = condition.capacity_short_since or event.at
            condition.restored_since = None
        elif (
            event.kind in (CarrierEventKind.CAPACITY_RESTORED, CarrierEventKind.CAPACITY_SET)
            and condition.capacity_short_since is not None
        ):
            condition.restored_since = condition.restored_since or event.at

    # -- classification ---------------------------------------------------------------------
    def findings(self, now: datetime) -> list[Finding]:
        """Every outage that holds at `now`, carriers first, then destinations.

        One finding per carrier and country (however many of its streams alarm, and whether
        probes, capacity or calls showed it first: one cut is one incident), one per
        destination. Each customer-facing destination (a customer stream alarmed and not
        recovering) is put on exactly one finding: the far network's when a destination
        finding covers it, else the oldest carrier finding covering it (the outage that
        started it; a second carrier failing to absorb the load does not make a second
        customer-facing incident), else a destination finding of its own.
        """
        self._clear_recovered(now)
        window_start = now - self.settings.agreement_window
        carrier_evidence: dict[tuple[str, str | None], tuple[datetime, str]] = {}
        destination_scopes: dict[OutageScope, datetime] = {}
        conditioned = {
            carrier
            for carrier, condition in self._carriers.items()
            if condition.down_since is not None or condition.capacity_short_since is not None
        }

        def carrier_saw(carrier: str, country: str | None, since: datetime, reason: str) -> None:
            known = carrier_evidence.get((carrier, country))
            if known is None or since < known[0]:
                carrier_evidence[(carrier, country)] = (since, reason)

        for scope, carriers in self._carriers_by_scope(window_start).items():
            # A carrier down by probes or short of capacity explains its own failures: it is
            # no witness that the far network is down (it would make every carrier cut during
            # a second carrier's trouble look like a destination outage).
            witnesses = {c: cusum for c, cusum in carriers.items() if c not in conditioned}
            self._raise_if_carriers_agree(scope, witnesses)
            alarmed = {c: cusum for c, cusum in carriers.items() if cusum.alarmed_at is not None}
            if not alarmed:
                continue
            failing = {c: cusum for c, cusum in alarmed.items() if c not in conditioned}
            if any(
                c not in failing
                and cusum.statistic >= self.settings.alarm_threshold * self.settings.healthy_share
                for c, cusum in witnesses.items()
            ):
                # Another carrier's failures towards the same destination pile up too, not
                # yet to an alarm: the far network may be down. Wait for its evidence rather
                # than blame the carrier whose alarm came first.
                continue
            if failing and self._far_network_down(scope, witnesses, failing, window_start):
                destination_scopes[scope] = min(
                    c.alarmed_at for c in failing.values() if c.alarmed_at is not None
                )
                continue
            delivering = len(witnesses) > len(failing)
            for carrier, cusum in alarmed.items():
                assert cusum.alarmed_at is not None
                carrier_saw(
                    carrier,
                    scope.country,
                    cusum.alarmed_at,
                    f"calls to {describe_scope(scope)} fail on this carrier"
                    + (" while other carriers deliver them" if delivering else ""),
                )

        for (carrier, country), cusum in self._carrier_countries.items():
            if cusum.alarmed_at is not None and self._fails_alone(carrier, country, window_start):
                carrier_saw(
                    carrier,
                    country,
                    cusum.alarmed_at,
                    f"calls to {country} fail on this carrier while other carriers deliver them",
                )

        for carrier, condition in self._carriers.items():
            since, reason = condition.down_since, "probes unanswered: carrier marked down"
            if since is None:
                since, reason = condition.capacity_short_since, "capacity learned below contract"
            if since is None:
                continue
            countries: list[str | None] = list(sorted(self._countries_of(carrier))) or [None]
            for where in countries:
                carrier_saw(carrier, where, since, reason)

        carrier_findings = [
            Finding(
                kind=FindingKind.CARRIER,
                carrier=carrier,
                scope=OutageScope(country) if country is not None else None,
                since=since,
                reason=reason,
            )
            for (carrier, country), (since, reason) in sorted(
                carrier_evidence.items(), key=lambda item: (item[0][0], item[0][1] or "")
            )
        ]
        facing = {
            scope: cusum
            for scope, cusum in self._customers.items()
            if cusum.alarmed_at is not None and cusum.recovering_since is None
        }
        covered = _widen(destination_scopes, self._known_scopes())
        oldest_first = sorted(carrier_findings, key=lambda f: (f.since, f.carrier or ""))
        by_carrier: dict[tuple[str | None, OutageScope | None], list[FailureCusum]] = {}
        for_destinations: list[tuple[OutageScope, FailureCusum]] = []
        for scope, cusum in facing.items():
            carrier_finding = next(
                (f for f in oldest_first if f.scope is not None and _within(scope, f.scope)),
                None,
            )
            if carrier_finding is None or any(_within(scope, d) for d in covered):
                # The far network's outage, or customers' calls fail and no carrier explains
                # it (every route is full or down): a destination finding either way.
                assert cusum.alarmed_at is not None
                destination_scopes.setdefault(scope, cusum.alarmed_at)
                for_destinations.append((scope, cusum))
            else:
                key = (carrier_finding.carrier, carrier_finding.scope)
                by_carrier.setdefault(key, []).append(cusum)
        destinations = _widen(destination_scopes, self._known_scopes())
        attributed: dict[OutageScope, list[FailureCusum]] = {}
        for scope, cusum in for_destinations:
            destination = next(d for d in destinations if _within(scope, d))
            attributed.setdefault(destination, []).append(cusum)

        results = [
            self._with_impact(finding, by_carrier.get((finding.carrier, finding.scope), []))
            for finding in carrier_findings
        ]
        for scope, since in destinations.items():
            finding = Finding(
                kind=FindingKind.DESTINATION,
                carrier=None,
                scope=scope,
                since=since,
                reason="calls to this destination fail on every carrier serving it",
            )
            results.append(self._with_impact(finding, attributed.get(scope, [])))
        return results

    # -- helpers ----------------------------------------------------------------------------
    def _clear_recovered(self, now: datetime) -> None:
        for cusum in (
            *self._attempts.values(),
            *self._carrier_countries.values(),
            *self._customers.values(),
        ):
            cusum.clear_if_recovered(now)
        # A destination outage seen on two carriers, then recovered on the one routing tries
        # first: the other gets no attempts any more, and its alarm (from the same outage)
        # must not turn into a carrier outage. An alarm without attempts since another
        # carrier recovered on the same destination ends with it.
        recoveries: dict[OutageScope, datetime] = {}
        for (_, scope), cusum in self._attempts.items():
            if cusum.alarmed_at is None and cusum.cleared_at is not None:
                recoveries[scope] = max(recoveries.get(scope, cusum.cleared_at), cusum.cleared_at)
        for (_, scope), cusum in self._attempts.items():
            cusum.end_if_silent_since(recoveries.get(scope), now)
        by_country: dict[str, datetime] = {}
        for scope, recovered_at in recoveries.items():
            by_country[scope.country] = max(
                by_country.get(scope.country, recovered_at), recovered_at
            )
        for (_, country), cusum in self._carrier_countries.items():
            cusum.end_if_silent_since(by_country.get(country), now)
        hold = self.settings.recovery_hold
        for condition in self._carriers.values():
            if condition.up_since is not None and now - condition.up_since >= hold:
                condition.down_since = condition.up_since = None
            if condition.restored_since is not None and now - condition.restored_since >= hold:
                condition.capacity_short_since = condition.restored_since = None

    def _carriers_by_scope(
        self, window_start: datetime
    ) -> dict[OutageScope, dict[str, FailureCusum]]:
        by_scope: dict[OutageScope, dict[str, FailureCusum]] = {}
        for (carrier, scope), cusum in self._attempts.items():
            recent = cusum.last_seen is not None and cusum.last_seen >= window_start
            if recent or cusum.alarmed_at is not None:
                by_scope.setdefault(scope, {})[carrier] = cusum
        return by_scope

    def _fails_alone(self, carrier: str, country: str, window_start: datetime) -> bool:
        """Whether `carrier`'s pooled failures towards `country` are its own: another carrier
        delivered calls to that country in the window, and on no destination where this
        carrier's failures pile up does another carrier's pile up too (that is a far network
        down, seen first on the pooled stream of the carrier tried first)."""
        others = [
            other
            for (other, other_country), cusum in self._carrier_countries.items()
            if other != carrier
            and other_country == country
            and cusum.alarmed_at is None
            and cusum.last_seen is not None
            and cusum.last_seen >= window_start
        ]
        if not others:
            return False
        suspect = self.settings.alarm_threshold * self.settings.healthy_share
        for (fine_carrier, scope), cusum in self._attempts.items():
            if fine_carrier != carrier or scope.country != country:
                continue
            if cusum.alarmed_at is None and cusum.statistic < suspect:
                continue
            for other in others:
                peer = self._attempts.get((other, scope))
                if peer is not None and (peer.alarmed_at is not None or peer.statistic >= suspect):
                    return False
        return True

    def _raise_if_carriers_agree(
        self, scope: OutageScope, witnesses: Mapping[str, FailureCusum]
    ) -> None:
        """Alarm every carrier's stream towards `scope` when they fail it together.

        Each carrier alone needs `alarm_threshold` of evidence; carriers that fail the same
        destination together from the start (none alarmed yet) are independent witnesses of
        one far network down (under normal noise their failures are independent), so their
        log-likelihood ratios add up. The rule: at least `min_carriers_for_destination`
        carriers (2 or more), each suspect (statistic at `healthy_share` of the threshold or
        more), together at the threshold with `min_failures` failures among their recent
        attempts, and customers' calls towards the scope failing too (their stream suspect:
        every carrier failed the same calls). A destination with a call a minute then shows
        as the far network's after about four failed calls, where one carrier alone would
        need six or more. The customers' stream alarms with them (their calls failed: the
        outage is customer-facing); every alarm raised here ends as its own would, once
        recovery has held.
        """
        settings = self.settings
        if len(witnesses) < max(2, settings.min_carriers_for_destination):
            return
        streams = list(witnesses.values())
        if any(cusum.alarmed_at is not None for cusum in streams):
            # One carrier alarmed alone first: the rules for one carrier's alarm decide (a
            # carrier outage, or wait while another carrier's evidence builds up).
            return
        suspect = settings.alarm_threshold * settings.healthy_share
        customers = self._customers.get(scope)
        if customers is None or customers.statistic < suspect:
            return
        if any(cusum.statistic < suspect for cusum in streams):
            return
        if sum(cusum.statistic for cusum in streams) < settings.alarm_threshold:
            return
        if sum(sum(cusum.recent) for cusum in streams) < settings.min_failures:
            return
        at = max(cusum.last_seen for cusum in streams if cusum.last_seen is not None)
        for cusum in (*streams, customers):
            cusum.raise_alarm(at)

    def _far_network_down(
        self,
        scope: OutageScope,
        carriers: Mapping[str, FailureCusum],
        alarmed: Mapping[str, FailureCusum],
        window_start: datetime,
    ) -> bool:
        if len(alarmed) < len(carriers):
            return False  # another carrier delivers calls to the same destination
        if len(carriers) >= self.settings.min_carriers_for_destination:
            return True
        # One carrier serves it: the far network is to blame only if that carrier's other
        # destinations in the same country are delivered.
        (carrier,) = carriers
        return any(
            other_carrier == carrier
            and other_scope != scope
            and other_scope.country == scope.country
            and cusum.alarmed_at is None
            and cusum.last_seen is not None
            and cusum.last_seen >= window_start
            for (other_carrier, other_scope), cusum in self._attempts.items()
        )

    def _countries_of(self, carrier: str) -> set[str]:
        return {scope.country for (c, scope) in self._attempts if c == carrier}

    def _known_scopes(self) -> set[OutageScope]:
        return {scope for _, scope in self._attempts} | set(self._customers)

    def _with_impact(self, finding: Finding, streams: list[FailureCusum]) -> Finding:
        """The finding made customer-facing by `streams` (the customer streams put on it), its
        impact from the share of failed calls among their recent calls taken together."""
        calls = sum(len(cusum.recent) for cusum in streams)
        if not calls:
            return finding
        failed = sum(sum(cusum.recent) for cusum in streams)
        major = failed >= self.settings.major_share * calls
        return replace(
            finding,
            customer_facing=True,
            impact=OutageImpact.MAJOR if major else OutageImpact.PARTIAL,
        )


def describe_scope(scope: OutageScope) -> str:
    """A scope in words ("MA mobile (Maroc Telecom)"): never a carrier name."""
    words = scope.country
    if scope.number_kind is not None:
        words += f" {scope.number_kind.value}"
    if scope.range_holder:
        words += f" ({scope.range_holder})"
    return words


def _within(inner: OutageScope, outer: OutageScope) -> bool:
    """Whether every destination of `inner` lies inside `outer`."""
    return (
        inner.country == outer.country
        and outer.number_kind in (None, inner.number_kind)
        and outer.range_holder in (None, inner.range_holder)
    )


def _widen(
    down: Mapping[OutageScope, datetime], known: Iterable[OutageScope]
) -> dict[OutageScope, datetime]:
    """Replace every range holder of a (country, kind) by the kind when all of them are down,
    and every kind of a country by the country when all of them are."""
    result = dict(down)
    known_set = set(known)
    for level in ("range_holder", "number_kind"):
        groups: dict[OutageScope, list[OutageScope]] = {}
        for scope in known_set:
            if getattr(scope, level) is None:
                continue
            parent = (
                OutageScope(scope.country, scope.number_kind)
                if level == "range_holder"
                else OutageScope(scope.country)
            )
            groups.setdefault(parent, []).append(scope)
        for parent, children in groups.items():
            if len(children) > 1 and all(child in result for child in children):
                result[parent] = min(result.pop(child) for child in children)
        known_set = {
            OutageScope(s.country, s.number_kind)
            if level == "range_holder"
            else OutageScope(s.country)
            for s in known_set
        }
    return result
