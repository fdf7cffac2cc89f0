"""The budget gate: before the upstream call, reserve an estimate against every budget instance
of the key (or refuse with 402) and admit the request under every rate limit it counts against
(or refuse with 429), in one step of the ledger; after it, settle the real cost and tokens and give
back its slots in flight."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..access_log import EventLog
from ..decision import Deny
from ..ledger.base import Blocked, Ledger, LedgerError, Reserved, Settled, Slot, SlotState, reservation_id
from ..ledger.front import FrontLedger
from ..metrics import Metrics
from ..ratelimit.applying import LimitSpecs
from ..ratelimit.headers import retry_after_seconds
from ..ratelimit.limits import LimitSpec
from ..ratelimit.outcome import Limited, LimitFigures
from ..table import BudgetInstance, KeyEntry, LoadedTable, Price, RateLimitInstance, Target
from .cost import PICO_PER_MICRO, estimates, usd
from .windows import Window, window_for

T = TypeVar("T")

PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86_400: "day"}
SCOPE_NOUNS = {"team": "team", "principal": "principal", "vk": "virtual key", "org": "the organisation"}


@dataclass(slots=True)
class KeySlots:
    """A key's budget slots and the span (epoch seconds) in which all their windows hold."""

    slots: list[Slot]
    start: float
    end: float


@dataclass(slots=True)
class Admission:
    reservation_id: str
    estimate: int
    states: tuple[SlotState, ...]
    """Each budget instance of the key as the reservation found it: spend settled before this request
    (the in-memory front reports them only when some instance has a warn threshold, all they are read for)."""
    limits: tuple[LimitFigures, ...] = ()
    """What each rate limit the request counts against has left once it is admitted."""
    tokens: int = 0
    """The token estimate its rate limits reserved."""

    @property
    def warns(self) -> bool:
        """Some budget instance of the key has a warn threshold (else there is nothing to warn of)."""
        for state in self.states:
            if state.slot.warn_pico is not None:
                return True
        return False

    @property
    def warnings(self) -> list[str]:
        """`<scope>:<pct>` of each instance at or over its warn threshold before this request."""
        return self.warnings_with(0)

    def warnings_with(self, own: int) -> list[str]:
        """The same once this request's own charge (pico-USD) is added: the answer whose charge
        crosses a threshold says so itself."""
        return [
            f"{s.slot.scope}:{percent(s.spent + own, s.slot.limit_pico)}"
            for s in self.states
            if s.slot.warn_pico is not None and s.spent + own >= s.slot.warn_pico
        ]


def slot_for(instance: str, spec: BudgetInstance, now: datetime, window: Window | None = None) -> Slot:
    """A budget instance in the window that contains `now`, with the limits the table gives it."""
    window = window or window_for(spec.window, spec.timezone, now)
    limit = spec.limit_micros * PICO_PER_MICRO
    return Slot(
        instance=instance,
        window=window.label,
        budget=spec.budget,
        scope=spec.scope,
        target=spec.target,
        window_kind=spec.window,
        limit_pico=limit,
        block_pico=limit * spec.block_bp // 10_000,
        warn_pico=limit * spec.warn_bp // 10_000 if spec.warn_bp is not None else None,
    )


def percent(spent: int, limit: int) -> int:
    return spent * 100 // limit if limit else 0


def who(slot: Slot) -> str:
    if slot.scope == "org":
        return "the organisation"
    return f"{SCOPE_NOUNS[slot.scope]} '{slot.target}'"


def blocked_deny(state: SlotState, key: KeyEntry) -> Deny:
    slot = state.slot
    in_flight = f" (+{usd(state.reserved)} in flight)" if state.reserved else ""
    threshold = "" if slot.block_pico == slot.limit_pico else f", blocking at {percent(slot.block_pico, slot.limit_pico)}%"
    message = (
        f"{who(slot)} has spent {usd(state.spent)}{in_flight} of its {usd(slot.limit_pico)} {slot.window_kind} "
        f"budget '{slot.budget}' (window {slot.window}{threshold}); requests under it are refused until the window "
        f"resets or the limit is raised"
    )
    meta: dict[str, Any] = {
        "budget": slot.budget,
        "instance": slot.instance,
        "scope": slot.scope,
        "target": slot.target,
        "window": slot.window_kind,
        "window_label": slot.window,
        "spend_usd": decimal_usd(state.spent),
        "reserved_usd": decimal_usd(state.reserved),
        "limit_usd": decimal_usd(slot.limit_pico),
        "block_usd": decimal_usd(slot.block_pico),
    }
    return Deny(402, "budget_exceeded", message, key, None, meta)


