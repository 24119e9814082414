"""What a carrier's final answer means: one table for the edge, quality, capacity and routing.

When a carrier ends an attempt with a final SIP response (300-699, RFC 3261 §21) and perhaps a
`Reason: Q.850;cause=N` header (RFC 3326; the cause values are ITU-T Q.850's), five questions
follow, and every part of tawasol must answer them the same way:

- **hunt**: try the next carrier (`FAIL_OVER`: the network failed, another carrier may
  succeed) or stop (`STOP`: the callee answered: busy, no answer, no such number; trying
  elsewhere would ring twice and cost twice);
- **fault**: whose failure it is: the callee (or the number dialled), the caller (hung up
  first), the carrier, our own network (our account or what we sent), the destination network;
- **congestion**: is it evidence that the carrier has no channel left (capacity learning);
- **outcome**: how quality counts it (the categories of ITU-T E.425: every outcome but
  `NETWORK_FAILURE` is "effective" for NER);
- **reply**: the SIP code and phrase the caller gets if the hunt ends on this answer.

The rule (`meaning_of`): a Q.850 cause with a meaning of its own wins over the SIP code (it is
the terminating network's own word, and RFC 3398 §7.2.4.1 maps many causes onto one code:
`480` with cause 47 is congestion carried on the wrong code); causes that say nothing precise
(16 normal clearing, 127 interworking, unassigned values of the normal class) leave the SIP
code's meaning. `487` is the exception: the caller's CANCEL ended the attempt, whatever cause
came with it. A code this table does not list means what the x00 code of its class means
(RFC 3261 §8.1.3.2).

This module is the one copy of the table: the SIP edge (Kamailio, under Debian's system Python)
loads this very file by path, so it imports nothing but the standard library (a test checks it).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

MAX_Q850_CAUSE = 127  # Q.850 §2.2.5: the cause value is a 7-bit field.


class HuntAction(enum.StrEnum):
    """After this answer: try the next route, or end the call with the table's reply."""

    FAIL_OVER = "fail_over"
    STOP = "stop"


class Fault(enum.StrEnum):
    """Whose failure an answer reports."""

    CALLEE = "callee"  # busy, no answer, declined, or a number that does not exist
    CALLER = "caller"  # hung up before the answer (our CANCEL)
    CARRIER = "carrier"  # the carrier could not or would not carry the call
    OUR_NETWORK = "our_network"  # our account with the carrier, or what we sent it
    DESTINATION_NETWORK = "destination_network"  # beyond the carrier: the callee's network


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


@dataclass(frozen=True)
class Meaning:
    """What one final answer means (see the module docstring for each field).

    `honours_retry_after`: a `Retry-After` in this answer tells us to leave the carrier alone
    for that long (RFC 3261 §21.5.4, 503 only, and only when the answer is the carrier's).
    `source` cites the rule.
    """

    action: HuntAction
    fault: Fault
    congestion: bool
    outcome: Outcome
    reply_code: int
    reply_phrase: str
    source: str
    honours_retry_after: bool = False

    @property
    def fails_over(self) -> bool:
        return self.action is HuntAction.FAIL_OVER

    def row(self) -> dict[str, object]:
        """The meaning as plain values (JSON, docs, tests)."""
        return {
            "action": self.action.value,
            "fault": self.fault.value,
            "congestion": self.congestion,
            "outcome": self.outcome.value,
            "reply_code": self.reply_code,
            "reply_phrase": self.reply_phrase,
            "honours_retry_after": self.honours_retry_after,
            "source": self.source,
        }


#: Our own timer ran out after the carrier's 18x: the callee's phone rang and nobody answered
#: (RFC 3261 Timer C). The edge files it as 408 with Q.850 cause 19, "no answer from user
#: (user alerted)" (RFC 3398 §7.2.4.1), so that it means what the carrier's own would.
#: Without an 18x the carrier is silent: 408 without cause, the carrier's failure.
RING_TIMEOUT_CAUSE = 19

# What the caller gets when every route failed over (the edge adds Reason: Q.850;cause=34).
ALL_ROUTES_FAILED = (503, "All Routes Failed")

