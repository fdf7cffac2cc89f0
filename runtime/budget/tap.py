"""Reads usage out of an answer as it is relayed, without holding the stream back.

For SSE it scans complete `data:` lines for a usage object (the chat stream's final usage chunk,
the Responses stream's `response.completed`, Anthropic's `message_start` and `message_delta`,
Gemini's `usageMetadata`); for JSON it keeps the body (bounded) and reads it at the end.
"""

from __future__ import annotations

from typing import Any

import orjson

from .cost import Usage, merge, usage_from

MAX_JSON_BODY = 8 * 1024 * 1024


class UsageTap:
    def __init__(self, sse: bool) -> None:
        self.sse = sse
        self._pending = b""
        self._body: list[bytes] = []
        self._size = 0
        self._parsed: Any = None
        self.usage: Usage | None = None

    def feed(self, chunk: bytes, parsed: Any = None) -> None:
        """`parsed`: a whole JSON answer already parsed, so it is not parsed again (nor bounded)."""
        if not self.sse:
            if parsed is not None:
                self._parsed = parsed
                return
            self._size += len(chunk)
            if self._size <= MAX_JSON_BODY:
                self._body.append(chunk)
            return
        data = self._pending + chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            if line.startswith(b"data:") and (b'"usage"' in line or b'"usageMetadata"' in line):
                self._consider(line[5:].strip())

    def finish(self) -> Usage | None:
        if self.sse:
            if self._pending.startswith(b"data:") and (b'"usage"' in self._pending or b'"usageMetadata"' in self._pending):
                self._consider(self._pending[5:].strip())
        elif self._parsed is not None:
            self._take(self._parsed)
        elif self._body and self._size <= MAX_JSON_BODY:
            self._consider(b"".join(self._body))
        return self.usage

    def _consider(self, raw: bytes) -> None:
        try:
            payload: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        self._take(payload)

    def _take(self, payload: Any) -> None:
        found = usage_from(payload)
        if found is not None:
            merged = merge(self.usage, found)
            if merged.known:
                self.usage = merged
