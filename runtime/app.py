"""The proxy as one ASGI application, read top to bottom: the routes table, then a proxied request.

request -> authenticate (sha256 of the key) -> parse -> decide (pure) -> upstream with fallback
-> response passed through as it arrives (SSE event by event) -> access log and metrics.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import orjson

from .access_log import AccessLog
from .budget.charge import Charge
from .budget.gate import BudgetGate
from .budget.tap import UsageTap
from .cache import cache_status, choose_mode, lookup_result
from .circuit import Circuits
from .decision import Allow, Deny, authenticate, decide_for_key
from .errors import error_headers
from .exceptions import (
    BodyTooLarge,
    LedgerError,
    StreamCutShort,
    TranslationError,
    UpstreamError,
)
from .metrics import Metrics
from .proxy.answers import refuse, stamped
from .proxy.asgi import Receive, Scope, Send, WatchedSend, read_body, respond
from .proxy.endpoints import Endpoints
from .proxy.keys import key_hash, presented_key
from .proxy.routes import (
    GET,
    POST,
    READS,
    Params,
    Route,
    Routes,
    gemini_count_tokens,
    gemini_generate,
    unrouted,
)
from .state import Serving
from .streams import HeldAnswer
from .surfaces import BY_PATH, GEMINI, MESSAGES, Surface, wants_sse
from .table import KeyEntry, Provider, Target
from .translation import ErrorTranslator, ResponseTranslator, Step, plan
from .upstream import ADAPTERS, Outbound, RawBody, UpstreamResponse

PROVIDER_CREDENTIAL_REFUSED = frozenset({401, 403, 407})
MAX_RETRY_AFTER_S = 30.0
SKIPS = frozenset({"circuit_open", "no_credential", "untranslatable"})
"""Attempt reasons of targets never called: the status of an all-failed answer is the last call's."""
FORWARDED_HEADERS = (b"anthropic-version", b"anthropic-beta")


class CacheState:
    def __init__(self, mode: str, injected: bool, header_name: bytes) -> None:
        self.mode = mode
        self.injected = injected
        self.header_name = header_name

    def header(self, cached_tokens: int | None) -> str | None:
        return cache_status(self.mode, self.injected, cached_tokens)


