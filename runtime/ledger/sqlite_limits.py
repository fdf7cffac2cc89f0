"""Rate-limit state in the SQLite ledger, read and written inside the caller's transaction.

`rate_limits` holds one row per instance: the limits it was last admitted under and its bucket
state; `limit_holds` what each open reservation took (tokens reserved, a slot in flight), so
settling, or recovering a dead process's reservation, gives back exactly that.
"""

from __future__ import annotations

import json
import sqlite3

from ..ratelimit.admission import LimitState, admit, settle
from ..ratelimit.bucket import current
from ..ratelimit.limits import LimitSpec, Rate
from ..ratelimit.outcome import Limited, LimitFigures, LimitUsage

SCHEMA = """
CREATE TABLE IF NOT EXISTS rate_limits (
    instance TEXT PRIMARY KEY,
    requests_count INTEGER,
    requests_period INTEGER,
    tokens_count INTEGER,
    tokens_period INTEGER,
    in_flight_limit INTEGER,
    requests_used REAL NOT NULL DEFAULT 0,
    requests_at REAL NOT NULL DEFAULT 0,
    tokens_used REAL NOT NULL DEFAULT 0,
    tokens_at REAL NOT NULL DEFAULT 0,
    in_flight INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS limit_holds (
    id TEXT PRIMARY KEY,
    holds TEXT NOT NULL
);
"""

_STATE = "SELECT requests_used, requests_at, tokens_used, tokens_at, in_flight FROM rate_limits WHERE instance = ?"
_WRITE = (
    "INSERT INTO rate_limits(instance, requests_count, requests_period, tokens_count, tokens_period, in_flight_limit,"
    " requests_used, requests_at, tokens_used, tokens_at, in_flight) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(instance) DO UPDATE SET requests_count = excluded.requests_count,"
    " requests_period = excluded.requests_period, tokens_count = excluded.tokens_count,"
    " tokens_period = excluded.tokens_period, in_flight_limit = excluded.in_flight_limit,"
    " requests_used = excluded.requests_used, requests_at = excluded.requests_at, tokens_used = excluded.tokens_used,"
    " tokens_at = excluded.tokens_at, in_flight = excluded.in_flight"
)


def admit_locked(db: sqlite3.Connection, specs: list[LimitSpec], tokens: int, now: float
                 ) -> tuple[list[tuple[LimitSpec, LimitState]], tuple[LimitFigures, ...]] | Limited:
    """Every instance's new state and figures, or the first with no room; nothing is written yet."""
    states: list[tuple[LimitSpec, LimitState]] = []
    figures: list[LimitFigures] = []
    for spec in specs:
        row = db.execute(_STATE, (spec.instance,)).fetchone()
        result = admit(spec, LimitState(*row) if row is not None else LimitState(), tokens, now)
        if isinstance(result, Limited):
            return result
        states.append((spec, result[0]))
        figures.extend(result[1])
    return states, tuple(figures)


def write_locked(db: sqlite3.Connection, reservation_id: str, states: list[tuple[LimitSpec, LimitState]],
                 tokens: int) -> None:
    for spec, s in states:
        db.execute(_WRITE, (
            spec.instance, spec.requests.count if spec.requests else None,
            spec.requests.period_s if spec.requests else None, spec.tokens.count if spec.tokens else None,
            spec.tokens.period_s if spec.tokens else None, spec.in_flight, s.requests_used, s.requests_at,
            s.tokens_used, s.tokens_at, s.in_flight,
        ))
    holds = [[spec.instance, tokens if spec.tokens else 0, 1 if spec.in_flight is not None else 0] for spec, _ in states]
    db.execute("INSERT INTO limit_holds(id, holds) VALUES (?, ?)", (reservation_id, json.dumps(holds)))


def settle_locked(db: sqlite3.Connection, reservation_id: str, actual_tokens: int | None, now: float) -> None:
    """Give back what the reservation took: tokens settled to `actual_tokens`, its slots in flight."""
    row = db.execute("SELECT holds FROM limit_holds WHERE id = ?", (reservation_id,)).fetchone()
    if row is None:
        return
    for instance, reserved, took_slot in json.loads(row[0]):
        found = db.execute(
            "SELECT tokens_count, tokens_period, requests_used, requests_at, tokens_used, tokens_at, in_flight"
            " FROM rate_limits WHERE instance = ?", (instance,)).fetchone()
        if found is None:
            continue
        rate = Rate(found[0], found[1]) if found[0] is not None and reserved else None
        s = settle(LimitState(*found[2:]), rate, reserved, actual_tokens, bool(took_slot), now)
        db.execute("UPDATE rate_limits SET tokens_used = ?, tokens_at = ?, in_flight = ? WHERE instance = ?",
                   (s.tokens_used, s.tokens_at, s.in_flight, instance))
    db.execute("DELETE FROM limit_holds WHERE id = ?", (reservation_id,))


def usage(db: sqlite3.Connection, now: float) -> list[LimitUsage]:
    out = []
    for row in db.execute(
        "SELECT instance, requests_count, requests_period, tokens_count, tokens_period, in_flight_limit, requests_used,"
        " requests_at, tokens_used, tokens_at, in_flight FROM rate_limits ORDER BY instance"
    ).fetchall():
        requests = Rate(row[1], row[2]) if row[1] is not None else None
        tokens = Rate(row[3], row[4]) if row[3] is not None else None
        out.append(LimitUsage(
            row[0], current(row[6], row[7], now, requests) if requests else 0.0, requests.count if requests else None,
            current(row[8], row[9], now, tokens) if tokens else 0.0, tokens.count if tokens else None, row[10], row[5],
        ))
    return out
