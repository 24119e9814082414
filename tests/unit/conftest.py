"""Fixtures of the domain's unit tests: the sample operator (tests/support/operator.py), in
memory, and the routing rules any route list must satisfy.

The fixtures are session-scoped so that Hypothesis tests can use them: every value is frozen
and tests derive variants with `dataclasses.replace`, never by mutating the mappings.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import strategies as st

from support.operator import SampleOperator, build_sample_operator
from tawasol.domain.carriers import Carrier, CarrierState
from tawasol.domain.decision import DecisionState
from tawasol.domain.numbering import Destination
from tawasol.domain.routing import CarrierTariff, Route


class RoutingRules:
    """What any route list must satisfy, written from the routing rules, not from the code.

    A carrier is *full* when it cannot take one more call at all: its trunk's `max_channels` are
    in use, or, for a flat-rate-only carrier (no per-minute rates to overflow on), all its paid
    channels are.
    """

    @staticmethod
    def capacity(carrier: Carrier) -> int | None:
        if carrier.max_channels is not None:
            return carrier.max_channels
        if carrier.flat_rate is not None and not carrier.rate_deck:
            return carrier.flat_rate.channels
        return None

    def is_full(self, carrier: Carrier, state: CarrierState) -> bool:
        limit = self.capacity(carrier)
        return limit is not None and state.channels_in_use >= limit

    @staticmethod
    def worlds(
        carriers: tuple[Carrier, ...],
    ) -> st.SearchStrategy[tuple[list[Carrier], dict[str, CarrierState]]]:
        """Random worlds: each carrier enabled or not, up or down, with 0-70 calls in progress
        (the sample trunks hold 30 and 60); a carrier may have no live state (up and idle)."""
        # Mostly usable (3 in 4), so that allowed calls are common enough to check.
        mostly = st.sampled_from([True, True, True, False])
        live_state = st.builds(
            CarrierState,
            up=mostly,
            # Around the sample limits (30 paid channels, 60-channel trunk) as often as not.
            channels_in_use=st.sampled_from(["limit", "limit", "any"]).flatmap(
                lambda kind: (
                    st.sampled_from([29, 30, 31, 59, 60, 61])
                    if kind == "limit"
                    else st.integers(min_value=0, max_value=70)
                )
            ),
        )
        enabled = st.tuples(*(mostly for _ in carriers)).map(
            lambda flags: [
                carrier if flag else replace(carrier, enabled=False)
                for carrier, flag in zip(carriers, flags, strict=True)
            ]
        )
        live = st.tuples(*(st.tuples(mostly, live_state) for _ in carriers)).map(
            lambda states: {
                carrier.code: live_state
                for carrier, (known, live_state) in zip(carriers, states, strict=True)
                if known
            }
        )
        return st.tuples(enabled, live)

    def assert_sound(
        self,
        routes: list[Route] | tuple[Route, ...],
        carriers: list[Carrier] | tuple[Carrier, ...],
        live: dict[str, CarrierState],
        destination: Destination,
    ) -> None:
        by_code = {carrier.code: carrier for carrier in carriers}
        for hop in routes:
            carrier = by_code[hop.carrier]
            state = live.get(carrier.code, CarrierState())
            assert carrier.enabled, f"disabled carrier {carrier.code} routed"
            assert state.up, f"carrier {carrier.code} marked down was routed"
            assert not self.is_full(carrier, state), f"full carrier {carrier.code} routed"
            assert carrier.priority_for(destination) is not None
            if hop.billing is CarrierTariff.FLAT_RATE:
                assert carrier.flat_rate is not None
                assert state.channels_in_use < carrier.flat_rate.channels
                assert hop.cost_per_minute is None
            else:
                assert hop.cost_per_minute is not None
        billings = [hop.billing for hop in routes]
        # Flat-rate routes first, then per-minute routes by non-decreasing cost.
        assert billings == sorted(billings, key=lambda billing: billing is CarrierTariff.PER_MINUTE)
        costs = [hop.cost_per_minute.amount for hop in routes if hop.cost_per_minute is not None]
        assert costs == sorted(costs)


@pytest.fixture(scope="session")
def routing_rules() -> RoutingRules:
    return RoutingRules()


@pytest.fixture(scope="session")
def operator() -> SampleOperator:
    return build_sample_operator()


@pytest.fixture(scope="session")
def state(operator: SampleOperator) -> DecisionState:
    return operator.state
