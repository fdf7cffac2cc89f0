"""The SQL the admin surface runs on the ledger file's activity tables (`runtime/ledger/activity.py`).

Each function takes `read(sql, args) -> rows`, so the caller decides the connection and its lock.
Spend is summed from the daily rollup for whole days and the hourly one otherwise; each one's key
starts with its time unit, so every query is a range scan of its primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

Read = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

GROUP_COLUMNS = {"team": "team", "key": "key", "model": "model", "provider": "provider"}


def totals_since(read: Read, hour: int) -> tuple[int, int, int]:
    """Requests, refusals and spend (pico-USD) from `hour` on."""
    day, rest = divmod(hour, 24)
    table, unit, since = ("activity_hourly", "hour", hour) if rest else ("activity_daily", "day", day)
    rows = read("SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(refused), 0), COALESCE(SUM(spent), 0)"
                f" FROM {table} WHERE {unit} >= ?", (since,))
    if not rows:
        return 0, 0, 0
    requests, refused, spent = rows[0]
    return int(requests), int(refused), int(spent)


def spend(read: Read, group_by: str, step: int, start: int, end: int) -> list[tuple[str, int, int, int]]:
    """(name, bucket's first hour, requests, spend) per group and bucket of `step` hours in
    [start, end); refusals are not counted as requests here, and nothing is spent by them."""
    column = GROUP_COLUMNS[group_by]
    if step % 24 == 0 and start % 24 == 0 and end % 24 == 0:
        table, unit, per, first, last = "activity_daily", "day", step // 24, start // 24, end // 24
    else:
        table, unit, per, first, last = "activity_hourly", "hour", step, start, end
    rows = read(
        f"SELECT {unit} - {unit} % ?, {column}, SUM(requests - refused), SUM(spent) FROM {table}"
        f" WHERE {unit} >= ? AND {unit} < ? GROUP BY 1, 2 HAVING SUM(requests - refused) > 0 OR SUM(spent) > 0",
        (per, first, last),
    )
    scale = step // per
    return [(str(name), int(bucket) * scale, int(requests), int(spent)) for bucket, name, requests, spent in rows]


def last_used(read: Read, keys: Sequence[str]) -> dict[str, float]:
    if not keys:
        return {}
    marks = ",".join("?" * len(keys))
    return {str(k): float(at) for k, at in read(f"SELECT key, at FROM keys_seen WHERE key IN ({marks})", tuple(keys))}


def refusals(read: Read, code: str | None, key: str | None, offset: int, limit: int
             ) -> tuple[int, list[tuple[Any, ...]]]:
    where, args = _refusal_filter(code, key)
    counted = read(f"SELECT COUNT(*) FROM refusals{where}", tuple(args))
    rows = read(f"SELECT at, status, code, key, model, source, message FROM refusals{where}"
                " ORDER BY seq DESC LIMIT ? OFFSET ?", (*args, limit, offset))
    return (int(counted[0][0]) if counted else 0), rows


def refusal_counts(read: Read, since: datetime) -> list[tuple[str, int]]:
    rows = read("SELECT code, COUNT(*) FROM refusals WHERE at >= ? GROUP BY code ORDER BY 2 DESC, 1",
                (since.timestamp(),))
    return [(str(code), int(count)) for code, count in rows]


def _refusal_filter(code: str | None, key: str | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if code:
        clauses.append("code = ?")
        args.append(code)
    if key:
        clauses.append("key = ?")
        args.append(key)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args
