"""Admission and settlement of one instance, as pure functions over its current use: the SQLite
ledger judges what its statements return with them; Redis's script (`ledger/redis_limits.py`)
is their Lua twin."""

from __future__ import annotations

from .bucket import remaining, requests_fit, seconds_until_below, tokens_fit
from .limits import LimitSpec
from .outcome import IN_FLIGHT_RETRY_S, Limited, LimitFigures


def judge(spec: LimitSpec, requests_use: float, tokens_use: float, in_flight: int, tokens: int
          ) -> tuple[LimitFigures, ...] | Limited:
    """Given the instance's use just before this request (drained to now), the figures left once
    it is counted, its `tokens` reserved and a slot taken; or the first of its limits with no room."""
    figures: list[LimitFigures] = []
    if spec.requests is not None:
        rate, use = spec.requests, requests_use
        if not requests_fit(use, rate):
            return Limited(LimitFigures(spec.instance, "requests", rate.count, remaining(use, rate),
                                        seconds_until_below(use, 0, rate)), seconds_until_below(use + 1, rate.count, rate))
        figures.append(LimitFigures(spec.instance, "requests", rate.count, remaining(use + 1, rate),
                                    seconds_until_below(use + 1, 0, rate)))
    if spec.tokens is not None:
        rate, use = spec.tokens, tokens_use
        if not tokens_fit(use, rate):
            wait = seconds_until_below(use, rate.count, rate) + rate.period_s / rate.count
            return Limited(LimitFigures(spec.instance, "tokens", rate.count, 0, seconds_until_below(use, 0, rate)), wait)
        figures.append(LimitFigures(spec.instance, "tokens", rate.count, remaining(use + tokens, rate),
                                    seconds_until_below(use + tokens, 0, rate)))
    if spec.in_flight is not None:
        if in_flight >= spec.in_flight:
            return Limited(LimitFigures(spec.instance, "in_flight", spec.in_flight, 0, IN_FLIGHT_RETRY_S),
                           IN_FLIGHT_RETRY_S)
        figures.append(LimitFigures(spec.instance, "in_flight", spec.in_flight, spec.in_flight - in_flight - 1, 0.0))
    return tuple(figures)
