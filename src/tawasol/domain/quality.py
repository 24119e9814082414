"""Quality: how well each carrier delivers calls to each country, over the last minutes.

A carrier rarely fails all at once: it starts dropping one call in five to Morocco, or takes
eight seconds to ring. The operator must see it within minutes, and routing must prefer a
better carrier until it recovers. For every attempt the SIP edge reports how it ended
(`AttemptOutcome`); `QualityWindow` keeps the recent ones per carrier and destination country
and answers, over a window such as the last 5 minutes or the last hour (`QualityFigures`):

- **ASR**, answer-seizure ratio: answered attempts / attempts. It mixes the network's failures
  with the callee's behaviour: a country where people often do not pick up has a low ASR
  on every carrier.
- **NER**, network effectiveness ratio (ITU-T E.425): attempts that reached the callee (answered,
  busy, no answer, rejected by the callee, or a number that does not exist) / attempts. A busy
  or unanswered phone proves the network delivered the call, so NER isolates the carrier's own
  failures from the callee's behaviour: it is the figure to judge a carrier by. NER >= ASR.
- **ACD**, average call duration: mean talk time of answered calls that have ended, in seconds.
  Falling ACD on a carrier often means bad audio (people hang up and call again).
- **PDD**, post-dial delay: time from sending the call to the first ringing, in milliseconds;
  the median (p50) and the slow tail (p95). A long PDD makes callers hang up before ringing.

`should_de_prefer` says when a carrier's NER is too low to keep it first in the hunt: it is
de-preferred (tried after the others), never removed, so that it keeps carrying some calls and
its figures can recover.

Everything here is pure: no clock (callers pass `now`), no I/O. Ratios are not money, so they
are floats, rounded to 4 decimal places; `ner_table` gives exact Decimal values for routing.
"""

from __future__ import annotations

import enum
import re
from bisect import insort
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType

from tawasol.domain.errors import InvalidInput

# Bounded memory: at most this many outcomes per (carrier, country); the oldest go first. At
# 100,000 a key holds more than an hour at 25 attempts per second, far beyond a small operator.
DEFAULT_MAX_OUTCOMES_PER_KEY = 100_000
DEFAULT_LONGEST_WINDOW = timedelta(hours=1)

# Ratios are shown to 4 decimal places (0.9876 = 98.76%), ACD to a tenth of a second.
_RATIO_PLACES = 4
_ACD_PLACES = 1
_RATIO_QUANTUM = Decimal(1).scaleb(-_RATIO_PLACES)

_COUNTRY = re.compile(r"[A-Z]{2}")
_MAX_Q850_CAUSE = 127  # Q.850 §2.2.5: the cause value is a 7-bit field.


class Outcome(enum.StrEnum):
    """How one attempt on one carrier ended, in the categories of ITU-T E.425.

    Every category but `NETWORK_FAILURE` is *effective*: the network delivered the call and what
    happened next was up to the callee (or to whoever dialled a number that does not exist).
    """

    ANSWERED = "answered"
    USER_BUSY = "user_busy"
    NO_ANSWER = "no_answer"  # it rang and nobody picked up, or the callee is not reachable
    REJECTED = "rejected"  # the callee declined, or their terminal is unavailable
    ABANDONED = "abandoned"  # the caller hung up before an answer (487 after our CANCEL)
    ADDRESS_ERROR = "address_error"  # unallocated, incomplete or changed number
    NETWORK_FAILURE = "network_failure"

    @property
    def effective(self) -> bool:
        """True if the attempt counts as a successful delivery for NER (E.425)."""
        return self is not Outcome.NETWORK_FAILURE


