"""Recovery of a dead process that admitted through the in-memory front, inside the recovering
ledger's transaction: its journal replayed after the offset the ledger has (settled requests
charged at their actual amount, admitted and unsettled ones at their estimate), then its leases
given back (budget headroom to `reserved`, slots to `in_flight`; request and token permits simply
drain). Deleting its `journals` and `leases` rows in the same transaction makes it happen once,
however many live processes recover at the same time.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .base import Settled, Slot, SlotState, owner_is_dead
from .front_store import BUDGET, SLOTS, insert_charges, settle_tokens
from .journal import Admitted, replay

DIED = "estimate: its process died before settling"

_CHARGE = (
    "UPDATE counters SET spent = spent + ? WHERE instance = ? AND window = ?"
    " RETURNING budget, scope, target, window_kind, limit_pico, block_pico, warn_pico, spent, reserved"
)


@dataclass
class Recovered:
    charges: int = 0
    settled: list[Settled] = field(default_factory=list)
    journals: list[Path] = field(default_factory=list)
    """Files to remove once the transaction is committed."""


def recover_journals_locked(db: sqlite3.Connection, me: str, owners: dict[str, float], now: float,
                            stale_after_s: float) -> Recovered:
    out = Recovered()
    journals = {owner: (path, flushed) for owner, path, flushed in db.execute(
        "SELECT owner, path, flushed FROM journals").fetchall()}
    holders = {owner for (owner,) in db.execute("SELECT DISTINCT owner FROM leases").fetchall()}
    for owner in sorted((set(journals) | holders) - {me}):
        if not owner_is_dead(owner, owners.get(owner, 0.0), now, stale_after_s):
            continue
        if owner in journals:
            path, flushed = Path(journals[owner][0]), journals[owner][1]
            _replay(db, path, flushed, now, out)
            out.journals.append(path)
        _give_back(db, owner)
    return out


def _replay(db: sqlite3.Connection, path: Path, flushed: int, now: float, out: Recovered) -> None:
    admitted, unwritten, settled = replay(path, flushed)
    for line in unwritten:
        admission = admitted.get(line.reservation_id)
        if admission is not None:
            _charge(db, admission, line.amount, line.how, now, out)
            if line.tokens is not None:
                for instance in admission.token_instances:
                    settle_tokens(db, instance, line.tokens - admission.tokens, now)
    for rid, admission in admitted.items():
        if rid not in settled:
            _charge(db, admission, admission.estimate, DIED, now, out)


def _charge(db: sqlite3.Connection, admission: Admitted, amount: int, how: str, now: float, out: Recovered) -> None:
    before, after = [], []
    for instance, window in admission.counters:
        row = db.execute(_CHARGE, (amount, instance, window)).fetchone()
        if row is None:
            continue
        slot = Slot(instance, window, *row[:7])
        before.append(SlotState(slot, row[7] - amount, row[8]))
        after.append(SlotState(slot, row[7], row[8]))
    insert_charges(db, [(admission.reservation_id, now, admission.estimate, amount, how)])
    out.charges += 1
    out.settled.append(Settled(tuple(before), tuple(after)))


def _give_back(db: sqlite3.Connection, owner: str) -> None:
    for kind, key, amount in db.execute("SELECT kind, key, amount FROM leases WHERE owner = ?", (owner,)).fetchall():
        if kind == BUDGET:
            instance, _, window = key.partition("\t")
            db.execute("UPDATE counters SET reserved = MAX(0, reserved - ?) WHERE instance = ? AND window = ?",
                       (amount, instance, window))
        elif kind == SLOTS:
            db.execute("UPDATE rate_limits SET in_flight = max(0, in_flight - ?) WHERE instance = ?", (amount, key))
    db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
    db.execute("DELETE FROM journals WHERE owner = ?", (owner,))