_F, _S = HuntAction.FAIL_OVER, HuntAction.STOP


def _network(fault: Fault, source: str, *, congestion: bool = False) -> Meaning:
    code, phrase = ALL_ROUTES_FAILED
    return Meaning(_F, fault, congestion, Outcome.NETWORK_FAILURE, code, phrase, source)


def _stop(fault: Fault, outcome: Outcome, reply: tuple[int, str], source: str) -> Meaning:
    return Meaning(_S, fault, False, outcome, reply[0], reply[1], source)


_CALLEE, _CARRIER, _OURS, _DEST = (
    Fault.CALLEE,
    Fault.CARRIER,
    Fault.OUR_NETWORK,
    Fault.DESTINATION_NETWORK,
)

# RFC 3261 §21 reason phrases (and the RFCs that added codes), for the codes listed below.
PHRASES: Mapping[int, str] = MappingProxyType(
    {
        300: "Multiple Choices",
        301: "Moved Permanently",
        302: "Moved Temporarily",
        305: "Use Proxy",
        380: "Alternative Service",
        400: "Bad Request",
        401: "Unauthorized",
        402: "Payment Required",
        403: "Forbidden",
        404: "Not Found",
        405: "Method Not Allowed",
        406: "Not Acceptable",
        407: "Proxy Authentication Required",
        408: "Request Timeout",
        410: "Gone",
        412: "Conditional Request Failed",
        413: "Request Entity Too Large",
        414: "Request-URI Too Long",
        415: "Unsupported Media Type",
        416: "Unsupported URI Scheme",
        417: "Unknown Resource-Priority",
        420: "Bad Extension",
        421: "Extension Required",
        422: "Session Interval Too Small",
        423: "Interval Too Brief",
        428: "Use Identity Header",
        429: "Provide Referrer Identity",
        430: "Flow Failed",
        433: "Anonymity Disallowed",
        436: "Bad Identity Info",
        437: "Unsupported Credential",
        438: "Invalid Identity Header",
        439: "First Hop Lacks Outbound Support",
        440: "Max-Breadth Exceeded",
        469: "Bad Info Package",
        470: "Consent Needed",
        480: "Temporarily Unavailable",
        481: "Call/Transaction Does Not Exist",
        482: "Loop Detected",
        483: "Too Many Hops",
        484: "Address Incomplete",
        485: "Ambiguous",
        486: "Busy Here",
        487: "Request Terminated",
        488: "Not Acceptable Here",
        489: "Bad Event",
        491: "Request Pending",
        493: "Undecipherable",
        494: "Security Agreement Required",
        500: "Server Internal Error",
        501: "Not Implemented",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Server Time-out",
        505: "Version Not Supported",
        513: "Message Too Large",
        555: "Push Notification Service Not Supported",
        580: "Precondition Failure",
        600: "Busy Everywhere",
        603: "Decline",
        604: "Does Not Exist Anywhere",
        606: "Not Acceptable",
        607: "Unwanted",
        608: "Rejected",
    }
)


def _callee(code: int, outcome: Outcome, source: str) -> Meaning:
    return _stop(_CALLEE, outcome, (code, PHRASES[code]), source)


_REDIRECT = _network(
    _CARRIER,
    "RFC 3261 §21.3: a carrier's redirection is not followed (the new contact would be reached "
    "outside our routing and billing); another carrier may take the call",
)
_OUR_REQUEST = "RFC 3261 §21.4: the carrier refuses what we sent or our account; another may not"
_CARRIER_4XX = "RFC 3261 §21.4: this carrier's refusal, not the callee's"
_SERVER = "RFC 3261 §21.5: the server failed; the request may succeed elsewhere"
_GLOBAL = "RFC 3261 §21.6, §16.7: a global failure ends the search"

