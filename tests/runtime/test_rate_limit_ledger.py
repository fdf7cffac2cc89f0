"""Rate limits in both ledger backends: all-or-nothing admission with budgets, the bucket's bound
under concurrency on two replicas, exact slots in flight, token settlement and dead-owner recovery."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime.ledger.base import Blocked, Ledger, Reserved
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.ratelimit.limits import LimitSpec, Rate
from runtime.ratelimit.outcome import Limited
from tests.runtime.test_ledger import USD, slot
from tests.support.clock import ManualClock
from tests.support.ledgers import open_ledger
from tests.support.redis_server import RedisServer

NOW = 1_780_000_000.0


def per_minute(n: int) -> LimitSpec:
    return LimitSpec("eng-rpm", requests=Rate(n, 60))


def test_requests_are_admitted_up_to_the_limit_then_refused_with_the_wait(backend: tuple[str, object]) -> None:
    ledger, clock = open_ledger(backend), ManualClock(NOW)
    for i in range(3):
        result = ledger.admit(f"r{i}", [], 0, [per_minute(3)], 0, clock())
        assert isinstance(result, Reserved)
        [figures] = result.limits
        assert (figures.kind, figures.limit, figures.remaining) == ("requests", 3, 2 - i)
    refused = ledger.admit("r3", [], 0, [per_minute(3)], 0, clock())
    assert isinstance(refused, Limited)
    assert (refused.figures.instance, refused.figures.kind, refused.figures.remaining) == ("eng-rpm", "requests", 0)
    assert refused.retry_after_s == pytest.approx(20.0)
    assert refused.figures.reset_s == pytest.approx(60.0)
    clock.advance(19.9)
    assert isinstance(ledger.admit("r4", [], 0, [per_minute(3)], 0, clock()), Limited)
    clock.advance(0.1)
    assert isinstance(ledger.admit("r5", [], 0, [per_minute(3)], 0, clock()), Reserved)


def test_a_refusal_by_one_limit_takes_nothing_from_the_others_or_the_budgets(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    roomy = LimitSpec("roomy", requests=Rate(100, 60), tokens=Rate(10_000, 60), in_flight=5)
    full = LimitSpec("full", requests=Rate(1, 86400))
    assert isinstance(ledger.admit("a", [slot()], 10, [full], 0, NOW), Reserved)
    assert isinstance(ledger.admit("b", [slot()], 10, [roomy, full], 500, NOW), Limited)
    usage = {u.instance: u for u in ledger.limit_usage(NOW)}
    assert "roomy" not in usage
    assert ledger.counters()[0].reserved == 10


def test_a_blocked_budget_takes_nothing_from_the_limits(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    ledger.reserve("spent", [slot()], USD)
    spec = LimitSpec("rpm", requests=Rate(5, 60), in_flight=2)
    assert isinstance(ledger.admit("b", [slot()], 1, [spec], 0, NOW), Blocked)
    assert [u.instance for u in ledger.limit_usage(NOW)] == []


def test_tokens_reserve_the_estimate_and_settle_to_the_reported_usage(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    spec = LimitSpec("tpm", tokens=Rate(1000, 60))
    admitted = ledger.admit("a", [], 0, [spec], 800, NOW)
    assert isinstance(admitted, Reserved) and admitted.limits[0].remaining == 200
    assert ledger.limit_usage(NOW)[0].tokens_used == pytest.approx(800)
    ledger.settle("a", None, "usage", 300, NOW)
    assert ledger.limit_usage(NOW)[0].tokens_used == pytest.approx(300)
    assert isinstance(ledger.admit("b", [], 0, [spec], 800, NOW), Reserved)
    ledger.settle("b", None, "no usage reported", None, NOW)
    assert ledger.limit_usage(NOW)[0].tokens_used == pytest.approx(1100)
    refused = ledger.admit("c", [], 0, [spec], 1, NOW)
    assert isinstance(refused, Limited) and refused.figures.kind == "tokens"
    assert refused.retry_after_s == pytest.approx(6.06)
    assert ledger.limit_usage(NOW + 30)[0].tokens_used == pytest.approx(600)


def test_in_flight_slots_are_taken_and_given_back_on_settle(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    spec = LimitSpec("conc", in_flight=2)
    assert isinstance(ledger.admit("a", [], 0, [spec], 0, NOW), Reserved)
    assert isinstance(ledger.admit("b", [], 0, [spec], 0, NOW), Reserved)
    refused = ledger.admit("c", [], 0, [spec], 0, NOW)
    assert isinstance(refused, Limited) and (refused.figures.kind, refused.figures.limit) == ("in_flight", 2)
    ledger.settle("a", None, "usage")
    ledger.settle("a", None, "usage")
    assert ledger.limit_usage(NOW)[0].in_flight == 1
    assert isinstance(ledger.admit("c", [], 0, [spec], 0, NOW), Reserved)


def run_on_two_replicas(backend: tuple[str, object], work: Callable[[Ledger, int], None]) -> None:
    """`work(ledger, n)` from 200 threads, half on each of two ledgers (two connections, one state)."""
    replicas = [open_ledger(backend), open_ledger(backend)]
    locks = [threading.Lock(), threading.Lock()]
    start = threading.Barrier(200)

    def one(n: int) -> None:
        start.wait()
        with locks[n % 2]:
            work(replicas[n % 2], n)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_200_concurrent_requests_on_two_replicas_admit_at_most_50_of_50_a_minute(backend: tuple[str, object]) -> None:
    admitted: list[int] = []
    spec = LimitSpec("eng-rpm", requests=Rate(50, 60))

    def admit(ledger: Ledger, n: int) -> None:
        if isinstance(ledger.admit(f"r{n}", [slot()], 1, [spec], 0, NOW + n / 1000), Reserved):
            admitted.append(n)

    run_on_two_replicas(backend, admit)
    assert len(admitted) == 50
    assert open_ledger(backend).counters()[0].reserved == 50


def test_slots_in_flight_stay_exact_under_concurrency(backend: tuple[str, object]) -> None:
    spec = LimitSpec("conc", in_flight=7)
    admitted: list[int] = []

    def admit(ledger: Ledger, n: int) -> None:
        if isinstance(ledger.admit(f"r{n}", [], 0, [spec], 0, NOW), Reserved):
            admitted.append(n)

    run_on_two_replicas(backend, admit)
    assert len(admitted) == 7
    [usage] = open_ledger(backend).limit_usage(NOW)
    assert usage.in_flight == 7

    def settle(ledger: Ledger, n: int) -> None:
        ledger.settle(f"r{n}", None, "usage")

    run_on_two_replicas(backend, settle)
    [usage] = open_ledger(backend).limit_usage(NOW)
    assert usage.in_flight == 0


def test_a_dead_process_has_its_slots_given_back_and_its_charges_settled_at_the_estimate(backend: tuple[str, object]) -> None:
    kind, where = backend
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "from runtime.ledger.sqlite import SqliteLedger\nfrom runtime.ledger.redis import RedisLedger\n"
        "from runtime.ratelimit.limits import LimitSpec, Rate\n"
        "from tests.support.ledgers import open_ledger\nledger = open_ledger((%r, %r))\n"
        "spec = LimitSpec('conc', tokens=Rate(1000, 60), in_flight=2)\n"
        "from tests.runtime.test_ledger import slot\n"
        "ledger.admit('doomed-1', [slot()], 7, [spec], 100, %r)\nledger.admit('doomed-2', [slot()], 7, [spec], 100, %r)\n"
        "import os; os._exit(0)\n"
    ) % (str(Path(__file__).resolve().parents[2]), kind, str(where), NOW, NOW)
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ})
    ledger = open_ledger(backend)
    spec = LimitSpec("conc", tokens=Rate(1000, 60), in_flight=2)
    assert isinstance(ledger.admit("mine", [], 0, [spec], 100, NOW), Limited)
    assert ledger.recover() == 2
    [usage] = ledger.limit_usage(NOW)
    assert usage.in_flight == 0 and usage.tokens_used == pytest.approx(200)
    [row] = ledger.counters()
    assert (row.spent, row.reserved) == (14, 0)
    assert isinstance(ledger.admit("mine", [], 0, [spec], 100, NOW), Reserved)


def test_no_interval_admits_more_than_the_stated_bound(backend: tuple[str, object]) -> None:
    """README: in any interval of length t, at most count + count * t / period requests."""
    ledger, clock = open_ledger(backend), ManualClock(NOW)
    spec = LimitSpec("rps", requests=Rate(5, 1))
    admitted: list[float] = []
    for n in range(400):
        clock.advance((n * 7919 % 13) / 40)
        if isinstance(ledger.admit(f"r{n}", [], 0, [spec], 0, clock()), Reserved):
            admitted.append(clock())
    assert len(admitted) > 50
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= 5 + 5 * (admitted[j] - start) + 1e-9


def test_two_processes_admitting_together_admit_at_most_the_limit(backend: tuple[str, object]) -> None:
    """Two proxies' worth of processes, 100 admissions each at once, against 50/minute."""
    kind, where = backend
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "from runtime.ledger.base import Reserved\n"
        "from runtime.ledger.sqlite import SqliteLedger\nfrom runtime.ledger.redis import RedisLedger\n"
        "from runtime.ratelimit.limits import LimitSpec, Rate\n"
        "from tests.support.ledgers import open_ledger\nledger = open_ledger((%r, %r))\n"
        "spec = LimitSpec('eng-rpm', requests=Rate(50, 60))\n"
        "sys.stdin.readline()\n"
        "print(sum(isinstance(ledger.admit(f'{sys.argv[1]}-{n}', [], 0, [spec], 0, %r), Reserved) for n in range(100)))\n"
    ) % (str(Path(__file__).resolve().parents[2]), kind, str(where), NOW)
    open_ledger(backend).close()
    procs = [subprocess.Popen([sys.executable, "-c", script, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ}) for name in ("a", "b")]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    counts = [int(proc.communicate(timeout=60)[0]) for proc in procs]
    assert sum(counts) == 50
    assert open_ledger(backend).limit_usage(NOW)[0].requests_used == pytest.approx(50)


