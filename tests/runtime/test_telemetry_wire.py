"""The span writer's bytes decode to the same OTLP message as the exporter's own encoder gives for
the same spans (and the same JSON a collector would show), whatever the attribute types; so do a
request's spans written as it ends, from their shared parts and their own fields."""

from __future__ import annotations

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from runtime.telemetry.wire import (
    FloatAttribute,
    IntAttribute,
    SpanWriter,
    Unencodable,
    WrittenSpan,
    attribute_field,
    attribute_key,
    span_field,
    span_parts,
    spans_in,
    text_field,
    trace_head,
)

RESOURCE = Resource.create({"service.name": "gatepost-test"})
SCOPE = InstrumentationScope("gatepost")
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
STARTED, ENDED = 1_764_633_600_123_456_789, 1_764_633_600_223_456_789


def span(span_id: int, parent: SpanContext | None, kind: SpanKind, attributes: dict[str, object], status: Status,
         state: TraceState | None = None) -> ReadableSpan:
    return ReadableSpan(
        "chat gpt-4o", SpanContext(TRACE, span_id, False, SAMPLED, state), parent, RESOURCE, attributes,  # type: ignore[arg-type]
        kind=kind, status=status, start_time=STARTED, end_time=ENDED,
        instrumentation_scope=SCOPE,
    )


def spans() -> list[ReadableSpan]:
    client = SpanContext(TRACE, 0x00F067AA0BA902B7, True, SAMPLED, TraceState([("vendor", "opaque")]))
    server = span(0x1111, client, SpanKind.SERVER, {
        "gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 1234567, "gatepost.cost_usd": 0.000123,
        "http.response.status_code": 200, "negative": -5, "flag": True, "off": False, "empty": "",
        "text": "é" * 300,
    }, Status(StatusCode.UNSET), TraceState([("vendor", "opaque")]))
    own = SpanContext(TRACE, 0x1111, False, SAMPLED)
    failed = span(0x2222, own, SpanKind.CLIENT, {"error.type": "503"}, Status(StatusCode.ERROR))
    ok = span(0x3333, own, SpanKind.CLIENT, {}, Status(StatusCode.OK, None))
    return [server, failed, ok]


def decoded(data: bytes) -> dict[str, object]:
    message = ExportTraceServiceRequest()
    message.ParseFromString(data)
    return MessageToDict(message)


def test_the_writer_and_the_exporters_encoder_give_the_same_message() -> None:
    batch = spans()
    writer = SpanWriter()
    expected = decoded(encode_spans(batch).SerializeToString())
    assert decoded(writer.request(batch)) == expected
    assert decoded(writer.request(batch)) == expected, "remembered attributes write the same bytes"


def test_a_span_with_events_is_left_to_the_exporters_encoder() -> None:
    with_event = ReadableSpan("x", SpanContext(TRACE, 1, False, SAMPLED), None, RESOURCE, {},
                              events=[Event("e", {})], instrumentation_scope=SCOPE)
    with pytest.raises(Unencodable):
        SpanWriter().request([with_event])


@pytest.mark.parametrize("remote_parent", [True, False])
def test_a_written_request_span_and_its_attempts_are_the_encoders_message(remote_parent: bool) -> None:
    state = TraceState([("vendor", "opaque")]) if remote_parent else None
    client = SpanContext(TRACE, 0x00F067AA0BA902B7, True, SAMPLED, state) if remote_parent else None
    shared = {"gen_ai.operation.name": "chat", "http.response.status_code": 200, "gatepost.key.id": "vk-a",
              "gatepost.fallback_count": 1, "flag": True}
    varying = {"gen_ai.usage.input_tokens": 1234567, "gen_ai.usage.output_tokens": 3, "gatepost.cost_usd": 0.000123,
               "gen_ai.input.messages": "é" * 300}
    failed_attempt = {"gen_ai.provider.name": "openai", "http.response.status_code": 503, "error.type": "503"}
    answered_attempt = {"gen_ai.provider.name": "anthropic", "http.response.status_code": 200}
    own = SpanContext(TRACE, 0x1111, False, SAMPLED, state)
    expected = [
        span(0x1111, client, SpanKind.SERVER, {**shared, **varying}, Status(StatusCode.UNSET), state),
        span(0x2222, own, SpanKind.CLIENT, failed_attempt, Status(StatusCode.ERROR), state),
        span(0x3333, own, SpanKind.CLIENT, answered_attempt, Status(StatusCode.UNSET), state),
    ]
    head = trace_head(TRACE.to_bytes(16, "big"), "vendor=opaque" if state else "")
    attempts = b""
    for span_id, attributes, error in ((0x2222, failed_attempt, True), (0x3333, answered_attempt, False)):
        attempts += span_field(head, span_id, 0x1111, STARTED, ENDED,
                               span_parts("chat gpt-4o", SpanKind.CLIENT, attributes.items(), error, False))
    written = span_field(
        head, 0x1111, client.span_id if client else None, STARTED, ENDED,
        span_parts("chat gpt-4o", SpanKind.SERVER, shared.items(), False, remote_parent),
        IntAttribute("gen_ai.usage.input_tokens").field(1234567)
        + IntAttribute("gen_ai.usage.output_tokens").field(3)
        + FloatAttribute("gatepost.cost_usd").field(0.000123)
        + text_field(attribute_key("gen_ai.input.messages"), "é" * 300),
        attempts,
    )
    request = Written(own, client, written, 3)
    assert spans_in([request, expected[1]]) == 4
    assert decoded(SpanWriter().request([request])) == decoded(encode_spans(expected).SerializeToString())
    seen = expected[0]
    assert (request.name, request.context, request.parent, request.kind, request.status.status_code,
            request.start_time, request.end_time, request.resource, request.instrumentation_scope,
            dict(request.attributes or {}), request.events, request.links) == (
        seen.name, seen.context, seen.parent, seen.kind, seen.status.status_code, seen.start_time, seen.end_time,
        seen.resource, seen.instrumentation_scope, {}, (), ()), "the span's own fields, read as a ReadableSpan"


class Written(WrittenSpan):
    """A written request span with the fields a request's trace sets."""

    def __init__(self, context: SpanContext, parent: SpanContext | None, written: bytes, span_count: int) -> None:
        self.trace_id, self.span_id, self.trace_state = context.trace_id, context.span_id, context.trace_state
        self._name, self._parent, self._resource, self._instrumentation_scope = "chat gpt-4o", parent, RESOURCE, SCOPE
        self._start_time, self._end_time, self.error = STARTED, ENDED, False
        self.written, self.span_count = written, span_count


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**40, -5])
def test_an_integer_attribute_is_written_as_the_generic_writer_writes_it(value: int) -> None:
    assert IntAttribute("gen_ai.usage.input_tokens").field(value) == attribute_field("gen_ai.usage.input_tokens", value)
    assert FloatAttribute("gatepost.cost_usd").field(value / 7) == attribute_field("gatepost.cost_usd", value / 7)
