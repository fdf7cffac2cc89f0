"""Server-sent events: an incremental parser and a frame encoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str | None
    data: str


class SseParser:
    """Feeds bytes as they arrive; yields complete events (split across chunks, CRLF, multi-line data)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk.decode("utf-8", errors="replace")
        events: list[SseEvent] = []
        while True:
            newline = self._buffer.find("\n")
            if newline < 0:
                return events
            line = self._buffer[:newline].rstrip("\r")
            self._buffer = self._buffer[newline + 1 :]
            if not line:
                if self._data:
                    events.append(SseEvent(self._event, "\n".join(self._data)))
                self._event, self._data = None, []
            elif line.startswith(":"):
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    self._event = value
                elif name == "data":
                    self._data.append(value)

    def finish(self) -> list[SseEvent]:
        events = self.feed(b"\n\n") if self._buffer.strip() or self._data else []
        return events


def frame(event: str | None, data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    return (f"event: {event}\n" if event else "").encode() + f"data: {text}\n\n".encode()


def event_object(event: SseEvent) -> dict[str, Any] | None:
    """The event's data as a JSON object; None when it is not JSON (a keep-alive, a comment). Raises
    TypeError for JSON of another shape: the stream is not its protocol's, and ends in an error."""
    try:
        data = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        raise TypeError(f"a stream event's data is {type(data).__name__}, not a JSON object")
    return data
