"""Rate-limit state in the SQLite ledger, written inside the caller's transaction, one statement
per instance: the bucket arithmetic of `ratelimit/bucket.py` is done by the statement itself, and
the new use it returns is judged afterwards; a refusal rolls the whole transaction back.

`rate_limits` holds one row per instance: the limits it was last admitted under and its state;
an open reservation's `holds` column what it took (tokens reserved, a slot in flight), so settling,
or recovering a dead process's reservation, gives back exactly that.
"""

from __future__ import annotations

import sqlite3

from ..ratelimit.admission import judge
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
"""

HOLDS_COLUMN = "ALTER TABLE reservations ADD COLUMN holds TEXT"
"""Ledgers made before rate limits gain the column on open; older releases ignore it."""

_DRAINED = "max(0.0, {used} - max(0.0, excluded.{at} - {at}) * excluded.{count} / excluded.{period})"
_ROW = "(?,?,?,?,?,?,?,?,?,?,?)"
_ADMIT = (
    "INSERT INTO rate_limits(instance, requests_count, requests_period, tokens_count, tokens_period, in_flight_limit,"
    " requests_used, requests_at, tokens_used, tokens_at, in_flight) VALUES {rows}"
    " ON CONFLICT(instance) DO UPDATE SET requests_count = excluded.requests_count,"
    " requests_period = excluded.requests_period, tokens_count = excluded.tokens_count,"
    " tokens_period = excluded.tokens_period, in_flight_limit = excluded.in_flight_limit,"
    " requests_used = CASE WHEN excluded.requests_count IS NULL THEN requests_used ELSE "
    + _DRAINED.format(used="requests_used", at="requests_at", count="requests_count", period="requests_period")
    + " + excluded.requests_used END, requests_at = max(requests_at, excluded.requests_at),"
    " tokens_used = CASE WHEN excluded.tokens_count IS NULL THEN tokens_used ELSE "
    + _DRAINED.format(used="tokens_used", at="tokens_at", count="tokens_count", period="tokens_period")
    + " + excluded.tokens_used END, tokens_at = max(tokens_at, excluded.tokens_at),"
    " in_flight = in_flight + excluded.in_flight"
    " RETURNING instance, requests_used, tokens_used, in_flight"
)
"""One statement for every instance of a request: each row carries what this request adds (1
request, its tokens, 1 slot) and `now` as the values a new instance starts from, and the update
drains the stored use to `now` before adding them."""
_SETTLE = (
    "UPDATE rate_limits SET in_flight = max(0, in_flight - :took),"
    " tokens_used = CASE WHEN :actual IS NULL OR tokens_count IS NULL OR :reserved = 0 THEN tokens_used ELSE"
    " max(0.0, max(0.0, tokens_used - max(0.0, :now - tokens_at) * tokens_count / tokens_period) + :actual - :reserved)"
    " END, tokens_at = CASE WHEN :actual IS NULL OR tokens_count IS NULL OR :reserved = 0 THEN tokens_at ELSE"
    " max(tokens_at, :now) END WHERE instance = :instance"
)


def admit_locked(db: sqlite3.Connection, specs: list[LimitSpec], tokens: int, now: float
                 ) -> tuple[tuple[LimitFigures, ...], str] | Limited:
    """Every instance (distinct, as a key's are) counted, its tokens reserved and a slot taken, with
    the figures left and the holds to keep on the reservation; or the first with no room (the
    caller then rolls back)."""
    values: list[object] = []
    for spec in specs:
        requests, token_rate = spec.requests, spec.tokens
        values += [spec.instance, requests.count if requests else None, requests.period_s if requests else None,
                   token_rate.count if token_rate else None, token_rate.period_s if token_rate else None,
                   spec.in_flight, 1 if requests else 0, now, tokens if token_rate else 0, now,
                   1 if spec.in_flight is not None else 0]
    sql = _ADMIT.format(rows=",".join([_ROW] * len(specs)))
    after = {row[0]: row[1:] for row in db.execute(sql, values).fetchall()}
    figures: list[LimitFigures] = []
    holds: list[str] = []
    for spec in specs:
        requests_used, tokens_used, in_flight = after[spec.instance]
        took = spec.in_flight is not None
        judged = judge(spec, requests_used - 1 if spec.requests else 0.0,
                       tokens_used - tokens if spec.tokens else 0.0, in_flight - 1 if took else in_flight, tokens)
        if isinstance(judged, Limited):
            return judged
        figures.extend(judged)
        if took or spec.tokens:
            holds.append(f"{int(took)} {tokens if spec.tokens else 0} {spec.instance}")
    return tuple(figures), "\n".join(holds)


def settle_locked(db: sqlite3.Connection, holds: str, actual_tokens: int | None, now: float) -> None:
    """Give back what a reservation took: tokens settled to `actual_tokens`, its slots in flight."""
    for line in holds.split("\n"):
        took, reserved, instance = line.split(" ", 2)
        db.execute(_SETTLE, {"took": int(took), "actual": actual_tokens, "reserved": int(reserved), "now": now,
                             "instance": instance})


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
