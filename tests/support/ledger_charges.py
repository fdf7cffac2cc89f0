"""The settled charges a ledger holds, read from its storage for tests to compare (the ledger's
own interface reads counters only: nothing in Gatepost needs charge by charge)."""

from __future__ import annotations

import json

from runtime.ledger.base import Ledger
from runtime.ledger.front import FrontLedger
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger

Charge = tuple[str, int, int, str]
"""(request id, estimate, amount, how it was settled), in settling order."""


def recorded_charges(ledger: Ledger) -> list[Charge]:
    """The front's pending settles are written first."""
    if isinstance(ledger, FrontLedger):
        ledger.flush()
        ledger = ledger.inner
    if isinstance(ledger, SqliteLedger):
        rows = ledger._db.execute("SELECT id, estimate, amount, how FROM charges ORDER BY settled_at").fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]
    if isinstance(ledger, RedisLedger):
        charges = [json.loads(raw) for raw in ledger._r.lrange(f"{ledger.prefix}charges", 0, -1)]
        return [(c["id"], int(c["estimate"]), int(c["amount"]), c["how"]) for c in charges]
    raise TypeError(f"no charges to read from {type(ledger).__name__}")