class Gatepost:
    """The ASGI app. `serving` is replaced whole on reload; each request reads it once."""

    def __init__(
        self,
        serving: Serving,
        access_log: AccessLog | None = None,
        metrics: Metrics | None = None,
        budgets: BudgetGate | None = None,
    ) -> None:
        self.serving = serving
        self.access_log = access_log or AccessLog()
        self.metrics = metrics or Metrics()
        self.budgets = budgets
        self.circuits = Circuits(self.metrics)
        self.metrics.set_revision(serving.table.revision)
        self.ready = True
        endpoints = Endpoints(self)
        self.routes = Routes([
            *(Route(path, POST, partial(self.proxy, surface), proxied=True) for path, surface in BY_PATH.items()),
            Route(gemini_generate, POST, partial(self.proxy, GEMINI), proxied=True),
            Route(gemini_count_tokens, POST, partial(endpoints.count_tokens, GEMINI), proxied=True),
            Route("/v1/messages/count_tokens", POST, partial(endpoints.count_tokens, MESSAGES)),
            Route("/v1/models", GET, endpoints.models),
            Route("/healthz", READS, endpoints.health),
            Route("/readyz", READS, endpoints.ready),
            Route("/metrics", READS, endpoints.metrics),
            Route("/", READS, endpoints.root),
        ])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            route, params = self.routes.find(path)
            if route is not None and method in route.methods:
                await route.handler(scope, receive, send, params)
            else:
                await unrouted(send, self.serving, method, path, route)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for transport in self.serving.transports.values():
                    await transport.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _headers(self, serving: Serving, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return stamped(serving, headers)

    async def proxy(self, surface: Surface, scope: Scope, receive: Receive, send: Send, gemini: Params) -> None:
        serving = self.serving
        started = time.perf_counter()
        record: dict[str, Any] = {"surface": surface.name, "revision": serving.table.revision}
        watched = WatchedSend(send)
        try:
            status = await self._proxy(scope, receive, watched, surface, gemini, serving, record)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a typed answer and a log line
            record["internal_error"] = type(exc).__name__
            status = await self._internal_error(watched, serving, surface, len(record.get("attempts") or ()))
        elapsed = time.perf_counter() - started
        record["status"] = status
        record["latency_ms"] = round(elapsed * 1000, 2)
        model = record.get("model") if record.get("decision") == "allow" else None
        self.metrics.requests.inc(record.get("vk") or "-", model or "-", record.get("provider") or "-", str(status))
        self.metrics.request_latency.observe(elapsed, surface.name)
        self.access_log.write(record)

    async def _internal_error(self, send: WatchedSend, serving: Serving, surface: Surface, tried: int) -> int:
        """A fault of the gateway's own: a 500 in the surface's shape if nothing was sent yet, else
        the answer is ended where it stands. The access log names the exception's type only (its
        text could quote the request)."""
        try:
            if not send.started:
                message = "the gateway failed while handling this request; the failure is in its access log"
                body = surface.error_body(500, "internal_error", message, None, None)
                prefix = serving.header_prefix
                headers = [*error_headers(500), (prefix + b"fallback-count", str(max(0, tried - 1)).encode())]
                await respond(send, 500, body, self._headers(serving, headers))
            elif not send.finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # noqa: BLE001 - the client is gone; the log line still gets written
            pass
        return 500

    async def _proxy(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        surface: Surface,
        gemini: tuple[str, str] | None,
        serving: Serving,
        record: dict[str, Any],
    ) -> int:
        table = serving.table
        key = authenticate(table, key_hash(scope), datetime.now(timezone.utc))
        if isinstance(key, Deny):
            record["decision"] = key.code
            if key.key is not None:
                _describe_key(record, key.key)
            else:
                token = presented_key(scope)
                if token is not None:
                    record["key_prefix"] = token[:12].decode("utf-8", "replace")
            return await self._deny(send, serving, key, surface)
        _describe_key(record, key)
        try:
            raw = await read_body(scope, receive, table.gateway.max_body_bytes)
        except BodyTooLarge:
            limit = table.gateway.max_body_bytes
            deny = Deny(400, "request_too_large", f"request body is larger than the gateway's limit of {limit} bytes", key)
            record["decision"] = deny.code
            return await self._deny(send, serving, deny, surface)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            deny = Deny(400, "invalid_json", f"request body is not valid JSON: {exc}", key)
            record["decision"] = deny.code
            return await self._deny(send, serving, deny, surface)
        if not isinstance(payload, dict):
            deny = Deny(400, "invalid_request_error", "request body must be a JSON object", key)
            record["decision"] = deny.code
            return await self._deny(send, serving, deny, surface)
        model = gemini[0] if gemini is not None else payload.get("model")
        record["model"] = model if isinstance(model, str) else None
        decision = decide_for_key(key, surface.name, model if isinstance(model, str) else None)
        if isinstance(decision, Deny):
            record["decision"] = decision.code
            return await self._deny(send, serving, decision, surface)
        record["route_source"] = decision.route.source
        admission = None
        if key.budgets:
            if self.budgets is None:
                deny = Deny(503, "ledger_unavailable", f"virtual key {key.label} has budgets but no ledger is configured", key)
                record["decision"] = deny.code
                return await self._deny(send, serving, deny, surface)
            try:
                admitted = await self.budgets.admit_async(table, key, decision.targets, payload, len(raw), datetime.now(timezone.utc))
            except LedgerError as exc:
                deny = Deny(503, "ledger_unavailable", f"the spend ledger cannot be reached, so budgets cannot be enforced: {exc}", key)
                record["decision"] = deny.code
                return await self._deny(send, serving, deny, surface)
            if isinstance(admitted, Deny):
                record["decision"] = admitted.code
                record["budget"] = (admitted.meta or {}).get("instance")
                return await self._deny(send, serving, admitted, surface)
            admission = admitted
        record["decision"] = "allow"
        charge = Charge(admission)
        try:
            headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in FORWARDED_HEADERS}
            stream = gemini[1] == "streamGenerateContent" if gemini is not None else payload.get("stream") is True
            prefix = serving.header_prefix
            requested = next((v.decode("latin-1") for k, v in scope["headers"] if k == prefix + b"cache"), None)
            mode, refused = choose_mode(key.cache.mode, key.cache.allow_override, requested)
            if refused is not None:
                record["cache_override_refused"] = refused
            sse = wants_sse(scope.get("query_string", b"")) if gemini is not None else True
            request = Outbound(
                surface.name, payload, stream, headers, gemini[1] if gemini is not None else None, mode, key.cache.salt,
                RawBody(raw, payload), sse,
            )
            return await self._forward(send, serving, decision, surface, request, record, charge)
        finally:
            if admission is not None and self.budgets is not None:
                actual = charge.amount(serving.table)
                try:
                    await self.budgets.settle_async(admission, actual, charge.how)
                except LedgerError as exc:
                    record["ledger_error"] = str(exc)
                record["cost_usd"] = charge.cost_text(serving.table, admission)
            elif charge.usage is not None:
                record["cost_usd"] = charge.cost_text(serving.table, None)
            if charge.usage is not None:
                record["usage"] = charge.usage_record()
                if record.get("vk"):
                    self.metrics.spend.inc(record["vk"], charge.model or "-", amount=charge.usd_float(serving.table))

    async def _deny(self, send: Send, serving: Serving, deny: Deny, surface: Surface) -> int:
        return await refuse(send, serving, surface, deny)

    async def _forward(
        self,
        send: Send,
        serving: Serving,
        decision: Allow,
        surface: Surface,
        request: Outbound,
        record: dict[str, Any],
        charge: Charge,
    ) -> int:
        """Walk the route's targets in order; leave one only on a condition the route lists."""
        attempts: list[dict[str, Any]] = []
        retry_after: bytes | None = None
        steps = [plan(surface, target, request) for target in decision.targets]
        if all(step.error is not None for step in steps):
            record["translation_error"] = steps[0].error
            deny = Deny(400, "untranslatable_request", str(steps[0].error), decision.key)
            return await self._deny(send, serving, deny, surface)
        for index, (target, step) in enumerate(zip(decision.targets, steps)):
            provider = serving.table.providers[target.provider]
            if provider.api_key is not None and provider.id not in serving.credentials:
                self._skipped(attempts, target, "no_credential")
                continue
            if step.error is not None:
                self._skipped(attempts, target, "untranslatable")
                record["translation_error"] = step.error
                continue
            permit = self.circuits.admit(provider.id)
            if permit is None:
                self._skipped(attempts, target, "circuit_open")
                continue
            try:
                status, retry_after = await self._try_target(
                    send, serving, decision, surface, request, record, charge, target, step, attempts, index
                )
            finally:
                self.circuits.release(permit)
            if status is not None:
                return status
        return await self._all_failed(send, serving, surface, attempts, record, retry_after)

    def _skipped(self, attempts: list[dict[str, Any]], target: Target, reason: str) -> None:
        attempts.append({"provider": target.provider, "model": target.model, "reason": reason})
        self.metrics.upstream_attempts.inc(target.provider, reason)

    async def _try_target(
        self,
        send: Send,
        serving: Serving,
        decision: Allow,
        surface: Surface,
        request: Outbound,
        record: dict[str, Any],
        charge: Charge,
        target: Target,
        step: Step,
        attempts: list[dict[str, Any]],
        abandoned: int,
    ) -> tuple[int | None, bytes | None]:
        """One target, tried again on `retries`: (status, None) once the client has its answer, or
        (None, the last Retry-After) to move on to the next target."""
        route = decision.route
        provider = serving.table.providers[target.provider]
        call = ADAPTERS[provider.type](provider, serving.credentials.get(provider.id), target, step.outbound)
        transport = serving.transports[provider.id]
        retry_after: bytes | None = None
        for attempt in range(route.retries + 1):
            upstream_started = time.perf_counter()
            try:
                response = await transport.send(call)
            except UpstreamError as exc:
                reason, retry_after = exc.reason, None
                attempts.append({"provider": provider.id, "model": target.model, "reason": exc.reason})
            else:
                self.metrics.upstream_latency.observe(time.perf_counter() - upstream_started, provider.id)
                if response.status in PROVIDER_CREDENTIAL_REFUSED:
                    await response.aclose()
                    return await self._credential_refused(send, serving, surface, target, response.status, attempts, record), None
                condition = _fallback_reason(response.status)
                if condition is None:
                    held = await _hold(response, request.stream, step.outbound.surface)
                    if isinstance(held, HeldAnswer):
                        self.circuits.succeeded(provider.id)
                        status = await self._answer(
                            send, serving, surface, request, record, charge, target, step, held, attempts, abandoned
                        )
                        return status, None
                    reason, retry_after = held, None
                    attempts.append({"provider": provider.id, "model": target.model, "reason": held})
                else:
                    reason = condition
                    attempts.append({"provider": provider.id, "model": target.model, "reason": str(response.status)})
                    retry_after = _header(response.headers, b"retry-after")
                    await response.aclose()
            self.metrics.upstream_attempts.inc(provider.id, reason)
            if reason != "429":
                self.circuits.failed(provider.id, provider.circuit_failures, provider.circuit_cooldown_s)
            if reason not in route.fallback_on:
                return await self._all_failed(send, serving, surface, attempts, record, retry_after), None
            wait = backoff_s(attempt, retry_after) if attempt < route.retries else None
            if wait is not None and not self.circuits.is_open(provider.id):
                await asyncio.sleep(wait)
                continue
            break
        return None, retry_after

    async def _answer(
        self,
        send: Send,
        serving: Serving,
        surface: Surface,
        request: Outbound,
        record: dict[str, Any],
        charge: Charge,
        target: Target,
        step: Step,
        held: HeldAnswer,
        attempts: list[dict[str, Any]],
        abandoned: int,
    ) -> int:
        """Fallback-Count is the answering target's place in the route: every target before it was
        skipped or failed."""
        response = held.response
        provider = target.provider
        prefix = serving.header_prefix
        self.metrics.upstream_attempts.inc(provider, "answered")
        record["provider"] = provider
        record["upstream_model"] = target.upstream_model
        if attempts:
            record["attempts"] = [*attempts, {"provider": provider, "model": target.model, "reason": "answered"}]
        translated = target.protocol not in (surface.protocol, "mock")
        translator: ResponseTranslator | None
        if 200 <= response.status < 300:
            translator = step.response_translator(target)
        else:
            translator = ErrorTranslator(surface, target, response.status) if translated else None
        upstream_headers = response.headers if translator is None else translator.headers(response.headers)
        headers = self._headers(serving, upstream_headers)
        label = f"{provider}; translated-from={target.protocol}" if translated else provider
        headers.append((prefix + b"provider", label.encode()))
        if translated:
            record["translated"] = f"{surface.protocol}<-{target.protocol}"
            if step.dropped:
                headers.append((prefix + b"translation-dropped", ",".join(step.dropped).encode()))
                record["translation_dropped"] = list(step.dropped)
        headers.append((prefix + b"fallback-count", str(abandoned).encode()))
        record["fallback_count"] = abandoned
        refused = record.get("cache_override_refused")
        if refused:
            headers.append((prefix + b"cache-override", f"refused; {refused}".encode("latin-1", "replace")))
        if charge.admission is not None and charge.admission.warnings:
            headers.append((prefix + b"budget-warning", ",".join(charge.admission.warnings).encode()))
        charge.answered(target.model, response.status, request.stream)
        cache = CacheState(request.cache_mode, step.injected, prefix + b"cache")
        if not charge.stream:
            return await self._relay_whole(send, held, headers, record, charge, translator, cache, surface, target)
        provider_entry = serving.table.providers[target.provider]
        return await self._relay(send, held, headers, record, charge, surface, translator, cache, provider_entry)

    async def _relay(
        self,
        send: Send,
        held: HeldAnswer,
        headers: list[tuple[bytes, bytes]],
        record: dict[str, Any],
        charge: Charge,
        surface: Surface,
        translator: ResponseTranslator | None,
        cache: CacheState,
        provider: Provider,
    ) -> int:
        """A stream, whole events at a time; it ends with an error event in the surface's format
        when the upstream fails or stops before its final event, never as a silent success. Such a
        failure counts against the provider's circuit (it answered, then failed) and in
        `gatepost_stream_errors_total`; so does an event the proxy could not translate."""
        response, framer, tap = held.response, held.framer, charge.tap
        header = cache.header(None)
        if header is not None:
            headers.append((cache.header_name, header.encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        try:
            await _relay_part(send, held.head, tap, translator)
            async for chunk in held.rest:
                events = chunk if framer is None else framer.feed(chunk)
                if events:
                    await _relay_part(send, events, tap, translator)
            tail, ended = framer.close() if framer is not None else (b"", True)
            if tail:
                await _relay_part(send, tail, tap, translator)
            if not ended:
                raise StreamCutShort("the stream ended before its final event")
            if translator is not None:
                tail = translator.finish()
                if tail:
                    await send({"type": "http.response.body", "body": tail, "more_body": True})
        except Exception as exc:  # noqa: BLE001 - every failure after the start ends the stream in-band
            kind = exc.reason if isinstance(exc, UpstreamError) else "untranslatable_event"
            record["stream_error"] = kind
            if not isinstance(exc, UpstreamError):
                record["internal_error"] = type(exc).__name__
            charge.broken = True
            self.metrics.stream_errors.inc(provider.id, kind)
            self.circuits.failed(provider.id, provider.circuit_failures, provider.circuit_cooldown_s)
            error = surface.stream_error("provider_error", f"upstream stream failed: {kind}")
            if translator is not None:
                error = translator.error(error)
            await send({"type": "http.response.body", "body": error, "more_body": True})
        finally:
            await response.aclose()
            charge.finish()
            self._record_cache(record, charge, cache)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        charge.complete = True
        return response.status

    async def _relay_whole(
        self,
        send: Send,
        held: HeldAnswer,
        headers: list[tuple[bytes, bytes]],
        record: dict[str, Any],
        charge: Charge,
        translator: ResponseTranslator | None,
        cache: CacheState,
        surface: Surface,
        target: Target,
    ) -> int:
        """A non-streaming answer, read whole before its start was sent: its usage decides the cache
        header. A translated answer that is not one of its protocol's is a 502, not a crash or an
        empty answer."""
        response, body = held.response, held.head
        status = response.status
        await response.aclose()
        if charge.tap is not None:
            charge.tap.feed(body)
        charge.finish()
        if translator is not None:
            translator.feed(body)
            try:
                body = translator.finish()
            except TranslationError as exc:
                record["translation_error"] = str(exc)
                message = f"{target.provider}/{target.upstream_model} answered {status}, but {exc}"
                status, body = 502, surface.error_body(502, "provider_error", message, None, {"provider": target.provider})
                headers = [(k, v) for k, v in headers if k != b"content-type"] + [(b"content-type", b"application/json")]
        header = self._record_cache(record, charge, cache)
        if header is not None:
            headers.append((cache.header_name, header.encode()))
        await respond(send, status, body, headers)
        charge.complete = True
        return status

    def _record_cache(self, record: dict[str, Any], charge: Charge, cache: CacheState) -> str | None:
        """The header value, and in the log and metrics whether the provider's cache was hit, in
        every mode: a hit under `disable` means the cold run was not cold."""
        cached = charge.usage.cached_input_tokens if charge.usage is not None else None
        status = cache.header(cached)
        record["cache_mode"] = cache.mode
        if status is not None:
            record["cache"] = status
        lookup = lookup_result(cached)
        if lookup is not None and record.get("provider"):
            record["cache_lookup"] = lookup
            self.metrics.cache_lookups.inc(record.get("vk") or "-", charge.model or "-", record["provider"], lookup)
        return status

    async def _credential_refused(
        self,
        send: Send,
        serving: Serving,
        surface: Surface,
        target: Target,
        status: int,
        attempts: list[dict[str, Any]],
        record: dict[str, Any],
    ) -> int:
        """The provider refused the gateway's own credential. Relaying its 401 would tell the client
        that *its* key is wrong (and the body may echo part of the provider key), so the client
        gets a 502 naming the provider; like any non-retryable answer it does not fall back."""
        self.metrics.upstream_attempts.inc(target.provider, f"provider_{status}")
        attempts.append({"provider": target.provider, "model": target.model, "reason": f"provider_{status}"})
        record["attempts"] = attempts
        record["provider"] = target.provider
        message = (
            f"provider '{target.provider}' refused the gateway's credential ({status}); "
            "the gateway's operators must fix that provider's api_key"
        )
        body = surface.error_body(502, "provider_auth_error", message, None, {"attempts": attempts})
        prefix = serving.header_prefix
        headers = [*error_headers(502), (prefix + b"provider", target.provider.encode()),
                   (prefix + b"fallback-count", str(_fallback_count(attempts)).encode())]
        await respond(send, 502, body, self._headers(serving, headers))
        return 502

    async def _all_failed(
        self,
        send: Send,
        serving: Serving,
        surface: Surface,
        attempts: list[dict[str, Any]],
        record: dict[str, Any],
        retry_after: bytes | None = None,
    ) -> int:
        """One error for the whole route, naming each attempt; upstream bodies are never relayed."""
        record["attempts"] = attempts
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
        listed = "; ".join(f"{a['provider']} ({a['model']}): {a['reason']}" for a in attempts)
        targets = len({(a["provider"], a["model"]) for a in attempts})
        noun = "the only target" if targets == 1 else f"all {targets} targets"
        message = f"{noun} failed: {listed}"
        headers = error_headers(status)
        if retry_after is not None and status == 429:
            headers.append((b"retry-after", retry_after))
        prefix = serving.header_prefix
        headers.append((prefix + b"fallback-count", str(_fallback_count(attempts)).encode()))
        body = surface.error_body(status, code, message, None, {"attempts": attempts})
        await respond(send, status, body, self._headers(serving, headers))
        return status


def backoff_s(attempt: int, retry_after: bytes | None, now: datetime | None = None) -> float | None:
    """Retry-After when the provider gave one, in seconds or as an HTTP-date, else exponential
    backoff from 250 ms with full jitter. None when the provider asks for more than 30 s: retrying
    the same target sooner would only be refused again, so the route moves on (or the client gets
    the provider's Retry-After)."""
    if retry_after is not None:
        wait = _retry_after_s(retry_after.decode("latin-1").strip(), now or datetime.now(timezone.utc))
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
        when = when.replace(tzinfo=timezone.utc)
    return (when - now).total_seconds()


def _fallback_count(attempts: list[dict[str, Any]]) -> int:
    """Targets abandoned when none answered: every target tried but the last."""
    return max(0, len({(a["provider"], a["model"]) for a in attempts}) - 1)


async def _hold(response: UpstreamResponse, stream: bool, wire: str) -> HeldAnswer | str:
    """The answer held until its first event (or whole body), or the fallback condition it failed with."""
    try:
        return await HeldAnswer.hold(response, stream and 200 <= response.status < 300, wire)
    except UpstreamError as exc:
        await response.aclose()
        return exc.reason
    except BaseException:
        await response.aclose()
        raise


async def _relay_part(send: Send, events: bytes, tap: UsageTap | None, translator: ResponseTranslator | None) -> None:
    if tap is not None:
        tap.feed(events)
    out = events if translator is None else translator.feed(events)
    if out:
        await send({"type": "http.response.body", "body": out, "more_body": True})


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _fallback_reason(status: int) -> str | None:
    if status == 429:
        return "429"
    if status >= 500:
        return "5xx"
    return None


def _describe_key(record: dict[str, Any], key: KeyEntry) -> None:
    record["vk"] = key.id
    record["key_prefix"] = key.key_prefix
