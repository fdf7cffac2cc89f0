"""The budget gate over a real ledger: warn crossings counted once, and a settle the ledger refuses
is kept and retried rather than lost."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.sources import load_source
from runtime.access_log import EventLog
from runtime.budget.gate import Admission, BudgetGate
from runtime.decision import Deny
from runtime.ledger.base import LedgerError, Settled
from runtime.ledger.redis_url import parse
from runtime.ledger.sqlite import SqliteLedger
from runtime.metrics import Metrics
from runtime.table import LoadedTable
from tests.support.ledger_charges import recorded_charges

USD = 10**12
POLICY = """\
providers:
  p: {type: mock}
models:
  m: {providers: [p], price: {input: 5000, output: 5000}}
teams:
  eng: {defaults: {models_allowed: [m]}}
virtual_keys:
  vk-a: {key_sha256: %s, team: eng}
budgets:
  eng-daily: {scope: team, target: eng, window: day, limit_usd: 10, on_breach: {warn: 80%%, block: 100%%}}
"""


class FlakyLedger(SqliteLedger):
    """Refuses the next `failures` settles, as an unreachable ledger would."""

    failures = 0

    def settle(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
               now: float | None = None) -> Settled | None:
        if self.failures:
            self.failures -= 1
            raise LedgerError("ledger settle failed: connection refused")
        return super().settle(reservation_id, actual, how, tokens, now)


@pytest.fixture
def table(tmp_path: Path) -> LoadedTable:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "policy.yaml").write_text(POLICY % ("a" * 64))
    return load_source(tmp_path / "policy")


def gate_for(tmp_path: Path) -> tuple[BudgetGate, FlakyLedger, io.StringIO, Metrics]:
    ledger = FlakyLedger(tmp_path / "data")
    events = io.StringIO()
    metrics = Metrics()
    return BudgetGate(ledger, EventLog(events), metrics), ledger, events, metrics


def admit(gate: BudgetGate, table: LoadedTable) -> Admission:
    key = table.keys["vk-a"]
    admission = gate.admit(table, key, (), {"max_tokens": 1}, 2, datetime.now(UTC))
    assert isinstance(admission, Admission)
    return admission


def logged(events: io.StringIO, name: str) -> list[dict[str, object]]:
    return [{k: v for k, v in e.items() if k != "ts"} for e in map(json.loads, events.getvalue().splitlines())
            if e["event"] == name]


def test_crossing_the_warn_threshold_is_logged_and_counted_once(tmp_path: Path, table: LoadedTable) -> None:
    gate, _ledger, events, metrics = gate_for(tmp_path)
    for amount in (7 * USD, USD // 2, USD // 2, USD // 2):
        gate.settle(admit(gate, table), amount, "usage")
    [warning] = logged(events, "budget_warning")
    assert warning["spend_usd"] == "8" and warning["percent"] == 80 and warning["instance"] == "eng-daily"
    assert metrics.budget_warnings.values == {("eng-daily", "team"): 1.0}
    assert admit(gate, table).warnings == ["team:85"]
    gate.close()


def test_a_refused_settle_is_kept_and_retried_until_the_ledger_takes_it(tmp_path: Path, table: LoadedTable) -> None:
    gate, ledger, events, _ = gate_for(tmp_path)
    first, second = admit(gate, table), admit(gate, table)
    ledger.failures = 3
    for admission, amount in ((first, 2 * USD), (second, 3 * USD)):
        with pytest.raises(LedgerError):
            asyncio.run(gate.settle_async(admission, amount, "usage"))
    assert [u.amount for u in gate.unsettled] == [2 * USD, 3 * USD]
    assert [e["amount_usd"] for e in logged(events, "settle_deferred")] == ["2", "3"]
    [row] = ledger.counters()
    assert row.spent == 0 and row.reserved == first.estimate + second.estimate, "held until it lands"
    assert gate.retry_unsettled() == 0 and len(gate.unsettled) == 2
    assert gate.retry_unsettled() == 2 and not gate.unsettled
    [row] = ledger.counters()
    assert (row.spent, row.reserved) == (5 * USD, 0)
    assert logged(events, "settle_retried") == [{"event": "settle_retried", "charges": 2, "still_unsettled": 0}]
    assert gate.retry_unsettled() == 0
    assert sorted(c[2] for c in recorded_charges(ledger)) == [2 * USD, 3 * USD]
    gate.close()


def test_redis_is_reached_without_blocking_the_event_loop(tmp_path: Path, table: LoadedTable) -> None:
    """While Redis does not answer, the loop keeps running; the request then gets a LedgerError."""
    import socket
    import threading

    from runtime.ledger.redis import RedisLedger
    from tests.support.redis_server import RedisServer

    with RedisServer(tmp_path / "redis") as server:
        ledger = RedisLedger(server.url)
        gate = BudgetGate(ledger, EventLog(io.StringIO()), Metrics())
        seen: list[str] = []

        async def main() -> None:
            await gate.tend(lambda: seen.append(threading.current_thread().name))
            admission = await gate.admit_async(table, table.keys["vk-a"], (), {}, 2, datetime.now(UTC))
            assert isinstance(admission, Admission)
            await gate.settle_async(admission, 1, "usage")
            await ledger.aclose()

        asyncio.run(main())
        assert seen[0].startswith("gatepost-ledger")
        assert ledger.counters()[0].spent == 1

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    silent.settimeout(10)
    ledger.location = parse(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")  # a server that reads and does not answer

    async def stalled() -> bool:
        """The ledger's command arrives and gets no answer; the loop meanwhile hears back from a
        thread (it kept running), then the server hangs up and the admission fails."""
        admission = asyncio.create_task(gate.admit_async(table, table.keys["vk-a"], (), {}, 2, datetime.now(UTC)))
        connection, _ = await asyncio.to_thread(silent.accept)
        with connection:
            assert await asyncio.to_thread(connection.recv, 65536), "the ledger sent its command"
            loop_kept_running = not admission.done()
        with pytest.raises(LedgerError):
            await asyncio.wait_for(admission, timeout=10)
        return loop_kept_running

    assert asyncio.run(stalled()), "the event loop kept running while the ledger did not answer"
    silent.close()
    gate.close()


def test_a_new_window_starts_a_new_counter_even_with_the_slot_remembered(tmp_path: Path, table: LoadedTable) -> None:
    gate, ledger, _, _ = gate_for(tmp_path)
    key = table.keys["vk-a"]
    for instant in ("2026-11-24T23:59:59+00:00", "2026-11-24T12:00:00+00:00", "2026-11-25T00:00:00+00:00"):
        admission = gate.admit(table, key, (), {"max_tokens": 1}, 2, datetime.fromisoformat(instant))
        assert isinstance(admission, Admission)
        gate.settle(admission, USD, "usage")
    assert [(r.window, r.spent) for r in ledger.counters()] == [("2026-11-24", 2 * USD), ("2026-11-25", USD)]
    gate.close()


def test_through_the_front_a_crossing_is_reported_once_from_the_write_behind(tmp_path: Path,
                                                                             table: LoadedTable) -> None:
    """Two processes' fronts over one file: each settles in memory; the crossing comes from the
    flush that moves the counter over the threshold, on whichever process that is, once."""
    from runtime.ledger.front import FrontLedger

    gates = []
    for _ in range(2):
        events = io.StringIO()
        gates.append((BudgetGate(FrontLedger(SqliteLedger(tmp_path / "data")), EventLog(events), Metrics()), events))
    for n, amount in enumerate((3 * USD, 3 * USD, 3 * USD // 2, USD)):
        gate = gates[n % 2][0]
        gate.settle(admit(gate, table), amount, "usage")
        assert not any(logged(events, "budget_warning") for _, events in gates), "nothing written yet"
    for gate, _ in gates:
        assert isinstance(gate.ledger, FrontLedger)
        gate.ledger.flush()
    warnings = [w for _, events in gates for w in logged(events, "budget_warning")]
    assert [(w["spend_usd"], w["percent"]) for w in warnings] == [("8.5", 85)]
    assert sum(gate.metrics.budget_warnings.values.get(("eng-daily", "team"), 0) for gate, _ in gates) == 1
    for gate, _ in gates:
        gate.ledger.close()
        gate.close()
    [row] = SqliteLedger(tmp_path / "data").counters()
    assert (row.spent, row.reserved) == (17 * USD // 2, 0)


def test_a_replaced_table_governs_the_next_request_though_the_keys_slots_and_limits_are_remembered(
        tmp_path: Path, table: LoadedTable) -> None:
    """The gate remembers each key's budget slots and applicable rate limits while the table is the
    same object; a reload (a new table) lowering the budget and adding a limit applies at once."""
    gate, _, _, _ = gate_for(tmp_path)
    gate.settle(admit(gate, table), 5 * USD, "usage")
    assert gate.limits_for(table, table.keys["vk-a"], "m") == []
    (tmp_path / "policy" / "policy.yaml").write_text(
        (POLICY % ("a" * 64)).replace("limit_usd: 10", "limit_usd: 4")
        + "rate_limits:\n  per-team: {scope: team, target: eng, requests: 5/minute}\n")
    reloaded = load_source(tmp_path / "policy")
    key = reloaded.keys["vk-a"]
    [spec] = gate.limits_for(reloaded, key, "m")
    assert (spec.requests.count if spec.requests else None, spec.instance) == (5, "per-team")
    refused = gate.admit(reloaded, key, (), {"max_tokens": 1}, 2, datetime.now(UTC))
    assert isinstance(refused, Deny) and refused.code == "budget_exceeded"
    gate.close()
