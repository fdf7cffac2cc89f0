"""Putting a ledger file in WAL mode when several processes may open it at the same moment (the
workers of `policy serve --workers N` on a fresh data directory, `policy budgets` beside them)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

WAL_WAIT_S = 10.0
"""How long an opener keeps trying to convert a new file that others are opening too."""


def open_for_writing(path: Path) -> sqlite3.Connection:
    """A connection that writes the ledger file at `path`, as every writer opens it: autocommit,
    usable from the threads that hand it on, waiting up to 10 s for another writer's lock, the file
    in WAL mode (`use_wal`) with `synchronous=NORMAL` (a commit survives a crash of the process)."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=10000")
    use_wal(db)
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def use_wal(db: sqlite3.Connection, wait_s: float = WAL_WAIT_S) -> None:
    """WAL is a property of the file, so a connection that finds it already in WAL mode takes no
    lock and has nothing to do. Converting a new file needs the file to itself, and SQLite answers
    `database is locked` at once when another connection is reading or converting it (the busy
    timeout does not apply to the conversion): such an opener tries again, backing off from 1 ms
    to 50 ms, for up to `wait_s`, and is done as soon as another one has converted the file."""
    deadline = time.monotonic() + wait_s
    pause = 0.001
    while True:
        try:
            if _mode(db, "PRAGMA journal_mode") == "wal" or _mode(db, "PRAGMA journal_mode=WAL") == "wal":
                return
            problem = sqlite3.OperationalError("database is locked: the file could not be put in WAL mode")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            problem = exc
        if time.monotonic() >= deadline:
            raise problem
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _mode(db: sqlite3.Connection, pragma: str) -> str:
    row = db.execute(pragma).fetchone()
    return str(row[0]).lower() if row is not None else ""
