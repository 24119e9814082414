"""Dialling habits through the real edge (issue 11, fault 9): a subscriber whose phone is in
Montreal reaches the same Moroccan mobile dialling `+212...`, `00212...` (softphones dial 00
whatever the country) and `011212...` (North America's own international prefix); a number
libphonenumber lists in no range (issue 9, fault 12) is refused before any carrier sees it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Brain

from support.sipp import SippCarrier, free_port, run_caller
from tawasol.adapters.sip import EdgeProcess

pytestmark = pytest.mark.sip

USER, PASSWORD = "yasmine", "yasmine-e2e-2026"


@pytest.fixture(scope="module")
def montreal_subscriber(brain: Brain) -> str:
    brain.subscribe(
        USER,
        PASSWORD,
        plan_code="e2e-maroc",
        phone="+15145550177",
        name="Yasmine",
        time_zone="America/Montreal",
    )
    return USER


@pytest.mark.parametrize(
    ("dialled", "carrier_sees"),
    [
        ("00212661234567", "+212661234567"),
        ("+212661234567", "+212661234567"),
        ("011212661234567", "+212661234567"),
        ("00212500000000", None),  # possible length, in no listed range: not sold
    ],
)
def test_given_a_montreal_subscriber_when_dialling_then_plus_00_and_011_reach_the_carrier(
    brain: Brain,
    edge: EdgeProcess,
    workdir: Path,
    montreal_subscriber: str,
    dialled: str,
    carrier_sees: str | None,
) -> None:
    carrier = SippCarrier("carrier_answer.xml", free_port(), workdir, timeout_s=30).start()
    try:
        brain.point_carriers(flat_port=carrier.port, minute_port=carrier.port)
        run = run_caller(
            "caller_call.xml" if carrier_sees else "caller_refused.xml",
            edge_port=edge.port,
            dialled=dialled,
            user=montreal_subscriber,
            password=PASSWORD,
            workdir=workdir,
            name=f"montreal-{dialled.lstrip('+')}",
            timeout_s=20,
        )
        invites = carrier.invites()
    finally:
        carrier.stop()

    if carrier_sees is None:
        assert run.returncode == 0, run.output
        refusal = run.received(403)[0]
        assert refusal.header("Warning") == '399 tawasol "destination_not_sold"'
        assert invites == []
    else:
        assert run.returncode == 0, run.output  # answered and hung up
        assert len(invites) == 1
        assert invites[0].first_line.startswith(f"INVITE sip:{carrier_sees}@")
