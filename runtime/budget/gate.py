"""The budget gate: before the upstream call, reserve an estimate against every budget instance
of the key (or refuse with 402); after it, settle the real cost."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..access_log import EventLog
from ..decision import Deny
from ..ledger.base import Blocked, Ledger, Slot, SlotState
from ..metrics import Metrics
from ..table import KeyEntry, LoadedTable, Target
from .cost import PICO_PER_MICRO, estimate_pico, usd
from .windows import window_for

SCOPE_NOUNS = {"team": "team", "principal": "principal", "vk": "virtual key", "org": "the organisation"}


@dataclass
class Admission:
    reservation_id: str
    estimate: int
    warnings: list[str]


def slots_for(table: LoadedTable, key: KeyEntry, now: datetime) -> list[Slot]:
    slots = []
    for instance in key.budgets:
        spec = table.budgets[instance]
        window = window_for(spec["window"], spec["timezone"], now)
        limit = spec["limit_micros"] * PICO_PER_MICRO
        warn_bp = spec["warn_bp"]
        slots.append(
            Slot(
                instance=instance,
                window=window.label,
                budget=spec["budget"],
                scope=spec["scope"],
                target=spec["target"],
                window_kind=spec["window"],
                limit_pico=limit,
                block_pico=limit * spec["block_bp"] // 10_000,
                warn_pico=limit * warn_bp // 10_000 if warn_bp is not None else None,
            )
        )
    return slots


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
        "spend_usd": _decimal(state.spent),
        "reserved_usd": _decimal(state.reserved),
        "limit_usd": _decimal(slot.limit_pico),
        "block_usd": _decimal(slot.block_pico),
    }
    return Deny(402, "budget_exceeded", message, key, None, meta)


def _decimal(pico: int) -> str:
    whole, frac = divmod(pico, 10**12)
    return f"{whole}.{frac:012d}".rstrip("0").rstrip(".") if frac else str(whole)


class BudgetGate:
    def __init__(self, ledger: Ledger, events: EventLog, metrics: Metrics) -> None:
        self.ledger = ledger
        self.events = events
        self.metrics = metrics

    def admit(
        self, table: LoadedTable, key: KeyEntry, targets: tuple[Target, ...], payload: dict[str, Any], body_bytes: int,
        now: datetime,
    ) -> Admission | Deny:
        slots = slots_for(table, key, now)
        prices = [table.models[t.model]["price"] for t in targets if table.models[t.model]["price"]]
        estimate = estimate_pico(body_bytes, payload, prices)
        result = self.ledger.reserve(uuid.uuid4().hex, slots, estimate)
        if isinstance(result, Blocked):
            self.metrics.budget_blocks.inc(result.state.slot.budget, result.state.slot.scope)
            return blocked_deny(result.state, key)
        warnings = [
            f"{s.slot.scope}:{percent(s.spent, s.slot.limit_pico)}"
            for s in result.states
            if s.slot.warn_pico is not None and s.spent >= s.slot.warn_pico
        ]
        return Admission(result.reservation_id, estimate, warnings)

    def settle(self, admission: Admission, actual: int | None, how: str) -> None:
        settled = self.ledger.settle(admission.reservation_id, admission.estimate if actual is None else actual, how)
        if settled is None:
            return
        for before, after in zip(settled.before, settled.after):
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
                    spend_usd=_decimal(after.spent),
                    limit_usd=_decimal(slot.limit_pico),
                    percent=percent(after.spent, slot.limit_pico),
                )