def test_200_concurrent_admissions_on_two_pipelined_redis_connections_admit_50(tmp_path: Path) -> None:
    spec = LimitSpec("eng-rpm", requests=Rate(50, 60), in_flight=120)
    with RedisServer(tmp_path / "redis") as server:
        replicas = [RedisLedger(server.url), RedisLedger(server.url)]

        async def run() -> list[object]:
            results = await asyncio.gather(*(
                replicas[n % 2].admit_async(f"r{n}", [slot()], 1, [spec], 0, NOW) for n in range(200)))
            for ledger in replicas:
                await ledger.aclose()
            return list(results)

        results = asyncio.run(run())
        assert sum(isinstance(r, Reserved) for r in results) == 50
        assert all(isinstance(r, Limited) and r.figures.kind == "requests" for r in results if not isinstance(r, Reserved))
        [usage] = replicas[0].limit_usage(NOW)
        assert usage.in_flight == 50


def test_a_sqlite_ledger_from_before_rate_limits_settles_its_reservations_and_gains_the_limits(tmp_path: Path) -> None:
    import sqlite3

    from runtime.ledger.sqlite import LEDGER_FILE, SCHEMA

    (tmp_path / "data").mkdir()
    db = sqlite3.connect(tmp_path / "data" / LEDGER_FILE, isolation_level=None)
    db.executescript(SCHEMA)
    s = slot()
    db.execute("INSERT INTO counters(instance, window, budget, scope, target, window_kind, limit_pico, block_pico,"
               " warn_pico, reserved) VALUES (?,?,?,?,?,?,?,?,?,?)",
               (s.instance, s.window, s.budget, s.scope, s.target, s.window_kind, s.limit_pico, s.block_pico,
                s.warn_pico, 40))
    db.execute("INSERT INTO reservations(id, owner, created_at, amount, slots) VALUES (?,?,?,?,?)",
               ("old", "elsewhere:1:1", 0.0, 40, f'[["{s.instance}", "{s.window}"]]'))
    db.close()
    assert SqliteLedger(tmp_path / "data", read_only=True).limit_usage(NOW) == []
    ledger = SqliteLedger(tmp_path / "data")
    settled = ledger.settle("old", 30, "usage")
    assert settled is not None and (settled.after[0].spent, settled.after[0].reserved) == (30, 0)
    assert isinstance(ledger.admit("new", [s], 5, [per_minute(1)], 0, NOW), Reserved)
    assert ledger.limit_usage(NOW)[0].requests_used == pytest.approx(1)
