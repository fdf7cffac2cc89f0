"""Relaying an upstream SSE stream event by event.

Bytes reach the client only at event boundaries, so when the upstream fails mid-event the
client's parser never sees half an event glued to the proxy's error event. A stream counts as
complete only when its last event is the protocol's terminal one (`[DONE]`, `response.completed`,
`message_stop`, a Gemini chunk with a `finishReason`); anything else was cut short. Once that
event has arrived the stream is over, whatever the upstream does with its connection afterwards.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import orjson

from .exceptions import AnswerTooLarge, NotItsProtocol, UpstreamConnectError
from .table import Gateway
from .translators.sse import SseParser
from .upstream import UpstreamResponse

RESPONSES_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
MESSAGES_ENDS = frozenset({"message_stop", "error"})
_ERROR_MARKS = (b"event: error", b'"type":"error"', b'"type": "error"')
FINAL_MARKS = {
    "chat": (b"[DONE]",),
    "responses": (b"response.completed", b"response.incomplete", b"response.failed", *_ERROR_MARKS),
    "messages": (b"message_stop", *_ERROR_MARKS),
    "gemini": (b"finishReason", b'"error"'),
}
"""Bytes one of which a stream's final event must hold: a cheap test before the event is parsed
(`"error"` alone would match every Responses event that carries a response, `"error": null`)."""
NAMED_ENDS = {
    "responses": frozenset({b"response.completed", b"response.incomplete", b"response.failed", b"error"}),
    "messages": frozenset({b"message_stop", b"error"}),
}
DONE_EVENTS = frozenset({b"data: [DONE]", b"data:[DONE]"})
DEFAULT_MAX_EVENT_BYTES = 16 * 1024 * 1024
PIECES_FROM = 64 * 1024
_BOUNDARY = re.compile(rb"\n\r?\n|\r\r")


def _event_end(data: bytes, start: int = 0) -> int:
    """The index just past the last blank line in data[start:] (0 when there is none)."""
    end = 0
    for mark in (b"\n\n", b"\n\r\n", b"\r\r"):
        at = data.rfind(mark, start)
        if at >= 0:
            end = max(end, at + len(mark))
    return end


class EventFramer:
    """Cuts upstream bytes into whole events; remembers the last one, and whether it ended the
    stream (`ended`). A partial event is kept as one bytes value while small, as it was; past
    PIECES_FROM it is gathered in pieces (joined once, when its end arrives, never per chunk), and
    past `max_event_bytes` it raises AnswerTooLarge."""

    def __init__(self, wire: str, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.wire = wire
        self.max_event_bytes = max_event_bytes
        self.ended = False
        self._marks = FINAL_MARKS.get(wire, ())
        self._named_ends = NAMED_ENDS.get(wire)
        self._pending = b""
        self._pieces: list[bytes] = []
        self._held = 0
        self._last = b""

    def feed(self, chunk: bytes) -> bytes:
        if self._pieces:
            return self._feed_piece(chunk)
        pending = self._pending
        data = pending + chunk if pending else chunk
        end = _event_end(data, max(0, len(pending) - 3))
        if end == 0:
            if len(data) < PIECES_FROM:
                self._pending = data
            else:
                self._keep(data)
            return b""
        if end > self.max_event_bytes:
            self._check_sizes(data[:end])
        rest = data[end:]
        if len(rest) < PIECES_FROM:
            self._pending = rest
        else:
            self._keep(rest, check=False)
        whole = data[:end]
        self._remember(whole)
        return whole

    def _feed_piece(self, chunk: bytes) -> bytes:
        """A large partial event: the chunk is searched for its end (and the seam), not the event."""
        held = self._held
        if held > self.max_event_bytes:
            raise self._too_large()
        if not _event_end(chunk) and not _event_end(self._pieces[-1][-3:] + chunk[:3]):
            self._pieces.append(chunk)
            self._held += len(chunk)
            if self._held > self.max_event_bytes:
                raise self._too_large()
            return b""
        data = b"".join((*self._pieces, chunk))
        self._pieces, self._held = [], 0
        return self._cut(data, _event_end(data, max(0, held - 3)))

    def _cut(self, data: bytes, end: int) -> bytes:
        """The whole events of `data` (up to `end`), keeping the rest for the next feed."""
        if end > self.max_event_bytes:
            self._check_sizes(data[:end])
        self._keep(data[end:], check=False)
        whole = data[:end]
        self._remember(whole)
        return whole

    def _keep(self, partial: bytes, check: bool = True) -> None:
        """`check=False` for the start of an event that came with whole ones: they are relayed
        first, and the next feed (or the close) raises when it is already too large."""
        if len(partial) < PIECES_FROM:
            self._pending = partial
            return
        self._pending = b""
        self._pieces = [partial]
        self._held = len(partial)
        if check and self._held > self.max_event_bytes:
            raise self._too_large()

    def _check_sizes(self, whole: bytes) -> None:
        if max(len(event) for event in _BOUNDARY.split(whole)) > self.max_event_bytes:
            raise self._too_large()

    def _too_large(self) -> AnswerTooLarge:
        return AnswerTooLarge(f"sent an event larger than gateway.max_event_bytes ({self.max_event_bytes:,} bytes)")

    @property
    def last(self) -> bytes:
        """The last whole event with data that went through."""
        return self._last

    def _remember(self, whole: bytes) -> None:
        body = whole.rstrip(b"\r\n")
        event = body[_event_end(body):]
        if b"data:" in event:
            self._last = event
            if self._named_ends is not None and event.startswith(b"event:"):
                self.ended = event[6:event.find(b"\n")].strip() in self._named_ends
            elif event in DONE_EVENTS:
                self.ended = self.wire == "chat"
            else:
                self.ended = self._final(event)

    def _final(self, event: bytes) -> bool:
        """`ends_stream`, cheaply: an event without a name (see `_remember` for those with one, and
        `[DONE]`) is parsed only when it holds one of its protocol's final marks."""
        for mark in self._marks:
            if mark in event:
                return ends_stream(self.wire, event)
        return False

    def close(self) -> tuple[bytes, bool]:
        """At the upstream's end: (bytes still to relay, whether the stream ended with its terminal
        event). An unfinished last event is relayed only when it is the terminal one."""
        if self._held > self.max_event_bytes:
            raise self._too_large()
        tail = b"".join(self._pieces) if self._pieces else self._pending
        self._pending, self._pieces, self._held = b"", [], 0
        if tail.strip():
            if ends_stream(self.wire, tail):
                return tail.rstrip(b"\r\n") + b"\n\n", True
            return b"", False
        return b"", self.ended or ends_stream(self.wire, self._last)


