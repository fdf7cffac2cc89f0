"""Budget check and settle per request: `BudgetGate.admit` (reserve against every instance of the
key, atomically) plus `BudgetGate.settle`, with the SQLite ledger and with Redis on loopback.

    .venv/bin/python bench/budget.py [--requests 5000]

The key is under three budget instances (team, principal, org), as an engineer's key usually is.
`front` is the SQLite ledger behind the in-memory front that `policy serve` opens (leases, journal,
settles written behind). Redis runs as Debian's redis-server with appendonly (everysec), started and stopped by this script.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compiler import compile_policy
from runtime.access_log import EventLog
from runtime.budget.gate import Admission, BudgetGate
from runtime.ledger.base import Ledger
from runtime.ledger.front import FrontLedger
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.metrics import Metrics
from runtime.table import table_from_artifact

POLICY = """
providers: {p: {type: mock}}
models: {m: {providers: [p], price: {input: 1, output: 2}}}
teams: {eng: {defaults: {models_allowed: [m]}}}
virtual_keys:
  vk-a: {key_sha256: %s, principal: a@x.com, team: eng}
budgets:
  team: {scope: team, target: eng, window: day, limit_usd: 1000000, on_breach: {warn: 80%%, block: 100%%}}
  person: {scope: principal, target: '*', window: month, limit_usd: 1000000}
  org: {scope: org, window: month, limit_usd: 1000000}
""" % hashlib.sha256(b"k").hexdigest()


def measure(ledger: Ledger, requests: int) -> dict[str, tuple[float, float, float]]:
    work = Path(tempfile.mkdtemp())
    (work / "p.yaml").write_text(POLICY)
    result = compile_policy(work)
    assert result.artifact is not None, [d.message for d in result.errors]
    table = table_from_artifact(result.artifact)
    key = table.keys["vk-a"]
    route = key.routes["m"]
    gate = BudgetGate(ledger, EventLog(enabled=False), Metrics())
    payload = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
    samples: dict[str, list[float]] = {"admit": [], "settle": [], "both": []}

    async def run() -> None:
        for _ in range(requests):
            start = time.perf_counter()
            admission = await gate.admit_async(table, key, route.targets, payload, 120, datetime.now(UTC))
            middle = time.perf_counter()
            assert isinstance(admission, Admission), admission
            await gate.settle_async(admission, 1000, "usage")
            end = time.perf_counter()
            samples["admit"].append((middle - start) * 1e6)
            samples["settle"].append((end - middle) * 1e6)
            samples["both"].append((end - start) * 1e6)

    run_loop(run())
    gate.close()
    ledger.close()
    return summary(samples)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop, as `policy serve` does, where it is installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def summary(samples: dict[str, list[float]]) -> dict[str, tuple[float, float, float]]:
    """Median, p99 and mean of each kind of sample (the mean carries the batched writes a median
    leaves out)."""
    out = {}
    for name, values in samples.items():
        values.sort()
        out[name] = (statistics.median(values), values[int(len(values) * 0.99)], statistics.fmean(values))
    return out


HEADER = f"{'admit p50':>9} {'p99':>4}  {'settle p50':>10} {'p99':>3}  {'both p50':>8} {'p99':>4}  {'mean':>5}"


def show(name: str, figures: dict[str, tuple[float, float, float]], width: int = 8) -> None:
    cells = "  ".join(f"{figures[k][0]:>6.0f} {figures[k][1]:>6.0f}" for k in ("admit", "settle", "both"))
    print(f"{name:{width}} {cells} {figures['both'][2]:>6.0f}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_url() -> Iterator[str | None]:
    """A Debian redis-server on loopback with appendonly (everysec), for the block; None where it is
    not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    proc = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", tempfile.mkdtemp(),
                             "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    print("µs per request, 3 budget instances; admit is on the request path, settle runs after the answer")
    print(f"{'ledger':8} {HEADER}")
    show("sqlite", measure(SqliteLedger(Path(tempfile.mkdtemp())), args.requests))
    show("front", measure(FrontLedger(SqliteLedger(Path(tempfile.mkdtemp()))), args.requests))
    with redis_url() as url:
        if url is None:
            print("redis      (redis-server not installed; `make test` installs it)")
            return
        show("redis", measure(RedisLedger(url), args.requests))


if __name__ == "__main__":
    main()
