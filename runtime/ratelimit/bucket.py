"""The window algorithm: a leaky bucket per limit (GCRA's continuous form), the one Anthropic documents.

Each rate keeps two numbers, `used` and the instant `at` it was last written; use drains
continuously at `count / period_s` per second, so the current use is
`max(0, used - (now - at) * count / period_s)`. A request is admitted when its request fits
(`use + 1 <= count`) and the token bucket has room left (`use < count`); it then adds 1 and its
token estimate. The bound, for any interval of length t, is `count + count * t / period_s`
requests admitted (and the same tokens plus one request's tokens over): at one instant, never more
than `count`. A clock that stands behind the stored `at` (a replica whose clock lags) drains
nothing and never moves `at` back. Redis's script mirrors these functions in Lua.
"""

from __future__ import annotations

from .limits import Rate


def current(used: float, at: float, now: float, rate: Rate) -> float:
    """The use left in the bucket at `now`."""
    return max(0.0, used - max(0.0, now - at) * rate.count / rate.period_s)


def seconds_until_below(use: float, level: float, rate: Rate) -> float:
    """Seconds until `use` has drained to `level` (0 when it is already there)."""
    return max(0.0, (use - level) * rate.period_s / rate.count)


def requests_fit(use: float, rate: Rate) -> bool:
    return use + 1 <= rate.count


def tokens_fit(use: float, rate: Rate) -> bool:
    return use < rate.count


def remaining(use: float, rate: Rate) -> int:
    return max(0, int(rate.count - use))
