"""The ledger backends for one test suite: a `backend` is ("sqlite", data directory), ("front",
data directory: the in-memory front over the SQLite file, as `policy serve` opens it) or
("redis", URL)."""

from __future__ import annotations

from pathlib import Path

from runtime.ledger.base import Ledger
from runtime.ledger.front import FrontLedger
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger


def open_ledger(backend: tuple[str, object]) -> Ledger:
    kind, where = backend
    if kind == "sqlite":
        return SqliteLedger(Path(str(where)))
    if kind == "front":
        return FrontLedger(SqliteLedger(Path(str(where))))
    return RedisLedger(str(where))