# Q.850 cause (from a `Reason: Q.850;cause=N` header, RFC 3326) -> outcome. When present and
# listed here, the cause wins over the SIP code: it is the terminating network's own word, and
# RFC 3398 §7.2.4.1 maps many causes onto one SIP code (several onto 404, 480 or 503).
# Causes not listed (16 normal clearing, 127 interworking ...) fall back to the SIP code.
Q850_OUTCOMES: Mapping[int, Outcome] = MappingProxyType(
    {
        # A number that does not exist is the caller's error, not the network's: effective.
        1: Outcome.ADDRESS_ERROR,  # unallocated number (RFC 3398: 404)
        # RFC 3398 maps "no route" to 404 too, but it is a gap in the carrier's routing: another
        # carrier may well reach the number, so it is the carrier's failure.
        2: Outcome.NETWORK_FAILURE,  # no route to specified transit network
        3: Outcome.NETWORK_FAILURE,  # no route to destination
        17: Outcome.USER_BUSY,  # user busy (RFC 3398: 486)
        18: Outcome.NO_ANSWER,  # no user responding (RFC 3398: 408)
        19: Outcome.NO_ANSWER,  # no answer from user, user alerted (RFC 3398: 480)
        20: Outcome.REJECTED,  # subscriber absent, phone off (RFC 3398: 480): "unavailability"
        21: Outcome.REJECTED,  # call rejected (RFC 3398: 403); E.425 "terminal reject"
        22: Outcome.ADDRESS_ERROR,  # number changed (RFC 3398: 410)
        27: Outcome.NETWORK_FAILURE,  # destination out of order (RFC 3398: 502)
        28: Outcome.ADDRESS_ERROR,  # invalid number format, address incomplete (RFC 3398: 484)
        29: Outcome.NETWORK_FAILURE,  # facility rejected (RFC 3398: 501)
        31: Outcome.REJECTED,  # normal, unspecified (RFC 3398: 480, the callee is unavailable)
        34: Outcome.NETWORK_FAILURE,  # no circuit/channel available (RFC 3398: 503)
        38: Outcome.NETWORK_FAILURE,  # network out of order (RFC 3398: 503)
        41: Outcome.NETWORK_FAILURE,  # temporary failure (RFC 3398: 503)
        42: Outcome.NETWORK_FAILURE,  # switching equipment congestion (RFC 3398: 503)
        44: Outcome.NETWORK_FAILURE,  # requested circuit/channel not available (RFC 3398: 503)
        47: Outcome.NETWORK_FAILURE,  # resource unavailable, unspecified (RFC 3398: 503)
        58: Outcome.NETWORK_FAILURE,  # bearer capability not presently available (RFC 3398: 503)
        102: Outcome.NETWORK_FAILURE,  # recovery on timer expiry (RFC 3398: 504)
    }
)

# Final SIP code -> outcome, when no listed Q.850 cause says otherwise. The callee-side codes
# follow RFC 3398 §8.2.6.1 (SIP -> ISUP cause) and RFC 3261 §21. Anything not listed (other
# 3xx/4xx/5xx/6xx: 400, 401, 407, 488, 500, 502, 503, 504, 606 ...) is a network failure: the
# carrier could not or would not deliver the call, and another carrier may.
SIP_OUTCOMES: Mapping[int, Outcome] = MappingProxyType(
    {
        404: Outcome.ADDRESS_ERROR,  # not found (RFC 3398: cause 1, unallocated number)
        410: Outcome.ADDRESS_ERROR,  # gone (RFC 3398: cause 22, number changed)
        484: Outcome.ADDRESS_ERROR,  # address incomplete (RFC 3398: cause 28)
        485: Outcome.ADDRESS_ERROR,  # ambiguous (RFC 3398: cause 1)
        604: Outcome.ADDRESS_ERROR,  # does not exist anywhere (RFC 3398: cause 1)
        480: Outcome.NO_ANSWER,  # temporarily unavailable (RFC 3398: cause 18, no user responding)
        486: Outcome.USER_BUSY,  # busy here (RFC 3398: cause 17)
        600: Outcome.USER_BUSY,  # busy everywhere (RFC 3398: cause 17)
        603: Outcome.REJECTED,  # decline (RFC 3398: cause 21, call rejected)
        # RFC 3261 §9.1: 487 answers the INVITE our CANCEL ended, i.e. the caller hung up first.
        # (A route that stays silent past its timer ends in a local timeout, not in 487.)
        487: Outcome.ABANDONED,
        # Deliberately absent, hence network failures without a cause saying otherwise:
        # 403 (RFC 3398 maps it to cause 21, but from a carrier to its customer a bare 403
        #      means "not allowed for you": account, credit, blocked route; 403 with cause 21
        #      is REJECTED),
        # 408 (RFC 3398: cause 102, a timer expired; with cause 18 or 19 it is NO_ANSWER).
    }
)


def classify(*, sip_code: int | None, q850_cause: int | None, answered: bool) -> Outcome:
    """The E.425 category of an attempt, from its final SIP code and Q.850 cause.

    No final code at all (`sip_code` None) means our own timer expired on a silent carrier:
    a network failure whatever the cause.
    """
    if answered:
        return Outcome.ANSWERED
    if sip_code is None:
        return Outcome.NETWORK_FAILURE
    if 200 <= sip_code < 300:
        return Outcome.ANSWERED
    by_cause = Q850_OUTCOMES.get(q850_cause) if q850_cause is not None else None
    if by_cause is not None:
        return by_cause
    return SIP_OUTCOMES.get(sip_code, Outcome.NETWORK_FAILURE)


