"""A request's span, and a child span per upstream attempt, after OpenTelemetry's GenAI semantic
conventions (gen_ai.* attributes; a span named `{gen_ai.operation.name} {gen_ai.request.model}`).

The request span is the server side of the client's call (kind SERVER), continuing the client's
W3C `traceparent`/`tracestate` when it sent one; each call to a provider is a CLIENT child whose
context goes upstream in `traceparent` (and `tracestate`), so a provider that traces joins the
same trace. Usage tokens are on the request span only: a backend that sums them per trace counts
each request once, whatever its fallbacks. Beside the conventions' attributes each request span
carries the gateway's own, under `gatepost.`: the key's id (never its hash), team, principal,
the policy revision, the decision and its reason code, and the cost.

A span is written once, whole, when it ends: the SDK's `ReadableSpan` (what its exporters read)
built from the attributes gathered in one dict, and handed to the batch processor. The SDK's
general-purpose `Span` (a lock per span and per attribute collection, each attribute validated
as it is set) costs several times the rest of the request here; the sampling decision is the
SDK's ratio sampler's (its bound over the trace id's low 64 bits), taken before any attribute is
built, and parent-based: a client's sampled flag decides for it. An unsampled request builds no
attributes and no spans (its upstream calls carry its context, unsampled, so the trace still
joins up downstream).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    get_current_span,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..table import Provider, Target, Telemetry
from .content import ContentTap, input_messages

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
ERROR = Status(StatusCode.ERROR)
UNSET = Status(StatusCode.UNSET)
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
TRACE_ID_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
_PROPAGATOR = TraceContextTextMapPropagator()


class RequestTracer:
    """Starts request traces for one process and one set of telemetry settings."""

    def __init__(self, processor: SpanProcessor, resource: Resource, settings: Telemetry) -> None:
        self.processor = processor
        self.resource = resource
        self.scope = InstrumentationScope("gatepost")
        self.ids = RandomIdGenerator()
        self.bound = TraceIdRatioBased(settings.sampling_ratio).bound
        self.records_content = settings.record_content

    def begin(self, exchange: Exchange, scope: Scope, count: bool) -> RequestTrace:
        """The request's trace, sampled or not (decided now), its trace id in the access log."""
        parent = _client_context(scope["headers"])
        if parent is None:
            trace_id = self.ids.generate_trace_id()
            sampled = trace_id & TRACE_ID_LIMIT < self.bound
        else:
            trace_id = parent.trace_id
            sampled = parent.trace_flags.sampled
        operation = COUNT_OPERATION if count else OPERATIONS[exchange.surface.name]
        trace = RequestTrace(self, trace_id, self.ids.generate_span_id(), parent, sampled, operation)
        exchange.record.trace_id = format(trace_id, "032x")
        exchange.trace = trace
        if sampled and self.records_content:
            exchange.send = ContentTap(exchange.send)
        return trace

    def close(self) -> None:
        self.processor.shutdown()


def _client_context(headers: list[tuple[bytes, bytes]]) -> SpanContext | None:
    """The client's span context from its `traceparent` (and `tracestate`), when it sent a valid one."""
    traceparent = tracestate = None
    for name, value in headers:
        if name == b"traceparent":
            traceparent = value
        elif name == b"tracestate":
            tracestate = value
    if traceparent is None:
        return None
    carrier = {"traceparent": traceparent.decode("latin-1")}
    if tracestate is not None:
        carrier["tracestate"] = tracestate.decode("latin-1")
    context = get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
    return context if context is not INVALID_SPAN_CONTEXT and context.is_valid else None


