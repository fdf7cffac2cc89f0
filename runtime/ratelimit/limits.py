"""A rate-limit instance as the runtime enforces it: what the artifact's limit lowers to for one key."""

from __future__ import annotations

from dataclasses import dataclass

PERIODS_S = (1, 60, 3600, 86400)


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` per `period_s` seconds, replenished continuously (see `bucket.py`)."""

    count: int
    period_s: int

    def __post_init__(self) -> None:
        if self.count <= 0 or self.period_s not in PERIODS_S:
            raise ValueError(f"a rate is a positive count per one of {PERIODS_S} seconds, not {self.count}/{self.period_s}")


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One rate-limit instance: any of requests, tokens (input + output) and requests in flight.

    Hashed by its instance alone (specs that differ only in their figures, before and after a
    reload, are still unequal): the front's leases are looked up by spec on every request, and
    the generated hash would hash both rates on each look-up."""

    instance: str
    requests: Rate | None = None
    tokens: Rate | None = None
    in_flight: int | None = None

    def __hash__(self) -> int:
        return hash(self.instance)