def q850_cause_from_reason(value: str) -> int | None:
    """The Q.850 cause in a Reason header value (RFC 3326), or None.

    `Q.850;cause=17;text="User busy"` gives 17; so does `SIP;cause=486, Q.850;cause=17`.
    A cause outside 1-127 or not made of digits is ignored.
    """
    text = value.strip()
    if text[:7].lower() == "reason:":
        text = text[7:]
    for reason in _split_outside_quotes(text, ","):
        protocol, *params = _split_outside_quotes(reason, ";")
        if protocol.strip().upper() != "Q.850":
            continue
        for param in params:
            name, _, raw = param.partition("=")
            raw = raw.strip()
            if name.strip().lower() == "cause" and raw.isascii() and raw.isdigit():
                cause = int(raw)
                return cause if 1 <= cause <= _MAX_Q850_CAUSE else None
    return None


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for character in text:
        if escaped:
            escaped = False
        elif quoted and character == "\\":
            escaped = True
        elif character == '"':
            quoted = not quoted
        elif character == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(character)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class AttemptOutcome:
    """How one attempt of a call on one carrier ended, as the SIP edge saw it.

    `sip_code` is the final SIP code of the attempt (None: no final answer before our timer, a
    local timeout); `q850_cause` the cause of a `Reason: Q.850;cause=N` header, if any.
    `pdd_ms` is the time to the first ringing (None: it never rang); `duration_ms` the talk time
    of an answered call once it has ended (None: not ended yet, or not answered). Record an
    answered attempt after its call ended to count its duration in ACD.
    """

    carrier: str
    country: str
    at: datetime
    sip_code: int | None
    q850_cause: int | None = None
    answered: bool = False
    pdd_ms: int | None = None
    duration_ms: int | None = None

    def __post_init__(self) -> None:
        if not self.carrier:
            raise InvalidInput("an attempt outcome needs a carrier code")
        if not _COUNTRY.fullmatch(self.country):
            raise InvalidInput(
                "country must be an ISO 3166 alpha-2 code such as MA", country=self.country
            )
        if self.at.tzinfo is None:
            raise InvalidInput("attempt times must be time-zone aware", carrier=self.carrier)
        if self.sip_code is not None and not 200 <= self.sip_code <= 699:
            raise InvalidInput("a final SIP code is 200-699", sip_code=self.sip_code)
        if self.q850_cause is not None and not 1 <= self.q850_cause <= _MAX_Q850_CAUSE:
            raise InvalidInput("a Q.850 cause is 1-127", q850_cause=self.q850_cause)
        success = self.sip_code is not None and self.sip_code < 300
        if self.answered != success:
            raise InvalidInput(
                "an attempt is answered exactly when its final SIP code is 2xx",
                sip_code=self.sip_code,
                answered=self.answered,
            )
        if self.pdd_ms is not None and self.pdd_ms < 0:
            raise InvalidInput("post-dial delay cannot be negative", pdd_ms=self.pdd_ms)
        if self.duration_ms is not None and (self.duration_ms < 0 or not self.answered):
            raise InvalidInput(
                "a duration is the talk time of an answered call, never negative",
                duration_ms=self.duration_ms,
            )

    @property
    def outcome(self) -> Outcome:
        return classify(sip_code=self.sip_code, q850_cause=self.q850_cause, answered=self.answered)


@dataclass(frozen=True)
class QualityFigures:
    """A carrier's quality over a window ending at `at`, for one country or (None) all of them.

    `asr`, `ner` (0-1, 4 decimal places), `acd_seconds` and the PDD percentiles are None when
    there is nothing to measure (no attempts, no ended answered call, nothing rang).
    `network_failures` is attempts minus effective attempts.
    """

    carrier: str
    country: str | None
    window: timedelta
    at: datetime
    attempts: int
    answered: int
    effective: int
    asr: float | None
    ner: float | None
    acd_seconds: float | None
    pdd_p50_ms: int | None
    pdd_p95_ms: int | None

    @property
    def network_failures(self) -> int:
        return self.attempts - self.effective