def decimal_usd(pico: int) -> str:
    """Pico-USD as an exact decimal string of dollars: 100.04, 0.000000000001."""
    whole, frac = divmod(pico, 10**12)
    return f"{whole}.{frac:012d}".rstrip("0").rstrip(".") if frac else str(whole)


@dataclass(frozen=True)
class RateLimited:
    """A 429: the refusal, and the figures its headers carry."""

    deny: Deny
    limited: Limited


def limited_deny(limited: Limited, limit: RateLimitInstance, key: KeyEntry) -> Deny:
    figures = limited.figures
    subject = "the organisation" if limit.scope == "org" else f"{SCOPE_NOUNS[limit.scope]} '{limit.target}'"
    wait = retry_after_seconds(limited.retry_after_s)
    if figures.kind == "in_flight":
        what = f"{figures.limit} requests in flight"
    else:
        period = limit.requests if figures.kind == "requests" else limit.tokens
        what = f"{figures.limit} {figures.kind} per {PERIOD_NAMES.get(period.period_s if period else 0, 'period')}"
    line = f" ({limit.source})" if limit.source else ""
    message = (f"rate limit '{limit.limit}' of {subject} allows {what}, and this request would go over it{line}; "
               f"retry in {wait} s")
    meta: dict[str, Any] = {
        "limit": limit.limit,
        "instance": figures.instance,
        "scope": limit.scope,
        "target": limit.target,
        "kind": figures.kind,
        "limit_value": figures.limit,
        "retry_after_s": wait,
    }
    if limit.source:
        meta["source"] = limit.source
    return Deny(429, "rate_limit_exceeded", message, key, None, meta)


@dataclass(frozen=True)
class Unsettled:
    reservation_id: str
    amount: int
    how: str
    tokens: int | None = None