_CODE_MEANINGS: dict[int, Meaning] = {code: _REDIRECT for code in (300, 301, 302, 305, 380)}
_OUR_REQUEST_CODES = (400, 401, 402, 407, 413, 414, 415, 416, 417, 420, 421, 422, 423, 428)
_CODE_MEANINGS.update(
    {
        code: _network(_OURS, _OUR_REQUEST)
        for code in (*_OUR_REQUEST_CODES, 429, 436, 437, 438, 439, 440, 469, 470, 489, 493, 494)
    }
)
_CODE_MEANINGS.update(
    {code: _network(_CARRIER, _CARRIER_4XX) for code in (405, 406, 412, 430, 481, 491)}
)
_CODE_MEANINGS.update(
    {
        # A bare 403 from a carrier to its customer means "not for you" (account, credit,
        # blocked route); with cause 21 it is the callee's rejection (RFC 3398: 21 -> 403).
        403: _network(_CARRIER, "RFC 3261 §21.4.4: the carrier refuses us; cause 21 is the callee"),
        404: _callee(404, Outcome.ADDRESS_ERROR, "RFC 3398 §8.2.6.1: 404 <-> cause 1"),
        408: _network(_DEST, "RFC 3398 §8.2.6.1: 408 <-> cause 102, a timer expired"),
        410: _callee(410, Outcome.ADDRESS_ERROR, "RFC 3398 §8.2.6.1: 410 <-> cause 22"),
        433: _callee(433, Outcome.REJECTED, "RFC 5079: the callee refuses anonymous calls"),
        480: _callee(480, Outcome.NO_ANSWER, "RFC 3398 §8.2.6.1: 480 <-> cause 18/19/20"),
        482: _network(_CARRIER, "RFC 3261 §21.4.20: a loop in the carrier's routing"),
        483: _network(_CARRIER, "RFC 3261 §21.4.21: too many hops in the carrier's routing"),
        484: _callee(484, Outcome.ADDRESS_ERROR, "RFC 3398 §8.2.6.1: 484 <-> cause 28"),
        485: _callee(485, Outcome.ADDRESS_ERROR, "RFC 3398 §8.2.6.1: 485 <-> cause 1"),
        486: _callee(486, Outcome.USER_BUSY, "RFC 3398 §8.2.6.1: 486 <-> cause 17"),
        487: _stop(
            Fault.CALLER,
            Outcome.ABANDONED,
            (487, PHRASES[487]),
            "RFC 3261 §9.1: the caller cancelled before the answer",
        ),
        488: _network(_CARRIER, "RFC 3398: 488 <-> cause 65; another carrier may carry the media"),
        500: _network(_CARRIER, _SERVER),
        501: _network(_CARRIER, _SERVER),
        502: _network(_DEST, "RFC 3261 §21.5.3, RFC 3398: 502 <-> cause 27"),
        503: replace(
            _network(
                _CARRIER,
                "RFC 3261 §21.5.4: overloaded or in maintenance; Retry-After says for how long",
                congestion=True,
            ),
            honours_retry_after=True,
        ),
        504: _network(_DEST, "RFC 3261 §21.5.5, RFC 3398: 504 <-> cause 102"),
        505: _network(_CARRIER, _SERVER),
        513: _network(_CARRIER, _SERVER),
        555: _network(_CARRIER, _SERVER),
        580: _network(_CARRIER, _SERVER),
        600: _callee(600, Outcome.USER_BUSY, f"{_GLOBAL}; RFC 3398: 600 <-> cause 17"),
        603: _callee(603, Outcome.REJECTED, f"{_GLOBAL}; RFC 3398: 603 <-> cause 21"),
        604: _callee(604, Outcome.ADDRESS_ERROR, f"{_GLOBAL}; RFC 3398: 604 <-> cause 1"),
        606: _callee(606, Outcome.REJECTED, f"{_GLOBAL}; E.425: terminal reject"),
        607: _callee(607, Outcome.REJECTED, f"{_GLOBAL}; RFC 8197: unwanted call"),
        608: _callee(608, Outcome.REJECTED, f"{_GLOBAL}; RFC 8688: rejected for the callee"),
    }
)
#: Final SIP code -> meaning, for the codes RFC 3261 and later RFCs define.
CODE_MEANINGS: Mapping[int, Meaning] = MappingProxyType(_CODE_MEANINGS)

