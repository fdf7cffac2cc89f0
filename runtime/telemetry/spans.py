"""A request's span, and a child span per upstream attempt, after OpenTelemetry's GenAI semantic
conventions (gen_ai.* attributes; a span named `{gen_ai.operation.name} {gen_ai.request.model}`).

The request span is the server side of the client's call (kind SERVER), continuing the client's
W3C `traceparent`/`tracestate` when it sent one; each call to a provider is a CLIENT child whose
context goes upstream in `traceparent` (and `tracestate`), so a provider that traces joins the
same trace. Usage tokens are on the request span only: a backend that sums them per trace counts
each request once, whatever its fallbacks. Beside the conventions' attributes each request span
carries the gateway's own, under `gatepost.`: the key's id (never its hash), team, principal,
the policy revision, the decision and its reason code, and the cost.

A request's spans are written once, whole, when it ends: their OTLP bytes (`wire.py`), in one
`WrittenSpan` the SDK's batch processor queues and its exporter sends. The SDK's general-purpose
`Span` (a lock per span and per attribute collection, each attribute validated as it is set)
costs several times the rest of the request here. What a span shares with the other requests of
its key, route and outcome (its name, the key's id, team and principal, the revision, models,
provider, decision, status) is written once per revision and kept (`SpanParts`); per request remain
its ids, its times, its tokens and its cost. The sampling decision is the SDK's ratio sampler's
(its bound over the trace id's low 64 bits), taken first, and parent-based: a client's sampled
flag decides for it. An unsampled request writes nothing (its upstream calls carry its context,
unsampled, so the trace still joins up downstream): it draws its trace id, names it in the
access log and in the `traceparent` it sends upstream.
"""

from __future__ import annotations

import time
from random import getrandbits
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    SpanContext,
    SpanKind,
    get_current_span,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..table import LoadedTable, Provider, Target, Telemetry
from .content import ContentTap, input_messages
from .wire import (
    FloatAttribute,
    IntAttribute,
    WrittenSpan,
    attribute_key,
    span_field,
    span_parts,
    text_field,
    trace_head,
)

if TYPE_CHECKING:
    from ..proxy.asgi import Scope
    from ..proxy.exchange import Exchange

OPERATIONS = {"chat": "chat", "responses": "chat", "messages": "chat", "gemini": "generate_content"}
COUNT_OPERATION = "count_tokens"
PROVIDER_NAMES = {
    "openai": "openai", "azure_openai": "azure.ai.openai", "anthropic": "anthropic", "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai", "bedrock": "aws.bedrock",
}
"""gen_ai.provider.name of each provider type that has a well-known value; the others use their type."""
TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
MAX_PARTS = 4096
"""Written parts kept per tracer (a key's requests with one route and outcome share one)."""
INPUT_TOKENS = IntAttribute("gen_ai.usage.input_tokens")
OUTPUT_TOKENS = IntAttribute("gen_ai.usage.output_tokens")
CACHED_TOKENS = IntAttribute("gen_ai.usage.cache_read.input_tokens")
COST = FloatAttribute("gatepost.cost_usd")
INPUT_MESSAGES = attribute_key("gen_ai.input.messages")
OUTPUT_MESSAGES = attribute_key("gen_ai.output.messages")
_PROPAGATOR = TraceContextTextMapPropagator()

ServerKey = tuple[
    str, int, str, str | None, str | None, str | None, str | None, str | None, str | None, int | None, str | None, bool
]
AttemptKey = tuple[str, str, str, str, int | None, str | None]


def _random_id(bits: int) -> int:
    """A random non-zero id (as the SDK's RandomIdGenerator draws them; callers draw once first,
    `getrandbits(bits) or _random_id(bits)`, as a zero comes once in 2**64)."""
    while not (value := getrandbits(bits)):
        pass
    return value


class SpanParts:
    """The written parts of spans (`wire.span_parts`) by what decides them. A request span's are
    keyed on the policy revision with the rest: the revision hashes the whole table, so the key's
    team and principal and the provider's type read from the table are the same for a revision.
    At most `MAX_PARTS`: a tracer that has written more starts them afresh (`bounded`, before it
    adds one)."""

    def __init__(self) -> None:
        self.server: dict[ServerKey, tuple[str, bytes]] = {}
        self.attempts: dict[AttemptKey, bytes] = {}

    def bounded(self) -> SpanParts:
        if len(self.server) + len(self.attempts) >= MAX_PARTS:
            self.server.clear()
            self.attempts.clear()
        return self


