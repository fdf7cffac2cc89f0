"""The statements of the in-memory front (`front.py`), each run inside the caller's `BEGIN
IMMEDIATE` transaction: taking and giving back leases, writing settled charges behind, and
recording how far the journal is written.

`leases` holds, per owner, what its leases count in the shared counters (budget headroom in
`reserved`, slots in `in_flight`), so recovery can give back a dead process's leases exactly;
`journals` the owner's journal file and the offset up to which its settles are in the ledger.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..ratelimit.bucket import current
from ..ratelimit.limits import LimitSpec
from .base import Settled, Slot, SlotState
from .lease import BudgetLease, budget_grant

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (owner, kind, key)
);
CREATE TABLE IF NOT EXISTS journals (
    owner TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    flushed INTEGER NOT NULL
);
"""

BUDGET = "budget"
SLOTS = "slots"

_COUNTER = (
    "INSERT INTO counters(instance, window, budget, scope, target, window_kind, limit_pico, block_pico, warn_pico)"
    " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(instance, window) DO UPDATE SET limit_pico = excluded.limit_pico,"
    " block_pico = excluded.block_pico, warn_pico = excluded.warn_pico RETURNING spent, reserved"
)
_CHARGE = (
    "UPDATE counters SET spent = spent + ?, reserved = MAX(0, reserved - ?) WHERE instance = ? AND window = ?"
    " RETURNING spent, reserved"
)
_TOKENS = (
    "UPDATE rate_limits SET tokens_used = max(0.0, max(0.0, tokens_used - max(0.0, :now - tokens_at) * tokens_count"
    " / tokens_period) + :delta), tokens_at = max(tokens_at, :now) WHERE instance = :instance"
    " AND tokens_count IS NOT NULL"
)
_LIMIT_STATE = (
    "SELECT requests_used, requests_at, tokens_used, tokens_at, in_flight FROM rate_limits WHERE instance = ?"
)
_TAKE = (
    "INSERT INTO rate_limits(instance, requests_count, requests_period, tokens_count, tokens_period, in_flight_limit,"
    " requests_used, requests_at, tokens_used, tokens_at, in_flight) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(instance) DO UPDATE SET requests_count = excluded.requests_count,"
    " requests_period = excluded.requests_period, tokens_count = excluded.tokens_count,"
    " tokens_period = excluded.tokens_period, in_flight_limit = excluded.in_flight_limit,"
    " requests_used = excluded.requests_used, requests_at = excluded.requests_at,"
    " tokens_used = excluded.tokens_used, tokens_at = excluded.tokens_at, in_flight = excluded.in_flight"
)


def counter_key(slot: Slot) -> str:
    return f"{slot.instance}\t{slot.window}"


def add_lease(db: sqlite3.Connection, owner: str, kind: str, key: str, delta: int) -> None:
    if delta:
        db.execute("INSERT INTO leases(owner, kind, key, amount) VALUES (?,?,?,?) ON CONFLICT(owner, kind, key)"
                   " DO UPDATE SET amount = amount + excluded.amount", (owner, kind, key, delta))


def grant_budget(db: sqlite3.Connection, owner: str, lease: BudgetLease, estimate: int) -> int:
    """Add to `lease` what fits below the block threshold (`budget_grant`); 0 when nothing does."""
    slot = lease.slot
    spent, reserved = db.execute(_COUNTER, (
        slot.instance, slot.window, slot.budget, slot.scope, slot.target, slot.window_kind, slot.limit_pico,
        slot.block_pico, slot.warn_pico)).fetchone()
    size = budget_grant(estimate, slot.block_pico - spent - reserved)
    if size:
        db.execute("UPDATE counters SET reserved = reserved + ? WHERE instance = ? AND window = ?",
                   (size, slot.instance, slot.window))
        add_lease(db, owner, BUDGET, counter_key(slot), size)
        lease.held += size
    lease.spent, lease.reserved = spent, reserved + size - lease.held
    return size


def write_budget(db: sqlite3.Connection, owner: str, lease: BudgetLease, give_back: int = 0) -> Settled | None:
    """Charge the lease's pending settles to its counter (its `reserved` shrinks by as much, within
    what the lease holds) and give back `give_back` more of its headroom. The `Settled` of the
    charge (for warn crossings), or None when nothing was pending."""
    charged = lease.pending
    release = min(lease.held, charged + give_back)
    if not charged and not release:
        return None
    slot = lease.slot
    spent, reserved = db.execute(_CHARGE, (charged, release, slot.instance, slot.window)).fetchone()
    add_lease(db, owner, BUDGET, counter_key(slot), -release)
    lease.held -= release
    lease.pending = 0
    lease.spent, lease.reserved = spent, reserved - lease.held
    if not charged:
        return None
    return Settled((SlotState(slot, spent - charged, reserved + release),), (SlotState(slot, spent, reserved),))


def insert_charges(db: sqlite3.Connection, rows: list[tuple[str, float, int, int, str]]) -> None:
    db.executemany("INSERT OR IGNORE INTO charges(id, settled_at, estimate, amount, how) VALUES (?,?,?,?,?)", rows)


def settle_tokens(db: sqlite3.Connection, instance: str, delta: int, now: float) -> None:
    """Tokens settled to reported usage: `delta` (reported less reserved) added to the drained use."""
    if delta:
        db.execute(_TOKENS, {"now": now, "delta": delta, "instance": instance})


def release_slots(db: sqlite3.Connection, owner: str, instance: str, count: int) -> None:
    if count:
        db.execute("UPDATE rate_limits SET in_flight = max(0, in_flight - ?) WHERE instance = ?", (count, instance))
        add_lease(db, owner, SLOTS, instance, -count)


@dataclass(frozen=True, slots=True)
class LimitState:
    """An instance's use drained to `now` (0 for a new one)."""

    requests: float
    requests_at: float
    tokens: float
    tokens_at: float
    in_flight: int


def limit_state(db: sqlite3.Connection, spec: LimitSpec, now: float) -> LimitState:
    row = db.execute(_LIMIT_STATE, (spec.instance,)).fetchone()
    if row is None:
        return LimitState(0.0, now, 0.0, now, 0)
    requests = current(row[0], row[1], now, spec.requests) if spec.requests else row[0]
    tokens = current(row[2], row[3], now, spec.tokens) if spec.tokens else row[2]
    return LimitState(requests, max(row[1], now), tokens, max(row[3], now), row[4])


def take_limit(db: sqlite3.Connection, owner: str, spec: LimitSpec, state: LimitState, requests: int, tokens: int,
               slots: int, now: float) -> None:
    """Count `requests` permits and `tokens` in the instance's buckets at `now` and `slots` in flight."""
    r, t = spec.requests, spec.tokens
    db.execute(_TAKE, (spec.instance, r.count if r else None, r.period_s if r else None, t.count if t else None,
                       t.period_s if t else None, spec.in_flight, state.requests + requests, state.requests_at,
                       state.tokens + tokens, state.tokens_at, state.in_flight + slots))
    add_lease(db, owner, SLOTS, spec.instance, slots)


def record_journal(db: sqlite3.Connection, owner: str, path: str, flushed: int) -> None:
    db.execute("INSERT INTO journals(owner, path, flushed) VALUES (?,?,?) ON CONFLICT(owner) DO UPDATE SET"
               " path = excluded.path, flushed = excluded.flushed", (owner, path, flushed))
