"""The in-memory front of the SQLite ledger: the same `Ledger`, admitting against capacity leased
from the shared file (`lease.py`) with no I/O but one journal line, and writing settles behind.

A request whose budgets and limits all fit in this process's leases is admitted in memory; one
that does not takes or tops up its leases in one transaction (which also writes the pending
settles) and is admitted against them; one whose limits are too narrow to lease, or whose budget
has less room left than a lease needs, is admitted exactly by the SQLite ledger, as without the
front. Settles update memory and the journal (`journal.py`); pending charges are written in one
transaction every `FLUSH_S`, every `FLUSH_CHARGES` charges, at every lease top-up, on `tend` and
at `close`, and warn crossings are reported from that write. A dead process's journal is replayed
and its leases given back by any live ledger's `recover` (`journal_recovery.py`). README "Budgets"
and "Rate limits: the runtime's guarantees" state the bounds.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..ratelimit.limits import LimitSpec
from ..ratelimit.outcome import Limited, LimitUsage, named
from . import front_store as store
from .base import Blocked, CounterRow, LedgerError, Reserved, Settled, Slot, SlotState
from .journal import Admitted, Journal, journal_path
from .lease import (
    IDLE_S,
    LOW_WATER,
    BudgetLease,
    PermitLease,
    SlotLease,
    permits_per_lease,
    slot_grant,
    token_cap,
    tokens_per_lease,
)
from .sqlite import SqliteLedger

FLUSH_S = 0.25
FLUSH_CHARGES = 1024
WRITTEN_BEHIND = Settled((), ())
"""What a settle made in memory answers: settled, its charge and warn crossings to follow at the flush
(None still means there was nothing to settle)."""
ENDED = "estimate: its process ended before settling"
ROTATE_BYTES = 8 << 20
"""A journal past this size is replaced, at a flush, by one holding only the admissions in flight."""
MAX_PLANS = 4096
"""Plans remembered at most (one per key and model the gate admits): past it they are all forgotten."""


@dataclass(slots=True)
class Plan:
    """What admitting one request's budgets and limits needs that does not change from request to
    request: the smallest token cap of its limits, the counters and token instances its journal
    line names, and the leases it is admitted against as they were at `version` (the front's
    `_version` moves whenever a lease may have been added, replaced or removed)."""

    slots: list[Slot]
    limits: list[LimitSpec]
    counted: tuple[Slot | LimitSpec, ...]
    token_cap: int
    counters: tuple[tuple[str, str], ...]
    token_instances: tuple[str, ...]
    warns: bool
    """Some budget has a warn threshold: only then does an admission report the budgets' states."""
    version: int = -1
    budgets: tuple[BudgetLease, ...] = ()
    permits: tuple[PermitLease, ...] = ()
    """The request permits of its limits that count requests; `allowances` likewise tokens."""
    allowances: tuple[PermitLease, ...] = ()
    slot_leases: tuple[SlotLease, ...] = ()


class Held(NamedTuple):
    """An admission made in memory: what it took from which leases (one per request: a named tuple)."""

    line: Admitted
    budgets: tuple[BudgetLease, ...]
    slots: tuple[SlotLease, ...]