def should_de_prefer(figures: QualityFigures, *, threshold_ner: float, min_attempts: int) -> bool:
    """True if the carrier's NER is below `threshold_ner` over at least `min_attempts` attempts.

    Below `min_attempts` the figures say too little (two failures out of three calls is bad
    luck, not a broken carrier), so the carrier keeps its place. A de-preferred carrier is tried
    after the others, not removed: it still carries calls when the others are full or failing.
    The comparison uses the exact counts, not the rounded `ner`.
    """
    if not 0 <= threshold_ner <= 1:
        raise InvalidInput("an NER threshold is between 0 and 1", threshold_ner=threshold_ner)
    if min_attempts < 1:
        raise InvalidInput("min_attempts must be at least 1", min_attempts=min_attempts)
    if figures.attempts < min_attempts:
        return False
    return figures.effective < threshold_ner * figures.attempts


def _at(outcome: AttemptOutcome) -> datetime:
    return outcome.at


class QualityWindow:
    """Recent attempt outcomes per carrier and destination country, in memory.

    Outcomes older than `longest_window` before the latest time seen (the newest outcome or
    `now` of a query) are dropped, and each (carrier, country) keeps at most
    `max_outcomes_per_key` outcomes (the newest), so memory stays bounded whatever the traffic.
    Outcomes may arrive out of order (the edge replays its spool): they are kept in time order.
    A window of length W at `now` holds the outcomes with `now - W < at <= now`.
    """

    def __init__(
        self,
        *,
        longest_window: timedelta = DEFAULT_LONGEST_WINDOW,
        max_outcomes_per_key: int = DEFAULT_MAX_OUTCOMES_PER_KEY,
    ) -> None:
        if longest_window <= timedelta(0):
            raise InvalidInput("the longest quality window must be positive")
        if max_outcomes_per_key < 1:
            raise InvalidInput("max_outcomes_per_key must be at least 1")
        self._longest_window = longest_window
        self._max_per_key = max_outcomes_per_key
        # carrier -> country -> outcomes, oldest first.
        self._outcomes: dict[str, dict[str, deque[AttemptOutcome]]] = {}
        self._latest: datetime | None = None

    @property
    def longest_window(self) -> timedelta:
        return self._longest_window

    def __len__(self) -> int:
        return sum(
            len(kept) for countries in self._outcomes.values() for kept in countries.values()
        )

    def carriers(self) -> list[str]:
        return sorted(self._outcomes)

    def countries(self, carrier: str) -> list[str]:
        return sorted(self._outcomes.get(carrier, {}))

    def record(self, outcome: AttemptOutcome) -> bool:
        """Keep an outcome; False if it is already too old to fall in any window (dropped)."""
        self._advance(outcome.at)
        assert self._latest is not None
        if outcome.at <= self._latest - self._longest_window:
            return False
        kept = self._outcomes.setdefault(outcome.carrier, {}).setdefault(outcome.country, deque())
        if len(kept) >= self._max_per_key:
            if outcome.at < kept[0].at:
                return False  # older than everything kept in a full key: the cap drops it
            kept.popleft()
        if not kept or kept[-1].at <= outcome.at:
            kept.append(outcome)
        else:
            insort(kept, outcome, key=_at)
        self._evict_key(outcome.carrier, outcome.country)
        return True

    def record_all(self, outcomes: Iterable[AttemptOutcome]) -> int:
        """Keep several outcomes (e.g. to warm up after a restart); returns how many were kept."""
        return sum(1 for outcome in outcomes if self.record(outcome))

    def evict(self, now: datetime) -> None:
        """Drop every outcome too old for the longest window at `now`."""
        self._advance(now)
        for carrier in list(self._outcomes):
            for country in list(self._outcomes[carrier]):
                self._evict_key(carrier, country)

    def figures(
        self, *, carrier: str, window: timedelta, now: datetime, country: str | None = None
    ) -> QualityFigures:
        """The carrier's figures over `window` ending at `now`, for one country or all of them."""
        self._check_window(window, now)
        self.evict(now)
        return self._figures(carrier=carrier, country=country, window=window, now=now)

    def all_figures(self, *, window: timedelta, now: datetime) -> list[QualityFigures]:
        """For each carrier (by code): its overall figures, then one per country (by code)."""
        self._check_window(window, now)
        self.evict(now)
        result: list[QualityFigures] = []
        for carrier in self.carriers():
            result.append(self._figures(carrier=carrier, country=None, window=window, now=now))
            result.extend(
                self._figures(carrier=carrier, country=country, window=window, now=now)
                for country in self.countries(carrier)
            )
        return result

    def ner_table(
        self, *, window: timedelta, now: datetime, min_attempts: int = 1
    ) -> dict[tuple[str, str], Decimal]:
        """Exact NER per (carrier, country), for keys with at least `min_attempts` attempts.

        The shape the quality-weighted routing strategy takes; a key left out counts as
        unknown there.
        """
        return ner_table(self.all_figures(window=window, now=now), min_attempts=min_attempts)

    def _figures(
        self, *, carrier: str, country: str | None, window: timedelta, now: datetime
    ) -> QualityFigures:
        countries = self._outcomes.get(carrier, {})
        if country is None:
            selected = list(countries.values())
        else:
            selected = [countries[country]] if country in countries else []
        in_window = (outcome for kept in selected for outcome in _within(kept, now - window, now))
        return _summarise(in_window, carrier=carrier, country=country, window=window, now=now)

    def _check_window(self, window: timedelta, now: datetime) -> None:
        if now.tzinfo is None:
            raise InvalidInput("now must be time-zone aware")
        if not timedelta(0) < window <= self._longest_window:
            raise InvalidInput(
                "a quality window is positive and no longer than the longest window kept",
                window=str(window),
                longest_window=str(self._longest_window),
            )

    def _advance(self, moment: datetime) -> None:
        if self._latest is None or moment > self._latest:
            self._latest = moment

    def _evict_key(self, carrier: str, country: str) -> None:
        assert self._latest is not None
        oldest_allowed = self._latest - self._longest_window
        countries = self._outcomes[carrier]
        kept = countries[country]
        while kept and kept[0].at <= oldest_allowed:
            kept.popleft()
        if not kept:
            del countries[country]
            if not countries:
                del self._outcomes[carrier]


