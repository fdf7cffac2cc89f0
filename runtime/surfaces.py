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

    def stream_error(self, kind: str, message: str, after: bytes = b"") -> bytes:
        """The last event of a stream whose upstream failed after the first byte; `after` is the
        last event relayed before it (a Responses event is numbered next in its sequence)."""
        if self.protocol == "anthropic":
            return b"event: error\ndata: " + anthropic_error(502, kind, message) + b"\n\n"
        if self.protocol == "gemini":
            return b"data: " + google_error(502, kind, message) + b"\n\n"
        if self.name == "responses":
            event = {"type": "error", "code": kind, "message": message, "param": None,
                     "sequence_number": _next_sequence_number(after)}
            return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"
        return b"data: " + openai_error(502, kind, message) + b"\n\n"


def _next_sequence_number(event: bytes) -> int:
    """One past the `sequence_number` of a Responses event (0 when it has none)."""
    at = event.rfind(b'"sequence_number"')
    if at < 0:
        return 0
    digits = event[at + 17:].lstrip(b" :")
    end = next((i for i, c in enumerate(digits) if not 48 <= c <= 57), len(digits))
    return int(digits[:end]) + 1 if end else 0


CHAT = Surface("chat", "openai", openai_error)
RESPONSES = Surface("responses", "openai", openai_error)
MESSAGES = Surface("messages", "anthropic", anthropic_error)
GEMINI = Surface("gemini", "gemini", google_error)

BY_PATH = {"/v1/chat/completions": CHAT, "/v1/responses": RESPONSES, "/v1/messages": MESSAGES}
ANTHROPIC_PATHS = ("/v1/messages", "/messages", "/v1/v1/messages")
GEMINI_PREFIXES = ("/v1beta/models/", "/v1/models/")
"""Google's v1beta (gemini-cli) and v1 (google-genai's default) paths; upstream is always v1beta, a superset."""
GEMINI_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def gemini_route(path: str) -> tuple[str, str] | None:
    """`/v1beta/models/{model}:{method}` (or `/v1/...`) -> (model, method)."""
    prefix = next((p for p in GEMINI_PREFIXES if path.startswith(p)), None)
    if prefix is None:
        return None
    model, sep, method = path[len(prefix):].rpartition(":")
    if not sep or not model or method not in GEMINI_METHODS:
        return None
    return model, method


def wants_sse(query: bytes) -> bool:
    """Gemini streams as SSE only when asked (`alt=sse`); without it, as one JSON array."""
    return any(pair == b"alt=sse" for pair in query.split(b"&"))


def looks_gemini(path: str) -> bool:
    """A path in Google's style, answered in Google's error shape even when it is not served."""
    return path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path)


def surface_of_path(path: str) -> Surface:
    """The surface whose error shape a path the gateway did not serve gets (a 404, a 405): Google's
    for a Google-style path, Anthropic's for one in the Messages family (`/v1/messages/...`, and
    `/messages` or `/v1/v1/messages` from a mis-set base URL), else OpenAI's."""
    if looks_gemini(path):
        return GEMINI
    if path.startswith(ANTHROPIC_PATHS):
        return MESSAGES
    return CHAT


def error_body_for(path: str) -> ErrorBody:
    """The error shape the client of `path` parses, for answers given before any handler runs."""
    return (BY_PATH.get(path) or surface_of_path(path)).error_body
