"""Admission and settle of a request under two budgets and three rate limits, in process, with the
SQLite ledger and with Redis on loopback: what issue 15's speed target measures.

    .venv/bin/python bench/ratelimit.py [--requests 5000]

Each request is one `Ledger.admit_async` (budget reservation and limit admission together: one
SQLite transaction, one Redis script call) and one `settle_async` (charge, tokens settled, slot in
flight given back: again one). Budgets: a team's daily and a principal's monthly; limits: requests
per minute, tokens per minute, requests in flight, all far from reached. The budget slots are
planned once, as `BudgetGate` keeps them until their window ends. `front` rows go through the
in-memory front over the SQLite file, as `policy serve` opens it: admission against leases with one
journal line, the settle in memory and the journal, written behind in batches (the batch writes and
lease top-ups fall on the requests that trigger them, so they are in the figures). Redis runs as in
`budget.py`.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from budget import HEADER, redis_url, run_loop, show, summary

from runtime.budget.gate import slot_for
from runtime.ledger.base import Ledger, Reserved, reservation_id
from runtime.ledger.front import FrontLedger
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.ratelimit.limits import LimitSpec, Rate
from runtime.table import BudgetInstance

BUDGETS = [
    ("team/eng", BudgetInstance("team", "team", "eng", "day", "UTC", 10**12, 8_000, 10_000, None)),
    ("person/a@x.com", BudgetInstance("person", "principal", "a@x.com", "month", "UTC", 10**12, None, 10_000, None)),
]
WIDTH = 20
LIMITS = [
    LimitSpec("per-engineer/a@x.com", requests=Rate(10**9, 60)),
    LimitSpec("team-tokens/eng", tokens=Rate(10**12, 60)),
    LimitSpec("agent-fanout/a@x.com", in_flight=10**6),
]


def measure(ledger: Ledger, requests: int, limits: list[LimitSpec]) -> dict[str, tuple[float, float, float]]:
    slots = [slot_for(instance, spec, datetime.now(UTC)) for instance, spec in BUDGETS]
    samples: dict[str, list[float]] = {"admit": [], "settle": [], "both": []}

    async def run() -> None:
        for _ in range(requests):
            rid = reservation_id()
            start = time.perf_counter()
            admitted = await ledger.admit_async(rid, slots, 2_000_000, limits, 700, time.time())
            middle = time.perf_counter()
            assert isinstance(admitted, Reserved)
            await ledger.settle_async(rid, 1_500_000, "usage", 420)
            end = time.perf_counter()
            samples["admit"].append((middle - start) * 1e6)
            samples["settle"].append((end - middle) * 1e6)
            samples["both"].append((end - start) * 1e6)

    run_loop(run())
    ledger.close()
    return summary(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    print("µs per request, 2 budget instances; admit is on the request path, settle runs after the answer")
    print(f"{'ledger':20} {HEADER}")
    show("sqlite, no limits", measure(SqliteLedger(Path(tempfile.mkdtemp())), args.requests, []), WIDTH)
    show("sqlite, 3 limits", measure(SqliteLedger(Path(tempfile.mkdtemp())), args.requests, LIMITS), WIDTH)
    show("front, no limits", measure(FrontLedger(SqliteLedger(Path(tempfile.mkdtemp()))), args.requests, []), WIDTH)
    show("front, 3 limits", measure(FrontLedger(SqliteLedger(Path(tempfile.mkdtemp()))), args.requests, LIMITS), WIDTH)
    with redis_url() as url:
        if url is None:
            print("redis                (redis-server not installed; `make test` installs it)")
            return
        show("redis, no limits", measure(RedisLedger(url), args.requests, []), WIDTH)
        show("redis, 3 limits", measure(RedisLedger(url, prefix="gp2:"), args.requests, LIMITS), WIDTH)


if __name__ == "__main__":
    main()
