"""Cool-down of providers that keep failing: after `failures` consecutive failures (5xx, timeout,
connect) a provider is skipped for `cooldown_s`, then one request tries it again (half-open):
success closes the circuit, failure opens it for another cool-down.

The half-open try is held by a `Permit`. A try that reaches no verdict (a 429, a request that
skips the target, a client that went away, an error in the proxy) must hand its permit back with
`release`, or the provider would stay skipped for good: `admit` and `release` bracket every try.

State lives in the process (the embedded default); it survives table reloads for providers that
keep their id. Time is read from `clock` (monotonic seconds), so a test can move it instead of
waiting for a cool-down to pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .metrics import Metrics


class Permit:
    """The right to try a provider now; `probe` when it is the one half-open try."""

    __slots__ = ("probe", "provider")

    def __init__(self, provider: str, probe: bool) -> None:
        self.provider = provider
        self.probe = probe


CLOSED = Permit("", False)


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    probe: Permit | None = None


class Circuits:
    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._states: dict[str, _State] = {}
        self._metrics = metrics
        self._clock = clock

    def admit(self, provider: str) -> Permit | None:
        """None while the provider cools down or another request holds its half-open try."""
        state = self._states.get(provider)
        if state is None or state.open_until == 0.0:
            return CLOSED
        if self._clock() < state.open_until or state.probe is not None:
            return None
        permit = state.probe = Permit(provider, True)
        return permit

    def release(self, permit: Permit) -> None:
        """End a try; a half-open try that reached no verdict lets the next request try again."""
        if not permit.probe:
            return
        state = self._states.get(permit.provider)
        if state is not None and state.probe is permit:
            state.probe = None

    def succeeded(self, provider: str) -> None:
        state = self._states.get(provider)
        if state is not None and (state.failures or state.open_until):
            self._states[provider] = _State()
            self._metrics.circuit_open.set(provider, value=0)

    def failed(self, provider: str, threshold: int, cooldown_s: float) -> None:
        if threshold <= 0:
            return
        state = self._states.setdefault(provider, _State())
        state.failures += 1
        state.probe = None
        if state.failures >= threshold:
            now = self._clock()
            if state.open_until <= now:
                self._metrics.circuit_opened.inc(provider)
            state.open_until = now + cooldown_s
            self._metrics.circuit_open.set(provider, value=1)

    def is_open(self, provider: str) -> bool:
        state = self._states.get(provider)
        return state is not None and state.open_until > self._clock()
