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
    """One rate-limit instance: any of requests, tokens (input + output) and requests in flight."""

    instance: str
    requests: Rate | None = None
    tokens: Rate | None = None
    in_flight: int | None = None
