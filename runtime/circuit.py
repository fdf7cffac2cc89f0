"""Cool-down of providers that keep failing: after `failures` consecutive failures (5xx, timeout,
connect) a provider is skipped for `cooldown_s`, then one request tries it again (half-open):
success closes the circuit, failure opens it for another cool-down.

State lives in the process (the embedded default); it survives table reloads for providers that
keep their id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .metrics import Metrics


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class Circuits:
    def __init__(self, metrics: Metrics) -> None:
        self._states: dict[str, _State] = {}
        self._metrics = metrics

    def allows(self, provider: str, now: float | None = None) -> bool:
        state = self._states.get(provider)
        if state is None or state.open_until == 0.0:
            return True
        now = time.monotonic() if now is None else now
        if now < state.open_until or state.probing:
            return False
        state.probing = True
        return True

    def succeeded(self, provider: str) -> None:
        state = self._states.get(provider)
        if state is not None and (state.failures or state.open_until):
            self._states[provider] = _State()
            self._metrics.circuit_open.set(provider, value=0)

    def failed(self, provider: str, threshold: int, cooldown_s: float, now: float | None = None) -> None:
        if threshold <= 0:
            return
        state = self._states.setdefault(provider, _State())
        state.failures += 1
        state.probing = False
        if state.failures >= threshold:
            now = time.monotonic() if now is None else now
            if state.open_until <= now:
                self._metrics.circuit_opened.inc(provider)
            state.open_until = now + cooldown_s
            self._metrics.circuit_open.set(provider, value=1)

    def is_open(self, provider: str) -> bool:
        state = self._states.get(provider)
        return state is not None and state.open_until > time.monotonic()
