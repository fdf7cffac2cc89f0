"""The in-memory front over the SQLite ledger: what a killed process costs, the budgets' overshoot
bound with two processes leasing near the threshold, slots in flight exact across processes, one
instant's requests within the limit, warn crossings once from the flush, leases moved by a reload
and given back when idle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runtime.ledger.base import Reserved, Settled, Slot
from runtime.ledger.front import FrontLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.ratelimit.limits import LimitSpec, Rate
from runtime.ratelimit.outcome import Limited
from tests.support.clock import ManualClock
from tests.support.front_process import KILLED, KILLED_LIMIT, NOW, SLOT, USD
from tests.support.ledger_charges import recorded_charges

ROOT = Path(__file__).resolve().parents[2]


def start(scenario: str, data: Path, name: str = "p") -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.support.front_process", scenario, str(data), name],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ})


def say(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def hear(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def front(data: Path, clock: ManualClock | None = None) -> FrontLedger:
    return FrontLedger(SqliteLedger(data), clock=clock or ManualClock())


def test_a_killed_process_is_charged_its_settled_actuals_and_unsettled_estimates_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = start("killed", data)
    assert hear(proc) == "ready"
    [journal] = data.glob("journal-*.log")
    reader = SqliteLedger(data)
    [row] = reader.counters()
    assert row.spent == 0 and row.reserved > 0, "nothing written behind yet; its lease is reserved"
    assert reader.limit_usage(NOW)[0].in_flight > 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert journal.read_bytes().endswith(b"\0"), "mapped and never closed: it ends in its allocation's zeros"
    recoverers = [SqliteLedger(data), front(data)]
    counts: list[int] = []
    barrier = threading.Barrier(2)

    def recover(ledger: SqliteLedger | FrontLedger) -> None:
        barrier.wait()
        counts.append(ledger.recover())

    threads = [threading.Thread(target=recover, args=(ledger,)) for ledger in recoverers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts) == [0, len(KILLED)], "recovered once, by one of the two"
    expected = {rid: (estimate, estimate if actual is None else actual) for rid, estimate, actual in KILLED}
    [row] = reader.counters()
    assert (row.spent, row.reserved) == (sum(amount for _, amount in expected.values()), 0)
    assert reader.limit_usage(NOW)[0].in_flight == 0
    charges = {c[0]: (c[1], c[2], c[3]) for c in recorded_charges(reader)}
    assert charges == {rid: (estimate, amount, "usage" if rid in {k for k, _, a in KILLED if a is not None}
                             else "estimate: its process died before settling")
                       for rid, (estimate, amount) in expected.items()}
    assert not journal.exists()
    assert reader.recover() == 0


def test_a_clean_close_writes_everything_and_gives_every_lease_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ledger = front(data)
    assert isinstance(ledger.admit("a", [SLOT], 1000, [KILLED_LIMIT], 50, NOW), Reserved)
    assert isinstance(ledger.admit("b", [SLOT], 1000, [KILLED_LIMIT], 50, NOW), Reserved)
    ledger.settle("a", 600, "usage", 40, NOW)
    ledger.close()
    reader = SqliteLedger(data)
    [row] = reader.counters()
    assert (row.spent, row.reserved) == (1600, 0), "b, still in flight at close, is charged its estimate"
    assert reader.limit_usage(NOW)[0].in_flight == 0
    assert not list(data.glob("journal-*.log"))
    assert reader._db.execute("SELECT COUNT(*) FROM leases WHERE amount != 0").fetchone()[0] == 0


def test_two_processes_leasing_near_the_threshold_overshoot_by_less_than_one_estimate(tmp_path: Path) -> None:
    data = tmp_path / "data"
    SqliteLedger(data).close()
    procs = [start("near_threshold", data, name) for name in ("a", "b")]
    for proc in procs:
        say(proc, "go")
    admitted = [int(hear(proc)) for proc in procs]
    for proc in procs:
        assert hear(proc) == "ready"
        say(proc, "close")
        proc.wait(timeout=60)
    [row] = SqliteLedger(data).counters()
    largest = 5 * USD // 1000
    assert USD <= row.spent < USD + largest, "every admitted request settled at its estimate"
    assert row.reserved == 0
    assert sum(admitted) == len(recorded_charges(SqliteLedger(data)))


def test_slots_in_flight_are_exact_across_two_processes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    SqliteLedger(data).close()
    procs = [start("in_flight", data, name) for name in ("a", "b")]
    for proc in procs:
        say(proc, "go")
    admitted = [int(hear(proc)) for proc in procs]
    assert sum(admitted) <= 40
    [usage] = SqliteLedger(data).limit_usage(NOW)
    assert usage.in_flight <= 40
    for proc in procs:
        assert hear(proc) == "ready"
        say(proc, "close")
        proc.wait(timeout=60)
    [usage] = SqliteLedger(data).limit_usage(NOW)
    assert usage.in_flight == 0


def test_two_processes_at_one_instant_admit_no_more_than_the_limit(tmp_path: Path) -> None:
    """400/second leases permits (64 at a time); at one instant the two processes admit at most 400,
    and at least all but what one process's last lease held when it stopped asking."""
    data = tmp_path / "data"
    SqliteLedger(data).close()
    procs = [start("one_instant", data, name) for name in ("a", "b")]
    for proc in procs:
        say(proc, "go")
    admitted = [int(hear(proc)) for proc in procs]
    assert 400 - 64 <= sum(admitted) <= 400
    for proc in procs:
        say(proc, "close")
        proc.wait(timeout=60)


