"""How much capacity one process leases from the shared SQLite ledger, and the leases it holds.

A lease is capacity taken from the ledger in one transaction and then admitted against in memory:

- budget headroom, counted in the counter's `reserved` (and by owner in the `leases` table): at
  most `BUDGET_LEASE_ESTIMATES` estimates and a quarter of the room left below the block
  threshold; when that is less than two estimates the request is admitted exactly instead;
- request permits and tokens, counted in the bucket when taken and usable for `HOLD_S` only, so a
  permit is never used more than `HOLD_S` after it was counted; no lease when the bucket drains less
  than two requests (or two of this request's token estimates) in `HOLD_S`;
- slots in flight, counted in the instance's `in_flight`: at most `MAX_SLOTS` and a quarter of the
  free slots; none for a limit below `MIN_SLOT_LIMIT`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from ..ratelimit.limits import LimitSpec, Rate
from ..ratelimit.outcome import LimitFigures, named
from .base import Slot

BUDGET_LEASE_ESTIMATES = 1024
HOLD_S = 0.25
MAX_PERMITS = 1024
TOKEN_LEASE_ESTIMATES = 1024
MAX_SLOTS = 16
MIN_SLOT_LIMIT = 8
LOW_WATER = 8
"""A lease with room for fewer than this many requests like the one at hand is topped up with the
transaction another lease of the request needs, so a request's leases run out together."""
IDLE_S = 1.0
"""A budget or slot lease unused this long is given back, so other processes get the room."""


def budget_grant(estimate: int, headroom: int) -> int:
    """Pico-USD to add to a budget lease, or 0 when the request should be admitted exactly."""
    unit = max(estimate, 1)
    size = min(BUDGET_LEASE_ESTIMATES * unit, headroom // 4)
    return size if size >= 2 * unit else 0


def permits_per_lease(rate: Rate) -> int:
    """The requests one lease may hold: what the bucket drains in `HOLD_S`, at most `MAX_PERMITS`."""
    return min(MAX_PERMITS, math.floor(rate.count * HOLD_S / rate.period_s))


def tokens_per_lease(rate: Rate, tokens: int) -> int:
    """The tokens one lease may hold for requests of `tokens`: what the bucket drains in `HOLD_S`."""
    return min(TOKEN_LEASE_ESTIMATES * max(tokens, 1), math.floor(rate.count * HOLD_S / rate.period_s))


def token_cap(spec: LimitSpec) -> int:
    """The largest token estimate a lease of `spec` can take twice over (`tokens_per_lease` holds
    at least two of them), unbounded without a token limit; -1 when its requests or slots are too
    narrow to lease at all. A request is leased when its estimate is at most half of this."""
    if spec.requests is not None and permits_per_lease(spec.requests) < 2:
        return -1
    if spec.in_flight is not None and spec.in_flight < MIN_SLOT_LIMIT:
        return -1
    if spec.tokens is None:
        return sys.maxsize
    return math.floor(spec.tokens.count * HOLD_S / spec.tokens.period_s)


def slot_grant(limit: int, in_flight: int) -> int:
    return min(MAX_SLOTS, (limit - in_flight) // 4)


@dataclass(slots=True)
class BudgetLease:
    """Headroom of one counter held by this process: `held` is what the ledger counts for it in
    `reserved`; `in_flight` the estimates admitted against it, `pending` the charges settled and not
    yet written. `spent` and `reserved` are the counter (less this lease) as last read."""

    slot: Slot
    held: int = 0
    in_flight: int = 0
    pending: int = 0
    spent: int = 0
    reserved: int = 0
    used_at: float = 0.0

    @property
    def free(self) -> int:
        return self.held - self.in_flight - self.pending

    def fits(self, estimate: int) -> bool:
        free = self.free
        return free > 0 and free >= estimate


@dataclass(slots=True)
class PermitLease:
    """Requests or tokens (`kind`) of `instance` counted in its bucket at `granted_at`, usable until
    `HOLD_S` later (`until`); `use` is the bucket's use once they were counted and `rate` its rate
    (for the answer's headers)."""

    instance: str
    kind: str
    left: int
    granted_at: float
    use: float
    rate: Rate
    until: float = field(init=False)

    def __post_init__(self) -> None:
        self.until = self.granted_at + HOLD_S

    def fits(self, amount: int, now: float) -> bool:
        return self.left >= amount and self.granted_at <= now < self.until

    def figures(self, now: float) -> LimitFigures:
        """What the answer's headers report: the bucket as this process last counted it (its whole
        lease included), drained to `now` (`bucket.current`, `remaining` and `seconds_until_below`
        written out: this runs for each leased limit of every request)."""
        count, period = self.rate.count, self.rate.period_s
        drained = now - self.granted_at
        use = self.use - drained * count / period if drained > 0 else self.use
        if use < 0:
            use = 0.0
        left = int(count - use)
        return named(LimitFigures, (self.instance, self.kind, count, left if left > 0 else 0, use * period / count))


@dataclass(slots=True)
class SlotLease:
    """Slots in flight of one instance held by this process; `busy` are taken by running requests."""

    spec: LimitSpec
    held: int = 0
    busy: int = 0
    in_flight: int = 0
    used_at: float = 0.0

    @property
    def free(self) -> int:
        return self.held - self.busy

    def figures(self) -> LimitFigures:
        """The answer's figures: slots in flight left, as this process last counted them."""
        limit = self.spec.in_flight or 0
        left = limit - self.in_flight - self.busy
        return named(LimitFigures, (self.spec.instance, "in_flight", limit, left if left > 0 else 0, 0.0))
