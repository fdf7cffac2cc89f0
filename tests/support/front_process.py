"""A process admitting through the in-memory front, for the tests that need a second process or
one killed with SIGKILL: `python -m tests.support.front_process <scenario> <data dir> <name>`.

Its clock never moves, so nothing is written behind by time: what it settles stays in memory and
in its journal until a lease top-up or its close. It says `ready` when it has done its part and
then waits on stdin (`close` closes the ledger cleanly; SIGKILL is the other way out)."""

from __future__ import annotations

import sys
from pathlib import Path

from runtime.ledger.base import Reserved, Slot
from runtime.ledger.front import FrontLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.ratelimit.limits import LimitSpec, Rate

USD = 10**12
NOW = 1_780_000_000.0
SLOT = Slot("eng-daily", "2026-11-24", "eng-daily", "team", "engineering", "day", USD, USD, 8 * USD // 10)
KILLED_LIMIT = LimitSpec("conc", tokens=Rate(10**9, 60), in_flight=100)
KILLED = [(f"k{i}", 1_000_000, 400_000 + i if i < 7 else None) for i in range(10)]
"""(id, estimate, actual or None for one never settled) of the requests of `killed`."""


def killed(ledger: FrontLedger, name: str) -> None:
    for rid, estimate, _ in KILLED:
        assert isinstance(ledger.admit(rid, [SLOT], estimate, [KILLED_LIMIT], 500, NOW), Reserved)
    for rid, _, actual in KILLED:
        if actual is not None:
            ledger.settle(rid, actual, "usage", 300, NOW)


def near_threshold(ledger: FrontLedger, name: str) -> None:
    """Admit and settle at the estimate until refused 50 times: estimates of $0.001 to $0.005."""
    refused = admitted = 0
    n = 0
    while refused < 50:
        estimate = USD // 1000 * (1 + n % 5)
        rid = f"{name}-{n}"
        n += 1
        if isinstance(ledger.admit(rid, [SLOT], estimate, [], 0, NOW), Reserved):
            admitted += 1
            ledger.settle(rid, estimate, "usage")
        else:
            refused += 1
    print(admitted, flush=True)


def in_flight(ledger: FrontLedger, name: str) -> None:
    spec = LimitSpec("conc", in_flight=40)
    print(sum(isinstance(ledger.admit(f"{name}-{n}", [], 0, [spec], 0, NOW), Reserved) for n in range(60)), flush=True)


def one_instant(ledger: FrontLedger, name: str) -> None:
    spec = LimitSpec("rps", requests=Rate(400, 1))
    print(sum(isinstance(ledger.admit(f"{name}-{n}", [], 0, [spec], 0, NOW), Reserved) for n in range(300)), flush=True)


SCENARIOS = {"killed": killed, "near_threshold": near_threshold, "in_flight": in_flight, "one_instant": one_instant}


def main() -> None:
    scenario, data, name = sys.argv[1:4]
    ledger = FrontLedger(SqliteLedger(Path(data)), clock=lambda: 0.0)
    if scenario != "killed":
        sys.stdin.readline()
    SCENARIOS[scenario](ledger, name)
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "close":
        ledger.close()


if __name__ == "__main__":
    main()