class FrontLedger:
    remote = False

    def __init__(self, inner: SqliteLedger, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.owner = inner.owner
        self.clock = clock
        self.on_settled: Callable[[Settled], None] | None = None
        """Where the warn crossings of written-behind charges go (the budget gate's `crossings`)."""
        self._db = inner._db
        self._generation = 0
        self._journal = Journal(journal_path(inner.path.parent, self.owner, self._generation))
        self._budgets: dict[Slot, BudgetLease] = {}
        self._requests: dict[LimitSpec, PermitLease] = {}
        self._tokens: dict[LimitSpec, PermitLease] = {}
        self._slots: dict[LimitSpec, SlotLease] = {}
        self._held: dict[str, Held] = {}
        self._exact: set[str] = set()
        self._token_caps: dict[LimitSpec, int] = {}
        self._pending: list[tuple[str, float, int, int, str]] = []
        self._token_deltas: dict[str, int] = {}
        self._pending_since = 0.0
        self._registered = False
        self._crossed: list[Settled] = []
        self._plans: dict[tuple[int, int], Plan] = {}
        self._version = 0

    @property
    def path(self) -> str:
        return str(self.inner.path)

    def admit(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec], tokens: int,
              now: float) -> Reserved | Blocked | Limited:
        plan = self._plan(slots, limits)
        if plan.token_cap < 2 * max(tokens, 1):
            return self._exactly(reservation_id, slots, amount, limits, tokens, now)
        taken = self._take(reservation_id, plan, amount, tokens, now)
        if taken is not None:
            return taken
        exact = self._top_up(reservation_id, slots, amount, limits, tokens, now)
        if exact is not None:
            return exact
        taken = self._take(reservation_id, plan, amount, tokens, now)
        return taken if taken is not None else self._exactly(reservation_id, slots, amount, limits, tokens, now)

    def _plan(self, slots: list[Slot], limits: list[LimitSpec]) -> Plan:
        """The plan of these budgets and limits: found by the lists' identity (the gate passes the
        same lists for a key while its windows and the table hold) and checked item by item, so a
        list changed in place or a new list gets a plan of its own."""
        plan = self._plans.get((id(slots), id(limits)))
        if plan is not None and plan.counted == (*slots, *limits):
            return plan
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        caps = [self._token_cap(spec) for spec in limits]
        plan = Plan(slots, limits, (*slots, *limits), min(caps, default=sys.maxsize),
                    tuple((s.instance, s.window) for s in slots),
                    tuple(spec.instance for spec in limits if spec.tokens is not None),
                    any(s.warn_pico is not None for s in slots))
        self._plans[(id(slots), id(limits))] = plan
        return plan

    def _token_cap(self, spec: LimitSpec) -> int:
        cap = self._token_caps.get(spec)
        if cap is None:
            cap = self._token_caps[spec] = token_cap(spec)
        return cap

    def _exactly(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec], tokens: int,
                 now: float) -> Reserved | Blocked | Limited:
        result = self.inner.admit(reservation_id, slots, amount, limits, tokens, now)
        if isinstance(result, Reserved):
            self._exact.add(reservation_id)
        return result

    def reserve(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked:
        result = self.admit(reservation_id, slots, amount, [], 0, 0.0)
        assert not isinstance(result, Limited)
        return result

    async def admit_async(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec],
                          tokens: int, now: float) -> Reserved | Blocked | Limited:
        return self.admit(reservation_id, slots, amount, limits, tokens, now)

    async def reserve_async(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked:
        return self.reserve(reservation_id, slots, amount)

    def _leases(self, plan: Plan) -> bool:
        """Look up the leases of `plan` (once per change of `_version`); False when one is missing."""
        budgets = []
        for slot in plan.slots:
            lease = self._budgets.get(slot)
            if lease is None:
                return False
            budgets.append(lease)
        permits: list[PermitLease] = []
        allowances: list[PermitLease] = []
        slot_leases: list[SlotLease] = []
        for spec in plan.limits:
            if spec.requests is not None:
                if (permit := self._requests.get(spec)) is None:
                    return False
                permits.append(permit)
            if spec.tokens is not None:
                if (allowance := self._tokens.get(spec)) is None:
                    return False
                allowances.append(allowance)
            if spec.in_flight is not None:
                if (slot_lease := self._slots.get(spec)) is None:
                    return False
                slot_leases.append(slot_lease)
        plan.budgets, plan.version = tuple(budgets), self._version
        plan.permits, plan.allowances, plan.slot_leases = tuple(permits), tuple(allowances), tuple(slot_leases)
        return True

    def _take(self, reservation_id: str, plan: Plan, amount: int, tokens: int, now: float) -> Reserved | None:
        """Admit against the plan's leases; None when one is missing or has too little room. The
        answer's figures list requests, then tokens, then slots in flight; its budget states are
        there when some budget warns (the budget gate reads them for its warnings alone)."""
        if plan.version != self._version and not self._leases(plan):
            return None
        budgets, permits, allowances, slot_leases = plan.budgets, plan.permits, plan.allowances, plan.slot_leases
        for lease in budgets:
            if not lease.fits(amount):
                return None
        for permit in permits:
            if not permit.fits(1, now):
                return None
        for allowance in allowances:
            if not allowance.fits(tokens, now):
                return None
        for slot_lease in slot_leases:
            if slot_lease.free < 1:
                return None
        at = self.clock()
        states = []
        if plan.warns:
            for budget in budgets:
                states.append(named(SlotState, (budget.slot, budget.spent + budget.pending,
                                                budget.reserved + budget.in_flight)))
        for budget in budgets:
            budget.in_flight += amount
            budget.used_at = at
        figures = []
        for permit in permits:
            permit.left -= 1
            figures.append(permit.figures(now))
        for allowance in allowances:
            allowance.left -= tokens
            figures.append(allowance.figures(now))
        for slot_lease in slot_leases:
            slot_lease.busy += 1
            slot_lease.used_at = at
            figures.append(slot_lease.figures())
        line = named(Admitted, (reservation_id, amount, tokens, plan.counters, plan.token_instances))
        self._journal.admitted(line)
        self._held[reservation_id] = named(Held, (line, budgets, slot_leases))
        return named(Reserved, (reservation_id, tuple(states), tuple(figures)))

    def _top_up(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec], tokens: int,
                now: float) -> Reserved | Blocked | Limited | None:
        """One transaction: write what is pending, lease what this request lacks and top up what is
        low; when some counter has too little room to lease, admit the request exactly in the same
        transaction (that counter's unused leased headroom given back first, so it and other
        processes can use it) and answer that. None when the leases now hold the request."""
        exact: Reserved | Blocked | Limited | None = None

        def grant() -> bool:
            nonlocal exact
            enough = True
            for slot in slots:
                lease = self._budgets.get(slot)
                if lease is None:
                    self._retire_budget_leases(slot)
                    lease = self._budgets[slot] = BudgetLease(slot, used_at=self.clock())
                if lease.fits(LOW_WATER * amount):
                    continue
                store.grant_budget(self._db, self.owner, lease, amount)
                if not lease.fits(amount):
                    self._collect(store.write_budget(self._db, self.owner, lease, max(0, lease.free)))
                    enough = False
            for spec in limits:
                enough = self._grant_limit(spec, tokens, now) and enough
            if not enough:
                self._db.execute("SAVEPOINT exact")
                exact = self.inner.admit_locked(reservation_id, slots, amount, limits, tokens, now)
                if not isinstance(exact, Reserved):
                    self._db.execute("ROLLBACK TO exact")
                self._db.execute("RELEASE exact")
            return enough

        self._transaction(grant)
        if isinstance(exact, Reserved):
            self._exact.add(reservation_id)
        return exact

    def _grant_limit(self, spec: LimitSpec, tokens: int, now: float) -> bool:
        """Lease what this request lacks of `spec`, and top up what is low; False when what it lacks
        does not fit."""
        permits, allowance, slot_lease = self._requests.get(spec), self._tokens.get(spec), self._slots.get(spec)
        low_requests = spec.requests is not None and (permits is None or not permits.fits(LOW_WATER, now))
        low_tokens = spec.tokens is not None and (allowance is None or not allowance.fits(LOW_WATER * tokens, now))
        low_slots = spec.in_flight is not None and (slot_lease is None or slot_lease.free < 2)
        if not (low_requests or low_tokens or low_slots):
            return True
        state = store.limit_state(self._db, spec, now)
        requests = taken_tokens = slots = 0
        if low_requests and spec.requests is not None:
            room = min(permits_per_lease(spec.requests), int(spec.requests.count - state.requests))
            if permits is None or not permits.fits(1, now):
                if room < 1:
                    return False
                requests = room
            elif room >= LOW_WATER:
                requests = room
        if low_tokens and spec.tokens is not None:
            room = min(tokens_per_lease(spec.tokens, tokens), int(spec.tokens.count - state.tokens))
            if allowance is None or not allowance.fits(tokens, now):
                if room < max(tokens, 1):
                    return False
                taken_tokens = room
            elif room >= LOW_WATER * max(tokens, 1):
                taken_tokens = room
        if low_slots and spec.in_flight is not None:
            slots = max(0, slot_grant(spec.in_flight, state.in_flight))
            if slots < 1 and (slot_lease is None or slot_lease.free < 1):
                return False
        if requests or taken_tokens or slots:
            self._take_limit(spec, state, requests, taken_tokens, slots, now)
        return True

    def _take_limit(self, spec: LimitSpec, state: store.LimitState, requests: int, taken_tokens: int, slots: int,
                    now: float) -> None:
        slot_lease = self._slots.get(spec)
        store.take_limit(self._db, self.owner, spec, state, requests, taken_tokens, slots, now)
        if requests and spec.requests is not None:
            self._requests[spec] = PermitLease(spec.instance, "requests", requests, now, state.requests + requests,
                                               spec.requests)
        if taken_tokens and spec.tokens is not None:
            self._tokens[spec] = PermitLease(spec.instance, "tokens", taken_tokens, now, state.tokens + taken_tokens,
                                             spec.tokens)
        if spec.in_flight is not None:
            if slot_lease is None:
                self._retire_slot_leases(spec)
                slot_lease = self._slots[spec] = SlotLease(spec)
            slot_lease.held += slots
            slot_lease.in_flight = state.in_flight - slot_lease.held + slots
            slot_lease.used_at = self.clock()

    def _retire_budget_leases(self, slot: Slot) -> None:
        """A slot with new limits (a reload) or the counter's next window: the free headroom of the
        leases taken under the old one goes back; they leave when idle."""
        for lease in self._budgets.values():
            if lease.slot.instance == slot.instance and lease.slot != slot and lease.free > 0:
                self._collect(store.write_budget(self._db, self.owner, lease, lease.free))

    def _retire_slot_leases(self, spec: LimitSpec) -> None:
        for old in self._slots.values():
            if old.spec.instance == spec.instance and old.spec != spec and old.free > 0:
                store.release_slots(self._db, self.owner, spec.instance, old.free)
                old.held = old.busy

    def settle(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
               now: float | None = None) -> Settled | None:
        """Settle in memory and in the journal; the charge is written with the next flush and its
        warn crossing reported then (a flush the file refuses leaves it pending, for the next one).
        A reservation admitted exactly is settled by the SQLite ledger."""
        held = self._held.pop(reservation_id, None)
        if held is None:
            self._exact.discard(reservation_id)
            return self.inner.settle(reservation_id, actual, how, tokens, now)
        line = held.line
        amount = line.estimate if actual is None else actual
        at = self.clock()
        for lease in held.budgets:
            lease.in_flight -= line.estimate
            lease.pending += amount
            lease.used_at = at
        for slot_lease in held.slots:
            slot_lease.busy -= 1
            slot_lease.used_at = at
        if tokens is not None:
            for instance in line.token_instances:
                self._token_deltas[instance] = self._token_deltas.get(instance, 0) + tokens - line.tokens
        self._journal.settled(reservation_id, amount, tokens, how)
        if not self._pending:
            self._pending_since = at
        self._pending.append((reservation_id, time.time(), line.estimate, amount, how))
        if self._flush_due(at):
            try:
                self.flush()
            except LedgerError:
                pass
        return WRITTEN_BEHIND

    async def settle_async(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
                           now: float | None = None) -> Settled | None:
        return self.settle(reservation_id, actual, how, tokens, now)

    def _flush_due(self, at: float) -> bool:
        """Pending settles are written once `FLUSH_CHARGES` wait or the oldest has waited `FLUSH_S`."""
        return bool(self._pending) and (len(self._pending) >= FLUSH_CHARGES or at - self._pending_since >= FLUSH_S)

    def flush(self) -> None:
        """Write the pending settles in one transaction."""
        self._transaction(lambda: True)

    def tend(self) -> None:
        """What the proxy runs every `FLUSH_S`: write pending settles once they are due, and give back
        the budget and slot leases unused for `IDLE_S` (request and token permits drain)."""
        at = self.clock()
        idle = [lease for lease in self._budgets.values() if at - lease.used_at >= IDLE_S and not lease.in_flight]
        idle_slots = [lease for lease in self._slots.values() if at - lease.used_at >= IDLE_S and not lease.busy]
        due = self._flush_due(at)
        wall = time.time()
        for permits in (self._requests, self._tokens):
            for spec in [spec for spec, lease in permits.items() if not lease.fits(0, wall)]:
                del permits[spec]
                self._version += 1
        if not (idle or idle_slots or due):
            return

        def give_back() -> bool:
            for lease in idle:
                self._collect(store.write_budget(self._db, self.owner, lease, max(0, lease.free)))
                del self._budgets[lease.slot]
            for slot_lease in idle_slots:
                store.release_slots(self._db, self.owner, slot_lease.spec.instance, slot_lease.held)
                del self._slots[slot_lease.spec]
            return True

        self._transaction(give_back)

    def _transaction(self, work: Callable[[], bool]) -> bool:
        """`BEGIN IMMEDIATE`, the pending settles written, `work`, the journal's offset recorded,
        `COMMIT`; then the warn crossings of what was written."""
        self._crossed = []
        db = self._db
        rotated: Journal | None = None
        restore = self._snapshot()
        self._version += 1
        try:
            db.execute("BEGIN IMMEDIATE")
            self._check_registration()
            self._write_pending()
            result = work()
            if self._journal.offset > ROTATE_BYTES:
                rotated = self._rotate()
            store.record_journal(db, self.owner, str(self._journal.path), self._journal.offset)
            db.execute("COMMIT")
        except (sqlite3.Error, OverflowError, ValueError, TypeError, OSError) as exc:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            if rotated is not None:
                self._journal.close()
                self._journal.path.unlink(missing_ok=True)
                self._journal = rotated
                self._generation -= 1
            restore()
            raise LedgerError(f"ledger write failed: {exc}") from exc
        self._registered = True
        if rotated is not None:
            rotated.close()
            rotated.path.unlink(missing_ok=True)
        crossed, self._crossed = self._crossed, []
        if self.on_settled is not None:
            for settled in crossed:
                self.on_settled(settled)
        return result

    def _snapshot(self) -> Callable[[], None]:
        """What a transaction changes in memory, to put back if it is rolled back."""
        pending, deltas = self._pending, self._token_deltas
        budgets, requests, tokens, slots, held = (dict(self._budgets), dict(self._requests), dict(self._tokens),
                                                  dict(self._slots), dict(self._held))
        budget_fields = [(lease, lease.held, lease.pending, lease.spent, lease.reserved) for lease in budgets.values()]
        slot_fields = [(lease, lease.held, lease.in_flight) for lease in slots.values()]

        def restore() -> None:
            self._pending, self._token_deltas = pending, deltas
            self._budgets, self._requests, self._tokens, self._slots, self._held = budgets, requests, tokens, slots, held
            for lease, lease_held, lease_pending, spent, reserved in budget_fields:
                lease.held, lease.pending, lease.spent, lease.reserved = lease_held, lease_pending, spent, reserved
            for slot_lease, slot_held, in_flight in slot_fields:
                slot_lease.held, slot_lease.in_flight = slot_held, in_flight

        return restore

    def _collect(self, settled: Settled | None) -> None:
        if settled is not None:
            self._crossed.append(settled)

    def _write_pending(self) -> None:
        if not self._pending and not self._token_deltas:
            return
        for lease in self._budgets.values():
            if lease.pending:
                self._collect(store.write_budget(self._db, self.owner, lease))
        store.insert_charges(self._db, self._pending)
        now = time.time()
        for instance, delta in self._token_deltas.items():
            store.settle_tokens(self._db, instance, delta, now)
        self._pending = []
        self._token_deltas = {}

    def _check_registration(self) -> None:
        """A process whose heartbeat stalled past the owner lease may have been recovered by
        another: its leases were given back and its journal charged, so it starts afresh."""
        if not self._registered:
            return
        if self._db.execute("SELECT 1 FROM journals WHERE owner = ?", (self.owner,)).fetchone() is not None:
            return
        self._budgets.clear()
        self._requests.clear()
        self._tokens.clear()
        self._slots.clear()
        self._held.clear()
        self._pending = []
        self._token_deltas = {}

    def _rotate(self) -> Journal:
        """A new journal holding the admissions still in flight; the old one, returned, is removed
        once the transaction that records the new one commits."""
        old = self._journal
        self._generation += 1
        self._journal = Journal(journal_path(old.path.parent, self.owner, self._generation))
        for held in self._held.values():
            self._journal.admitted(held.line)
        return old

    def recover(self, on_settled: Callable[[Settled], None] | None = None) -> int:
        self.flush()
        return self.inner.recover(on_settled)

    def heartbeat(self) -> None:
        self.inner.heartbeat()

    def counters(self) -> list[CounterRow]:
        """The counters with this process's pending settles written, and its leased headroom not in
        use left out of `reserved` (other processes' still counts there)."""
        self.flush()
        free: dict[tuple[str, str], int] = {}
        for lease in self._budgets.values():
            key = (lease.slot.instance, lease.slot.window)
            free[key] = free.get(key, 0) + max(0, lease.held - lease.in_flight)
        rows = []
        for row in self.inner.counters():
            unused = free.get((row.instance, row.window), 0)
            rows.append(CounterRow(row.instance, row.window, row.budget, row.scope, row.target, row.window_kind,
                                   row.limit_pico, row.block_pico, row.warn_pico, row.spent, max(0, row.reserved - unused)))
        return rows

    def limit_usage(self, now: float | None = None) -> list[LimitUsage]:
        self.flush()
        return self.inner.limit_usage(now)

    async def aclose(self) -> None:
        """Nothing loop-bound to close: see `close`."""

    def close(self) -> None:
        """Charge what is still in flight at its estimate, write everything, give every lease back
        and remove the journal."""
        for reservation_id in [*self._held, *self._exact]:
            try:
                self.settle(reservation_id, None, ENDED)
            except LedgerError:
                break

        def give_back() -> bool:
            self._write_pending()
            for lease in self._budgets.values():
                self._collect(store.write_budget(self._db, self.owner, lease, max(0, lease.free)))
            for slot_lease in self._slots.values():
                store.release_slots(self._db, self.owner, slot_lease.spec.instance, slot_lease.held)
            self._db.execute("DELETE FROM leases WHERE owner = ?", (self.owner,))
            return True

        try:
            self._transaction(give_back)
            self._db.execute("DELETE FROM journals WHERE owner = ?", (self.owner,))
        except (LedgerError, sqlite3.Error):
            self._journal.close()
            self.inner.close()
            return
        self._journal.close()
        self._journal.path.unlink(missing_ok=True)
        self.inner.close()

