"""`policy budgets`: spend against each budget instance, and each rate limit's current use, read
from the ledger (never written).

With the policy (or its table) every instance it defines is shown in its current window, at the
limits the policy sets now; without it, only the instances the ledger has counters for. In JSON,
rate limits follow the budgets as objects with a `rate_limit` key."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from runtime.budget.cost import usd
from runtime.budget.gate import decimal_usd, slot_for
from runtime.ledger.base import CounterRow, LedgerError
from runtime.ledger.location import default_data_dir
from runtime.server import open_ledger
from runtime.table import LoadedTable, TableError

from .. import limit_usage
from ..errors import PolicyError
from ..exit_codes import EXIT_OK, EXIT_USAGE
from ..sources import load_source


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


def from_policy(args: argparse.Namespace, table: LoadedTable, rows: list[CounterRow], now: datetime) -> list[CounterRow]:
    """Every instance of the table in its current window, at the table's limits, with the ledger's spend."""
    recorded = {(r.instance, r.window): r for r in rows}
    shown = []
    for instance in sorted(table.budgets):
        slot = slot_for(instance, table.budgets[instance], now)
        row = recorded.pop((instance, slot.window), None)
        shown.append(CounterRow(
            instance, slot.window, slot.budget, slot.scope, slot.target, slot.window_kind, slot.limit_pico,
            slot.block_pico, slot.warn_pico, row.spent if row else 0, row.reserved if row else 0,
        ))
    if args.all:
        shown += [r for r in recorded.values() if r.instance in table.budgets]
    return sorted(shown, key=lambda r: (r.instance, r.window))


def run_budgets(args: argparse.Namespace) -> int:
    data = args.data or default_data_dir()
    if not args.ledger and not (data / "ledger.sqlite3").exists():
        print(f"policy budgets: error: no ledger in {data} (the directory `policy serve --data` writes to; "
              "or --ledger redis://...)", file=sys.stderr)
        return EXIT_USAGE
    try:
        ledger = open_ledger(data, args.ledger, read_only=True)
        try:
            rows = ledger.counters()
            limits = ledger.limit_usage()
        finally:
            ledger.close()
        if args.source:
            table = load_source(args.source)
            shown = from_policy(args, table, rows, datetime.now(UTC))
            limits = limit_usage.with_policy(table, limits)
        else:
            shown = rows if args.all else latest(rows)
    except LedgerError as exc:
        print(f"policy budgets: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (PolicyError, TableError, OSError) as exc:
        print(f"policy budgets: error: cannot load {args.source}:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        payload = [
            {
                "instance": r.instance, "budget": r.budget, "scope": r.scope, "target": r.target,
                "window": r.window_kind, "window_label": r.window, "spent_usd": decimal_usd(r.spent),
                "reserved_usd": decimal_usd(r.reserved), "limit_usd": decimal_usd(r.limit_pico),
                "spent_pico_usd": r.spent, "reserved_pico_usd": r.reserved, "limit_pico_usd": r.limit_pico,
                "block_pico_usd": r.block_pico, "warn_pico_usd": r.warn_pico, "state": state_of(r),
            }
            for r in shown
        ]
        print(json.dumps([*payload, *limit_usage.as_json(limits)], indent=2))
        return EXIT_OK
    header = ("instance", "window", "scope", "target", "spent", "in flight", "limit", "used", "state")
    _print_table([header] + [
        (
            r.instance, r.window, r.scope, r.target, usd(r.spent), usd(r.reserved), usd(r.limit_pico),
            f"{r.spent * 100 // r.limit_pico if r.limit_pico else 0}%", state_of(r),
        )
        for r in shown
    ])
    if not shown:
        print("(no spend recorded yet)" if args.source is None else "(the policy defines no budgets)")
    if limits:
        print()
        _print_table(limit_usage.rows(limits))
    return EXIT_OK


def _print_table(table: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
