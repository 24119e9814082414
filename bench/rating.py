"""CDR rating throughput: CDRs rated per second per core, by the reference `rate_call` and by
the fast path (`RatingTable`: decks compiled once, integer millionths).

Generates answered, finished CDRs (seeded) to Moroccan, Tunisian and French numbers on a
per-minute carrier with a rate deck of `--prefixes` prefixes (two effective dates each, 60/60
and 1/1 increments) and on a flat-rate carrier, then rates them in one thread three ways:
`rate_call` per record (the reference), `RatingTable.rate` per record (the same records back),
`RatingTable.costs` over the batch (rate and cost in millionths per per-minute call, no records
built: re-rating in bulk). The figure is CDRs per CPU second of this process (process_time:
one core, whatever else the shared machine runs), with the wall-clock rate and the load average
beside it. Goal (issue 14): 1,000,000 CDRs per second per core.

    .venv/bin/python bench/rating.py [--cdrs 300000] [--prefixes 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tawasol.domain.calls import CallAttempt, CallRecord
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
from tawasol.domain.money import Money
from tawasol.domain.numbering import NumberKind
from tawasol.domain.rating import RatingTable, rate_call

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
CHANGE = datetime(2026, 10, 1, tzinfo=UTC)


def carriers(prefixes: int, rng: random.Random) -> dict[str, Carrier]:
    rates = []
    for _ in range(prefixes):
        country = rng.choice(("2126", "2127", "2125", "2162", "2169", "336", "337"))
        prefix = country + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 4)))
        increment = rng.choice((BillingIncrement(60, 60), BillingIncrement(1, 1)))
        for since in (SINCE, CHANGE):
            rates.append(
                Rate(prefix, Money(Decimal(rng.randint(10, 1500)) / 10000, "EUR"), since, increment)
            )
    unique = {(r.prefix, r.effective_from): r for r in rates}
    destinations = (CarrierDestination(DestinationRule("MA", NumberKind.MOBILE)),)
    gateway = (Gateway("gw", "127.0.0.1", 5080),)
    return {
        "per-minute": Carrier(
            "per-minute", "Per minute", gateway, destinations, rate_deck=RateDeck(unique.values())
        ),
        "flat": Carrier(
            "flat",
            "Flat",
            gateway,
            destinations,
            flat_rate=FlatRateContract(30, Money(Decimal("900"), "EUR")),
        ),
    }


def cdrs(count: int, rng: random.Random) -> list[CallRecord]:
    records = []
    for number in range(count):
        started = SINCE + timedelta(seconds=rng.randrange(330 * 86400))
        carrier = "flat" if rng.random() < 0.3 else "per-minute"
        destination = (
            "+"
            + rng.choice(("2126", "2127", "2125", "2162", "336"))
            + "".join(rng.choice("0123456789") for _ in range(8))
        )
        duration_ms = rng.randint(1, 3600_000)
        attempt = CallAttempt(1, carrier, "gw", 200, 800, started, billing=None)
        records.append(
            CallRecord(
                call_id=f"c{number}",
                started_at=started,
                destination=destination,
                answered_at=started + timedelta(seconds=2),
                ended_at=started + timedelta(milliseconds=duration_ms + 2000),
                duration_ms=duration_ms,
                carrier=carrier,
                final_sip_code=200,
                attempts=(attempt,),
            )
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=300_000)
    parser.add_argument("--prefixes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    if not 1 <= options.cdrs <= 5_000_000 or not 1 <= options.repeat <= 20:
        parser.error("--cdrs 1..5,000,000 and --repeat 1..20")
    rng = random.Random(14)
    deck = carriers(options.prefixes, rng)
    records = cdrs(options.cdrs, rng)
    load = os.getloadavg()[0]
    table = RatingTable(deck)
    batch = [
        (record.carrier or "", record.destination, record.started_at, record.duration_ms or 0)
        for record in records
        if record.carrier == "per-minute"
    ]
    ways = (
        (
            "`rate_call` per record (reference)",
            len(records),
            lambda: [rate_call(r, deck) for r in records],
        ),
        ("`RatingTable.rate` per record", len(records), lambda: [table.rate(r) for r in records]),
        (
            "`RatingTable.costs`, per-minute calls in a batch",
            len(batch),
            lambda: table.costs(batch),
        ),
    )
    rows = []
    for label, count, rate in ways:
        cpu_rates, wall_rates = [], []
        for _ in range(options.repeat):
            cpu, wall = time.process_time(), time.perf_counter()
            rated = rate()
            cpu_rates.append(count / (time.process_time() - cpu))
            wall_rates.append(count / (time.perf_counter() - wall))
        costed = sum(
            1 for item in rated if item is not None and getattr(item, "cost", 0) is not None
        )
        rows.append((label, statistics.median(cpu_rates), statistics.median(wall_rates), costed))
    print(f"\n## CDR rating, {options.cdrs:,} CDRs, {options.prefixes:,} prefixes\n")
    print("| path | CDRs per CPU second (one core) | CDRs per wall-clock second | given a cost |")
    print("|---|---:|---:|---:|")
    for label, cpu_rate, wall_rate, costed in rows:
        print(f"| {label} | {cpu_rate:,.0f} | {wall_rate:,.0f} | {costed:,} |")
    same = [rate_call(r, deck) for r in records] == [table.rate(r) for r in records]
    print(f"\nThe fast path's records equal the reference's: {'yes' if same else 'NO'}.")
    print(f"\nLoad average: {load:.1f} before, {os.getloadavg()[0]:.1f} after (2 cores, shared).")
    print("Goal: 1,000,000 CDRs per second per core.")


if __name__ == "__main__":
    main()
