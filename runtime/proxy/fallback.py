"""Fallback and retry: a route's targets tried in order, each again on its `retries`, leaving one
only on a condition the route lists (`fallback.on`: 5xx, 429, timeout, connect). Once a target's
answer has reached the client there is no going back: a stream that fails later is ended in-band
(see relay.py).

A target is skipped without a call when its provider has no credential, the request cannot be
translated to its protocol, or its circuit is open (for a provider that lists api_keys: every
credential rests or is open; circuit.py). A 2xx that is not its protocol's fails like a
5xx. When no target answers, the client gets one error saying what became of each target and why
any were not tried (route_failure.py); the providers' own error bodies are not relayed.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..access_log import Attempt, EventLog
from ..circuit import RATE_LIMITED_REST_S, REFUSED_REST_S, Circuits, Permit
from ..decision import Deny
from ..errors import error_headers
from ..exceptions import AnswerTooLarge, NotItsProtocol, UpstreamError
from ..metrics import Metrics
from ..streams import HeldAnswer
from ..table import Credential, Gateway, Provider, Target
from ..translation import Step, plan
from ..upstream import ADAPTERS, UpstreamResponse
from .answers import refuse
from .exchange import Exchange
from .relay import Relay
from .route_failure import route_failure_message

PROVIDER_CREDENTIAL_REFUSED = frozenset({401, 403, 407})
MAX_RETRY_AFTER_S = 30.0
SKIPS = frozenset({"circuit_open", "no_credential", "untranslatable"})
"""Attempt reasons of targets never called: the status of an all-failed answer is the last call's."""


