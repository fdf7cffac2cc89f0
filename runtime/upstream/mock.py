"""The built-in `mock` provider: answers every surface in-process (OpenAI chat and Responses,
Anthropic Messages, Gemini), streaming too, and each protocol's token-count request (a count of
the words in the request's text, `word_count`).

It lets a newcomer (and `make run`) see the whole path work with no provider account: the
answer names the model it was routed to, and usage is reported so spend accounting has figures.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from ..table import Target
from .base import BufferedResponse, Outbound, UpstreamCall
from .body import with_model

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
JSON_HEADERS = [(b"content-type", b"application/json")]


def answer_text(model: str) -> str:
    return f"Hello from the Gatepost mock provider ({model})."


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def _usage_counts(payload: dict[str, Any], text: str) -> tuple[int, int]:
    prompt = max(1, len(orjson.dumps(payload.get("messages") or payload.get("input") or "")) // 4)
    return prompt, max(1, len(text) // 4)


NOT_COUNTED = frozenset({"model", "role", "type"})


def word_count(value: Any) -> int:
    """The whitespace-separated words in the strings of `value`, but those naming a model, a role or
    a type: a deterministic stand-in for a provider's tokenizer, the same for one prompt in each
    protocol's shape (`{"role": "user", "content": "hello there"}` and `{"role": "user", "parts":
    [{"text": "hello there"}]}` are 2)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, dict):
        return sum(word_count(v) for k, v in value.items() if k not in NOT_COUNTED)
    if isinstance(value, list):
        return sum(word_count(v) for v in value)
    return 0


COUNT_ANSWERS: dict[str, tuple[dict[str, str], str]] = {
    "/responses/input_tokens": ({"object": "response.input_tokens"}, "input_tokens"),
    "/v1/messages/count_tokens": ({}, "input_tokens"),
    ":countTokens": ({}, "totalTokens"),
}
"""Each protocol's counting endpoint (the end of its URL): its answer's other fields, and the count's."""


class MockTransport:
    """Implements the transport protocol without a network."""

    async def send(self, call: UpstreamCall) -> BufferedResponse:
        payload = orjson.loads(call.body)
        for end, (fields, counted) in COUNT_ANSWERS.items():
            if call.url.endswith(end):
                return BufferedResponse(200, JSON_HEADERS, [orjson.dumps({**fields, counted: word_count(payload)})])
        if ":" in call.url.rsplit("/", 1)[-1]:
            model = call.url.rsplit("/", 1)[-1].split(":")[0]
            return _gemini(payload, model, call.stream)
        model = str(payload.get("model", "mock"))
        if call.url.endswith("/responses"):
            return _responses(payload, model, call.stream)
        if call.url.endswith("/v1/messages"):
            return _messages(payload, model, call.stream)
        return _chat(payload, model, call.stream)

    async def aclose(self) -> None:
        return None


PATHS = {"chat": "/chat/completions", "responses": "/responses", "messages": "/v1/messages"}
COUNT_PATHS = {"responses": "/responses/input_tokens", "messages": "/v1/messages/count_tokens"}


def prepare(provider: Any, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    if out.surface == "gemini":
        method = out.gemini_method or ("streamGenerateContent" if out.stream else "generateContent")
        url = f"mock://{target.provider}/v1beta/models/{target.upstream_model}:{method}"
    else:
        url = f"mock://{target.provider}{(COUNT_PATHS if out.count else PATHS)[out.surface]}"
    body = with_model(out, target.upstream_model)
    return UpstreamCall("POST", url, {}, body, out.stream)


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> list[bytes]:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else orjson.dumps(data).decode()
        out.append((f"event: {name}\n" if name else "").encode() + f"data: {text}\n\n".encode())
    return out


def _chat(payload: dict[str, Any], model: str, stream: bool) -> BufferedResponse:
    text = answer_text(model)
    prompt, completion = _usage_counts(payload, text)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    ident = "chatcmpl-mock-" + uuid.uuid4().hex[:16]
    created = int(time.time())
    if not stream:
        body = {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        }
        return BufferedResponse(200, JSON_HEADERS, [orjson.dumps(body)])
    base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
    ]
    for word in _words(text):
        events.append((None, {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}))
    events.append((None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    if (payload.get("stream_options") or {}).get("include_usage"):
        events.append((None, {**base, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return BufferedResponse(200, SSE_HEADERS, _sse(events))


def _responses(payload: dict[str, Any], model: str, stream: bool) -> BufferedResponse:
    text = answer_text(model)
    prompt, completion = _usage_counts(payload, text)
    ident = "resp_mock" + uuid.uuid4().hex[:16]
    item_id = "msg_mock" + uuid.uuid4().hex[:16]
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
    response: dict[str, Any] = {
        "id": ident,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": [item],
        "usage": usage,
        "error": None,
        "incomplete_details": None,
    }
    if not stream:
        return BufferedResponse(200, JSON_HEADERS, [orjson.dumps(response)])
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str | None, dict[str, Any] | str]] = []
    seq = 0

    def add(kind: str, data: dict[str, Any]) -> None:
        nonlocal seq
        events.append((kind, {"type": kind, "sequence_number": seq, **data}))
        seq += 1

    add("response.created", {"response": pending})
    add("response.in_progress", {"response": pending})
    add("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}})
    add("response.content_part.added", {"item_id": item_id, "output_index": 0, "content_index": 0,
                                        "part": {**part, "text": ""}})
    for word in _words(text):
        add("response.output_text.delta", {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": word})
    add("response.output_text.done", {"item_id": item_id, "output_index": 0, "content_index": 0, "text": text})
    add("response.content_part.done", {"item_id": item_id, "output_index": 0, "content_index": 0, "part": part})
    add("response.output_item.done", {"output_index": 0, "item": item})
    add("response.completed", {"response": response})
    return BufferedResponse(200, SSE_HEADERS, _sse(events))


def _messages(payload: dict[str, Any], model: str, stream: bool) -> BufferedResponse:
    text = answer_text(model)
    prompt, completion = _usage_counts(payload, text)
    ident = "msg_mock" + uuid.uuid4().hex[:16]
    usage = {"input_tokens": prompt, "output_tokens": completion, "cache_read_input_tokens": 0,
             "cache_creation_input_tokens": 0}
    message = {"id": ident, "type": "message", "role": "assistant", "model": model,
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": usage}
    if not stream:
        return BufferedResponse(200, JSON_HEADERS, [orjson.dumps(message)])
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    events: list[tuple[str | None, dict[str, Any] | str]] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for word in _words(text):
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": word}}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": completion}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return BufferedResponse(200, SSE_HEADERS, _sse(events))


def _gemini(payload: dict[str, Any], model: str, stream: bool) -> BufferedResponse:
    text = answer_text(model)
    prompt = max(1, len(orjson.dumps(payload.get("contents") or "")) // 4)
    completion = max(1, len(text) // 4)
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": completion, "totalTokenCount": prompt + completion}
    if not stream:
        body = {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP",
                                "index": 0}], "usageMetadata": usage, "modelVersion": model}
        return BufferedResponse(200, JSON_HEADERS, [orjson.dumps(body)])
    words = _words(text)
    events: list[tuple[str | None, dict[str, Any] | str]] = []
    for i, word in enumerate(words):
        last = i == len(words) - 1
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": word}]}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        events.append((None, {"candidates": [candidate], "modelVersion": model,
                              **({"usageMetadata": usage} if last else {})}))
    return BufferedResponse(200, SSE_HEADERS, _sse(events))
