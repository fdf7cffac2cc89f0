"""What the admin surface reads about traffic: requests, refusals and spend per hour and per day
for each team, key, model and provider, and the recent refusals, kept in the SQLite ledger file
beside the counters.

The request path only adds to memory (`Activity.spent`, `Activity.refused`: a dict update or a
list append); `flush` writes what gathered in one transaction, from the proxy's keeper every
`FLUSH_S` (off the request path), so every process serving one ledger file adds to the same rows
and the admin surface reads the whole machine's traffic, not one process's.

The rollup (`activity`) is kept already summed the way it is read: one row per unit (`hour` or
`day`, UTC), dimension (`team`, `key`, `model`, `provider`), bucket and name. A query for 90 days by
team is a range scan of the primary key that returns its answer's rows and nothing else, whatever
the number of requests behind them (`bench/admin.py`); a request costs eight upserts at the flush,
merged with every other request of the same bucket and names first. Refusals are kept one row each,
the newest `KEEP_REFUSALS` only: enough for "who was refused and why" over recent days without
growing the file for ever; the rollup counts every refusal, so counts stay exact after old rows
are dropped. A refusal row holds its time, status, code, key id, model, policy line and the message
the client got (which names keys by id and never quotes a prompt); never a key, its hash or
request content.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .base import LedgerError
from .wal import open_for_writing

SCHEMA = """
CREATE TABLE IF NOT EXISTS activity (
    unit TEXT NOT NULL,
    dimension TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    name TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0,
    spent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (unit, dimension, bucket, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS refusals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    key TEXT,
    model TEXT,
    source TEXT,
    message TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys_seen (
    key TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS refusals_by_key ON refusals(key, seq);
CREATE INDEX IF NOT EXISTS refusals_by_code ON refusals(code, seq);
"""

KEEP_REFUSALS = 10_000
NONE = ""
"""How a missing team, key, model or provider is stored (the rollup's key columns are NOT NULL)."""

DIMENSIONS = ("team", "key", "model", "provider")
UNITS = {"hour": 1, "day": 24}
"""Each unit of the rollup and its length in hours."""
_ADD = (
    "INSERT INTO activity(unit, dimension, bucket, name, requests, refused, spent) VALUES (?,?,?,?,?,?,?)"
    " ON CONFLICT(unit, dimension, bucket, name) DO UPDATE SET requests = requests + excluded.requests,"
    " refused = refused + excluded.refused, spent = spent + excluded.spent"
)

Where = tuple[int, str, str, str, str]
"""An hour (seconds since the epoch // 3600), team, key id, model and provider."""


@dataclass(frozen=True, slots=True)
class Refusal:
    at: float
    status: int
    code: str
    key: str | None
    model: str | None
    source: str | None
    message: str


class Activity:
    """Traffic gathered in memory since the last flush."""

    def __init__(self, keep_refusals: int = KEEP_REFUSALS) -> None:
        self.keep_refusals = keep_refusals
        self._counts: dict[Where, list[int]] = {}
        self._refusals: list[Refusal] = []
        self._seen: dict[str, float] = {}

    def spent(self, at: float, team: str | None, key: str | None, model: str | None, provider: str | None,
              pico: int) -> None:
        """One answered request and what it was charged (0 when nothing)."""
        if key:
            self._seen[key] = at
        where = (int(at) // 3600, team or NONE, key or NONE, model or NONE, provider or NONE)
        counts = self._counts.get(where)
        if counts is None:
            self._counts[where] = [1, 0, pico]
        else:
            counts[0] += 1
            counts[2] += pico

    def refused(self, refusal: Refusal, team: str | None) -> None:
        """One request refused by the gateway's own policy (401, 402, 403, 429)."""
        where = (int(refusal.at) // 3600, team or NONE, refusal.key or NONE, refusal.model or NONE, NONE)
        counts = self._counts.get(where)
        if counts is None:
            self._counts[where] = [1, 1, 0]
        else:
            counts[0] += 1
            counts[1] += 1
        self._refusals.append(refusal)

    @property
    def pending(self) -> bool:
        return bool(self._counts or self._refusals or self._seen)

    def flush(self, db: sqlite3.Connection) -> None:
        """Write what gathered, in a transaction of its own; kept for the next flush if the write fails."""
        if not self.pending:
            return
        counts, refusals, seen = self._counts, self._refusals, self._seen
        self._counts, self._refusals, self._seen = {}, [], {}
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(_ADD, rollup(counts))
            db.executemany("INSERT INTO keys_seen(key, at) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET"
                           " at = MAX(at, excluded.at)", list(seen.items()))
            if refusals:
                db.executemany(
                    "INSERT INTO refusals(at, status, code, key, model, source, message) VALUES (?,?,?,?,?,?,?)",
                    [(r.at, r.status, r.code, r.key, r.model, r.source, r.message) for r in refusals],
                )
                db.execute("DELETE FROM refusals WHERE seq <= (SELECT MAX(seq) FROM refusals) - ?",
                           (self.keep_refusals,))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for where, c in counts.items():
                mine = self._counts.setdefault(where, [0, 0, 0])
                for i in range(3):
                    mine[i] += c[i]
            self._refusals[:0] = refusals
            for key, at in seen.items():
                self._seen[key] = max(at, self._seen.get(key, at))
            raise LedgerError(f"cannot write the admin activity to the ledger: {exc}") from exc


def rollup(counts: dict[Where, list[int]]) -> list[tuple[str, str, int, str, int, int, int]]:
    """The rows `counts` adds to: each per unit and dimension, summed."""
    rows: dict[tuple[str, str, int, str], list[int]] = {}
    for (hour, *names), (requests, refused, spent) in counts.items():
        for unit, hours in UNITS.items():
            for dimension, name in zip(DIMENSIONS, names, strict=True):
                row = rows.setdefault((unit, dimension, hour // hours, name), [0, 0, 0])
                row[0] += requests
                row[1] += refused
                row[2] += spent
    return [(*where, *row) for where, row in rows.items()]  # type: ignore[misc]


def open_activity_db(data_dir: Path) -> sqlite3.Connection:
    """A connection of its own to the ledger file (WAL: readers never wait on the proxy's writes),
    with the activity tables created."""
    from .sqlite import LEDGER_FILE

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        db = open_for_writing(data_dir / LEDGER_FILE)
        db.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger at {data_dir / LEDGER_FILE}: {exc}") from exc
    return db



FLUSH_S = 1.0


async def keep_activity(activity: Activity, db: sqlite3.Connection, on_error: Callable[[str], None]) -> None:
    """Write the gathered activity every `FLUSH_S`, until cancelled."""
    while True:
        await asyncio.sleep(FLUSH_S)
        try:
            activity.flush(db)
        except LedgerError as exc:
            on_error(str(exc))