class Fallback:
    def __init__(self, metrics: Metrics, circuits: Circuits, events: EventLog) -> None:
        self.metrics = metrics
        self.circuits = circuits
        self.events = events
        self.relay = Relay(metrics, circuits)

    async def forward(self, exchange: Exchange) -> int:
        """Walk the route's targets in order; leave one only on a condition the route lists."""
        serving, decision = exchange.serving, exchange.decision
        retry_after: bytes | None = None
        steps = [plan(exchange.surface, target, exchange.request) for target in decision.targets]
        if all(step.error is not None for step in steps):
            exchange.record.translation_error = steps[0].error
            deny = Deny(400, "untranslatable_request", str(steps[0].error), decision.key)
            return await refuse(exchange.send, serving, exchange.surface, deny)
        for index, (target, step) in enumerate(zip(decision.targets, steps, strict=True)):
            provider = serving.table.providers[target.provider]
            credentials = serving.usable[provider.id]
            if not credentials:
                self._skipped(exchange, target, "no_credential")
                continue
            if step.error is not None:
                self._skipped(exchange, target, "untranslatable")
                exchange.record.translation_error = step.error
                continue
            permit = self.circuits.admit(credentials)
            if permit is None:
                self._skipped(exchange, target, "circuit_open", _resting(provider) if provider.pooled else None)
                continue
            status, retry_after = await self._try(exchange, target, step, index, credentials, permit)
            if status is not None:
                return status
        return await self._all_failed(exchange, retry_after)

    def _skipped(self, exchange: Exchange, target: Target, reason: str, detail: str | None = None) -> None:
        attempt: Attempt = {"provider": target.provider, "model": target.model, "reason": reason}
        if detail is not None:
            attempt["detail"] = detail
        exchange.attempts.append(attempt)
        self.metrics.upstream_attempts.inc(target.provider, reason)

    async def _try(
        self, exchange: Exchange, target: Target, step: Step, abandoned: int, credentials: tuple[Credential, ...],
        permit: Permit,
    ) -> tuple[int | None, bytes | None]:
        """One target, tried again on `retries`: (status, None) once the client has its answer, or
        (None, the last Retry-After) to move on to the next target. A provider that lists api_keys
        turns to its next credential at once when one answers 429, 401 or 403: the target fails only
        once every credential rests."""
        serving, route = exchange.serving, exchange.decision.route
        provider = serving.table.providers[target.provider]
        transport = serving.transports[provider.id]
        retry_after: bytes | None = None
        tried: set[str] = set()
        held_permit: Permit | None = permit
        attempt = 0
        try:
            while held_permit is not None:
                credential = held_permit.credential
                tried.add(credential.id)
                call = ADAPTERS[provider.type](
                    credential.upstream, serving.credentials.get(credential.key), target, step.outbound
                )
                call.headers["x-request-id"] = exchange.send.request_id
                if exchange.trace is not None:
                    exchange.trace.attempt(provider, target, call.headers)
                upstream_started = time.perf_counter()
                try:
                    response = await transport.send(call)
                except UpstreamError as exc:
                    reason, condition, retry_after = exc.reason, exc.condition, None
                    self._attempt(exchange, provider, credential, target, exc.reason)
                else:
                    self.metrics.upstream_latency.observe(time.perf_counter() - upstream_started, provider.id)
                    if exchange.trace is not None:
                        exchange.trace.responded(response.status)
                    if response.status in PROVIDER_CREDENTIAL_REFUSED:
                        await response.aclose()
                        self._refused(exchange, provider, credential, credentials, target, response.status)
                        if provider.pooled:
                            held_permit = self._another(held_permit, credentials, tried)
                            if held_permit is not None:
                                continue
                        return await self._credential_refused(exchange, target, credential, response.status), None
                    condition = _fallback_reason(response.status)
                    if condition is None:
                        held = await _hold(response, exchange.request.stream, step.outbound.surface, serving.table.gateway)
                        if isinstance(held, HeldAnswer):
                            self.circuits.succeeded(credential)
                            if provider.pooled:
                                self.metrics.credential_attempts.inc(provider.id, credential.id, "answered")
                            return await self.relay.answer(exchange, target, step, held, abandoned, credential), None
                        reason, condition, retry_after = held.reason, held.condition, None
                        self._attempt(exchange, provider, credential, target, held.reason, held)
                    else:
                        reason = condition
                        retry_after = _header(response.headers, b"retry-after")
                        self._attempt(exchange, provider, credential, target, str(response.status))
                        await response.aclose()
                self._count(provider, credential, reason)
                if condition == "429" and provider.pooled:
                    self.circuits.rest(provider, credential, credentials, rate_limited_rest_s(retry_after), "429")
                    held_permit = self._another(held_permit, credentials, tried)
                    if held_permit is not None:
                        continue
                elif condition is not None and condition != "429":
                    self.circuits.failed(provider, credential, credentials)
                if condition not in route.fallback_on:
                    return await self._all_failed(exchange, retry_after), None
                if held_permit is not None:
                    self.circuits.release(held_permit)
                    held_permit = None
                wait = backoff_s(attempt, retry_after) if attempt < route.retries else None
                if wait is not None and self.circuits.is_open(credentials):
                    wait = max(wait, self.circuits.ready_in(credentials)) if provider.pooled else None
                if wait is None or wait > MAX_RETRY_AFTER_S:
                    break
                await asyncio.sleep(wait)
                held_permit = self.circuits.admit(credentials)
                attempt += 1
                tried.clear()
        finally:
            if held_permit is not None:
                self.circuits.release(held_permit)
        return None, retry_after

    def _another(self, permit: Permit, credentials: tuple[Credential, ...], tried: set[str]) -> Permit | None:
        """The provider's next credential for this try, one this request has not carried yet."""
        self.circuits.release(permit)
        return self.circuits.admit(credentials, skip=tried)

    def _count(self, provider: Provider, credential: Credential, outcome: str) -> None:
        self.metrics.upstream_attempts.inc(provider.id, outcome)
        if provider.pooled:
            self.metrics.credential_attempts.inc(provider.id, credential.id, outcome)

    def _attempt(
        self, exchange: Exchange, provider: Provider, credential: Credential, target: Target, reason: str,
        failure: UpstreamError | None = None,
    ) -> None:
        """A failed call, in the request's attempts (naming its credential where the provider lists api_keys)."""
        attempt: Attempt = {"provider": provider.id, "model": target.model, "reason": reason}
        if provider.pooled:
            attempt["credential"] = credential.id
        if isinstance(failure, NotItsProtocol | AnswerTooLarge):
            attempt["detail"] = str(failure)
        exchange.attempts.append(attempt)
        if exchange.trace is not None:
            exchange.trace.failed(reason)

    def _refused(
        self, exchange: Exchange, provider: Provider, credential: Credential, credentials: tuple[Credential, ...],
        target: Target, status: int,
    ) -> None:
        """The provider refused a credential: counted and reported as a `credential_refused` event
        naming it (by id; for an `api_key`, the provider's). A provider that lists api_keys leaves
        it out for `REFUSED_REST_S`."""
        reason = f"provider_{status}"
        self._count(provider, credential, reason)
        self._attempt(exchange, provider, credential, target, reason)
        rest: dict[str, float] = {}
        if provider.pooled:
            self.circuits.rest(provider, credential, credentials, REFUSED_REST_S, "refused")
            rest["rest_s"] = REFUSED_REST_S
        self.events.event(
            "credential_refused", provider=provider.id, credential=credential.id, status=status,
            request_id=exchange.send.request_id, **rest,
        )

    async def _credential_refused(self, exchange: Exchange, target: Target, credential: Credential, status: int) -> int:
        """The provider refused the gateway's own credential (each of them). Relaying its 401 would
        tell the client that *its* key is wrong (and the body may echo part of the provider key),
        so the client gets a 502 naming the provider; like any non-retryable answer it does not
        fall back."""
        attempts, record = exchange.attempts, exchange.record
        record.attempts = attempts
        record.provider = target.provider
        if exchange.serving.table.providers[target.provider].pooled:
            message = (
                f"provider '{target.provider}' refused the gateway's credential '{credential.id}' ({status}) and "
                "none of its other api_keys is available; the gateway's operators must fix them"
            )
        else:
            message = (
                f"provider '{target.provider}' refused the gateway's credential ({status}); "
                "the gateway's operators must fix that provider's api_key"
            )
        body = exchange.surface.error_body(502, "provider_auth_error", message, None, {"attempts": attempts})
        headers = [*error_headers(502), (exchange.header(b"provider"), target.provider.encode()),
                   (exchange.header(b"fallback-count"), str(_fallback_count(attempts)).encode())]
        await exchange.respond(502, body, headers)
        return 502

    async def _all_failed(self, exchange: Exchange, retry_after: bytes | None) -> int:
        """One error for the whole route, naming each attempt; upstream bodies are never relayed."""
        attempts = exchange.attempts
        exchange.record.attempts = attempts
        tried = [a["reason"] for a in attempts if a["reason"] not in SKIPS]
        last = tried[-1] if tried else ""
        if attempts and all(a["reason"] == "circuit_open" for a in attempts):
            status, code = 503, "circuit_open"
        elif last == "timeout":
            status, code = 504, "upstream_timeout"
        elif last == "429":
            status, code = 429, "rate_limited"
        else:
            status, code = 502, "provider_error"
        decision = exchange.decision
        route = decision.route
        message = route_failure_message(decision.targets, attempts, route.fallback_on, decision.key.fallback_source)
        headers = error_headers(status)
        if retry_after is not None and status == 429:
            headers.append((b"retry-after", retry_after))
        headers.append((exchange.header(b"fallback-count"), str(_fallback_count(attempts)).encode()))
        body = exchange.surface.error_body(status, code, message, None, {"attempts": attempts})
        await exchange.respond(status, body, headers)
        return status


