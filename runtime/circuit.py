"""Cool-down of credentials, and so of providers: a provider is open (skipped) while every one of its
credentials is.

A credential's circuit opens after `failures` consecutive failures (5xx, timeout, connect) for
`cooldown_s`; then one request tries it again (half-open): success closes the circuit, failure opens
it for another cool-down. A provider with one credential (`api_key`) has one circuit, the provider's.
A provider that lists `api_keys` also rests a credential on its own: for the provider's Retry-After
after a 429 (else `RATE_LIMITED_REST_S`), for `REFUSED_REST_S` after a 401 or 403, while its other
credentials keep serving.

Requests are spread over the credentials a provider can use now by smooth weighted round robin
(nginx's): each pick adds every candidate's weight to its running score, takes the highest score
(the first in policy order on a tie) and takes the candidates' total weight off it. A credential
with weight 3 beside one with weight 1 serves 3 requests in 4, interleaved (a a b a), with no
randomness; one that rests or is open is left out of the round until it is back.

The half-open try is held by a `Permit`. A try that reaches no verdict (a 429 of a single
credential, a request that skips the target, a client that went away, an error in the proxy) must
hand its permit back with `release`, or the credential would stay skipped for good: `admit` and
`release` bracket every try.

State lives in the process (the embedded default); it survives table reloads for credentials that
keep their provider and id. Time is read from `clock` (monotonic seconds), so a test can move it
instead of waiting for a cool-down to pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from .metrics import Metrics
from .table import Credential, Provider

RATE_LIMITED_REST_S = 5.0
"""How long a credential answered 429 without a usable Retry-After rests."""
REFUSED_REST_S = 300.0
"""How long a credential answered 401 or 403 rests: an operator has to fix it, and until then every
request it carried would be refused."""
MAX_REST_S = 3600.0


class Permit:
    """The right to try a credential now; `probe` when it is the one half-open try."""

    __slots__ = ("credential", "probe")

    def __init__(self, credential: Credential, probe: bool) -> None:
        self.credential = credential
        self.probe = probe


@dataclass
class _State:
    failures: int = 0
    open_until: float = 0.0
    probe: Permit | None = None
    resting_until: float = 0.0


class Circuits:
    def __init__(self, metrics: Metrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._states: dict[tuple[str, str], _State] = {}
        self._scores: dict[tuple[str, str], int] = {}
        self._open_providers: set[str] = set()
        self._metrics = metrics
        self._clock = clock

    def admit(self, credentials: Sequence[Credential], skip: Collection[str] = ()) -> Permit | None:
        """A credential to carry the next try, by weight among those that neither rest nor cool down
        (nor are in `skip`, the ones this request tried already); None when there is none."""
        if len(credentials) == 1 and not skip:
            return self._admit_one(credentials[0])
        now = self._clock()
        candidates: list[tuple[Credential, bool]] = []
        for credential in credentials:
            if credential.id in skip:
                continue
            state = self._states.get(credential.key)
            if state is None or state.open_until == 0.0:
                if state is None or state.resting_until <= now:
                    candidates.append((credential, False))
            elif now >= state.open_until and state.probe is None and state.resting_until <= now:
                candidates.append((credential, True))
        if not candidates:
            return None
        chosen, probe = self._pick(candidates)
        permit = Permit(chosen, probe)
        if probe:
            self._states[chosen.key].probe = permit
        return permit

    def _admit_one(self, credential: Credential) -> Permit | None:
        state = self._states.get(credential.key)
        if state is None:
            return Permit(credential, False)
        now = self._clock()
        if state.resting_until > now:
            return None
        if state.open_until == 0.0:
            return Permit(credential, False)
        if now < state.open_until or state.probe is not None:
            return None
        permit = state.probe = Permit(credential, True)
        return permit

    def _pick(self, candidates: list[tuple[Credential, bool]]) -> tuple[Credential, bool]:
        if len(candidates) == 1:
            return candidates[0]
        scores = self._scores
        total = 0
        best: tuple[Credential, bool] | None = None
        best_score = 0
        for candidate in candidates:
            credential = candidate[0]
            total += credential.weight
            score = scores[credential.key] = scores.get(credential.key, 0) + credential.weight
            if best is None or score > best_score:
                best, best_score = candidate, score
        assert best is not None
        scores[best[0].key] = best_score - total
        return best

    def release(self, permit: Permit) -> None:
        """End a try; a half-open try that reached no verdict lets the next request try again."""
        if not permit.probe:
            return
        state = self._states.get(permit.credential.key)
        if state is not None and state.probe is permit:
            state.probe = None

    def succeeded(self, credential: Credential) -> None:
        state = self._states.get(credential.key)
        if state is not None and (state.failures or state.open_until or state.resting_until):
            self._states[credential.key] = _State()
        if credential.provider in self._open_providers:
            self._open_providers.discard(credential.provider)
            self._metrics.circuit_open.set(credential.provider, value=0)

    def failed(self, provider: Provider, credential: Credential, among: Sequence[Credential]) -> None:
        """A failure (5xx, timeout, connect) of a try that carried `credential`, one of the provider's
        usable credentials `among`."""
        threshold = provider.circuit_failures
        if threshold <= 0:
            return
        state = self._states.setdefault(credential.key, _State())
        state.failures += 1
        state.probe = None
        if state.failures >= threshold:
            was_open = self.is_open(among)
            state.open_until = self._clock() + provider.circuit_cooldown_s
            if provider.pooled:
                self._metrics.credential_cooldowns.inc(provider.id, credential.id, "failures")
            self._provider_state(provider, among, was_open)

    def rest(self, provider: Provider, credential: Credential, among: Sequence[Credential], seconds: float,
             cause: str) -> None:
        """Leave `credential` out for `seconds` (`cause`: 429 or refused) while the others `among` the
        provider's usable credentials serve."""
        now = self._clock()
        was_open = self.is_open(among)
        state = self._states.setdefault(credential.key, _State())
        state.resting_until = max(state.resting_until, now + min(max(seconds, 0.0), MAX_REST_S))
        self._metrics.credential_cooldowns.inc(provider.id, credential.id, cause)
        self._provider_state(provider, among, was_open)

    def _provider_state(self, provider: Provider, among: Sequence[Credential], was_open: bool) -> None:
        """The provider's own gauge and count: open while every usable credential is."""
        if not self.is_open(among):
            return
        if not was_open:
            self._metrics.circuit_opened.inc(provider.id)
        self._open_providers.add(provider.id)
        self._metrics.circuit_open.set(provider.id, value=1)

    def is_open(self, credentials: Sequence[Credential]) -> bool:
        """Every credential rests or cools down now."""
        now = self._clock()
        for credential in credentials:
            state = self._states.get(credential.key)
            if state is None or (state.open_until <= now and state.resting_until <= now):
                return False
        return True

    def ready_in(self, credentials: Sequence[Credential]) -> float:
        """Seconds until the first of `credentials` neither rests nor cools down (0: one is ready)."""
        now = self._clock()
        soonest = float("inf")
        for credential in credentials:
            state = self._states.get(credential.key)
            until = 0.0 if state is None else max(state.open_until, state.resting_until)
            soonest = min(soonest, max(0.0, until - now))
        return 0.0 if soonest == float("inf") else soonest

    def credential_state(self, credential: Credential) -> tuple[int, float, float]:
        """A credential's consecutive failures, and the seconds until its cool-down ends and until
        its rest ends (0 for each that is over), for the admin surface."""
        state = self._states.get(credential.key)
        if state is None:
            return 0, 0.0, 0.0
        now = self._clock()
        return state.failures, max(0.0, state.open_until - now), max(0.0, state.resting_until - now)
