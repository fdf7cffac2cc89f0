"""The translation hub: one model of a conversation (`model`) and, per protocol (Chat Completions,
Responses, Anthropic Messages, Gemini generateContent), one reader and one writer of its requests,
answers and streams. No I/O; the proxy's `runtime/translation.py` decides when a hop needs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import chat, gemini, messages, responses
from .model import Answer, Event, Request
from .sse import SseEvent

Payload = dict[str, Any]


class StreamReader(Protocol):
    """A protocol's stream events in, the hub's events out."""

    def feed(self, event: SseEvent) -> list[Event]: ...


class StreamWriter(Protocol):
    """The hub's events in, a protocol's stream out (`finish` at its end; `error` ends it with the
    surface's error event as this stream must carry it)."""

    def write(self, event: Event) -> list[bytes]: ...

    def finish(self) -> list[bytes]: ...

    def error(self, event: bytes) -> bytes: ...




@dataclass(frozen=True)
class Codec:
    """One protocol's reader and writer, for requests, whole answers and streams."""

    name: str
    read_request: Callable[[Payload], Request]
    write_request: Callable[[Request, str], Payload]
    read_answer: Callable[[Payload], Answer]
    write_answer: Callable[[Answer, Request, str], Payload]
    stream_reader: Callable[[], StreamReader]
    stream_writer: Callable[[Request, str, bool], StreamWriter]
    """(request, model, sse): `sse` False for a Gemini stream asked for without `alt=sse`."""


def _writer(make: Callable[[Request, str], StreamWriter]) -> Callable[[Request, str, bool], StreamWriter]:
    return lambda request, model, sse: make(request, model)


CODECS: dict[str, Codec] = {
    "chat": Codec("chat", chat.read_request, chat.write_request, chat.read_answer, chat.write_answer,
                  chat.StreamReader, _writer(chat.StreamWriter)),
    "responses": Codec("responses", responses.read_request, responses.write_request, responses.read_answer,
                       responses.write_answer, responses.StreamReader, _writer(responses.StreamWriter)),
    "messages": Codec("messages", messages.read_request, messages.write_request, messages.read_answer,
                      messages.write_answer, messages.StreamReader, _writer(messages.StreamWriter)),
    "gemini": Codec("gemini", gemini.read_request, gemini.write_request, gemini.read_answer, gemini.write_answer,
                    gemini.StreamReader, lambda request, model, sse: gemini.StreamWriter(request, model, sse=sse)),
}

__all__ = ["CODECS", "Codec", "StreamReader", "StreamWriter"]