class RequestTracer:
    """Starts request traces for one process and one set of telemetry settings."""

    def __init__(self, processor: SpanProcessor, resource: Resource, settings: Telemetry) -> None:
        self.processor = processor
        self.resource = resource
        self.scope = InstrumentationScope("gatepost")
        self.bound = TraceIdRatioBased(settings.sampling_ratio).bound
        self.records_content = settings.record_content
        self.parts = SpanParts()

    def begin(self, exchange: Exchange, scope: Scope, count: bool) -> RequestTrace | UnsampledTrace:
        """The request's trace, sampled or not (decided now), its trace id in the access log. Most
        requests carry no `traceparent`: one pass over the header names, compared as bytes, says so."""
        headers = scope["headers"]
        parent = None
        for name, _ in headers:
            if name == b"traceparent":
                parent = _client_context(headers)
                break
        if parent is None:
            trace_id = getrandbits(128) or _random_id(128)
            sampled = trace_id & TRACE_ID_LIMIT < self.bound
        else:
            trace_id = parent.trace_id
            sampled = parent.trace_flags.sampled
        trace: RequestTrace | UnsampledTrace
        if sampled:
            operation = COUNT_OPERATION if count else OPERATIONS[exchange.surface.name]
            trace = RequestTrace(self, trace_id, parent, operation)
            if self.records_content:
                exchange.send = ContentTap(exchange.send)
        else:
            trace = UnsampledTrace(trace_id, parent)
        exchange.record.trace_id = trace.trace_hex
        exchange.trace = trace
        return trace

    def close(self) -> None:
        self.processor.shutdown()


def _client_context(headers: list[tuple[bytes, bytes]]) -> SpanContext | None:
    """The client's span context from its `traceparent` (and `tracestate`), when it sent a valid one
    (the last of each)."""
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name == b"traceparent" or name == b"tracestate":
            carrier[name.decode()] = value.decode("latin-1")
    if "traceparent" not in carrier:
        return None
    context = get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return context if context is not INVALID_SPAN_CONTEXT and context.is_valid else None


class UnsampledTrace:
    """A request's trace that is not recorded: its id in the access log, and its context sent
    upstream, unsampled, so that the trace still joins up downstream (the same `traceparent` for
    every call: no span of ours stands between them)."""

    __slots__ = ("trace_hex", "traceparent", "tracestate")

    def __init__(self, trace_id: int, parent: SpanContext | None) -> None:
        self.trace_hex = trace_id.to_bytes(16).hex()
        self.traceparent: str | None = None
        state = parent.trace_state if parent is not None else None
        self.tracestate = state.to_header() if state else None

    def attempt(self, provider: Provider, target: Target, headers: dict[str, str]) -> None:
        """A call to `provider` is about to be sent with `headers`: the request's context goes in its
        `traceparent` (and `tracestate`), unsampled."""
        traceparent = self.traceparent
        if traceparent is None:
            span_id = getrandbits(64) or _random_id(64)
            traceparent = self.traceparent = f"00-{self.trace_hex}-{span_id.to_bytes(8).hex()}-00"
        headers["traceparent"] = traceparent
        if self.tracestate is not None:
            headers["tracestate"] = self.tracestate

    def responded(self, status: int) -> None:
        return None

    def failed(self, reason: str) -> None:
        return None

    def end(self, exchange: Exchange, status: int) -> None:
        return None


class RequestTrace(WrittenSpan):
    """One sampled request's trace: its own span's ids and, while a provider call is open, that
    call's; the spans of the calls that ended, written. When the request ends the trace is its
    written span (`WrittenSpan`), queued as it is."""

    __slots__ = (
        "_attempt_span", "_attempt_started", "_attempt_status", "_attempt_target", "_attempts", "_end_time", "_head",
        "_instrumentation_scope", "_name", "_parent", "_provider", "_resource", "_start_time", "_tracer", "_tracestate",
        "error", "operation", "span_count", "span_id", "trace_hex", "trace_id", "trace_state", "written",
    )

    def __init__(self, tracer: RequestTracer, trace_id: int, parent: SpanContext | None, operation: str) -> None:
        self._tracer = tracer
        self._resource = tracer.resource
        self._instrumentation_scope = tracer.scope
        self.trace_id = trace_id
        raw_id = trace_id.to_bytes(16, "big")
        self.trace_hex = raw_id.hex()
        self._parent = parent
        state = self.trace_state = parent.trace_state if parent is not None else None
        self.operation = operation
        self._provider: Provider | None = None
        self.span_id = getrandbits(64) or _random_id(64)
        self._start_time = time.time_ns()
        self._tracestate = state.to_header() if state else None
        self._head = trace_head(raw_id, self._tracestate or "")
        self._attempts = b""
        self.span_count = 1

    def attempt(self, provider: Provider, target: Target, headers: dict[str, str]) -> None:
        """A call to `provider` is about to be sent with `headers`: its span starts, and its
        context goes in the call's `traceparent` and `tracestate`."""
        if self._provider is not None:
            self._end_attempt(self._provider, None)
        span_id = self._attempt_span = getrandbits(64) or _random_id(64)
        self._provider, self._attempt_target = provider, target
        self._attempt_status: int | None = None
        self._attempt_started = time.time_ns()
        headers["traceparent"] = f"00-{self.trace_hex}-{span_id.to_bytes(8).hex()}-01"
        if self._tracestate is not None:
            headers["tracestate"] = self._tracestate

    def responded(self, status: int) -> None:
        """The provider's answer to the open call has this status."""
        self._attempt_status = status

    def failed(self, reason: str) -> None:
        """The open call failed for `reason` (the access log's: 503, 429, timeout, connect,
        provider_401, invalid_answer, ...): the route falls back or retries, or gives up. The
        span names it as `gatepost.fallback.reason` and `error.type`; an answered call has neither."""
        if self._provider is not None:
            self._end_attempt(self._provider, reason)

    def _end_attempt(self, provider: Provider, reason: str | None) -> None:
        ended = time.time_ns()
        target = self._attempt_target
        self._provider = None
        known = self._tracer.parts
        key = (self.operation, provider.id, provider.type, target.upstream_model, self._attempt_status, reason)
        parts = known.attempts.get(key)
        if parts is None:
            parts = _attempt_parts(self.operation, provider, target, self._attempt_status, reason)
            known.bounded().attempts[key] = parts
        self._attempts += span_field(self._head, self._attempt_span, self.span_id, self._attempt_started, ended, parts)
        self.span_count += 1

    def end(self, exchange: Exchange, status: int) -> None:
        """The request is over (a stream: its last event sent): its span, whole, and its attempts'."""
        record = exchange.record
        if self._provider is not None:
            self._end_attempt(self._provider, record.stream_error)
        tracer = self._tracer
        parent = self._parent
        key: ServerKey = (
            self.operation, status, record.revision, record.model, record.vk,
            record.key_prefix if record.vk is None else None, record.decision, record.provider,
            record.upstream_model, record.fallback_count, record.stream_error,
            parent is not None and parent.is_remote,
        )
        found = tracer.parts.server.get(key)
        if found is None:
            found = _server_parts(key, exchange.serving.table)
            tracer.parts.bounded().server[key] = found
        name, parts = found
        varying = b""
        usage = record.usage
        if usage is not None:
            varying = INPUT_TOKENS.field(usage["input_tokens"] or 0) + OUTPUT_TOKENS.field(usage["output_tokens"] or 0)
            if usage.get("cached_input_tokens"):
                varying += CACHED_TOKENS.field(usage["cached_input_tokens"])
        if record.cost_usd is not None:
            varying += COST.field(float(record.cost_usd))
        if tracer.records_content:
            varying += _content(exchange)
        ended = self._end_time = time.time_ns()
        self.written = span_field(self._head, self.span_id, parent.span_id if parent is not None else None,
                                  self._start_time, ended, parts, varying, self._attempts)
        self._name = name
        self.error = status >= 500 or record.stream_error is not None
        tracer.processor.on_end(self)


