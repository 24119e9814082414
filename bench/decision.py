"""In-process decisions per second and latency, with a generated operator of 50,000 subscribers
and a 10,000-prefix rate deck.

Prints a Markdown table. Two workloads:
- "family": each subscriber calls one of a few numbers of their own (what fair use allows and
  what real subscribers do), so number classification is mostly cached;
- "cold": every call to a number never dialled before (classification cache missed).
Each is compared with a baseline measured in the same run: libphonenumber parsing the same
numbers alone, the floor of any decision that reads a number properly.

    .venv/bin/python bench/decision.py [--subscribers 50000] [--prefixes 10000] [--calls 40000]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import phonenumbers

from tawasol.domain.calls import CallRecord
from tawasol.domain.carriers import (
    BillingIncrement,
    Carrier,
    CarrierDestination,
    FlatRateContract,
    Gateway,
    Rate,
    RateDeck,
)
from tawasol.domain.catalog import DestinationRule
from tawasol.domain.decision import CallRequest, DecisionState, authorize_call
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.subscribers import Subscriber, Subscription, SubscriptionStatus
from tawasol.services.authorize_call import CallAuthorizer
from tawasol.services.ports import CatalogSnapshot
from tawasol.services.record_refusals import RefusalRecorder
from tawasol.services.sample_operator import sample_plans

NOW = datetime(2026, 11, 24, 21, 30, tzinfo=UTC)


def moroccan_number(rng: random.Random, first_digit: str) -> str:
    """A random Moroccan number in a range libphonenumber lists (as dialled: 00212...): people
    call numbers that exist, and unlisted ones are refused (issue 9, fault 12)."""
    while True:
        national = first_digit + f"{rng.randrange(10**8):08d}"
        if phonenumbers.is_valid_number(phonenumbers.parse("+212" + national)):
            return "00212" + national


def generate_operator(
    subscribers: int, prefixes: int, rng: random.Random
) -> tuple[CatalogSnapshot, list[list[str]]]:
    plans = {plan.code: plan for plan in sample_plans()}
    codes = [
        "maroc-illimite-mois",
        "maroc-illimite-semaine",
        "maroc-illimite-an",
        "soirees-maghreb",
    ]
    people: dict[str, Subscriber] = {}
    subscriptions: dict[int, list[Subscription]] = {}
    favourites: list[list[str]] = []
    for index in range(1, subscribers + 1):
        username = f"user{index:06d}"
        people[username] = Subscriber(
            id=index,
            name=f"Subscriber {index}",
            email="",
            phone="+33612345678",
            locale="fr",
            time_zone=rng.choice(["Europe/Paris", "America/Montreal"]),
            sip_username=username,
            ha1="0" * 32,
        )
        subscriptions[index] = [
            Subscription(
                id=index,
                subscriber_id=index,
                plan_code=rng.choice(codes),
                status=SubscriptionStatus.ACTIVE,
                period_start=NOW - timedelta(days=3),
                period_end=NOW + timedelta(days=27),
            )
        ]
        favourites.append(
            [moroccan_number(rng, rng.choice("675")) for _ in range(rng.randint(1, 4))]
        )
    since = datetime(2026, 1, 1, tzinfo=UTC)
    deck = RateDeck(
        Rate(
            "212" + f"{number:07d}"[: rng.randint(1, 7)],
            Money(Decimal(rng.randint(100, 1500)) / Decimal(10000), "EUR"),
            since,
            BillingIncrement(1, 1),
        )
        for number in rng.sample(range(10**7), prefixes)
    )
    morocco = (
        CarrierDestination(DestinationRule("MA", NumberKind.FIXED), 10),
        CarrierDestination(DestinationRule("MA", NumberKind.MOBILE), 10),
    )
    carriers = [
        Carrier(
            "ma-flat",
            "Flat",
            (Gateway("gw1", "127.0.0.1", 5080),),
            morocco,
            flat_rate=FlatRateContract(30, Money(Decimal("1200"), "EUR")),
        ),
        Carrier(
            "ma-minute", "Per minute", (Gateway("gw1", "127.0.0.1", 5082),), morocco, rate_deck=deck
        ),
        Carrier(
            "ma-minute-2",
            "Per minute 2",
            (Gateway("gw1", "127.0.0.1", 5084),),
            morocco,
            rate_deck=deck,
        ),
    ]
    snapshot = CatalogSnapshot(
        revision=1,
        plans=plans,
        subscribers=people,
        subscriptions=subscriptions,
        carriers=carriers,
    )
    return snapshot, favourites


class SnapshotStore:
    """Just enough of the Store port for the authorizer: the catalog, no history."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self._snapshot = snapshot

    def catalog_revision(self) -> int:
        return self._snapshot.revision

    def load_catalog(self) -> CatalogSnapshot:
        return self._snapshot

    def usage(self, subscriptions, *, now, open_call_horizon):
        return {}

    def open_calls(self, *, started_after):
        return []


