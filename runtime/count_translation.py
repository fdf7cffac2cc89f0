"""A token-count request for a target that counts in another protocol: the client's count body
read by the hub as the request it would count, written in the target's protocol with only what
its counting endpoint takes, and the target's count answered in the client's shape.

Each protocol's counting endpoint counts the prompt of a request (system, messages, tools), never
an answer, so the translated count is the target's own exact figure for the same prompt.
"""

from __future__ import annotations

from typing import Any

from .exceptions import TranslationError
from .translators import CODECS

COUNTING_SURFACE = {"openai": "responses", "anthropic": "messages", "gemini": "gemini"}
"""The surface whose counting endpoint a protocol's provider answers (see upstream.COUNTS_TOKENS)."""

COUNTED_FIELDS = {
    "messages": ("model", "messages", "system", "tools", "tool_choice"),
    "responses": ("model", "input", "instructions", "tools", "tool_choice"),
    "gemini": ("contents", "systemInstruction", "tools", "toolConfig"),
}
"""What each counting endpoint accepts of a generation request's body."""

COUNT_KEY = {"messages": "input_tokens", "responses": "input_tokens", "gemini": "totalTokens"}


def count_request(client: str, wire: str, payload: dict[str, Any], model: str) -> tuple[dict[str, Any], list[str]]:
    """The body `wire`'s counting endpoint takes for the prompt of `client`'s count `payload`, and
    what the hub left behind on the way."""
    source = payload
    if client == "gemini" and isinstance(payload.get("generateContentRequest"), dict):
        source = payload["generateContentRequest"]
    if client == "messages" and "max_tokens" not in source:
        source = {**source, "max_tokens": 1}
    hub = CODECS[client].read_request(source)
    written = CODECS[wire].write_request(hub, model)
    body = {k: v for k, v in written.items() if k in COUNTED_FIELDS[wire]}
    if wire == "gemini":
        body = {"generateContentRequest": {"model": f"models/{model}", **body}}
    return body, list(hub.dropped)


def count_answer(client: str, wire: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The target's count answer (`wire`'s shape) in the client's shape."""
    tokens = answer.get(COUNT_KEY[wire])
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        raise TranslationError(f"the provider's count answer has no {COUNT_KEY[wire]}")
    return count_body(client, tokens)


def count_body(surface: str, tokens: int) -> dict[str, Any]:
    """A count answer in `surface`'s shape."""
    if surface == "gemini":
        return {"totalTokens": tokens}
    if surface == "responses":
        return {"object": "response.input_tokens", "input_tokens": tokens}
    return {"input_tokens": tokens}