def backoff_s(attempt: int, retry_after: bytes | None, now: datetime | None = None) -> float | None:
    """Retry-After when the provider gave one, in seconds or as an HTTP-date, else exponential
    backoff from 250 ms with full jitter. None when the provider asks for more than 30 s: retrying
    the same target sooner would only be refused again, so the route moves on (or the client gets
    the provider's Retry-After)."""
    if retry_after is not None:
        wait = _retry_after_s(retry_after.decode("latin-1").strip(), now or datetime.now(UTC))
        if wait is not None:
            return None if wait > MAX_RETRY_AFTER_S else max(0.0, wait)
    return random.uniform(0, 0.25 * 2**attempt)


def _retry_after_s(value: str, now: datetime) -> float | None:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - now).total_seconds()


def _fallback_count(attempts: list[Attempt]) -> int:
    """Targets abandoned when none answered: every target tried but the last."""
    return max(0, len({(a["provider"], a["model"]) for a in attempts}) - 1)


def rate_limited_rest_s(retry_after: bytes | None, now: datetime | None = None) -> float:
    """How long a credential answered 429 rests: the provider's Retry-After, else a short default."""
    if retry_after is not None:
        wait = _retry_after_s(retry_after.decode("latin-1").strip(), now or datetime.now(UTC))
        if wait is not None:
            return max(0.0, wait)
    return RATE_LIMITED_REST_S


def _resting(provider: Provider) -> str:
    return f"was skipped: every one of its {len(provider.credentials)} credentials is resting or cooling down"


def _fallback_reason(status: int) -> str | None:
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx"
    return None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


async def _hold(response: UpstreamResponse, stream: bool, wire: str, limits: Gateway) -> HeldAnswer | UpstreamError:
    """The answer held until its first event (or whole body), or what it failed with; a failed
    answer's connection is dropped, not read to its end."""
    try:
        return await HeldAnswer.hold(response, stream, wire, limits)
    except UpstreamError as exc:
        await response.aclose()
        return exc
    except BaseException:
        await response.aclose()
        raise
