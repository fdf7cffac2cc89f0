"""A request's span, and a child span per upstream attempt, after OpenTelemetry's GenAI semantic
conventions (gen_ai.* attributes; a span named `{gen_ai.operation.name} {gen_ai.request.model}`).

The request span is the server side of the client's call (kind SERVER), continuing the client's
W3C `traceparent`/`tracestate` when it sent one; each call to a provider is a CLIENT child whose
context goes upstream in `traceparent` (and `tracestate`), so a provider that traces joins the
same trace. Usage tokens are on the request span only: a backend that sums them per trace counts
each request once, whatever its fallbacks. Beside the conventions' attributes each request span
carries the gateway's own, under `gatepost.`: the key's id (never its hash), team, principal,
the policy revision, the decision and its reason code, and the cost.

The sampler decides when a span starts; an unsampled request builds no attributes and no child
spans (its upstream calls carry its context, unsampled, so the trace still joins up downstream).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span as ApiSpan
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
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
SERVER_ERROR = Status(StatusCode.ERROR)
_PROPAGATOR = TraceContextTextMapPropagator()


class RequestTracer:
    """Starts request spans on one process's provider for one set of telemetry settings."""

    def __init__(self, provider: TracerProvider, settings: Telemetry) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("gatepost")
        self.records_content = settings.record_content

    def begin(self, exchange: Exchange, scope: Scope, count: bool) -> RequestTrace:
        """The request's span, started now (the sampler decides here), its trace id in the access log."""
        traceparent = tracestate = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = value
            elif name == b"tracestate":
                tracestate = value
        parent: Context | None = None
        if traceparent is not None:
            carrier = {"traceparent": traceparent.decode("latin-1")}
            if tracestate is not None:
                carrier["tracestate"] = tracestate.decode("latin-1")
            parent = _PROPAGATOR.extract(carrier)
        operation = COUNT_OPERATION if count else OPERATIONS[exchange.surface.name]
        span = self.tracer.start_span(operation, context=parent, kind=SpanKind.SERVER)
        trace = RequestTrace(self, span, operation)
        exchange.record.trace_id = format(span.get_span_context().trace_id, "032x")
        exchange.trace = trace
        if self.records_content and trace.recording:
            exchange.send = ContentTap(exchange.send)
        return trace

    def close(self) -> None:
        self.provider.shutdown()


class RequestTrace:
    """One request's span and its open attempt span, if any."""

    __slots__ = ("_attempt", "_attempt_status", "_context", "_tracer", "operation", "recording", "span")

    def __init__(self, tracer: RequestTracer, span: ApiSpan, operation: str) -> None:
        self._tracer = tracer
        self.span = span
        self.operation = operation
        self.recording = span.is_recording()
        self._context: Context | None = None
        self._attempt: ApiSpan | None = None
        self._attempt_status: int | None = None

    def attempt(self, provider: Provider, target: Target, headers: dict[str, str]) -> None:
        """A call to `provider` is about to be sent with `headers`: its span starts, and its
        context goes in the call's `traceparent` and `tracestate`."""
        self._end_attempt(None)
        if self.recording:
            if self._context is None:
                self._context = set_span_in_context(self.span)
            span = self._attempt = self._tracer.tracer.start_span(
                f"{self.operation} {target.upstream_model}", context=self._context, kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": self.operation,
                    "gen_ai.provider.name": PROVIDER_NAMES.get(provider.type, provider.type),
                    "gen_ai.request.model": target.upstream_model,
                    "gatepost.provider": provider.id,
                },
            )
            self._attempt_status = None
        else:
            span = self.span
        context = span.get_span_context()
        headers["traceparent"] = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        if context.trace_state:
            headers["tracestate"] = context.trace_state.to_header()

    def responded(self, status: int) -> None:
        """The provider's answer to the open attempt has this status."""
        self._attempt_status = status

    def failed(self, reason: str) -> None:
        """The open attempt failed for `reason` (the access log's: 5xx, 429, timeout, connect,
        provider_401, invalid_answer, ...): the route falls back or retries, or gives up."""
        self._end_attempt(reason)

    def _end_attempt(self, reason: str | None) -> None:
        span = self._attempt
        if span is None:
            return
        self._attempt = None
        attributes: dict[str, Any] = {"gatepost.attempt.outcome": reason or "answered"}
        if self._attempt_status is not None:
            attributes["http.response.status_code"] = self._attempt_status
        if reason is not None:
            attributes["error.type"] = reason
            span.set_status(SERVER_ERROR)
        span.set_attributes(attributes)
        span.end()

    def end(self, exchange: Exchange, status: int, path: str) -> None:
        """The request is over (a stream: its last event sent): its attributes, then its end."""
        self._end_attempt(exchange.record.stream_error)
        span = self.span
        if not self.recording:
            return
        record = exchange.record
        model = record.model
        decision = record.decision
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "http.request.method": "POST",
            "url.path": path,
            "http.response.status_code": status,
            "gatepost.request_id": record.request_id,
            "gatepost.policy.revision": record.revision,
        }
        if model is not None:
            attributes["gen_ai.request.model"] = model
            span.update_name(f"{self.operation} {model}")
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
            attributes["gatepost.decision"] = "allow" if decision == "allow" else "refuse"
            if decision != "allow":
                attributes["gatepost.decision.reason"] = decision
                attributes["error.type"] = decision
        if record.provider is not None:
            provider = exchange.serving.table.providers.get(record.provider)
            if provider is not None:
                attributes["gen_ai.provider.name"] = PROVIDER_NAMES.get(provider.type, provider.type)
            attributes["gatepost.provider"] = record.provider
            if record.upstream_model is not None:
                attributes["gen_ai.response.model"] = record.upstream_model
        if record.fallback_count is not None:
            attributes["gatepost.fallback_count"] = record.fallback_count
        usage = record.usage
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage["input_tokens"] or 0
            attributes["gen_ai.usage.output_tokens"] = usage["output_tokens"] or 0
            if usage.get("cached_input_tokens"):
                attributes["gen_ai.usage.cache_read.input_tokens"] = usage["cached_input_tokens"]
        if record.cost_usd is not None:
            attributes["gatepost.cost_usd"] = float(record.cost_usd)
        if record.cache is not None:
            attributes["gatepost.cache"] = record.cache
        if record.stream_error is not None:
            attributes["error.type"] = record.stream_error
        elif status >= 500 and "error.type" not in attributes:
            attributes["error.type"] = str(status)
        if self._tracer.records_content:
            _content(attributes, exchange)
        span.set_attributes(attributes)
        if status >= 500 or record.stream_error is not None:
            span.set_status(SERVER_ERROR)
        span.end()


def _content(attributes: dict[str, Any], exchange: Exchange) -> None:
    request = getattr(exchange, "request", None)
    if request is not None:
        messages = input_messages(request.payload)
        if messages is not None:
            attributes["gen_ai.input.messages"] = messages
    send = exchange.send
    if isinstance(send, ContentTap) and send.body:
        attributes["gen_ai.output.messages"] = send.text()