def ends_stream(wire: str, event: bytes) -> bool:
    """Whether `event` (one SSE event's bytes) is the last event of a complete `wire` stream."""
    parsed = SseParser().feed(event.rstrip(b"\r\n") + b"\n\n")
    if not parsed:
        return False
    name, data = parsed[-1].event, parsed[-1].data
    if wire == "chat":
        return data.strip() == "[DONE]"
    if wire in ("responses", "messages"):
        ends = RESPONSES_ENDS if wire == "responses" else MESSAGES_ENDS
        if name is not None:
            return name in ends
        kind = _json(data).get("type")
        return isinstance(kind, str) and kind in ends
    if wire == "gemini":
        chunk = _json(data)
        candidates = chunk.get("candidates")
        finished = isinstance(candidates, list) and any(isinstance(c, dict) and c.get("finishReason") for c in candidates)
        return finished or "error" in chunk
    return True


def _json(data: str) -> dict[str, object]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class HeldAnswer:
    """An upstream answer whose start is held back until its first event with data (a stream) or
    its whole body arrived: until then nothing has reached the client, so a failure can still fall
    back to the next target. A 2xx must be its protocol's: a whole answer a JSON object (`parsed`),
    a stream an event stream whose first event carries a JSON object."""

    def __init__(
        self, response: UpstreamResponse, head: bytes, rest: AsyncIterator[bytes], framer: EventFramer | None,
        parsed: object = None,
    ) -> None:
        self.response = response
        self.head = head
        self.rest = rest
        self.framer = framer
        self.parsed = parsed

    @classmethod
    async def hold(cls, response: UpstreamResponse, stream: bool, wire: str, limits: Gateway) -> HeldAnswer:
        """Raises UpstreamError when the answer fails, ends before its first event, is not its
        protocol's (a 2xx) or is larger than the gateway allows."""
        chunks = response.aiter_bytes().__aiter__()
        ok = 200 <= response.status < 300
        if not (stream and ok):
            body = await _whole(chunks, limits.max_answer_bytes)
            return cls(response, body, _empty(), None, _protocol_json(response, body) if ok else None)
        if not _is_sse(response):
            raise NotItsProtocol(f"answered {response.status} with {_kind(response, b'')}, not an event stream")
        framer = EventFramer(wire, limits.max_event_bytes)
        head = b""
        async for chunk in chunks:
            events = framer.feed(chunk)
            if events:
                head += events
                if _first_event_checked(head, response):
                    return cls(response, head, chunks, framer)
        tail, ended = framer.close()
        head += tail
        if not head.strip():
            raise UpstreamConnectError("the stream ended before its first event")
        if not _first_event_checked(head, response):
            raise NotItsProtocol(f"answered {response.status} with an event stream that has no event with data")
        return cls(response, head, _empty(), None if ended else framer)