def test_a_leased_permit_is_not_used_after_the_hold_time(tmp_path: Path) -> None:
    ledger = front(tmp_path / "data")
    spec = LimitSpec("rps", requests=Rate(40, 1))
    admitted = sum(isinstance(ledger.admit(f"r{n}", [], 0, [spec], 0, NOW), Reserved) for n in range(60))
    assert admitted == 40
    assert isinstance(ledger.admit("later", [], 0, [spec], 0, NOW + 0.5), Reserved), "20 drained in 0.5 s"
    [usage] = ledger.limit_usage(NOW + 0.5)
    assert usage.requests_used <= 40


def test_a_warn_crossing_is_reported_once_from_the_flush_across_two_ledgers(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seen: list[Settled] = []
    ledgers = [front(data), front(data)]
    for ledger in ledgers:
        ledger.on_settled = seen.append
    step = USD // 100
    for n in range(90):
        ledger = ledgers[n % 2]
        assert isinstance(ledger.admit(f"r{n}", [SLOT], step, [], 0, NOW), Reserved)
        ledger.settle(f"r{n}", step, "usage")
        if n % 7 == 0:
            ledger.flush()
    for ledger in ledgers:
        ledger.flush()
    warn = SLOT.warn_pico
    assert warn is not None
    crossings = [s for s in seen for b, a in zip(s.before, s.after, strict=True) if b.spent < warn <= a.spent]
    assert len(crossings) == 1
    assert SqliteLedger(data).counters()[0].spent == 90 * step


def test_a_reload_that_lowers_a_limit_moves_to_a_new_lease_and_gives_the_old_ones_room_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ledger = front(data)
    assert isinstance(ledger.admit("a", [SLOT], USD // 1000, [], 0, NOW), Reserved)
    ledger.settle("a", USD // 1000, "usage")
    lowered = Slot(SLOT.instance, SLOT.window, SLOT.budget, SLOT.scope, SLOT.target, SLOT.window_kind,
                   USD // 100, USD // 100, None)
    admitted = ledger.admit("b", [lowered], USD // 1000, [], 0, NOW)
    assert isinstance(admitted, Reserved), "the old lease's headroom does not count against the new limit"
    [row] = SqliteLedger(data).counters()
    assert row.block_pico == USD // 100 and row.spent + row.reserved <= USD // 100
    refused = [ledger.admit(f"c{n}", [lowered], USD // 1000, [], 0, NOW) for n in range(12)]
    assert sum(isinstance(r, Reserved) for r in refused) <= 9, "the lowered limit holds"


def test_leases_unused_for_a_second_are_given_back(tmp_path: Path) -> None:
    data, clock = tmp_path / "data", ManualClock()
    ledger = front(data, clock)
    spec = LimitSpec("conc", in_flight=40)
    assert isinstance(ledger.admit("a", [SLOT], 1000, [spec], 0, NOW), Reserved)
    ledger.settle("a", 700, "usage")
    reader = SqliteLedger(data)
    assert reader.counters()[0].reserved > 0 and reader.limit_usage(NOW)[0].in_flight > 0
    clock.advance(0.5)
    ledger.tend()
    assert reader.counters()[0].spent == 700, "written behind once due"
    assert reader.counters()[0].reserved > 0
    clock.advance(0.6)
    ledger.tend()
    [row] = reader.counters()
    assert (row.spent, row.reserved) == (700, 0)
    assert reader.limit_usage(NOW)[0].in_flight == 0


def test_a_limit_too_narrow_to_lease_is_admitted_exactly(tmp_path: Path) -> None:
    """50/minute drains less than one request in the hold time: every admission is one transaction."""
    ledger = front(tmp_path / "data")
    spec = LimitSpec("rpm", requests=Rate(50, 60))
    results = [ledger.admit(f"r{n}", [], 0, [spec], 0, NOW) for n in range(60)]
    assert sum(isinstance(r, Reserved) for r in results) == 50
    assert all(isinstance(r, Limited) for r in results[50:])
    assert SqliteLedger(tmp_path / "data").limit_usage(NOW)[0].requests_used == pytest.approx(50)


def test_a_counter_too_close_to_its_limit_to_lease_is_admitted_exactly_in_the_same_transaction(tmp_path: Path) -> None:
    data = tmp_path / "data"
    other = SqliteLedger(data)
    assert isinstance(other.reserve("elsewhere", [SLOT], 93 * USD // 100), Reserved)
    ledger = front(data)
    statements: list[str] = []
    ledger.inner._db.set_trace_callback(statements.append)
    admitted = ledger.admit("near", [SLOT], USD // 100, [], 0, NOW)
    assert isinstance(admitted, Reserved) and admitted.states[0].reserved == 93 * USD // 100
    assert statements.count("BEGIN IMMEDIATE") == 1, "no room for a lease: exact, in the top-up's transaction"
    assert [row[0] for row in other._db.execute("SELECT id FROM reservations ORDER BY id")] == ["elsewhere", "near"]
    blocked = [ledger.admit(f"more{n}", [SLOT], USD // 100, [], 0, NOW) for n in range(10)]
    assert sum(isinstance(r, Reserved) for r in blocked) == 6, "exact to the threshold"
    ledger.settle("near", USD // 200, "usage")
    assert other.counters()[0].spent == USD // 200


def test_a_rotated_journal_keeps_the_admissions_in_flight_and_recovery_charges_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its size limit the journal is replaced, at a flush, by one holding only the admissions
    still in flight; a recovery then charges exactly what the lost process owed."""
    import runtime.ledger.front as front_module

    monkeypatch.setattr(front_module, "ROTATE_BYTES", 300)
    data = tmp_path / "data"
    ledger = front(data)
    for n in range(6):
        assert isinstance(ledger.admit(f"r{n}", [SLOT], 1000, [], 0, NOW), Reserved)
    for n in range(3):
        ledger.settle(f"r{n}", 100 + n, "usage")
    ledger.flush()
    [journal] = data.glob("journal-*.log")
    assert journal.name.endswith("-1.log"), "rotated at the flush"
    ledger.settle("r3", 500, "usage")
    assert isinstance(ledger.admit("r6", [SLOT], 1000, [], 0, NOW), Reserved)
    recoverer = SqliteLedger(data, stale_after_s=-1)
    assert recoverer.recover() == 4, "r3 settled, r4, r5 and r6 in flight"
    [row] = recoverer.counters()
    assert (row.spent, row.reserved) == (100 + 101 + 102 + 500 + 3 * 1000, 0)
    assert not list(data.glob("journal-*.log"))


def test_a_batch_write_the_file_refuses_is_kept_whole_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from runtime.ledger import front_store
    from runtime.ledger.base import LedgerError

    data = tmp_path / "data"
    ledger = front(data)
    for n in range(3):
        assert isinstance(ledger.admit(f"r{n}", [SLOT], 1000, [], 0, NOW), Reserved)
        ledger.settle(f"r{n}", 300, "usage")
    real = front_store.insert_charges

    def refuse(*args: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(front_store, "insert_charges", refuse)
    with pytest.raises(LedgerError):
        ledger.flush()
    assert ledger.settle("r0", 999, "usage") is None, "settled once, before the failed write"
    monkeypatch.setattr(front_store, "insert_charges", real)
    ledger.flush()
    reader = SqliteLedger(data)
    assert reader.counters()[0].spent == 900
    assert sorted(c[2] for c in recorded_charges(reader)) == [300, 300, 300]
    ledger.close()
    assert (reader.counters()[0].spent, reader.counters()[0].reserved) == (900, 0)


def test_the_same_lists_changed_in_place_are_admitted_by_what_they_hold_now(tmp_path: Path) -> None:
    """The front remembers a plan per pair of lists the gate passes: a list changed in place
    between two admissions is admitted under its new limits, not the plan of its old ones."""
    ledger = front(tmp_path / "data")
    limits = [LimitSpec("roomy", requests=Rate(100_000, 60))]
    assert isinstance(ledger.admit("a", [], 0, limits, 0, NOW), Reserved)
    limits.append(LimitSpec("conc", in_flight=1))
    assert isinstance(ledger.admit("b", [], 0, limits, 0, NOW), Reserved)
    refused = ledger.admit("c", [], 0, limits, 0, NOW)
    assert isinstance(refused, Limited) and refused.figures.instance == "conc"
    ledger.settle("b", None, "usage")
    assert isinstance(ledger.admit("d", [], 0, limits, 0, NOW), Reserved)
