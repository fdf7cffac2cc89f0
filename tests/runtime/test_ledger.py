"""One suite, both ledger backends: atomic reservations, exact settlement, recovery, no double charge."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.ledger.base import Blocked, Ledger, Reserved, Slot
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger
from tests.support.redis_server import RedisServer

USD = 10**12


def slot(instance: str = "eng-daily", limit_usd: int = 1, block_pct: int = 100, warn_pct: int | None = 80) -> Slot:
    limit = limit_usd * USD
    return Slot(instance, "2026-11-24", instance.split("/")[0], "team", "engineering", "day", limit,
                limit * block_pct // 100, None if warn_pct is None else limit * warn_pct // 100)


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, object]]:
    if request.param == "sqlite":
        yield "sqlite", tmp_path / "data"
    else:
        with RedisServer(tmp_path / "redis") as server:
            yield "redis", server.url


def open_ledger(backend: tuple[str, object]) -> Ledger:
    kind, where = backend
    return SqliteLedger(where) if kind == "sqlite" else RedisLedger(str(where))  # type: ignore[arg-type]


def test_reserve_then_settle_charges_the_actual_cost(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    reserved = ledger.reserve("r1", [slot()], 30 * USD // 100)
    assert isinstance(reserved, Reserved) and reserved.states[0].spent == 0
    [row] = ledger.counters()
    assert (row.spent, row.reserved) == (0, 30 * USD // 100)
    settled = ledger.settle("r1", 7 * USD // 100, "usage")
    assert settled is not None and settled.after[0].spent == 7 * USD // 100
    [row] = ledger.counters()
    assert (row.spent, row.reserved) == (7 * USD // 100, 0)


def test_settling_twice_charges_once(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    ledger.reserve("r1", [slot()], 10)
    assert ledger.settle("r1", 4, "usage") is not None
    assert ledger.settle("r1", 4, "usage") is None
    assert ledger.counters()[0].spent == 4


def test_blocks_at_the_threshold_with_ge(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    ledger.reserve("r1", [slot()], USD)
    ledger.settle("r1", USD, "usage")
    result = ledger.reserve("r2", [slot()], 1)
    assert isinstance(result, Blocked) and result.state.spent == USD


def test_in_flight_reservations_count_against_the_limit(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    assert isinstance(ledger.reserve("r1", [slot()], USD), Reserved)
    assert isinstance(ledger.reserve("r2", [slot()], 1), Blocked)
    ledger.settle("r1", USD // 10, "usage")
    assert isinstance(ledger.reserve("r3", [slot()], 1), Reserved)


def test_a_blocked_instance_reserves_nothing_on_the_others(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    ledger.reserve("r1", [slot("full")], USD)
    ledger.settle("r1", USD, "usage")
    assert isinstance(ledger.reserve("r2", [slot("ok"), slot("full")], 5), Blocked)
    assert all(r.reserved == 0 for r in ledger.counters() if r.instance == "ok")


def test_a_raised_limit_takes_effect_with_spend_kept(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    ledger.reserve("r1", [slot()], USD)
    ledger.settle("r1", USD, "usage")
    assert isinstance(ledger.reserve("r2", [slot(limit_usd=2)], 1), Reserved)
    [row] = ledger.counters()
    assert row.spent == USD and row.limit_pico == 2 * USD


def test_concurrent_reservations_overshoot_by_at_most_one_estimate(backend: tuple[str, object]) -> None:
    estimate = USD // 10
    admitted: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        ledger = open_ledger(backend)
        for i in range(10):
            rid = f"w{n}-{i}"
            if isinstance(ledger.reserve(rid, [slot()], estimate), Reserved):
                with lock:
                    admitted.append(rid)
                ledger.settle(rid, estimate, "usage")
        ledger.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [row] = open_ledger(backend).counters()
    assert row.spent == len(admitted) * estimate
    assert USD <= row.spent < USD + estimate
    assert row.reserved == 0


def test_reservations_of_a_dead_process_are_settled_at_their_estimate(backend: tuple[str, object], tmp_path: Path) -> None:
    kind, where = backend
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from runtime.ledger.sqlite import SqliteLedger\nfrom runtime.ledger.redis import RedisLedger\n"
        "from tests.runtime.test_ledger import slot\nfrom pathlib import Path\n"
        "ledger = SqliteLedger(Path(%r)) if %r == 'sqlite' else RedisLedger(%r)\n"
        "ledger.reserve('doomed', [slot()], 123)\n"
        "import os; os._exit(0)\n"
    ) % (str(Path(__file__).resolve().parents[2]), str(where), kind, str(where))
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ})
    ledger = open_ledger(backend)
    assert ledger.counters()[0].reserved == 123
    assert ledger.recover() == 1
    [row] = ledger.counters()
    assert (row.spent, row.reserved) == (123, 0)
    assert ledger.recover() == 0
    assert [c for c in ledger.charges() if c[0] == "doomed"][0][2] == 123  # type: ignore[attr-defined]


def test_a_live_process_keeps_its_reservations(backend: tuple[str, object]) -> None:
    first, second = open_ledger(backend), open_ledger(backend)
    first.reserve("mine", [slot()], 50)
    assert second.recover() == 0
    assert first.counters()[0].reserved == 50
