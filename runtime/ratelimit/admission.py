"""Admission and settlement of one instance's state, as pure functions: the SQLite ledger applies
them inside its transaction; Redis's script (`ledger/redis_limits.py`) is their Lua twin."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .bucket import current, remaining, requests_fit, seconds_until_below, tokens_fit
from .limits import LimitSpec, Rate
from .outcome import IN_FLIGHT_RETRY_S, Limited, LimitFigures


@dataclass(frozen=True, slots=True)
class LimitState:
    requests_used: float = 0.0
    requests_at: float = 0.0
    tokens_used: float = 0.0
    tokens_at: float = 0.0
    in_flight: int = 0


def admit(spec: LimitSpec, state: LimitState, tokens: int, now: float) -> tuple[LimitState, tuple[LimitFigures, ...]] | Limited:
    """The state with this request counted, its tokens reserved and a slot taken, and the figures
    left; or the first of its limits with no room."""
    figures: list[LimitFigures] = []
    new = state
    if spec.requests is not None:
        rate = spec.requests
        use = current(state.requests_used, state.requests_at, now, rate)
        if not requests_fit(use, rate):
            return Limited(LimitFigures(spec.instance, "requests", rate.count, remaining(use, rate),
                                        seconds_until_below(use, 0, rate)), seconds_until_below(use + 1, rate.count, rate))
        use += 1
        new = replace(new, requests_used=use, requests_at=max(now, state.requests_at))
        figures.append(LimitFigures(spec.instance, "requests", rate.count, remaining(use, rate),
                                    seconds_until_below(use, 0, rate)))
    if spec.tokens is not None:
        rate = spec.tokens
        use = current(state.tokens_used, state.tokens_at, now, rate)
        if not tokens_fit(use, rate):
            wait = seconds_until_below(use, rate.count, rate) + rate.period_s / rate.count
            return Limited(LimitFigures(spec.instance, "tokens", rate.count, 0, seconds_until_below(use, 0, rate)), wait)
        use += tokens
        new = replace(new, tokens_used=use, tokens_at=max(now, state.tokens_at))
        figures.append(LimitFigures(spec.instance, "tokens", rate.count, remaining(use, rate),
                                    seconds_until_below(use, 0, rate)))
    if spec.in_flight is not None:
        if state.in_flight >= spec.in_flight:
            return Limited(LimitFigures(spec.instance, "in_flight", spec.in_flight, 0, IN_FLIGHT_RETRY_S),
                           IN_FLIGHT_RETRY_S)
        new = replace(new, in_flight=state.in_flight + 1)
        figures.append(LimitFigures(spec.instance, "in_flight", spec.in_flight, spec.in_flight - new.in_flight, 0.0))
    return new, tuple(figures)


def settle(state: LimitState, tokens_rate: Rate | None, reserved: int, actual: int | None, took_slot: bool,
           now: float) -> LimitState:
    """The tokens reservation (`reserved`) replaced by the reported usage (kept when none is known),
    and this request's slot in flight, if it took one, given back."""
    new = replace(state, in_flight=max(0, state.in_flight - 1)) if took_slot else state
    if tokens_rate is not None and actual is not None and actual != reserved:
        use = current(state.tokens_used, state.tokens_at, now, tokens_rate)
        new = replace(new, tokens_used=max(0.0, use + actual - reserved), tokens_at=max(now, state.tokens_at))
    return new
