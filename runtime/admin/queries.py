"""The SQL the admin surface runs on the ledger file's activity tables (`runtime/ledger/activity.py`).

Each function takes `read(sql, args) -> rows`, so the caller decides the connection and its lock.
The rollup is kept summed by unit, dimension, bucket and name: each spend query is one range scan
of its primary key that returns exactly the rows of its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

Read = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

def totals_since(read: Read, hour: int) -> tuple[int, int, int]:
    """Requests, refusals and spend (pico-USD) from `hour` on (summed over teams: every request has
    one, '' when its key has none)."""
    day, rest = divmod(hour, 24)
    unit, since = ("hour", hour) if rest else ("day", day)
    rows = read("SELECT COALESCE(SUM(requests), 0), COALESCE(SUM(refused), 0), COALESCE(SUM(spent), 0)"
                " FROM activity WHERE unit = ? AND dimension = 'team' AND bucket >= ?", (unit, since))
    if not rows:
        return 0, 0, 0
    requests, refused, spent = rows[0]
    return int(requests), int(refused), int(spent)


OTHERS = "(others)"
"""The line of a spend series that sums every name beyond its `top`."""

_RANGE = "unit = ? AND dimension = ? AND bucket >= ? AND bucket < ?"


def spend(read: Read, group_by: str, unit: str, start: int, end: int, top: int
          ) -> tuple[list[str], list[tuple[str, int, int, int]]]:
    """The names that spent or were answered in [start, end) of `unit` (buckets counted in that
    unit since the epoch), most spent first and at most `top` of them (0: all) with `OTHERS` after
    them when more did; and (name, bucket, requests, spend) of each. Refused requests are not
    counted, and spent nothing. The sums run in SQLite: Python sees only the rows of the answer."""
    span = (unit, group_by, start, end)
    totals = read(f"SELECT name, SUM(spent) FROM activity WHERE {_RANGE} GROUP BY name"
                  " HAVING SUM(requests - refused) > 0 OR SUM(spent) > 0", span)
    names = [str(name) for name, _ in sorted(totals, key=lambda row: (-int(row[1]), str(row[0])))]
    if 0 < top < len(names):
        names = names[:top]
        marks = ",".join("?" * len(names))
        rows = read(f"SELECT name, bucket, requests - refused, spent FROM activity WHERE {_RANGE}"
                    f" AND (requests > refused OR spent > 0) AND name IN ({marks})", (*span, *names))
        rows += read(f"SELECT ?, bucket, SUM(requests - refused), SUM(spent) FROM activity WHERE {_RANGE}"
                     f" AND name NOT IN ({marks}) GROUP BY bucket", (OTHERS, *span, *names))
        names.append(OTHERS)
    else:
        rows = read(f"SELECT name, bucket, requests - refused, spent FROM activity WHERE {_RANGE}"
                    " AND (requests > refused OR spent > 0)", span)
    return names, [(str(name), int(bucket), int(requests), int(spent)) for name, bucket, requests, spent in rows]


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