class RequestTrace:
    """One request's trace: its own span's ids and, while a provider call is open, that call's."""

    __slots__ = (
        "_attempt", "_parent", "_started", "_tracer", "operation", "sampled", "span_id", "trace_id", "trace_state",
    )

    def __init__(
        self, tracer: RequestTracer, trace_id: int, span_id: int, parent: SpanContext | None, sampled: bool,
        operation: str,
    ) -> None:
        self._tracer = tracer
        self.trace_id = trace_id
        self.span_id = span_id
        self._parent = parent
        self.trace_state: TraceState | None = parent.trace_state if parent is not None else None
        self.sampled = sampled
        self.operation = operation
        self._started = time.time_ns()
        self._attempt: _Attempt | None = None

    def attempt(self, provider: Provider, target: Target, headers: dict[str, str]) -> None:
        """A call to `provider` is about to be sent with `headers`: its span starts, and its
        context goes in the call's `traceparent` and `tracestate`."""
        self._end_attempt(None)
        if self.sampled:
            span_id = self._tracer.ids.generate_span_id()
            self._attempt = _Attempt(provider, target, span_id)
            headers["traceparent"] = f"00-{self.trace_id:032x}-{span_id:016x}-01"
        else:
            headers["traceparent"] = f"00-{self.trace_id:032x}-{self.span_id:016x}-00"
        if self.trace_state:
            headers["tracestate"] = self.trace_state.to_header()

    def responded(self, status: int) -> None:
        """The provider's answer to the open call has this status."""
        if self._attempt is not None:
            self._attempt.status = status

    def failed(self, reason: str) -> None:
        """The open call failed for `reason` (the access log's: 503, 429, timeout, connect,
        provider_401, invalid_answer, ...): the route falls back or retries, or gives up. The
        span names it as `gatepost.fallback.reason` and `error.type`; an answered call has neither."""
        self._end_attempt(reason)

    def _end_attempt(self, reason: str | None) -> None:
        attempt = self._attempt
        if attempt is None:
            return
        self._attempt = None
        provider, target = attempt.provider, attempt.target
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.provider.name": PROVIDER_NAMES.get(provider.type, provider.type),
            "gen_ai.request.model": target.upstream_model,
            "gatepost.provider": provider.id,
        }
        if attempt.status is not None:
            attributes["http.response.status_code"] = attempt.status
        if reason is not None:
            attributes["gatepost.fallback.reason"] = attributes["error.type"] = reason
        self._emit(f"{self.operation} {target.upstream_model}", attempt.span_id, self._own_context(), SpanKind.CLIENT,
                   attributes, ERROR if reason is not None else UNSET, attempt.started)

    def _own_context(self) -> SpanContext:
        return SpanContext(self.trace_id, self.span_id, False, SAMPLED, self.trace_state)

    def _emit(
        self, name: str, span_id: int, parent: SpanContext | None, kind: SpanKind, attributes: dict[str, Any],
        status: Status, started: int,
    ) -> None:
        tracer = self._tracer
        context = SpanContext(self.trace_id, span_id, False, SAMPLED, self.trace_state)
        tracer.processor.on_end(ReadableSpan(
            name, context, parent, tracer.resource, attributes, kind=kind, status=status, start_time=started,
            end_time=time.time_ns(), instrumentation_scope=tracer.scope,
        ))

    def end(self, exchange: Exchange, status: int) -> None:
        """The request is over (a stream: its last event sent): its span, whole."""
        if not self.sampled:
            return
        record = exchange.record
        self._end_attempt(record.stream_error)
        model = record.model
        decision = record.decision
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "http.response.status_code": status,
            "gatepost.policy.revision": record.revision,
        }
        if model is not None:
            attributes["gen_ai.request.model"] = model
        if record.vk is not None:
            attributes["gatepost.key.id"] = record.vk
            key = exchange.serving.table.keys.get(record.vk)
            if key is not None:
                if key.team is not None:
                    attributes["gatepost.team"] = key.team
                if key.principal is not None:
                    attributes["gatepost.principal"] = key.principal
        elif record.key_prefix is not None:
            attributes["gatepost.key.prefix"] = record.key_prefix
        if decision is not None:
            if decision == "allow":
                attributes["gatepost.decision"] = "allow"
            else:
                attributes["gatepost.decision"] = "refuse"
                attributes["gatepost.decision.reason"] = attributes["error.type"] = decision
        if record.provider is not None:
            provider = exchange.serving.table.providers.get(record.provider)
            if provider is not None:
                attributes["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider.type, provider.type)
            attributes["gatepost.provider"] = record.provider
            if record.upstream_model is not None:
                attributes["gen_ai.response.model"] = record.upstream_model
        if record.fallback_count:
            attributes["gatepost.fallback_count"] = record.fallback_count
        usage = record.usage
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage["input_tokens"] or 0
            attributes["gen_ai.usage.output_tokens"] = usage["output_tokens"] or 0
            if usage.get("cached_input_tokens"):
                attributes["gen_ai.usage.cache_read.input_tokens"] = usage["cached_input_tokens"]
        if record.cost_usd is not None:
            attributes["gatepost.cost_usd"] = float(record.cost_usd)
        failed = status >= 500 or record.stream_error is not None
        if record.stream_error is not None:
            attributes["error.type"] = record.stream_error
        elif status >= 500 and "error.type" not in attributes:
            attributes["error.type"] = str(status)
        if self._tracer.records_content:
            _content(attributes, exchange)
        name = f"{self.operation} {model}" if model is not None else self.operation
        self._emit(name, self.span_id, self._parent, SpanKind.SERVER, attributes, ERROR if failed else UNSET,
                   self._started)


class _Attempt:
    __slots__ = ("provider", "span_id", "started", "status", "target")

    def __init__(self, provider: Provider, target: Target, span_id: int) -> None:
        self.provider = provider
        self.target = target
        self.span_id = span_id
        self.started = time.time_ns()
        self.status: int | None = None


def _content(attributes: dict[str, Any], exchange: Exchange) -> None:
    request = getattr(exchange, "request", None)
    if request is not None:
        messages = input_messages(request.payload)
        if messages is not None:
            attributes["gen_ai.input.messages"] = messages
    send = exchange.send
    if isinstance(send, ContentTap) and send.body:
        attributes["gen_ai.output.messages"] = send.text()
