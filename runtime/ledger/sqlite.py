"""The embedded ledger: one SQLite file in WAL mode, shared safely by processes on one machine.

Every reserve and settle is a `BEGIN IMMEDIATE` transaction, so check-and-reserve is atomic across
processes. `policy serve` puts the in-memory front (`front.py`) before it, which leases capacity
from this file and writes settles in batches; recovery here also replays the journals of fronts
whose process died (`journal_recovery.py`). `synchronous=NORMAL` in WAL mode survives a killed process (the WAL is already written);
only a power loss can drop the last commits.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from ..ratelimit.limits import LimitSpec
from ..ratelimit.outcome import Limited, LimitFigures, LimitUsage
from . import front_store, sqlite_limits
from .base import Blocked, CounterRow, LedgerError, Reserved, Settled, Slot, SlotState, owner_id, owner_is_dead
from .journal_recovery import recover_journals_locked
from .wal import open_for_writing

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    instance TEXT NOT NULL,
    window TEXT NOT NULL,
    budget TEXT NOT NULL,
    scope TEXT NOT NULL,
    target TEXT NOT NULL,
    window_kind TEXT NOT NULL,
    limit_pico INTEGER NOT NULL,
    block_pico INTEGER NOT NULL,
    warn_pico INTEGER,
    spent INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance, window)
);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at REAL NOT NULL,
    amount INTEGER NOT NULL,
    slots TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
    id TEXT PRIMARY KEY,
    settled_at REAL NOT NULL,
    estimate INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    how TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    seen REAL NOT NULL
);
"""

LEDGER_FILE = "ledger.sqlite3"

_RESERVE = (
    "INSERT INTO counters(instance, window, budget, scope, target, window_kind, limit_pico, block_pico, warn_pico,"
    " reserved) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(instance, window) DO UPDATE SET"
    " limit_pico = excluded.limit_pico, block_pico = excluded.block_pico, warn_pico = excluded.warn_pico,"
    " reserved = reserved + excluded.reserved RETURNING spent, reserved"
)
_SETTLE = (
    "UPDATE counters SET spent = spent + ?, reserved = MAX(0, reserved - ?) WHERE instance = ? AND window = ?"
    " RETURNING budget, scope, target, window_kind, limit_pico, block_pico, warn_pico, spent, reserved"
)


def _slot_keys(text: str) -> list[tuple[str, str]]:
    """A reservation's counters: `instance<TAB>window` lines; JSON as written by earlier releases."""
    if text.startswith("["):
        return [(i, w) for i, w in json.loads(text)]
    return [(line.split("\t", 1)[0], line.split("\t", 1)[1]) for line in text.split("\n")] if text else []


