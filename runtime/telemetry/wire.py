"""The gateway's spans as an OTLP `ExportTraceServiceRequest`, written straight to protobuf's wire
format.

The exporter's own encoder builds a protobuf object per span, attribute and value; for the
gateway's two spans per request that cost about as much as serving the request (bench/README.md,
"Traces"). These spans have the same shape every time (attributes of strings, integers, floats
and booleans; no events or links; one resource and scope per tracer), so this writer emits their
bytes directly and reuses the bytes of attributes it has written before (a policy revision, a
provider, a key id repeat from request to request). A batch with anything else in it is left to
the exporter's encoder. `tests/runtime/test_telemetry_wire.py` holds the two to the same message.

The gateway's own spans come already written (`WrittenSpan`): a request writes its span's and its
attempts' bytes as it ends, from parts it wrote once per route and outcome (`SpanParts`: the name,
kind and every attribute that repeats from request to request, the status), so per span only
the ids, the times and the few attributes that change with every request (tokens, cost) are
encoded, and the batch adds only the resource's and scope's bytes around them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationInfo, InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util.types import Attributes

KINDS = {SpanKind.INTERNAL: 1, SpanKind.SERVER: 2, SpanKind.CLIENT: 3, SpanKind.PRODUCER: 4, SpanKind.CONSUMER: 5}
HAS_IS_REMOTE, IS_REMOTE = 0x100, 0x200
MAX_REMEMBERED = 4096
MAX_REMEMBERED_TEXT = 256
_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_FIXED32 = struct.Struct("<I")
_TIMES = struct.Struct("<BQBQ")
_ID = struct.Struct(">BBQ")
_ID_AND_PARENT = struct.Struct(">BBQBBQ")
_ROOT_FIXED, _CHILD_FIXED = _ID.size + _TIMES.size, _ID_AND_PARENT.size + _TIMES.size
START_TIME, END_TIME = 0x39, 0x41
SAMPLED = TraceFlags(TraceFlags.SAMPLED)
ERROR = Status(StatusCode.ERROR)
UNSET = Status(StatusCode.UNSET)


class Unencodable(Exception):
    """A span this writer does not know how to write (the exporter's encoder does)."""


_SMALL = [bytes((i,)) for i in range(128)]


def _varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    if value < 16384:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


class SpanWriter:
    """Writes batches of spans; remembers the bytes of attributes and of resources and scopes."""

    def __init__(self) -> None:
        self._attributes: dict[tuple[str, type, Any], bytes] = {}
        self._headers: dict[tuple[int, int], tuple[Resource, InstrumentationScope | None, bytes, bytes]] = {}

    def request(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized ExportTraceServiceRequest of `spans` (Unencodable for a span of another shape)."""
        groups: dict[tuple[int, int], list[bytes]] = {}
        scope: InstrumentationScope | None
        for span in spans:
            if isinstance(span, WrittenSpan):
                resource, scope, written = span._resource, span._instrumentation_scope, span.written
            else:
                resource, scope, written = span.resource, span.instrumentation_scope, None
            key = (id(resource), id(scope))
            if key not in self._headers:
                self._remember_header(key, resource, scope)
            group = groups.get(key)
            if group is None:
                group = groups[key] = []
            group.append(_field(b"\x12", self._span(span)) if written is None else written)
        pieces: list[bytes] = []
        for key, encoded in groups.items():
            _, _, resource_bytes, scope_bytes = self._headers[key]
            scope_spans = len(scope_bytes) + sum(map(len, encoded))
            scope_spans_header = b"\x12" + _varint(scope_spans)
            pieces += (b"\x0a", _varint(len(resource_bytes) + len(scope_spans_header) + scope_spans), resource_bytes,
                       scope_spans_header, scope_bytes)
            pieces += encoded
        return b"".join(pieces)

    def _remember_header(self, key: tuple[int, int], resource: Resource, scope: InstrumentationScope | None) -> None:
        if resource.schema_url or (scope is not None and (scope.schema_url or scope.attributes)):
            raise Unencodable("schema urls and scope attributes are left to the exporter")
        resource_bytes = _field(b"\x0a", b"".join(
            _field(b"\x0a", _field(b"\x0a", k.encode()) + _field(b"\x12", _any_value(v)))
            for k, v in resource.attributes.items()
        ))
        scope_bytes = b""
        if scope is not None:
            named = _field(b"\x0a", scope.name.encode())
            if scope.version:
                named += _field(b"\x12", scope.version.encode())
            scope_bytes = _field(b"\x0a", named)
        if len(self._headers) >= MAX_REMEMBERED:
            self._headers.clear()
        self._headers[key] = (resource, scope, resource_bytes, scope_bytes)

    def _span(self, span: ReadableSpan) -> bytes:
        if span.events or span.links:
            raise Unencodable("events and links are left to the exporter")
        context = span.context
        if context is None:
            raise Unencodable("a span without a context")
        parent = span.parent
        out = bytearray(b"\x0a\x10")
        out += context.trace_id.to_bytes(16, "big")
        out += b"\x12\x08"
        out += context.span_id.to_bytes(8, "big")
        if context.trace_state:
            out += _field(b"\x1a", context.trace_state.to_header().encode())
        if parent is not None:
            out += b"\x22\x08"
            out += parent.span_id.to_bytes(8, "big")
        out += _field(b"\x2a", span.name.encode())
        out += b"\x30"
        out += _varint(KINDS[span.kind])
        out += b"\x39"
        out += _FIXED64.pack(span.start_time or 0)
        out += b"\x41"
        out += _FIXED64.pack(span.end_time or 0)
        attribute = self._attribute
        for name, value in (span.attributes or {}).items():
            out += attribute(name, value)
        status = span.status
        if status is not None:
            out += _STATUS[status.status_code.value] if not status.description else _status(status.status_code.value,
                                                                                           status.description)
        out += _REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT
        return bytes(out)

    def _attribute(self, name: str, value: Any) -> bytes:
        """A span's attribute field (a KeyValue), its bytes remembered for values that repeat."""
        remembered = (name, type(value), value)
        found = self._attributes.get(remembered)
        if found is not None:
            return found
        encoded = attribute_field(name, value)
        if type(value) is not float and (type(value) is not str or len(value) <= MAX_REMEMBERED_TEXT):
            if len(self._attributes) >= MAX_REMEMBERED:
                self._attributes.clear()
            self._attributes[remembered] = encoded
        return encoded


def _status(code: int, description: str | None) -> bytes:
    body = _field(b"\x12", description.encode()) if description else b""
    if code:
        body += b"\x18" + _varint(code)
    return _field(b"\x7a", body)


_STATUS = {code: _status(code, None) for code in (0, 1, 2)}
_LOCAL_PARENT = b"\x85\x01" + _FIXED32.pack(HAS_IS_REMOTE)
_REMOTE_PARENT = b"\x85\x01" + _FIXED32.pack(HAS_IS_REMOTE | IS_REMOTE)


def _any_value(value: Any) -> bytes:
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    raise Unencodable(f"an attribute of type {type(value).__name__}")


class WrittenSpan(ReadableSpan):
    """A request's spans as the batch processor queues them, their OTLP bytes written when it
    ended: `written` holds the request span's `Span` message and those of its upstream attempts
    (`span_count` in all), each as a field of `ScopeSpans`, which is what `SpanWriter` sends.

    The `ReadableSpan` is the request span's own, and it is the request's trace itself
    (`spans.RequestTrace`): the trace sets the span's fields as the request goes (its ids, parent,
    resource, scope and start when it begins; its name, end, outcome and bytes when it ends) and
    is queued as it is, so a request makes no other object for its span. `ReadableSpan.__init__`
    is not called for it; what never varies is set here. The span's context and status are made
    when read: the batch processor and `SpanWriter` read neither, and its attributes are in
    `written` only."""

    _attributes: Attributes = None
    _events: Sequence[Event] = ()
    _links: Sequence[Link] = ()
    _instrumentation_info: InstrumentationInfo | None = None
    _kind = SpanKind.SERVER
    _resource: Resource
    _instrumentation_scope: InstrumentationScope
    _start_time: int
    _end_time: int
    trace_id: int
    span_id: int
    trace_state: TraceState | None
    error: bool
    written: bytes
    span_count: int

    @property
    def context(self) -> SpanContext:
        return SpanContext(self.trace_id, self.span_id, False, SAMPLED, self.trace_state)

    def get_span_context(self) -> SpanContext:
        return self.context

    @property
    def status(self) -> Status:
        return ERROR if self.error else UNSET


def spans_in(batch: Sequence[ReadableSpan]) -> int:
    """The spans a batch holds: a written span counts its attempts too."""
    return sum(span.span_count if isinstance(span, WrittenSpan) else 1 for span in batch)


def span_field(head: bytes, span_id: int, parent_id: int | None, started: int, ended: int, parts: bytes,
               varying: bytes = b"", after: bytes = b"") -> bytes:
    """A `Span` as a field of `ScopeSpans`: the `head` of its trace (see `trace_head`), its id, its
    parent's id (none: a root span), times, the `parts` it shares with spans of the same route and
    outcome, and its `varying` attributes; then `after` (the fields of the spans written after it).
    Its length is summed from its pieces', so the bytes are joined once."""
    if parent_id is None:
        ids, size = _ID.pack(0x12, 8, span_id), _ROOT_FIXED
    else:
        ids, size = _ID_AND_PARENT.pack(0x12, 8, span_id, 0x22, 8, parent_id), _CHILD_FIXED
    return b"".join((b"\x12", _varint(size + len(head) + len(parts) + len(varying)), head, ids,
                     _TIMES.pack(START_TIME, started, END_TIME, ended), parts, varying, after))


def trace_head(trace_id: bytes, trace_state: str) -> bytes:
    """The fields every span of a trace starts with: its id (16 bytes), and its `trace_state`
    header when it has one."""
    head = b"\x0a\x10" + trace_id
    return head + _field(b"\x1a", trace_state.encode()) if trace_state else head


def span_parts(name: str, kind: SpanKind, attributes: Iterable[tuple[str, Any]], error: bool, remote_parent: bool) -> bytes:
    """What a span shares with the spans of the same route and outcome: its name, kind, those
    attributes, its status (error or unset) and its flags."""
    out = _field(b"\x2a", name.encode()) + b"\x30" + _varint(KINDS[kind])
    out += b"".join(attribute_field(k, v) for k, v in attributes)
    return out + _STATUS[2 if error else 0] + (_REMOTE_PARENT if remote_parent else _LOCAL_PARENT)


def attribute_field(name: str, value: Any) -> bytes:
    """A span's attribute (a KeyValue field of `Span`)."""
    return _field(b"\x4a", attribute_key(name) + _field(b"\x12", _any_value(value)))


def attribute_key(name: str) -> bytes:
    """The written key of an attribute (as `IntAttribute`, `FloatAttribute` and `text_field` write it)."""
    return _field(b"\x0a", name.encode())


class IntAttribute:
    """An integer attribute of the spans (a KeyValue field of `Span`), its key and framing written
    once: per value only its varint is."""

    __slots__ = ("_heads",)

    def __init__(self, name: str) -> None:
        key = attribute_key(name)
        self._heads = (b"", *(b"\x4a" + _varint(len(key) + 3 + size) + key + b"\x12" + _SMALL[1 + size] + b"\x18"
                              for size in range(1, 11)))

    def field(self, value: int) -> bytes:
        encoded = _SMALL[value] if 0 <= value < 128 else _varint(value & 0xFFFFFFFFFFFFFFFF)
        return self._heads[len(encoded)] + encoded


class FloatAttribute:
    """A float attribute of the spans, its key and framing written once."""

    __slots__ = ("_head",)

    def __init__(self, name: str) -> None:
        key = attribute_key(name)
        self._head = b"\x4a" + _varint(len(key) + 11) + key + b"\x12\x09\x21"

    def field(self, value: float) -> bytes:
        return self._head + _DOUBLE.pack(value)


def text_field(key: bytes, value: str) -> bytes:
    return _field(b"\x4a", key + _field(b"\x12", _field(b"\x0a", value.encode())))