def measure(
    workloads: list[tuple[str, list[tuple[str, str]], Callable[[str, str], object]]],
    *,
    rounds: int,
) -> list[dict[str, float | str]]:
    """Each workload's calls in `rounds` slices, the workloads taking turns slice by slice.

    On a shared virtual machine the speed drifts by tens of percent within minutes; taking
    turns exposes every workload to the same drift, and the ratio to the baseline is taken
    within each round (the median of the rounds is reported).
    """
    latencies: dict[str, list[int]] = {label: [] for label, _, _ in workloads}
    rates: dict[str, list[float]] = {label: [] for label, _, _ in workloads}
    for index in range(rounds):
        for label, calls, decide in workloads:
            part = calls[index::rounds]
            gc.collect()
            started = time.perf_counter()
            for username, number in part:
                before = time.perf_counter_ns()
                decide(username, number)
                latencies[label].append(time.perf_counter_ns() - before)
            rates[label].append(len(part) / (time.perf_counter() - started))
    baseline = workloads[0][0]
    results: list[dict[str, float | str]] = []
    for label, _, _ in workloads:
        ordered = sorted(latencies[label])
        results.append(
            {
                "label": label,
                "per_second": statistics.median(rates[label]),
                "x_baseline": statistics.median(
                    mine / base for mine, base in zip(rates[label], rates[baseline], strict=True)
                ),
                "p50_us": ordered[len(ordered) // 2] / 1000,
                "p99_us": ordered[int(len(ordered) * 0.99)] / 1000,
            }
        )
    return results


class _CountingRefusalStore:
    def __init__(self) -> None:
        self.records = 0

    def record_refusals(self, records: Sequence[CallRecord]) -> int:
        self.records += len(records)
        return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--prefixes", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=8, help="turns the workloads take")
    options = parser.parse_args()
    rng = random.Random(options.seed)

    t0 = time.perf_counter()
    snapshot, favourites = generate_operator(options.subscribers, options.prefixes, rng)
    build_s = time.perf_counter() - t0
    usernames = list(snapshot.subscribers)
    state = DecisionState(
        subscribers=snapshot.subscribers,
        subscriptions=snapshot.subscriptions,
        plans=snapshot.plans,
        carriers=snapshot.carriers,
    )
    family = []
    for _ in range(options.calls):
        index = rng.randrange(len(usernames))
        family.append((usernames[index], rng.choice(favourites[index])))
    cold = [
        (rng.choice(usernames), moroccan_number(rng, rng.choice("67")))
        for _ in range(options.calls)
    ]

    # Tunisian numbers: outside every Moroccan plan, so refused and recorded.
    refused = [(username, "002162" + f"{rng.randrange(10**7):07d}") for username, _ in family]

    # Warm the classification cache as a running brain would be after a while.
    for username, number in family:
        authorize_call(CallRequest(username, number), state, NOW)
    allowed = sum(authorize_call(CallRequest(u, n), state, NOW).allowed for u, n in family[:2000])

    def parse_only(_username: str, number: str) -> None:
        parsed = phonenumbers.parse(number, "FR")
        phonenumbers.number_type(parsed)

    def domain_decision(username: str, number: str) -> None:
        authorize_call(CallRequest(username, number), state, NOW)

    # Refused calls are queued for the call records by the authorizer's hook; the writer
    # thread hands them to a store that only counts them (the database write is off the
    # decision path, which is what this measures).
    refusals = RefusalRecorder(store=_CountingRefusalStore())
    authorizer = CallAuthorizer(
        store=SnapshotStore(snapshot),
        clock=lambda: NOW,
        realm="bench",
        fake_ha1_secret=b"k",
        on_refused=refusals.refused,
    )
    counter = iter(range(10**9))

    def service_decision(username: str, number: str) -> None:
        call_id = f"c{next(counter)}"
        authorizer.authorize(CallRequest(username, number, call_id=call_id))
        authorizer.forget_call(call_id)  # the call ends: keep concurrent-call counts flat

    # `cold` numbers are random and never dialled before, by the warm-up or by another row:
    # the cold row misses the classification cache in every round.
    results = measure(
        [
            ("baseline: phonenumbers parse + type", cold, parse_only),
            ("domain authorize_call, family numbers (cached)", family, domain_decision),
            ("service CallAuthorizer.authorize, family numbers", family, service_decision),
            ("domain authorize_call, never-seen numbers", cold, domain_decision),
            (
                "service CallAuthorizer.authorize, refused (not in plan), recorded",
                refused,
                service_decision,
            ),
        ],
        rounds=options.rounds,
    )

    print(
        f"## In-process decisions ({platform.node()}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n"
    )
    print(
        f"{options.subscribers:,} subscribers, {len(snapshot.carriers[1].rate_deck):,} rates, "
        f"{options.calls:,} calls per row; operator built in {build_s:.1f} s; "
        f"{allowed}/2000 sample decisions allowed; the workloads take turns in "
        f"{options.rounds} rounds (decisions/s and x baseline: medians of the rounds)\n"
    )
    print("| workload | decisions/s | p50 µs | p99 µs | x baseline |")
    print("|---|---:|---:|---:|---:|")
    for row in results:
        print(
            f"| {row['label']} | {row['per_second']:,.0f} | {row['p50_us']:.1f} | "
            f"{row['p99_us']:.1f} | {row['x_baseline']:.2f} |"
        )


if __name__ == "__main__":
    main()
