"""The one table of what carriers' answers mean, and every reader of it agreeing (issue 10).

Before it, four tables in four files disagreed: the edge failed over on a 503 carrying cause
20 while quality counted it as the callee's answer; the brain lowered a carrier's capacity on
a 480 carrying cause 47 while the edge stopped the hunt. These tests walk every final code
300-699 with every Q.850 cause 1-127 and with none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tawasol.adapters.sip.kemi import edge_rules
from tawasol.domain import sip_semantics
from tawasol.domain.carrier_health import is_congestion
from tawasol.domain.quality import attempt_outcome
from tawasol.domain.sip_semantics import Fault, HuntAction, meaning_of

CODES = range(300, 700)
CAUSES: tuple[int | None, ...] = (None, *range(1, 128))


def test_every_code_with_every_cause_means_one_consistent_thing_to_every_reader() -> None:
    for code in CODES:
        for cause in CAUSES:
            meaning = meaning_of(code, cause)
            where = f"{code} cause {cause}: {meaning}"
            # The edge fails over exactly when quality counts a network failure (E.425)...
            assert meaning.fails_over == (not meaning.outcome.effective), where
            assert (
                attempt_outcome(sip_code=code, q850_cause=cause, answered=False) is meaning.outcome
            )
            # ... congestion is only ever learned from an answer the edge failed over on ...
            assert is_congestion(code, cause) == meaning.congestion, where
            assert not meaning.congestion or meaning.fails_over, where
            # ... the callee's and the caller's answers stop the hunt, nobody else's does ...
            stops = meaning.fault in (Fault.CALLEE, Fault.CALLER)
            assert stops == (meaning.action is HuntAction.STOP), where
            # ... the caller never gets a redirection or a challenge meant for us ...
            if meaning.fails_over:
                assert (meaning.reply_code, meaning.reply_phrase) == (503, "All Routes Failed")
            else:
                assert 400 <= meaning.reply_code <= 699, where
                assert meaning.reply_code not in (401, 407), where
                assert meaning.reply_phrase == sip_semantics.PHRASES[meaning.reply_code], where
            # ... Retry-After is only a 503's, and only when it is the carrier's failure ...
            assert not meaning.honours_retry_after or (code == 503 and meaning.fails_over)
            assert meaning.source, where
            # ... and the edge, which loads this same module, gives the same verdict.
            assert edge_rules.attempt_meaning(
                code, local_timeout=False, rang=False, q850=cause
            ) == (
                code,
                cause,
                meaning,
            )


@pytest.mark.parametrize("cause", [None, 34, 41, 47, 102, 127])
@pytest.mark.parametrize("code", [500, 501, 502, 503, 504, 505, 513, 580, 555, 599])
def test_given_any_5xx_without_a_callee_cause_then_the_hunt_goes_on(
    code: int, cause: int | None
) -> None:
    # fault 2: RFC 3261 §21.5, the server failed; 501, 505, 513, 580 used to stop the hunt
    assert meaning_of(code, cause).fails_over


def test_given_480_with_cause_47_then_fail_over_and_congestion_together() -> None:
    # fault 1: congestion carried on the wrong code (FreeSWITCH #732)
    meaning = meaning_of(480, 47)
    assert meaning.fails_over and meaning.congestion
    assert meaning.fault is Fault.CARRIER
    # and the mirror case: a callee's cause on a 503 is the callee's, not a network failure
    assert meaning_of(503, 20).action is HuntAction.STOP
    assert meaning_of(503, 20).outcome.effective


def test_congestion_is_only_what_says_congestion() -> None:
    assert meaning_of(503).congestion  # RFC 3261 §21.5.4: overloaded
    assert {cause for cause in range(1, 128) if meaning_of(500, cause).congestion} == {
        34,
        42,
        44,
        47,
    }
    assert not meaning_of(503, 41).congestion  # temporary failure: not about channels
    assert not meaning_of(503, 38).congestion  # network out of order
    assert not meaning_of(408).congestion


def test_487_is_the_callers_whatever_cause_comes_with_it() -> None:
    for cause in CAUSES:
        assert meaning_of(487, cause).fault is Fault.CALLER


def test_a_stop_on_a_callee_cause_replies_the_rfc_3398_code() -> None:
    assert (meaning_of(503, 17).reply_code, meaning_of(503, 17).reply_phrase) == (486, "Busy Here")
    assert meaning_of(500, 1).reply_code == 404
    assert meaning_of(486).reply_code == 486  # the carrier's own reply is relayed


def test_codes_outside_final_failures_are_refused() -> None:
    for code in (200, 299, 700, 100):
        with pytest.raises(ValueError):
            meaning_of(code)


@pytest.mark.parametrize(
    ("header", "cause"),
    [
        ('Q.850;text="Temporary failure, retry";cause=41', 41),  # fault 7
        ('Q.850;text="a;b, c";cause=34', 34),
        ('SIP;cause=503;text="x, y", Q.850;cause=47', 47),
        ("Q.850;cause=300", None),
        ("SIP;cause=486", None),
        ("", None),
        (None, None),
    ],
)
def test_one_parser_reads_reason_headers_for_edge_and_brain(
    header: str | None, cause: int | None
) -> None:
    assert sip_semantics.q850_cause_from_reason(header) == cause
    assert edge_rules.q850_cause(header) == cause


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("300", 300),
        ("120 (maintenance);duration=60", 120),
        ("9999", 600),
        ("0", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_retry_after_is_read_and_capped(value: str | None, seconds: int | None) -> None:
    assert sip_semantics.retry_after_seconds(value, maximum_s=600) == seconds


def test_the_table_module_imports_only_the_standard_library() -> None:
    # The edge loads this very file inside Kamailio, where tawasol is not importable.
    source = Path(sip_semantics.__file__).read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module is not None
            assert node.module.split(".")[0] in {"__future__", *_STDLIB}
        elif isinstance(node, ast.Import):
            assert all(alias.name.split(".")[0] in _STDLIB for alias in node.names)


_STDLIB = {"enum", "collections", "dataclasses", "types"}


# -- docs/carriers.md states this table in words; it must not drift from the code ----------------
_FAULT_WORDS = {
    "callee": "the callee",
    "caller": "the caller",
    "carrier": "the carrier",
    "our_network": "us (our account or request)",
    "destination_network": "the destination network",
}
_OUTCOME_WORDS = {
    "user_busy": "busy (effective)",
    "no_answer": "no answer (effective)",
    "rejected": "rejected (effective)",
    "abandoned": "abandoned (effective)",
    "address_error": "wrong number (effective)",
    "network_failure": "network failure",
}


def _cells(meaning: sip_semantics.Meaning) -> list[str]:
    retry = " (honours Retry-After)" if meaning.honours_retry_after else ""
    return [
        "next carrier" if meaning.fails_over else "stop",
        _FAULT_WORDS[meaning.fault.value],
        ("yes" if meaning.congestion else "no") + retry,
        _OUTCOME_WORDS[meaning.outcome.value],
        "503 All Routes Failed, if it was the last route"
        if meaning.fails_over
        else f"{meaning.reply_code} {meaning.reply_phrase}",
    ]


def _row(label: str, meaning: sip_semantics.Meaning) -> str:
    return "| " + " | ".join([label, *_cells(meaning)]) + " |"


def render_docs_table() -> str:
    """The table as docs/carriers.md shows it (between its two `table` markers)."""
    header = "| {} | next? | whose failure | congestion | quality (NER) | the caller gets |"
    lines = [header.format("SIP answer"), "|---|---|---|---|---|---|"]
    lines += [
        _row(f"{code} {sip_semantics.PHRASES[code]}", meaning)
        for code, meaning in sorted(sip_semantics.CODE_MEANINGS.items())
    ]
    lines += ["", header.format("Q.850 cause"), "|---|---|---|---|---|---|"]
    runs: list[tuple[int, int, str, sip_semantics.Meaning]] = []
    for cause, meaning in sip_semantics.CAUSE_MEANINGS.items():
        named = "class" not in meaning.source
        label = meaning.source.split(": ", 1)[1]
        label = label.split(" ", 1)[1] if named else label.split(": class ", 1)[1] + " (class)"
        last = runs[-1] if runs else None
        if last and not named and last[1] == cause - 1 and last[2] == label:
            runs[-1] = (last[0], cause, label, meaning)
        else:
            runs.append((cause, cause, label, meaning))
    for first, last_cause, label, meaning in runs:
        number = str(first) if first == last_cause else f"{first}-{last_cause}"
        lines.append(_row(f"{number} {label}", meaning))
    return "\n".join(lines)


def test_docs_state_the_table_the_code_has() -> None:
    text = (Path(__file__).parents[2] / "docs" / "carriers.md").read_text()
    silent = [cause for cause in range(1, 128) if cause not in sip_semantics.CAUSE_MEANINGS]
    assert silent == [4, 5, 7, *range(10, 17), 24, 30, *range(112, 128)]
    assert "Causes\nnot listed (4, 5, 7, 10-16, 24, 30, 112-127)" in text
    start, end = "<!-- table: generated by tests/unit/test_sip_semantics.py -->", "<!-- /table -->"
    shown = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert shown == render_docs_table(), "docs/carriers.md: paste render_docs_table()'s output"