class BudgetGate:
    """Admission and settlement on the request path: for a local ledger (the SQLite file, its
    in-memory front) its own calls, made in line on the loop (they never suspend, so nothing can
    cancel one halfway and no task or shield is needed); for Redis its async calls over a pipelined
    connection, so a slow or unreachable Redis never stalls the event loop. Tending the ledger (heartbeat, recovery, retries) runs where the backend wants it: in
    line for SQLite (its one connection stays on the loop), on a worker thread for Redis.

    A settle the ledger refuses is kept and retried (`retry_unsettled`, every few seconds and at
    shutdown); until it lands, its reservation keeps counting against the budget. If the process
    dies first, the reservation is settled at its estimate by recovery like any other."""

    def __init__(self, ledger: Ledger, events: EventLog, metrics: Metrics) -> None:
        self.ledger = ledger
        self.events = events
        self.metrics = metrics
        self.unsettled: deque[Unsettled] = deque()
        self._slots: dict[str, tuple[BudgetInstance, Window, Slot]] = {}
        self._key_slots: dict[str, KeySlots] = {}
        self._table: LoadedTable | None = None
        self._limits = LimitSpecs()
        self.inline = not ledger.remote
        """The ledger's calls never suspend (SQLite, its in-memory front): `admit_inline` and `settle_inline` apply."""
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gatepost-ledger") if ledger.remote else None
        if isinstance(ledger, FrontLedger):
            ledger.on_settled = self.crossings

    async def tend(self, call: Callable[..., T], *args: Any) -> T:
        """`call(*args)` with the ledger's blocking client: on the worker thread for a remote ledger."""
        if self._worker is None:
            return call(*args)
        loop = asyncio.get_running_loop()
        return await asyncio.shield(loop.run_in_executor(self._worker, call, *args))

    def limits_for(self, table: LoadedTable, key: KeyEntry, model: str) -> list[LimitSpec]:
        """The key's rate limits a request for `model` (the route's resolved model) counts against."""
        return self._limits.applying(table, key, model) if key.rate_limits else []

    async def admit_async(
        self, table: LoadedTable, key: KeyEntry, targets: tuple[Target, ...], payload: dict[str, Any], body_bytes: int,
        now: datetime | None = None, limits: list[LimitSpec] | None = None,
    ) -> Admission | Deny | RateLimited:
        """`now` (the budget windows' instant) defaults to the clock."""
        if self.inline:
            return self.admit_inline(table, key, targets, payload, body_bytes, now, limits)
        reservation, slots, estimate, tokens, counted_at = self._request(table, key, targets, payload, body_bytes, now)
        if not limits:
            return self._admitted(await self.ledger.reserve_async(reservation, slots, estimate), estimate, key)
        result = await self.ledger.admit_async(reservation, slots, estimate, limits, tokens, counted_at)
        return self._admitted(result, estimate, key, table, tokens)

    def admit_inline(
        self, table: LoadedTable, key: KeyEntry, targets: tuple[Target, ...], payload: dict[str, Any], body_bytes: int,
        now: datetime | None = None, limits: list[LimitSpec] | None = None,
    ) -> Admission | Deny | RateLimited:
        """`admit_async` for a local ledger (`inline`), whose calls never suspend: no coroutine to make."""
        reservation, slots, estimate, tokens, counted_at = self._request(table, key, targets, payload, body_bytes, now)
        if not limits:
            return self._admitted(self.ledger.reserve(reservation, slots, estimate), estimate, key)
        result = self.ledger.admit(reservation, slots, estimate, limits, tokens, counted_at)
        return self._admitted(result, estimate, key, table, tokens)

    def _request(
        self, table: LoadedTable, key: KeyEntry, targets: tuple[Target, ...], payload: dict[str, Any], body_bytes: int,
        now: datetime | None,
    ) -> tuple[str, list[Slot], int, int, float]:
        """What the ledger is asked to admit: a new reservation id, the key's budget slots in the
        windows of `now` (default the clock), the cost and token estimates, and the epoch seconds
        the rate limits count the request at (the clock's, also when `now` is given)."""
        wall = time.time() if now is None else now.timestamp()
        estimate, tokens = estimates(body_bytes, payload, self._prices(table, targets))
        slots = self._budget_slots(table, key, wall, now)
        return reservation_id(), slots, estimate, tokens, wall if now is None else time.time()

    async def settle_async(self, admission: Admission, actual: int | None, how: str, tokens: int | None = None) -> None:
        """Settle now (the charge, the tokens its rate limits reserved, its slots in flight), or keep
        the charge for `retry_unsettled` and re-raise the ledger's error. Shielded: a cancelled
        request cannot cancel its charge. `tokens` None keeps the estimate."""
        if self.inline:
            self.settle_inline(admission, actual, how, tokens)
            return
        amount = admission.estimate if actual is None else actual
        tokens = tokens if admission.limits else None
        try:
            settled = await asyncio.shield(self.ledger.settle_async(admission.reservation_id, amount, how, tokens))
        except LedgerError as exc:
            self._defer(admission, amount, how, tokens, exc)
            raise
        if settled is not None and settled.after:
            self.crossings(settled)

    def settle_inline(self, admission: Admission, actual: int | None, how: str, tokens: int | None = None) -> None:
        """`settle_async` for a local ledger (`inline`): its settle never suspends, so nothing can cancel it."""
        amount = admission.estimate if actual is None else actual
        tokens = tokens if admission.limits else None
        try:
            settled = self.ledger.settle(admission.reservation_id, amount, how, tokens)
        except LedgerError as exc:
            self._defer(admission, amount, how, tokens, exc)
            raise
        if settled is not None and settled.after:
            self.crossings(settled)

    def _defer(self, admission: Admission, amount: int, how: str, tokens: int | None, exc: LedgerError) -> None:
        self.unsettled.append(Unsettled(admission.reservation_id, amount, how, tokens))
        self.events.event("settle_deferred", reservation=admission.reservation_id, amount_usd=decimal_usd(amount),
                          problem=str(exc))

    def retry_unsettled(self) -> int:
        """Settle the kept charges in order; stop at the first the ledger still refuses."""
        done = 0
        while self.unsettled:
            charge = self.unsettled[0]
            try:
                settled = self.ledger.settle(charge.reservation_id, charge.amount, charge.how, charge.tokens)
            except LedgerError:
                break
            self.unsettled.popleft()
            if settled is not None:
                self.crossings(settled)
            done += 1
        if done:
            self.events.event("settle_retried", charges=done, still_unsettled=len(self.unsettled))
        return done

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)

    @staticmethod
    def _prices(table: LoadedTable, targets: tuple[Target, ...]) -> list[Price]:
        prices = []
        for target in targets:
            price = table.models[target.model].price
            if price is not None:
                prices.append(price)
        return prices

    def _budget_slots(self, table: LoadedTable, key: KeyEntry, wall: float, now: datetime | None) -> list[Slot]:
        """The key's budget instances as slots in the windows that contain `wall` (epoch seconds),
        remembered per key until the first of those windows ends or the table is replaced."""
        if not key.budgets:
            return []
        if table is not self._table:
            self._table = table
            self._key_slots = {}
        cached = self._key_slots.get(key.id)
        if cached is not None and cached.start <= wall < cached.end:
            return cached.slots
        when = now if now is not None else datetime.fromtimestamp(wall, UTC)
        slots = [self._slot(instance, table.budgets[instance], when) for instance in key.budgets]
        windows = [self._slots[instance][1] for instance in key.budgets]
        self._key_slots[key.id] = KeySlots(
            slots,
            max((w.start.timestamp() for w in windows if w.start is not None), default=-math.inf),
            min((w.end.timestamp() for w in windows if w.end is not None), default=math.inf),
        )
        return slots

    def _slot(self, instance: str, spec: BudgetInstance, now: datetime) -> Slot:
        """`slot_for`, remembered until its window ends or the table (its spec) is replaced."""
        cached = self._slots.get(instance)
        if cached is not None and cached[0] is spec:
            window = cached[1]
            if window.start is None or window.end is None or window.start <= now < window.end:
                return cached[2]
        window = window_for(spec.window, spec.timezone, now)
        slot = slot_for(instance, spec, now, window)
        self._slots[instance] = (spec, window, slot)
        return slot

    def _admitted(self, result: Reserved | Blocked | Limited, estimate: int, key: KeyEntry,
                  table: LoadedTable | None = None, tokens: int = 0) -> Admission | Deny | RateLimited:
        if isinstance(result, Reserved):
            return Admission(result.reservation_id, estimate, result.states, result.limits, tokens)
        if isinstance(result, Blocked):
            self.metrics.budget_blocks.inc(result.state.slot.budget, result.state.slot.scope)
            return blocked_deny(result.state, key)
        assert table is not None
        instance = result.figures.instance
        self.metrics.rate_limited.inc(instance, result.figures.kind)
        return RateLimited(limited_deny(result, table.rate_limits[instance], key), result)

    def admit(
        self, table: LoadedTable, key: KeyEntry, targets: tuple[Target, ...], payload: dict[str, Any], body_bytes: int,
        now: datetime,
    ) -> Admission | Deny:
        reservation, slots, estimate, _, _ = self._request(table, key, targets, payload, body_bytes, now)
        result = self._admitted(self.ledger.reserve(reservation, slots, estimate), estimate, key)
        assert not isinstance(result, RateLimited)
        return result

    def settle(self, admission: Admission, actual: int | None, how: str) -> None:
        settled = self.ledger.settle(admission.reservation_id, admission.estimate if actual is None else actual, how)
        if settled is not None:
            self.crossings(settled)

    def crossings(self, settled: Settled) -> None:
        for before, after in zip(settled.before, settled.after, strict=True):
            slot = after.slot
            if slot.warn_pico is not None and before.spent < slot.warn_pico <= after.spent:
                self.metrics.budget_warnings.inc(slot.budget, slot.scope)
                self.events.event(
                    "budget_warning",
                    budget=slot.budget,
                    instance=slot.instance,
                    scope=slot.scope,
                    target=slot.target,
                    window=slot.window,
                    spend_usd=decimal_usd(after.spent),
                    limit_usd=decimal_usd(slot.limit_pico),
                    percent=percent(after.spent, slot.limit_pico),
                )