#: Codes whose meaning no Q.850 cause changes.
CODE_WINS = frozenset({487})


def _cause_callee(outcome: Outcome, reply: int, source: str) -> Meaning:
    return _stop(_CALLEE, outcome, (reply, PHRASES[reply]), f"Q.850, RFC 3398 §7.2.4.1: {source}")


def _cause_network(fault: Fault, source: str, *, congestion: bool = False) -> Meaning:
    return _network(fault, f"Q.850, RFC 3398 §7.2.4.1: {source}", congestion=congestion)


_CAUSE_MEANINGS: dict[int, Meaning] = {
    1: _cause_callee(Outcome.ADDRESS_ERROR, 404, "1 unallocated number"),
    # RFC 3398 maps "no route" to 404 too, but it is a gap in the carrier's routing: another
    # carrier may well reach the number.
    2: _cause_network(_CARRIER, "2 no route to the transit network"),
    3: _cause_network(_CARRIER, "3 no route to destination"),
    6: _cause_network(_CARRIER, "6 channel unacceptable"),
    8: _cause_network(_CARRIER, "8 preemption"),
    9: _cause_network(_CARRIER, "9 preemption, circuit reserved"),
    17: _cause_callee(Outcome.USER_BUSY, 486, "17 user busy"),
    18: _cause_callee(Outcome.NO_ANSWER, 408, "18 no user responding"),
    19: _cause_callee(Outcome.NO_ANSWER, 480, "19 no answer from user (alerted)"),
    20: _cause_callee(Outcome.REJECTED, 480, "20 subscriber absent (E.425 unavailability)"),
    21: _cause_callee(Outcome.REJECTED, 403, "21 call rejected (E.425 terminal reject)"),
    22: _cause_callee(Outcome.ADDRESS_ERROR, 410, "22 number changed"),
    23: _cause_callee(Outcome.ADDRESS_ERROR, 410, "23 redirection to new destination"),
    25: _cause_network(_CARRIER, "25 exchange routing error"),
    26: _cause_callee(Outcome.REJECTED, 404, "26 non-selected user clearing"),
    27: _cause_network(_DEST, "27 destination out of order (502)"),
    28: _cause_callee(Outcome.ADDRESS_ERROR, 484, "28 invalid number format"),
    29: _cause_network(_CARRIER, "29 facility rejected (501)"),
    31: _cause_callee(Outcome.REJECTED, 480, "31 normal, unspecified (480)"),
    34: _cause_network(_CARRIER, "34 no circuit/channel available", congestion=True),
    38: _cause_network(_DEST, "38 network out of order (503)"),
    41: _cause_network(_CARRIER, "41 temporary failure (503)"),
    42: _cause_network(_CARRIER, "42 switching equipment congestion", congestion=True),
    44: _cause_network(_CARRIER, "44 requested circuit/channel not available", congestion=True),
    47: _cause_network(_CARRIER, "47 resource unavailable, unspecified", congestion=True),
    50: _cause_network(_OURS, "50 requested facility not subscribed"),
    52: _cause_network(_OURS, "52 outgoing calls barred"),
    53: _cause_network(_OURS, "53 outgoing calls barred within CUG"),
    54: _cause_callee(Outcome.REJECTED, 403, "54 incoming calls barred"),
    55: _cause_callee(Outcome.REJECTED, 403, "55 incoming calls barred within CUG"),
    57: _cause_network(_OURS, "57 bearer capability not authorized"),
    62: _cause_network(_OURS, "62 inconsistency in outgoing access information"),
    87: _cause_callee(Outcome.REJECTED, 403, "87 user not member of CUG"),
    88: _cause_network(_DEST, "88 incompatible destination (503)"),
    102: _cause_network(_DEST, "102 recovery on timer expiry (504)"),
}
# Q.850 classes: the causes of a class not listed above mean what the class means.
for _cause in range(32, 112):
    if _cause not in _CAUSE_MEANINGS:
        _class = (
            "resource unavailable"
            if _cause < 48
            else "service or option not available"
            if _cause < 64
            else "service or option not implemented"
            if _cause < 80
            else "invalid message"
            if _cause < 96
            else "protocol error"
        )
        _CAUSE_MEANINGS[_cause] = _cause_network(_CARRIER, f"{_cause}: class {_class}")
#: Q.850 cause -> meaning. Causes absent here (the normal class's 4-16, 24, 30 and the
#: interworking class 112-127) say nothing the SIP code does not: the code's meaning stands.
CAUSE_MEANINGS: Mapping[int, Meaning] = MappingProxyType(dict(sorted(_CAUSE_MEANINGS.items())))
del _cause, _class

#: Final SIP codes after which the hunt goes on when no cause says otherwise (the decision
#: API's `failover_codes`, kept for clients that read it).
FAILOVER_CODES: tuple[int, ...] = tuple(
    sorted(code for code, meaning in CODE_MEANINGS.items() if meaning.fails_over)
)


def code_meaning(sip_code: int) -> Meaning:
    """The meaning of a final SIP code alone (300-699); an unlisted code is its class's x00
    (RFC 3261 §8.1.3.2). Raises ValueError outside 300-699."""
    if not 300 <= sip_code <= 699:
        raise ValueError(f"a failed attempt's final SIP code is 300-699, not {sip_code}")
    return CODE_MEANINGS.get(sip_code) or CODE_MEANINGS[sip_code // 100 * 100]


def meaning_of(sip_code: int, q850_cause: int | None = None) -> Meaning:
    """What a final answer `sip_code` (300-699) with an optional Q.850 cause (1-127) means.

    A cause outside 1-127 is ignored (it is not a Q.850 value). Raises ValueError for a code
    outside 300-699.
    """
    by_code = code_meaning(sip_code)
    if sip_code in CODE_WINS or q850_cause is None:
        return by_code
    by_cause = CAUSE_MEANINGS.get(q850_cause)
    if by_cause is None:
        return by_code
    if by_code.honours_retry_after and by_cause.fails_over:
        return replace(by_cause, honours_retry_after=True)
    return by_cause


def q850_cause_from_reason(value: str | None) -> int | None:
    """The Q.850 cause in a Reason header value (RFC 3326), or None.

    `Q.850;cause=17;text="User busy"` gives 17; so do `SIP;cause=486, Q.850;cause=17` and
    `Q.850;text="Temporary failure, retry";cause=41` (commas and semicolons inside quoted text
    separate nothing). A cause outside 1-127 or not made of digits is ignored.
    """
    if not value:
        return None
    text = value.strip()
    if text[:7].lower() == "reason:":
        text = text[7:]
    if "q.850" not in text.lower():
        return None  # most answers carry no Q.850 Reason: skip the character walk
    for reason in _split_outside_quotes(text, ","):
        protocol, *params = _split_outside_quotes(reason, ";")
        if protocol.strip().upper() != "Q.850":
            continue
        for param in params:
            name, _, raw = param.partition("=")
            raw = raw.strip()
            if name.strip().lower() == "cause" and raw.isascii() and raw.isdigit():
                cause = int(raw)
                return cause if 1 <= cause <= MAX_Q850_CAUSE else None
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


def retry_after_seconds(value: str | None, *, maximum_s: int) -> int | None:
    """The delay of a `Retry-After` header value (RFC 3261 §20.33: `delta-seconds [comment]
    *(;param)`), capped at `maximum_s`; None when absent, zero or not a number."""
    if not value:
        return None
    head = value.strip().split(";", 1)[0].split("(", 1)[0].strip()
    if not (head.isascii() and head.isdigit()):
        return None
    seconds = min(int(head), maximum_s)
    return seconds if seconds > 0 else None


def table_rows() -> dict[str, object]:
    """The whole table as plain values: every code 300-699 (listed or not) and every cause
    1-127 that has a meaning of its own. The shape docs and agreement tests read."""
    return {
        "codes": {str(code): code_meaning(code).row() for code in range(300, 700)},
        "causes": {str(cause): meaning.row() for cause, meaning in CAUSE_MEANINGS.items()},
        "code_wins": sorted(CODE_WINS),
    }
