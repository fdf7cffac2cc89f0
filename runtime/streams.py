"""Relaying an upstream SSE stream event by event.

Bytes reach the client only at event boundaries, so when the upstream fails mid-event the
client's parser never sees half an event glued to the proxy's error event. A stream counts as
complete only when its last event is the protocol's terminal one (`[DONE]`, `response.completed`,
`message_stop`, a Gemini chunk with a `finishReason`); anything else was cut short.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from .exceptions import UpstreamConnectError
from .translators.sse import SseParser
from .upstream import UpstreamResponse

RESPONSES_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
MESSAGES_ENDS = frozenset({"message_stop", "error"})


def _event_end(data: bytes, start: int = 0) -> int:
    """The index just past the last blank line in data[start:] (0 when there is none)."""
    end = 0
    for mark in (b"\n\n", b"\n\r\n", b"\r\r"):
        at = data.rfind(mark, start)
        if at >= 0:
            end = max(end, at + len(mark))
    return end


class EventFramer:
    """Cuts upstream bytes into whole events; remembers the last one for `ended`."""

    def __init__(self, wire: str) -> None:
        self.wire = wire
        self._pending = b""
        self._last = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + chunk if self._pending else chunk
        end = _event_end(data, max(0, len(self._pending) - 3))
        if end == 0:
            self._pending = data
            return b""
        self._pending = data[end:]
        whole = data[:end]
        self._remember(whole)
        return whole

    def _remember(self, whole: bytes) -> None:
        body = whole.rstrip(b"\r\n")
        event = body[_event_end(body):]
        if b"data:" in event:
            self._last = event

    def close(self) -> tuple[bytes, bool]:
        """At the upstream's end: (bytes still to relay, whether the stream ended with its terminal
        event). An unfinished last event is relayed only when it is the terminal one."""
        tail, self._pending = self._pending, b""
        if tail.strip():
            if ends_stream(self.wire, tail):
                return tail.rstrip(b"\r\n") + b"\n\n", True
            return b"", False
        return b"", ends_stream(self.wire, self._last)


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
    """An upstream answer whose start is held back until its first whole event (a stream) or its
    whole body arrived: until then nothing has reached the client, so a failure can still fall
    back to the next target."""

    def __init__(self, response: UpstreamResponse, head: bytes, rest: AsyncIterator[bytes], framer: EventFramer | None) -> None:
        self.response = response
        self.head = head
        self.rest = rest
        self.framer = framer

    @classmethod
    async def hold(cls, response: UpstreamResponse, stream: bool, wire: str) -> HeldAnswer:
        """Raises UpstreamError when the answer fails or ends before its first event."""
        chunks = response.aiter_bytes().__aiter__()
        if not stream or not _is_sse(response):
            return cls(response, b"".join([chunk async for chunk in chunks]), _empty(), None)
        framer = EventFramer(wire)
        async for chunk in chunks:
            head = framer.feed(chunk)
            if head:
                return cls(response, head, chunks, framer)
        tail, ended = framer.close()
        if not tail:
            raise UpstreamConnectError("the stream ended before its first event")
        return cls(response, tail, _empty(), None if ended else framer)


def _is_sse(response: UpstreamResponse) -> bool:
    return any(k == b"content-type" and v.startswith(b"text/event-stream") for k, v in response.headers)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield
