"""Admission and settle of a request under two budgets and three rate limits, in process, with the
SQLite ledger and with Redis on loopback: what issue 15's speed target measures.

    .venv/bin/python bench/ratelimit.py [--requests 5000]

Each request is one `Ledger.admit_async` (budget reservation and limit admission together: one
SQLite transaction, one Redis script call) and one `settle_async` (charge, tokens settled, slot in
flight given back: again one). Budgets: a team's daily and a principal's monthly; limits: requests
per minute, tokens per minute, requests in flight, all far from reached. The budget slots are
planned once, as `BudgetGate` keeps them until their window ends. Redis runs as in `budget.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from runtime.budget.gate import slot_for
from runtime.ledger.base import Ledger, Reserved
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.ratelimit.limits import LimitSpec, Rate
from runtime.table import BudgetInstance

BUDGETS = [
    ("team/eng", BudgetInstance("team", "team", "eng", "day", "UTC", 10**12, 8_000, 10_000, None)),
    ("person/a@x.com", BudgetInstance("person", "principal", "a@x.com", "month", "UTC", 10**12, None, 10_000, None)),
]
LIMITS = [
    LimitSpec("per-engineer/a@x.com", requests=Rate(10**9, 60)),
    LimitSpec("team-tokens/eng", tokens=Rate(10**12, 60)),
    LimitSpec("agent-fanout/a@x.com", in_flight=10**6),
]


def measure(ledger: Ledger, requests: int, limits: list[LimitSpec]) -> dict[str, tuple[float, float]]:
    slots = [slot_for(instance, spec, datetime.now(UTC)) for instance, spec in BUDGETS]
    samples: dict[str, list[float]] = {"admit": [], "settle": [], "both": []}

    async def run() -> None:
        for _ in range(requests):
            rid = uuid.uuid4().hex
            start = time.perf_counter()
            admitted = await ledger.admit_async(rid, slots, 2_000_000, limits, 700, time.time())
            middle = time.perf_counter()
            assert isinstance(admitted, Reserved)
            await ledger.settle_async(rid, 1_500_000, "usage", 420)
            end = time.perf_counter()
            samples["admit"].append((middle - start) * 1e6)
            samples["settle"].append((end - middle) * 1e6)
            samples["both"].append((end - start) * 1e6)

    try:
        import uvloop
    except ImportError:
        asyncio.run(run())
    else:
        uvloop.run(run())
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = (statistics.median(values), values[int(len(values) * 0.99)])
    return out


def show(name: str, figures: dict[str, tuple[float, float]]) -> None:
    cells = "  ".join(f"{figures[k][0]:>6.0f} {figures[k][1]:>6.0f}" for k in ("admit", "settle", "both"))
    print(f"{name:20} {cells}")


def main() -> None:
    from budget import free_port

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    print("µs per request, 2 budget instances; admit is on the request path, settle runs after the answer")
    print(f"{'ledger':20} {'admit p50':>9} {'p99':>4}  {'settle p50':>10} {'p99':>3}  {'both p50':>8} {'p99':>4}")
    show("sqlite, no limits", measure(SqliteLedger(Path(tempfile.mkdtemp())), args.requests, []))
    show("sqlite, 3 limits", measure(SqliteLedger(Path(tempfile.mkdtemp())), args.requests, LIMITS))
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis                (redis-server not installed; `make test` installs it)")
        return
    port = free_port()
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", tempfile.mkdtemp(),
                             "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        url = f"redis://127.0.0.1:{port}/0"
        show("redis, no limits", measure(RedisLedger(url), args.requests, []))
        show("redis, 3 limits", measure(RedisLedger(url, prefix="gp2:"), args.requests, LIMITS))
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
