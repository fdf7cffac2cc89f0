"""What admission answers: the figures a 429 and an allowed answer's rate-limit headers carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

named = tuple.__new__
"""`named(Record, (field, ...))` builds a named tuple in one C call: calling `Record(field, ...)`
runs the named tuple's Python-level `__new__` as well, which doubles the cost. For the records
made several times on every request (their fields given in order, all of them)."""

IN_FLIGHT_RETRY_S = 1.0
"""A slot in flight frees when some running answer ends, which no one can foretell: retry in 1 s."""


class LimitFigures(NamedTuple):
    """One kind (`requests`, `tokens`, `in_flight`) of one instance after this request: `limit`,
    what is left, and `reset_s`, the seconds until its use has fully drained. A named tuple (made
    for every limit of every request: immutable, and built several times faster than a frozen
    dataclass)."""

    instance: str
    kind: str
    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Limited:
    """The first limit with no room: `retry_after_s` until there is room for this request."""

    figures: LimitFigures
    retry_after_s: float


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One instance's current use, for `policy budgets` and the admin surface."""

    instance: str
    requests_used: float
    requests_limit: int | None
    tokens_used: float
    tokens_limit: int | None
    in_flight: int
    in_flight_limit: int | None