def _attempt_parts(operation: str, provider: Provider, target: Target, status: int | None, reason: str | None) -> bytes:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": PROVIDER_NAMES.get(provider.type, provider.type),
        "gen_ai.request.model": target.upstream_model,
        "gatepost.provider": provider.id,
    }
    if status is not None:
        attributes["http.response.status_code"] = status
    if reason is not None:
        attributes["gatepost.fallback.reason"] = attributes["error.type"] = reason
    return span_parts(f"{operation} {target.upstream_model}", SpanKind.CLIENT, attributes.items(), reason is not None,
                      False)


def _server_parts(key: ServerKey, table: LoadedTable) -> tuple[str, bytes]:
    """The request span's name and the parts its `key` decides (every attribute but its usage,
    cost and content)."""
    (operation, status, revision, model, vk, key_prefix, decision, provider_id, upstream_model, fallback_count,
     stream_error, remote_parent) = key
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "http.response.status_code": status,
        "gatepost.policy.revision": revision,
    }
    if model is not None:
        attributes["gen_ai.request.model"] = model
    if vk is not None:
        attributes["gatepost.key.id"] = vk
        entry = table.keys.get(vk)
        if entry is not None:
            if entry.team is not None:
                attributes["gatepost.team"] = entry.team
            if entry.principal is not None:
                attributes["gatepost.principal"] = entry.principal
    elif key_prefix is not None:
        attributes["gatepost.key.prefix"] = key_prefix
    if decision is not None:
        if decision == "allow":
            attributes["gatepost.decision"] = "allow"
        else:
            attributes["gatepost.decision"] = "refuse"
            attributes["gatepost.decision.reason"] = attributes["error.type"] = decision
    if provider_id is not None:
        provider = table.providers.get(provider_id)
        if provider is not None:
            attributes["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider.type, provider.type)
        attributes["gatepost.provider"] = provider_id
        if upstream_model is not None:
            attributes["gen_ai.response.model"] = upstream_model
    if fallback_count:
        attributes["gatepost.fallback_count"] = fallback_count
    failed = status >= 500 or stream_error is not None
    if stream_error is not None:
        attributes["error.type"] = stream_error
    elif status >= 500 and "error.type" not in attributes:
        attributes["error.type"] = str(status)
    name = f"{operation} {model}" if model is not None else operation
    return name, span_parts(name, SpanKind.SERVER, attributes.items(), failed, remote_parent)


def _content(exchange: Exchange) -> bytes:
    out = b""
    request = getattr(exchange, "request", None)
    if request is not None:
        messages = input_messages(request.payload)
        if messages is not None:
            out += text_field(INPUT_MESSAGES, messages)
    send = exchange.send
    if isinstance(send, ContentTap) and send.body:
        out += text_field(OUTPUT_MESSAGES, send.text())
    return out
