"""The proxy as one ASGI application: the paths it serves, and a proxied request top to bottom.

request -> authenticate (sha256 of the key) -> read and parse the body -> decide (pure) -> admit
under budgets -> forward with fallback -> relay the answer as it arrives (SSE event by event) ->
settle the charge -> access log and metrics.

Each step beyond this file has a module of its own in `runtime/proxy/`: `asgi` (reading bodies,
answering), `keys` (where clients send their key), `routes` (the table below, 404 and 405),
`exchange` (what a request carries from step to step), `spend` (budgets), `fallback` (targets,
retries, backoff), `relay` (whole and streamed answers, translated, with the cache status) and
`endpoints` (what the gateway answers itself).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from .access_log import AccessLog, EventLog
from .budget.charge import Charge
from .budget.gate import BudgetGate, RateLimited
from .cache import choose_mode
from .circuit import Circuits
from .decision import Deny, authenticate, decide_for_key
from .exceptions import BodyCutShort
from .ledger.activity import Activity
from .metrics import Metrics
from .proxy.activity import observe
from .proxy.answers import overloaded
from .proxy.asgi import Receive, Scope, Send, WatchedSend
from .proxy.counting import TokenCounts
from .proxy.endpoints import Endpoints
from .proxy.exchange import Exchange
from .proxy.fallback import Fallback
from .proxy.keys import key_hash, key_prefix
from .proxy.payload import read_payload
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
from .proxy.spend import Spend
from .readiness import Readiness
from .request_ids import request_id
from .state import Serving
from .surfaces import BY_PATH, GEMINI, MESSAGES, RESPONSES, Surface, error_body_for, wants_sse
from .telemetry import SHUTDOWN_WAIT_S, Tracing
from .upstream import Outbound, RawBody

FORWARDED_HEADERS = (b"anthropic-version", b"anthropic-beta")
CLIENT_CLOSED = 499
"""The access log's status of a request whose connection ended before its body had arrived (nginx's)."""


class Gatepost:
    """The ASGI app. `serving` is replaced whole on reload; each request reads it once."""

    def __init__(
        self,
        serving: Serving,
        access_log: AccessLog | None = None,
        metrics: Metrics | None = None,
        budgets: BudgetGate | None = None,
        clock: Callable[[], float] = time.monotonic,
        events: EventLog | None = None,
    ) -> None:
        """`clock` times the circuits' cool-downs (a test moves a manual one); `events` takes the
        request path's operational events (a provider refusing one of its credentials)."""
        self.serving = serving
        self.access_log = access_log or AccessLog()
        self.metrics = metrics or Metrics()
        self.budgets = budgets
        self.circuits = Circuits(self.metrics, clock)
        self.metrics.set_revision(serving.table.revision)
        self.readiness = Readiness()
        """What `/readyz` answers: the server marks it draining, and its ledger probe unreachable."""
        self.activity: Activity | None = None
        """Where ended requests are noted for the admin surface, when the ledger keeps its activity."""
        self.in_flight = 0
        """Requests being forwarded to providers now, held under `gateway.max_in_flight`."""
        self.spend = Spend(budgets, self.metrics)
        events = events or EventLog()
        self.fallback = Fallback(self.metrics, self.circuits, events)
        self.counts = TokenCounts(self.fallback)
        self.tracing = Tracing(self.metrics, events)
        endpoints = Endpoints(self)
        self.routes = Routes([
            *(Route(path, POST, partial(self.proxy, surface), proxied=True) for path, surface in BY_PATH.items()),
            Route(gemini_generate, POST, partial(self.proxy, GEMINI), proxied=True),
            Route(gemini_count_tokens, POST, partial(self.proxy, GEMINI, count=True), proxied=True),
            Route("/v1/messages/count_tokens", POST, partial(self.proxy, MESSAGES, count=True)),
            Route("/v1/responses/input_tokens", POST, partial(self.proxy, RESPONSES, count=True)),
            Route("/v1/models", GET, endpoints.models),
            Route("/healthz", READS, endpoints.health),
            Route("/readyz", READS, endpoints.ready),
            Route("/metrics", READS, endpoints.metrics),
            Route("/", READS, endpoints.root),
        ])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            send = WatchedSend(send, request_id(scope["headers"]))
            method, path = scope["method"], scope["path"]
            route, params = self.routes.find(path)
            if route is not None and method in route.methods:
                await route.handler(scope, receive, send, params)
            else:
                meant = self.routes.meant(path) if route is None else None
                await unrouted(send, self.serving, method, path, route, meant)
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
                closing = self.tracing.close()
                if closing is not None:
                    await asyncio.to_thread(closing.join, SHUTDOWN_WAIT_S)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def proxy(
        self, surface: Surface, scope: Scope, receive: Receive, send: WatchedSend, params: Params, count: bool = False
    ) -> None:
        """One request for a provider (`count`: a token count, see proxy/counting.py), whatever becomes
        of it, ends in one access-log line."""
        started = time.perf_counter()
        exchange = Exchange(self.serving, surface, send)
        gateway = exchange.serving.table.gateway
        tracer = self.tracing.tracer_for(gateway.telemetry)
        if tracer is not None:
            tracer.begin(exchange, scope, count)
        cap = gateway.max_in_flight
        if self.in_flight >= cap:
            exchange.record.key_prefix = key_prefix(scope)
            message = f"the gateway is forwarding its limit of {cap} requests at once (gateway.max_in_flight)"
            status = await exchange.overloaded(message)
            self._observe(exchange, status, time.perf_counter() - started)
            return
        self.in_flight += 1
        try:
            status = await self._proxy(exchange, scope, receive, params, count)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: a typed answer and a log line
            exchange.record.internal_error = type(exc).__name__
            status = await exchange.internal_error()
        finally:
            self.in_flight -= 1
        self._observe(exchange, status, time.perf_counter() - started)
        if self.activity is not None:
            observe(self.activity, exchange, status)

    async def overloaded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app for a connection opened beyond `gateway.max_connections`: a 503 `overloaded` in
        the shape of the path's surface, after which the connection is closed. `/healthz` and
        `/metrics` are still answered: an operator looks there when the gateway is full."""
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in ("/healthz", "/metrics"):
            await self(scope, receive, send)
            return
        serving = self.serving
        cap = serving.table.gateway.max_connections
        self.metrics.client_connections_closed.inc("max_connections")
        message = f"the gateway has its limit of {cap} client connections open (gateway.max_connections)"
        route, _ = self.routes.find(path)
        headers = [(b"connection", b"close")]
        if route is not None and route.proxied:
            headers.append((serving.header_prefix + b"fallback-count", b"0"))
        await overloaded(WatchedSend(send, request_id(scope["headers"])), serving, error_body_for(path), message, headers)

    async def _proxy(self, exchange: Exchange, scope: Scope, receive: Receive, params: Params, count: bool) -> int:
        record, table = exchange.record, exchange.serving.table
        key = authenticate(table, key_hash(scope), datetime.now(UTC))
        if isinstance(key, Deny):
            record.decision = key.code
            if key.key is not None:
                record.vk, record.key_prefix = key.key.id, key.key.key_prefix
            elif (prefix := key_prefix(scope)) is not None:
                record.key_prefix = prefix
            return await exchange.refuse(key)
        record.vk, record.key_prefix = key.id, key.key_prefix
        try:
            body = await read_payload(scope, receive, table.gateway.max_body_bytes, key)
        except BodyCutShort:
            record.decision = "body_cut_short"
            return CLIENT_CLOSED
        if isinstance(body, Deny):
            return await exchange.refuse(body)
        raw, payload = body
        named = params[0] if params is not None else payload.get("model")
        record.model = named if isinstance(named, str) else None
        decision = decide_for_key(key, exchange.surface.name, record.model)
        if isinstance(decision, Deny):
            return await exchange.refuse(decision)
        record.route_source = decision.route.source
        exchange.decision = decision
        if count:
            record.decision = "allow"
            exchange.request = _outbound(exchange, scope, RawBody(raw, payload), params)
            return await self.counts.count(exchange)
        admission = await self.spend.admit(exchange, payload, len(raw)) if key.budgets or key.rate_limits else None
        if isinstance(admission, Deny):
            return await exchange.refuse(admission)
        if isinstance(admission, RateLimited):
            return await exchange.rate_limited(admission)
        record.decision = "allow"
        exchange.charge = Charge(admission)
        try:
            exchange.request = _outbound(exchange, scope, RawBody(raw, payload), params)
            return await self.fallback.forward(exchange)
        finally:
            await self.spend.settle(exchange)

    def _observe(self, exchange: Exchange, status: int, elapsed: float) -> None:
        record = exchange.record
        record.status = status
        record.latency_ms = round(elapsed * 1000, 2)
        model = record.model if record.decision == "allow" else None
        self.metrics.requests.inc(record.vk or "-", model or "-", record.provider or "-", str(status))
        self.metrics.request_latency.observe(elapsed, record.surface)
        if exchange.trace is not None:
            exchange.trace.end(exchange, status)
        self.access_log.request(record)


def _outbound(exchange: Exchange, scope: Scope, body: RawBody, params: Params) -> Outbound:
    """The request as its targets get it (before any translation): the client's payload and bytes,
    whether it streams, the cache mode the key allows, and the client headers providers read."""
    surface, cache, payload = exchange.surface, exchange.decision.key.cache, body.payload
    headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in FORWARDED_HEADERS}
    stream = params[1] == "streamGenerateContent" if params is not None else payload.get("stream") is True
    cache_header = exchange.header(b"cache")
    requested = next((v.decode("latin-1") for k, v in scope["headers"] if k == cache_header), None)
    mode, refused = choose_mode(cache.mode, cache.allow_override, requested)
    if refused is not None:
        exchange.record.cache_override_refused = refused
    method, sse = (params[1], wants_sse(scope.get("query_string", b""))) if params is not None else (None, True)
    return Outbound(surface.name, payload, stream, headers, method, mode, cache.salt, body, sse)