def ner_table(
    all_figures: Iterable[QualityFigures], *, min_attempts: int = 1
) -> dict[tuple[str, str], Decimal]:
    """`QualityWindow.ner_table` from figures already summarised by `all_figures` (one pass
    over the outcomes serves both the de-preference verdicts and the routing table)."""
    table: dict[tuple[str, str], Decimal] = {}
    for figures in all_figures:
        if figures.country is None or figures.attempts < max(min_attempts, 1):
            continue
        ratio = Decimal(figures.effective) / Decimal(figures.attempts)
        table[(figures.carrier, figures.country)] = ratio.quantize(
            _RATIO_QUANTUM, rounding=ROUND_HALF_EVEN
        )
    return table


def _within(
    kept: deque[AttemptOutcome], after: datetime, until: datetime
) -> Iterator[AttemptOutcome]:
    """Outcomes with `after < at <= until`, newest first: walks only the window's own entries."""
    for outcome in reversed(kept):
        if outcome.at <= after:
            return
        if outcome.at <= until:
            yield outcome


def _nearest_rank(ordered: list[int], percent: int) -> int:
    """The nearest-rank percentile: the smallest value with at least `percent`% at or below it."""
    rank = max(1, -(-percent * len(ordered) // 100))  # ceil(percent / 100 * n), in integers
    return ordered[rank - 1]


def _summarise(
    outcomes: Iterable[AttemptOutcome],
    *,
    carrier: str,
    country: str | None,
    window: timedelta,
    now: datetime,
) -> QualityFigures:
    attempts = answered = effective = 0
    durations_ms: list[int] = []
    delays_ms: list[int] = []
    for outcome in outcomes:
        attempts += 1
        kind = outcome.outcome
        if kind is Outcome.ANSWERED:
            answered += 1
            if outcome.duration_ms is not None:
                durations_ms.append(outcome.duration_ms)
        if kind.effective:
            effective += 1
        if outcome.pdd_ms is not None:
            delays_ms.append(outcome.pdd_ms)
    delays_ms.sort()
    return QualityFigures(
        carrier=carrier,
        country=country,
        window=window,
        at=now,
        attempts=attempts,
        answered=answered,
        effective=effective,
        asr=round(answered / attempts, _RATIO_PLACES) if attempts else None,
        ner=round(effective / attempts, _RATIO_PLACES) if attempts else None,
        acd_seconds=(
            round(sum(durations_ms) / len(durations_ms) / 1000, _ACD_PLACES)
            if durations_ms
            else None
        ),
        pdd_p50_ms=_nearest_rank(delays_ms, 50) if delays_ms else None,
        pdd_p95_ms=_nearest_rank(delays_ms, 95) if delays_ms else None,
    )