class SqliteLedger:
    remote = False
    """A local file: each call is a short transaction, made in line on the event loop (a thread hop
    would cost more than the call). Its one connection is only ever used from that loop."""

    def __init__(self, data_dir: Path, stale_after_s: float = 30.0, read_only: bool = False) -> None:
        """`read_only` opens an existing ledger for reading (`policy budgets`): no file is created,
        nothing is written, and this process does not register as an owner."""
        self.path = data_dir / LEDGER_FILE
        self.owner = owner_id()
        self.stale_after_s = stale_after_s
        self.read_only = read_only
        try:
            if read_only:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10,
                                           isolation_level=None, check_same_thread=False)
                self._db.execute("PRAGMA busy_timeout=10000")
                return
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = open_for_writing(self.path)
            self._db.executescript(SCHEMA + sqlite_limits.SCHEMA + front_store.SCHEMA)
            self._add_holds_column()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger at {self.path}: {exc}") from exc
        self.heartbeat()

    def _add_holds_column(self) -> None:
        """Another process opening the same file at once may add it first."""
        if "holds" in {row[1] for row in self._db.execute("PRAGMA table_info(reservations)")}:
            return
        try:
            self._db.execute(sqlite_limits.HOLDS_COLUMN)
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):
                raise

    def _tx(self) -> sqlite3.Cursor:
        return self._db.execute("BEGIN IMMEDIATE")

    def heartbeat(self) -> None:
        try:
            self._db.execute(
                "INSERT INTO owners(owner, seen) VALUES (?, ?) ON CONFLICT(owner) DO UPDATE SET seen = excluded.seen",
                (self.owner, time.time()),
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"ledger heartbeat failed: {exc}") from exc

    def reserve(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked:
        result = self.admit(reservation_id, slots, amount, [], 0, 0.0)
        assert not isinstance(result, Limited)
        return result

    def admit(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec], tokens: int,
              now: float) -> Reserved | Blocked | Limited:
        """Budget reservation and rate-limit admission in one transaction: each counter is taken by
        one statement that returns what it then holds; if any budget or limit had no room, the
        transaction is rolled back, so all are taken or none is."""
        db = self._db
        try:
            self._tx()
            result = self.admit_locked(reservation_id, slots, amount, limits, tokens, now)
            db.execute("COMMIT" if isinstance(result, Reserved) else "ROLLBACK")
            return result
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            self._rollback()
            raise LedgerError(f"ledger admission failed: {exc}") from exc

    def admit_locked(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec],
                     tokens: int, now: float) -> Reserved | Blocked | Limited:
        """`admit` inside the caller's transaction; after a refusal the caller must roll back what it
        took (the transaction, or a savepoint taken before)."""
        db = self._db
        holds = None
        figures: tuple[LimitFigures, ...] = ()
        if limits:
            admitted = sqlite_limits.admit_locked(db, limits, tokens, now)
            if isinstance(admitted, Limited):
                return admitted
            figures, holds = admitted[0], admitted[1] or None
        states = []
        for slot in slots:
            spent, reserved = db.execute(_RESERVE, (
                slot.instance, slot.window, slot.budget, slot.scope, slot.target, slot.window_kind,
                slot.limit_pico, slot.block_pico, slot.warn_pico, amount)).fetchone()
            state = SlotState(slot, spent, reserved - amount)
            if spent + reserved - amount >= slot.block_pico:
                return Blocked(state)
            states.append(state)
        db.execute(
            "INSERT INTO reservations(id, owner, created_at, amount, slots, holds) VALUES (?,?,?,?,?,?)",
            (reservation_id, self.owner, time.time(), amount,
             "\n".join(f"{s.instance}\t{s.window}" for s in slots), holds),
        )
        return Reserved(reservation_id, tuple(states), figures)

    async def admit_async(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec],
                          tokens: int, now: float) -> Reserved | Blocked | Limited:
        return self.admit(reservation_id, slots, amount, limits, tokens, now)

    async def reserve_async(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked:
        return self.reserve(reservation_id, slots, amount)

    async def settle_async(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
                           now: float | None = None) -> Settled | None:
        return self.settle(reservation_id, actual, how, tokens, now)

    def settle(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
               now: float | None = None) -> Settled | None:
        """Charge `actual` (the estimate when None), settle its limits' token reservation to
        `tokens` (kept when None) and give back its slots in flight: one transaction."""
        try:
            self._tx()
            result = self._settle_locked(reservation_id, actual, how, tokens, time.time() if now is None else now)
            self._db.execute("COMMIT")
            return result
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            self._rollback()
            raise LedgerError(f"ledger settle failed: {exc}") from exc

    def _settle_locked(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
                       now: float | None = None) -> Settled | None:
        """`before` is each counter as the settlement found it; its `reserved` is read back as what is
        left plus this reservation's estimate (exact while the counter holds the reservation)."""
        db = self._db
        row = db.execute("DELETE FROM reservations WHERE id = ? RETURNING amount, slots, holds",
                         (reservation_id,)).fetchone()
        if row is None:
            return None
        estimate, slots_text, holds = row
        if holds:
            sqlite_limits.settle_locked(db, holds, tokens, time.time() if now is None else now)
        amount = estimate if actual is None else actual
        before, after = [], []
        for instance, window in _slot_keys(slots_text):
            counter = db.execute(_SETTLE, (amount, estimate, instance, window)).fetchone()
            slot = Slot(instance, window, *counter[:7])
            spent, reserved = counter[7], counter[8]
            before.append(SlotState(slot, spent - amount, reserved + estimate))
            after.append(SlotState(slot, spent, reserved))
        db.execute(
            "INSERT INTO charges(id, settled_at, estimate, amount, how) VALUES (?,?,?,?,?)",
            (reservation_id, time.time(), estimate, amount, how),
        )
        return Settled(tuple(before), tuple(after))

    def recover(self, on_settled: Callable[[Settled], None] | None = None) -> int:
        """Settle, at their estimate, the reservations of owners that died mid-request, and replay
        the journals and give back the leases of those that admitted through the front
        (`journal_recovery.py`)."""
        now = time.time()
        try:
            self._tx()
            owners = dict(self._db.execute("SELECT owner, seen FROM owners").fetchall())
            pending = self._db.execute("SELECT id, owner FROM reservations").fetchall()
            recovered = 0
            found: list[Settled] = []
            for reservation_id, owner in pending:
                if owner == self.owner:
                    continue
                if owner_is_dead(owner, owners.get(owner, 0.0), now, self.stale_after_s):
                    settled = self._settle_locked(reservation_id, None, "estimate: its process died before settling")
                    recovered += 1
                    if settled is not None:
                        found.append(settled)
            journals = recover_journals_locked(self._db, self.owner, owners, now, self.stale_after_s)
            recovered += journals.charges
            found += journals.settled
            alive = {o for _, o in self._db.execute("SELECT id, owner FROM reservations").fetchall()}
            alive |= {o for (o,) in self._db.execute("SELECT owner FROM leases UNION SELECT owner FROM journals")}
            for owner, seen in owners.items():
                if owner != self.owner and owner not in alive and owner_is_dead(owner, seen, now, self.stale_after_s):
                    self._db.execute("DELETE FROM owners WHERE owner = ?", (owner,))
            self._db.execute("COMMIT")
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            self._rollback()
            raise LedgerError(f"ledger recovery failed: {exc}") from exc
        for path in journals.journals:
            path.unlink(missing_ok=True)
        if on_settled is not None:
            for settled in found:
                on_settled(settled)
        return recovered

    def limit_usage(self, now: float | None = None) -> list[LimitUsage]:
        """Each rate-limit instance's current use (none in a ledger written before rate limits)."""
        try:
            return sqlite_limits.usage(self._db, time.time() if now is None else now)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise LedgerError(f"cannot read the ledger at {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the ledger at {self.path}: {exc}") from exc

    def counters(self) -> list[CounterRow]:
        try:
            rows = self._db.execute(
                "SELECT instance, window, budget, scope, target, window_kind, limit_pico, block_pico, warn_pico, spent,"
                " reserved FROM counters ORDER BY instance, window"
            ).fetchall()
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the ledger at {self.path}: {exc}") from exc
        return [CounterRow(*row) for row in rows]

    async def aclose(self) -> None:
        """Nothing loop-bound to close: see `close`."""

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if self.read_only:
            self._db.close()
            return
        try:
            self._db.execute("DELETE FROM owners WHERE owner = ? AND NOT EXISTS"
                             " (SELECT 1 FROM reservations WHERE owner = ?)", (self.owner, self.owner))
        except sqlite3.Error:
            pass
        self._db.close()
