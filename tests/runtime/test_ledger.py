"""One suite, both ledger backends: atomic reservations, exact settlement, recovery, no double charge."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runtime.ledger.base import Blocked, Ledger, Reserved, Settled, Slot
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger
from tests.support.ledger_charges import recorded_charges
from tests.support.ledgers import open_ledger
from tests.support.redis_server import RedisServer

USD = 10**12


def slot(instance: str = "eng-daily", limit_usd: int = 1, block_pct: int = 100, warn_pct: int | None = 80) -> Slot:
    limit = limit_usd * USD
    return Slot(instance, "2026-11-24", instance.split("/")[0], "team", "engineering", "day", limit,
                limit * block_pct // 100, None if warn_pct is None else limit * warn_pct // 100)


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


def reserve_in_a_process_that_dies(backend: tuple[str, object], amount: int) -> None:
    """Reservation 'doomed' of `amount`, taken by another process that then exits without settling."""
    kind, where = backend
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from runtime.ledger.sqlite import SqliteLedger\nfrom runtime.ledger.redis import RedisLedger\n"
        "from tests.runtime.test_ledger import slot\nfrom pathlib import Path\n"
        "from tests.support.ledgers import open_ledger\nledger = open_ledger((%r, %r))\n"
        "ledger.reserve('doomed', [slot()], %d)\n"
        "import os; os._exit(0)\n"
    ) % (str(Path(__file__).resolve().parents[2]), kind, str(where), amount)
    subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ})


def test_reservations_of_a_dead_process_are_settled_at_their_estimate(backend: tuple[str, object], tmp_path: Path) -> None:
    reserve_in_a_process_that_dies(backend, 123)
    ledger = open_ledger(backend)
    reserved = ledger.counters()[0].reserved
    assert reserved == 123 if backend[0] != "front" else reserved > 123, "the front's lease counts in reserved"
    assert ledger.recover() == 1
    [row] = ledger.counters()
    assert (row.spent, row.reserved) == (123, 0)
    assert ledger.recover() == 0
    assert next(c for c in recorded_charges(ledger) if c[0] == "doomed")[2] == 123


def test_a_live_process_keeps_its_reservations(backend: tuple[str, object]) -> None:
    first, second = open_ledger(backend), open_ledger(backend)
    first.reserve("mine", [slot()], 50)
    assert second.recover() == 0
    assert first.counters()[0].reserved == 50


@pytest.mark.parametrize("limit_usd", [100, 10_000, 9_000_000])
def test_large_limits_and_amounts_stay_exact(backend: tuple[str, object], limit_usd: int) -> None:
    """$100 is 1e14 pico-USD, past where a double prints an integer; $9,007 is 2^53."""
    ledger = open_ledger(backend)
    big = slot(limit_usd=limit_usd)
    odd = 2**53 + 1 if limit_usd > 10_000 else 7
    assert isinstance(ledger.reserve("r1", [big], limit_usd * USD // 2 + odd), Reserved)
    settled = ledger.settle("r1", limit_usd * USD // 2 + odd, "usage")
    assert settled is not None and settled.after[0].spent == limit_usd * USD // 2 + odd
    reserved = ledger.reserve("r2", [big], limit_usd * USD // 2 + 40_000_000_000)
    assert isinstance(reserved, Reserved) and reserved.states[0].spent == limit_usd * USD // 2 + odd
    ledger.settle("r2", limit_usd * USD // 2 + 40_000_000_000 - odd, "usage")
    blocked = ledger.reserve("r3", [big], 1)
    assert isinstance(blocked, Blocked)
    assert blocked.state.spent == limit_usd * USD + 40_000_000_000, "$0.04 over, to the pico-USD"
    [row] = ledger.counters()
    assert (row.spent, row.reserved, row.limit_pico) == (limit_usd * USD + 40_000_000_000, 0, limit_usd * USD)
    charges = recorded_charges(ledger)
    assert [c[2] for c in charges] == [limit_usd * USD // 2 + odd, limit_usd * USD // 2 + 40_000_000_000 - odd]


def test_settling_below_a_large_reservation_releases_it_exactly(backend: tuple[str, object]) -> None:
    ledger = open_ledger(backend)
    big = slot(limit_usd=1_000_000)
    estimate = 2**60 + 12345
    ledger.reserve("keep", [big], 3)
    ledger.reserve("r1", [big], estimate)
    [row] = ledger.counters()
    assert row.reserved == estimate + 3
    ledger.settle("r1", 2**55 + 1, "usage")
    [row] = ledger.counters()
    assert (row.spent, row.reserved) == (2**55 + 1, 3)


def test_a_read_only_ledger_reads_and_registers_nothing(backend: tuple[str, object]) -> None:
    writer = open_ledger(backend)
    writer.reserve("r1", [slot()], 10)
    kind, where = backend
    reader: Ledger = (
        SqliteLedger(where, read_only=True) if kind != "redis" else RedisLedger(str(where), read_only=True)  # type: ignore[arg-type]
    )
    [row] = reader.counters()
    assert row.instance == "eng-daily"
    assert row.reserved == 10 if kind != "front" else row.reserved > 10, "the front's lease counts in reserved"
    reader.close()
    if kind != "redis":
        import sqlite3

        owners = sqlite3.connect(Path(str(where)) / "ledger.sqlite3").execute("SELECT owner FROM owners").fetchall()
    else:
        import redis

        owners = list(redis.Redis.from_url(str(where), decode_responses=True).hgetall("gp:owners"))
    assert len(owners) == 1, "only the writer is an owner"


def test_a_read_only_sqlite_ledger_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    from runtime.ledger.base import LedgerError

    with pytest.raises(LedgerError, match="cannot open the ledger"):
        SqliteLedger(tmp_path / "nothing", read_only=True).counters()
    assert not (tmp_path / "nothing").exists()


def test_redis_counters_written_as_floats_by_older_releases_are_read_exactly(tmp_path: Path) -> None:
    import redis

    with RedisServer(tmp_path / "redis") as server:
        ledger = RedisLedger(server.url)
        ledger.reserve("r1", [slot(limit_usd=200)], 5)
        raw = redis.Redis.from_url(server.url, decode_responses=True)
        [key] = raw.smembers("gp:counters")
        raw.hset(key, "spent", "1.0004e+14")
        [row] = ledger.counters()
        assert row.spent == 100_040_000_000_000
        settled = ledger.settle("r1", 2, "usage")
        assert settled is not None and settled.after[0].spent == 100_040_000_000_002
        assert raw.hget(key, "spent") == "100040000000002"


def test_a_redis_reply_that_does_not_parse_is_a_ledger_error(tmp_path: Path) -> None:
    import redis

    from runtime.ledger.base import LedgerError

    with RedisServer(tmp_path / "redis") as server:
        ledger = RedisLedger(server.url)
        ledger.reserve("r1", [slot()], 5)
        raw = redis.Redis.from_url(server.url, decode_responses=True)
        [key] = raw.smembers("gp:counters")
        raw.hset(key, "spent", "garbage")
        with pytest.raises(LedgerError):
            ledger.reserve("r2", [slot()], 5)
        with pytest.raises(LedgerError):
            ledger.counters()


def test_redis_arithmetic_matches_python_integers_across_every_length(tmp_path: Path) -> None:
    """Random amounts of 1 to 18 digits, across the switch from double to digit-by-digit arithmetic."""
    import random

    rng = random.Random(20261124)
    with RedisServer(tmp_path / "redis") as server:
        ledger = RedisLedger(server.url)
        big = slot(limit_usd=9_000_000)
        spent = 0
        for i in range(300):
            estimate = rng.randrange(10 ** rng.randrange(1, 18))
            actual = rng.choice([estimate, rng.randrange(estimate + 1), rng.randrange(10 ** rng.randrange(1, 17))])
            result = ledger.reserve(f"r{i}", [big], estimate)
            if isinstance(result, Blocked):
                break
            assert result.states[0].spent == spent
            settled = ledger.settle(f"r{i}", actual, "usage")
            spent += actual
            assert settled is not None and settled.after[0].spent == spent and settled.after[0].reserved == 0
        [row] = ledger.counters()
        assert (row.spent, row.reserved) == (spent, 0)


def test_recovery_hands_each_settlement_to_the_caller(backend: tuple[str, object], tmp_path: Path) -> None:
    """So the gate can log a warn threshold crossed by a recovered charge."""
    reserve_in_a_process_that_dies(backend, 9 * USD // 10)
    seen: list[Settled] = []
    assert open_ledger(backend).recover(seen.append) == 1
    [settled] = seen
    assert settled.before[0].spent == 0 and settled.after[0].spent == 9 * USD // 10
    assert settled.after[0].slot.warn_pico == 8 * USD // 10


def test_an_amount_past_64_bits_is_a_ledger_error_and_the_ledger_stays_usable(backend: tuple[str, object]) -> None:
    from runtime.ledger.base import LedgerError

    ledger = open_ledger(backend)
    kind, _ = backend
    if kind != "redis":
        with pytest.raises(LedgerError):
            ledger.reserve("huge", [slot()], 2**70)
    else:
        assert isinstance(ledger.reserve("huge", [slot()], 2**70), Reserved), "Redis counts it exactly"
        ledger.settle("huge", 0, "usage")
    assert isinstance(ledger.reserve("next", [slot(limit_usd=10**6)], 5), Reserved)
