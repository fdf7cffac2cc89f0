"""A clock for code that takes one (`clock: Callable[[], float]`): it moves only when the test moves it."""

from __future__ import annotations


class ManualClock:
    """Monotonic seconds that stand still until `advance`; safe to read from a server thread."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
