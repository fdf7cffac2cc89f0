"""Both ledger backends for one test suite: a `backend` is ("sqlite", data directory) or ("redis", URL)."""

from __future__ import annotations

from runtime.ledger.base import Ledger
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger


def open_ledger(backend: tuple[str, object]) -> Ledger:
    kind, where = backend
    return SqliteLedger(where) if kind == "sqlite" else RedisLedger(str(where))  # type: ignore[arg-type]
