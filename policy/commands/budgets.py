"""`policy budgets`: what the ledger holds, per budget instance and window."""

from __future__ import annotations

import argparse
import json
import sys

from runtime.budget.cost import usd
from runtime.ledger.base import CounterRow, LedgerError
from runtime.server import open_ledger

from ..cli import EXIT_OK, EXIT_USAGE


def state_of(row: CounterRow) -> str:
    used = row.spent + row.reserved
    if used >= row.block_pico:
        return "blocked"
    if row.warn_pico is not None and row.spent >= row.warn_pico:
        return "warn"
    return "ok"


def latest(rows: list[CounterRow]) -> list[CounterRow]:
    newest: dict[str, CounterRow] = {}
    for row in rows:
        if row.instance not in newest or row.window > newest[row.instance].window:
            newest[row.instance] = row
    return sorted(newest.values(), key=lambda r: r.instance)


def run_budgets(args: argparse.Namespace) -> int:
    if not args.ledger and not (args.data / "ledger.sqlite3").exists():
        print(f"policy budgets: error: no ledger in {args.data} (see `policy serve --data`)", file=sys.stderr)
        return EXIT_USAGE
    try:
        ledger = open_ledger(args.data, args.ledger)
        rows = ledger.counters()
        ledger.close()
    except LedgerError as exc:
        print(f"policy budgets: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    shown = rows if args.all else latest(rows)
    if args.format == "json":
        payload = [
            {
                "instance": r.instance, "budget": r.budget, "scope": r.scope, "target": r.target,
                "window": r.window_kind, "window_label": r.window, "spent_pico_usd": r.spent,
                "reserved_pico_usd": r.reserved, "limit_pico_usd": r.limit_pico, "block_pico_usd": r.block_pico,
                "warn_pico_usd": r.warn_pico, "state": state_of(r),
            }
            for r in shown
        ]
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    header = ("instance", "window", "scope", "target", "spent", "in flight", "limit", "used", "state")
    table = [header] + [
        (
            r.instance, r.window, r.scope, r.target, usd(r.spent), usd(r.reserved), usd(r.limit_pico),
            f"{r.spent * 100 // r.limit_pico if r.limit_pico else 0}%", state_of(r),
        )
        for r in shown
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if not shown:
        print("(no spend recorded yet)")
    return EXIT_OK
