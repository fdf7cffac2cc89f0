"""What governance adds to one request, in process: the bench key's chat completion through the
whole ASGI app against the in-process `mock` provider, under the plain bench policy and under the
governed one (two budgets and three rate limits, never reached, the in-memory front over a fresh
SQLite ledger), as `policy serve` composes them. No sockets, so the figure is the Python work
alone; the difference between the two rows is what the peer benchmark's governed target pays.

The front writes on time as well as on counts (pending settles every 0.1 s, request permits held
0.25 s), so a slower run (a loaded host, callgrind) would write more often per request. The clock
the front and the gate read is therefore simulated: it moves `--step-us` per request (250 µs, the
plain proxy's c=32 rate on a quiet host), and a run's writes per request are the same however fast
it goes.

    .venv/bin/python bench/governed.py [--requests 20000] [--step-us 250] [--profile governed|plain]

Wall-clock µs per request are noisy on a shared machine; for a repeatable figure run one policy
under callgrind and compare instruction counts:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.governed \\
        .venv/bin/python bench/governed.py --only governed --requests 2000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from asgi_request import chat_completion

import runtime.budget.gate
import runtime.ledger.front
import runtime.ledger.sqlite
from cli.sources import load_source
from runtime.access_log import AccessLog
from runtime.app import Gatepost
from runtime.ledger.front import FrontLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.server import build_app

HERE = Path(__file__).resolve().parent
PROVIDER = re.compile(r"  bench-openai:\n    type: openai\n    base_url: \"@UPSTREAM@\"\n    api_key: env:BENCH_UPSTREAM_KEY\n")


class SimulatedTime:
    """The `time` module as the ledger and the gate see it: `time()` and `monotonic()` move by
    `step_s` at each `tick` (one per request); everything else is the real module."""

    def __init__(self, step_s: float) -> None:
        self.step_s = step_s
        self.wall = time.time()
        self.mono = time.monotonic()

    def tick(self) -> None:
        self.wall += self.step_s
        self.mono += self.step_s

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


CLOCK = SimulatedTime(250e-6)
for module in (runtime.budget.gate, runtime.ledger.front, runtime.ledger.sqlite):
    module.time = CLOCK  # type: ignore[attr-defined]


def app_for(policy: str, work: Path) -> Gatepost:
    """The bench policy with its provider made the in-process mock."""
    text = (HERE / "proxy" / f"{policy}.yaml.tmpl").read_text()
    text, replaced = PROVIDER.subn("  bench-openai:\n    type: mock\n", text)
    assert replaced == 1, "the bench policy's provider block changed"
    source = work / policy
    source.mkdir()
    (source / "policy.yaml").write_text(text)
    ledger = FrontLedger(SqliteLedger(work / f"{policy}-data"), clock=CLOCK.monotonic) if policy != "policy" else None
    return build_app(load_source(source), access_log=AccessLog(enabled=False), ledger=ledger)


async def one(app: Gatepost) -> int:
    status = await chat_completion(app)
    CLOCK.tick()
    return status


async def loop(app: Gatepost, requests: int) -> float:
    for _ in range(200):
        assert await one(app) == 200
    started = time.perf_counter()
    for _ in range(requests):
        await one(app)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--step-us", type=float, default=250.0, help="simulated time per request")
    parser.add_argument("--only", choices=("plain", "governed"))
    parser.add_argument("--profile", choices=("plain", "governed"), help="cProfile this policy's loop")
    args = parser.parse_args()
    CLOCK.step_s = args.step_us / 1e6
    work = Path(tempfile.mkdtemp(prefix="gatepost-governed-"))
    policies = {"plain": "policy", "governed": "policy-governed"}
    figures = {}
    for name, policy in policies.items():
        if args.only and name != args.only:
            continue
        app = app_for(policy, work)
        if args.profile == name:
            profile = cProfile.Profile()
            profile.enable()
            figures[name] = asyncio.run(loop(app, args.requests))
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(40)
        else:
            figures[name] = asyncio.run(loop(app, args.requests))
        if app.budgets is not None:
            app.budgets.ledger.close()
    for name, micros in figures.items():
        print(f"{name:9} {micros:7.1f} µs/request")
    if len(figures) == 2:
        print(f"governed/plain: {figures['plain'] / figures['governed']:.1%} of plain's requests/s")


if __name__ == "__main__":
    main()
