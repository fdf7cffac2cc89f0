"""What a budget allows over a period, so that budgets with different windows can be compared.

A `day` budget of $100 and a `month` budget of $100 read alike but are not: over a month the first
allows about thirty times as much. Each budget is measured over the periods both windows name (a
window's whole limit can be spent within any shorter period) and over all time, where a periodic
window has no cap and a `total` one caps everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

DAYS = {"day": Fraction(1), "week": Fraction(7), "month": Fraction(1461, 48)}
"""Window lengths in days; a month is the mean Gregorian month (365.25 / 12 days)."""

ALL_TIME = "total"


@dataclass(frozen=True)
class Allowance:
    """What a budget lets through over one period; `micros` None means without a cap."""

    period: str
    micros: Fraction | None


@dataclass(frozen=True)
class Comparison:
    """The periods over which the two budgets allow different amounts, shortest first."""

    differences: list[tuple[Allowance, Allowance]]

    @property
    def allows_more(self) -> bool:
        return any(_more(old, new) for old, new in self.differences)

    @property
    def allows_less(self) -> bool:
        return any(not _more(old, new) for old, new in self.differences)


def _more(old: Allowance, new: Allowance) -> bool:
    return old.micros is not None and (new.micros is None or new.micros > old.micros)


def allowance(limit_micros: int, window: str, period: str) -> Allowance:
    if window == ALL_TIME:
        return Allowance(period, Fraction(limit_micros))
    if period == ALL_TIME:
        return Allowance(period, None)
    ratio = DAYS[period] / DAYS[window]
    return Allowance(period, Fraction(limit_micros) * max(ratio, Fraction(1)))


def compare(old_limit: int, old_window: str, new_limit: int, new_window: str) -> Comparison:
    """Both budgets over each period either window names, and over all time."""
    periods = sorted({old_window, new_window, ALL_TIME}, key=lambda p: DAYS.get(p, Fraction(10**9)))
    pairs = [(allowance(old_limit, old_window, p), allowance(new_limit, new_window, p)) for p in periods]
    return Comparison([(old, new) for old, new in pairs if old.micros != new.micros])