async def _whole(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(f"sent an answer larger than gateway.max_answer_bytes ({limit:,} bytes)")
        parts.append(chunk)
    return b"".join(parts)


def _protocol_json(response: UpstreamResponse, body: bytes) -> object:
    """The answer's JSON object; Gemini's stream without `alt=sse` is a JSON array of them."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise NotItsProtocol(f"answered {response.status} with {_kind(response, body)}, not JSON") from None
    if not isinstance(parsed, dict | list):
        raise NotItsProtocol(f"answered {response.status} with JSON that is not an object")
    return parsed


def _first_event_checked(head: bytes, response: UpstreamResponse) -> bool:
    """Whether `head` (whole events) holds an event with data (False: read on); raises NotItsProtocol
    when the first such event's data is neither a JSON object nor `[DONE]`. The first `data:` line
    is read directly; only data spanning several lines goes through the SSE parser."""
    at = head.find(b"data:")
    while at > 0 and head[at - 1] not in b"\r\n":
        at = head.find(b"data:", at + 1)
    if at < 0:
        return False
    line_end = head.find(b"\n", at)
    data = head[at + 5:line_end if line_end >= 0 else len(head)].strip()
    parsed = _json_or_none(data)
    if parsed is None:
        data = next((e.data for e in SseParser().feed(head)), "").strip().encode()
        parsed = _json_or_none(data)
    if not isinstance(parsed, dict) and data != b"[DONE]":
        raise NotItsProtocol(f"answered {response.status} with an event stream whose first event is not a JSON object")
    return True


def _json_or_none(data: bytes) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def _kind(response: UpstreamResponse, body: bytes) -> str:
    """What an answer is, in words, from its content type (and its first byte)."""
    content_type = next((v for k, v in response.headers if k == b"content-type"), b"").split(b";")[0].strip()
    if content_type == b"text/html" or body.lstrip()[:1] == b"<":
        return "an HTML page"
    if not body and not content_type:
        return "an empty body"
    return f"a body of type {content_type.decode('latin-1') or 'unknown'}"


def _is_sse(response: UpstreamResponse) -> bool:
    return any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in response.headers)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield
