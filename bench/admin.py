"""Admin queries over a ledger of a million charges: each AdminData query timed.

Fills a ledger file in a temporary directory with `--charges` charges (default 1,000,000) spread
over the last 90 days, across 20 teams of 10 keys each, 8 models on 3 providers and a refusal in
fifty, written the way the proxy writes them: every charge a row of `charges` (its settle, as the
SQLite ledger keeps it) and noted in `Activity`, flushed every 2,000 charges (the proxy flushes
once a second). Then each admin query runs `--repeat` times on a proxy app built over that ledger;
the median and the worst are printed in milliseconds. Target: every query <= 200 ms.

    .venv/bin/python bench/admin.py
    .venv/bin/python bench/admin.py --charges 100000 --repeat 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cli.sources import load_source
from runtime.admin.data import AdminData, open_activity_reader
from runtime.ledger.activity import Activity, Refusal, open_activity_db
from runtime.ledger.front import FrontLedger
from runtime.ledger.sqlite import SqliteLedger
from runtime.server import build_app

TEAMS = [f"team-{i:02d}" for i in range(20)]
MODELS = {"gpt-4o": "openai", "gpt-4o-mini": "openai", "gpt-5": "openai", "o3": "azure", "gpt-4.1": "azure",
          "claude-sonnet": "anthropic", "claude-haiku": "anthropic", "claude-opus": "anthropic"}
CODES = [(402, "budget_exceeded"), (403, "model_not_allowed"), (429, "rate_limit_exceeded"), (401, "invalid_api_key")]
DAYS = 90
FLUSH_EVERY = 2_000


def fill(data: Path, charges: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    ledger = SqliteLedger(data)
    db = open_activity_db(data)
    activity = Activity()
    now = time.time()
    start = now - DAYS * 86_400
    keys = [(team, f"vk-{team}-{k}", rng.sample(sorted(MODELS), 2)) for team in TEAMS for k in range(10)]
    rows: list[tuple[str, float, int, int, str]] = []
    for i in range(charges):
        at = start + (now - start) * i / charges
        team, key, models = keys[rng.randrange(len(keys))]
        model = models[0] if rng.random() < 0.8 else models[1]
        if rng.random() < 0.02:
            status, code = CODES[rng.randrange(len(CODES))]
            activity.refused(Refusal(at, status, code, key, model, "budgets.yaml:12", f"refused: {code}"), team)
        else:
            pico = rng.randrange(1_000_000_000, 50_000_000_000)
            rows.append((f"{int(at * 1e9):016x}{i:016x}", at, pico, pico, "usage"))
            activity.spent(at, team, key, model, MODELS[model], pico)
        if (i + 1) % FLUSH_EVERY == 0:
            activity.flush(db)
            ledger._db.execute("BEGIN")
            ledger._db.executemany("INSERT INTO charges(id, settled_at, estimate, amount, how) VALUES (?,?,?,?,?)", rows)
            ledger._db.execute("COMMIT")
            rows = []
    activity.flush(db)
    ledger._db.executemany("INSERT INTO charges(id, settled_at, estimate, amount, how) VALUES (?,?,?,?,?)", rows)
    db.close()
    ledger.close()


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--charges", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        started = time.perf_counter()
        fill(data, args.charges)
        filled = time.perf_counter() - started
        reader = open_activity_reader(data)
        counts = {table: reader.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]  # type: ignore[union-attr]
                  for table in ("charges", "activity", "refusals")}
        size = sum(p.stat().st_size for p in data.iterdir()) / 2**20
        print(f"filled {args.charges:,} charges in {filled:.1f} s; rows: "
              + ", ".join(f"{t} {n:,}" for t, n in counts.items()) + f"; files {size:.0f} MiB")
        ledger = FrontLedger(SqliteLedger(data))
        app = build_app(load_source(Path(__file__).resolve().parent.parent / "examples" / "acme"), ledger=ledger)
        admin = AdminData(app, ledger, reader)
        week = datetime.now(UTC) - timedelta(days=7)
        queries: dict[str, Callable[[], Any]] = {
            "status": admin.status,
            "keys (page 1)": lambda: admin.keys(None, 1, 50),
            "keys (search)": lambda: admin.keys("team", 1, 50),
            "budgets": admin.budgets,
            "rate_limits": admin.rate_limits,
            "circuits": admin.circuits,
            "refusals (page 1)": lambda: admin.refusals(None, None, 1, 50),
            "refusals (by code, page 20)": lambda: admin.refusals("budget_exceeded", None, 20, 50),
            "refusals (by key)": lambda: admin.refusals(None, "vk-team-03-4", 1, 50),
            "refusal counts (24 h)": admin.refusal_counts,
            **{f"spend by {g}, daily, 90 days": (lambda g=g: admin.spend(g, "day"))
               for g in ("team", "key", "model", "provider")},
            **{f"spend by {g}, hourly, 48 h": (lambda g=g: admin.spend(g, "hour"))
               for g in ("team", "key", "model", "provider")},
            "spend by key, hourly, 7 days": lambda: admin.spend("key", "hour", since=week),
        }
        print(f"{'query':40} {'median ms':>10} {'worst ms':>10}")
        for name, query in queries.items():
            median, worst = timed(query, args.repeat)
            print(f"{name:40} {median:10.1f} {worst:10.1f}")
        ledger.close()


if __name__ == "__main__":
    main()
