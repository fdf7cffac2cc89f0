"""The API surfaces the proxy serves: which protocol each speaks, how it names the model and
streaming, how its errors look, and how a stream that fails mid-way is ended in its own format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .errors import anthropic_error, google_error, openai_error

ErrorBody = Callable[[int, str, str, "str | None", Any], bytes]


@dataclass(frozen=True)
class Surface:
    name: str
    protocol: str
    error_body: ErrorBody

    def stream_error(self, kind: str, message: str) -> bytes:
        """The last event of a stream whose upstream failed after the first byte."""
        if self.protocol == "anthropic":
            return b"event: error\ndata: " + anthropic_error(502, kind, message) + b"\n\n"
        if self.protocol == "gemini":
            return b"data: " + google_error(502, kind, message) + b"\n\n"
        if self.name == "responses":
            event = {"type": "error", "code": kind, "message": message, "param": None}
            return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"
        return b"data: " + openai_error(502, kind, message) + b"\n\n"


CHAT = Surface("chat", "openai", openai_error)
RESPONSES = Surface("responses", "openai", openai_error)
MESSAGES = Surface("messages", "anthropic", anthropic_error)
GEMINI = Surface("gemini", "gemini", google_error)

BY_PATH = {"/v1/chat/completions": CHAT, "/v1/responses": RESPONSES, "/v1/messages": MESSAGES}
GEMINI_PREFIX = "/v1beta/models/"
GEMINI_METHODS = ("generateContent", "streamGenerateContent")


def gemini_route(path: str) -> tuple[str, str] | None:
    """`/v1beta/models/{model}:{method}` -> (model, method)."""
    if not path.startswith(GEMINI_PREFIX):
        return None
    model, sep, method = path[len(GEMINI_PREFIX):].rpartition(":")
    if not sep or not model or method not in GEMINI_METHODS:
        return None
    return model, method
