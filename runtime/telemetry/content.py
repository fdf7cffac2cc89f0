"""The prompt and the answer as a span records them, when `record_content` opts in.

They are recorded in the shape of the client's API, as JSON text: the request's messages (Chat
Completions `messages`, Responses `input` and `instructions`, Anthropic `messages` and `system`,
Gemini `contents` and `systemInstruction`) and the answer's bytes as the client received them (a
stream: its events), each cut at `MAX_CONTENT_BYTES`.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..proxy.asgi import Message, WatchedSend

MAX_CONTENT_BYTES = 64 * 1024
INPUT_FIELDS = ("system", "instructions", "systemInstruction", "messages", "input", "contents")


def input_messages(payload: dict[str, Any]) -> str | None:
    """The request's instructions and messages, as JSON text; None when it has neither."""
    found = {name: payload[name] for name in INPUT_FIELDS if name in payload}
    if not found:
        return None
    return _cut(orjson.dumps(found))


class ContentTap(WatchedSend):
    """The request's `send`, keeping the first `MAX_CONTENT_BYTES` of the answer's body."""

    __slots__ = ("body",)

    def __init__(self, watched: WatchedSend) -> None:
        super().__init__(watched, watched.request_id)
        self.body = bytearray()

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
        elif kind == "http.response.body":
            room = MAX_CONTENT_BYTES - len(self.body)
            if room > 0:
                self.body += message.get("body", b"")[:room]
            if not message.get("more_body", False):
                self.finished = True
        await self._send(message)

    def text(self) -> str:
        return _cut(bytes(self.body))


def _cut(raw: bytes) -> str:
    return raw[:MAX_CONTENT_BYTES].decode("utf-8", "replace")
