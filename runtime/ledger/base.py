"""The spend ledger interface, shared by the SQLite (one machine) and Redis (several) backends.

Spend is kept per budget instance and window, in pico-USD integers, as two numbers: `spent`
(settled charges) and `reserved` (estimates of requests in flight). Admission and reservation
are one atomic step in the backend, so concurrent requests, in one process or many, cannot all
slip under a limit together: see README "Budgets" for the overshoot bound. Over SQLite, `policy
serve` admits through the in-memory front (`front.py`), the same interface over leased capacity.

Rate limits (`ratelimit/`) live in the same ledger and are admitted in the same atomic step as the
budget reservation (`admit`), then settled and released with its charge (`settle`): README "Rate
limits: the runtime's guarantees".
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ..exceptions import LedgerError as LedgerError
from ..ratelimit.limits import LimitSpec
from ..ratelimit.outcome import Limited, LimitFigures, LimitUsage


@dataclass(frozen=True, slots=True)
class Slot:
    """One budget instance in its current window, with the limits the table gives it now."""

    instance: str
    window: str
    budget: str
    scope: str
    target: str
    window_kind: str
    limit_pico: int
    block_pico: int
    warn_pico: int | None


class SlotState(NamedTuple):
    """A counter as an admission or a settle found it. This and `Reserved` are made for every
    request: named tuples, immutable like the frozen dataclasses around them and built several
    times faster."""

    slot: Slot
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class Blocked:
    state: SlotState


class Reserved(NamedTuple):
    """An admitted request: its counters as admission found them (for the budget warnings: the
    in-memory front leaves them out when none of them has a warn threshold), and `limits`, what each
    rate limit of the request has left once it is admitted (for the answer's headers)."""

    reservation_id: str
    states: tuple[SlotState, ...]
    limits: tuple[LimitFigures, ...] = ()


@dataclass(frozen=True, slots=True)
class Settled:
    before: tuple[SlotState, ...]
    after: tuple[SlotState, ...]


@dataclass(frozen=True, slots=True)
class CounterRow:
    instance: str
    window: str
    budget: str
    scope: str
    target: str
    window_kind: str
    limit_pico: int
    block_pico: int
    warn_pico: int | None
    spent: int
    reserved: int


class Ledger(Protocol):
    remote: bool
    """True when calls go over the network: the proxy then tends the ledger from a thread."""

    def reserve(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked: ...

    def settle(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
               now: float | None = None) -> Settled | None: ...

    def admit(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec], tokens: int,
              now: float) -> Reserved | Blocked | Limited: ...

    async def admit_async(self, reservation_id: str, slots: list[Slot], amount: int, limits: list[LimitSpec],
                          tokens: int, now: float) -> Reserved | Blocked | Limited: ...

    def limit_usage(self, now: float | None = None) -> list[LimitUsage]: ...

    async def reserve_async(self, reservation_id: str, slots: list[Slot], amount: int) -> Reserved | Blocked: ...

    async def settle_async(self, reservation_id: str, actual: int | None, how: str, tokens: int | None = None,
                           now: float | None = None) -> Settled | None: ...

    def recover(self, on_settled: Callable[[Settled], None] | None = None) -> int: ...

    async def aclose(self) -> None: ...

    def heartbeat(self) -> None: ...

    def counters(self) -> list[CounterRow]: ...

    def close(self) -> None: ...


def reservation_id() -> str:
    """32 hex digits that sort by creation time (nanoseconds, then 64 bits counted from a random
    start drawn per process, and again in a forked child): unique in the process, and across
    processes as unlikely to collide as 64 random bits. The `charges` table's key index then grows
    at its end, so a batch of charges dirties a few pages, not one per charge."""
    return "%032x" % (time.time_ns() << 64 | next(_sequence) & _SEQUENCE_MASK)


_SEQUENCE_MASK = (1 << 64) - 1
_sequence = itertools.count(int.from_bytes(os.urandom(8), "big"))


def _reseed() -> None:
    global _sequence
    _sequence = itertools.count(int.from_bytes(os.urandom(8), "big"))


os.register_at_fork(after_in_child=_reseed)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"


def owner_is_dead(owner: str, seen: float, now: float, stale_after_s: float) -> bool:
    """An owner is dead when it stopped heart-beating, or when it ran on this host and its pid is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if now - seen > stale_after_s:
        return True
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
