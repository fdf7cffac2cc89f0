"""OpenAI Chat Completions answers (whole and streamed) as Anthropic Messages answers."""

from __future__ import annotations

from typing import Any

import orjson

from ..exceptions import TranslationError
from .sse import SseEvent, frame

STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
        "content_filter": "refusal"}


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    return {"input_tokens": int(usage.get("prompt_tokens") or 0) - cached, "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0, "output_tokens": int(usage.get("completion_tokens") or 0)}


def _input(arguments: Any) -> Any:
    try:
        return orjson.loads(arguments) if isinstance(arguments, str) and arguments else {}
    except orjson.JSONDecodeError:
        return {"_raw_arguments": arguments}


def chat_to_message(resp: dict[str, Any], model: str) -> dict[str, Any]:
    if not isinstance(resp.get("choices"), list) or not resp["choices"]:
        raise TranslationError("the answer has no `choices`: it is not a Chat Completions answer")
    choice = (resp.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": _input(fn.get("arguments"))})
    return {
        "id": f"msg_{str(resp.get('id', '')).removeprefix('chatcmpl-')}",
        "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": STOP.get(choice.get("finish_reason") or "", "end_turn"), "stop_sequence": None,
        "usage": _usage(resp.get("usage")),
    }


class ChatToAnthropicStream:
    """`chat.completion.chunk` frames in, Anthropic's event sequence out."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.block: int | None = None
        self.block_kind: str | None = None
        self.blocks = 0
        self.tools: dict[int, int] = {}
        self.stop = "end_turn"
        self.usage: dict[str, Any] | None = None
        self.done = False

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self.started = True
        message: dict[str, Any] = {"id": f"msg_{str(chunk.get('id', '')).removeprefix('chatcmpl-')}", "type": "message",
                   "role": "assistant", "model": self.model, "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        return [frame("message_start", {"type": "message_start", "message": message})]

    def _close(self) -> list[bytes]:
        if self.block is None:
            return []
        index, self.block, self.block_kind = self.block, None, None
        return [frame("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.block, self.block_kind = self.blocks, kind
        self.blocks += 1
        out.append(frame("content_block_start", {"type": "content_block_start", "index": self.block, "content_block": block}))
        return out

    def feed(self, event: SseEvent) -> list[bytes]:
        if event.data.strip() == "[DONE]":
            return self.finish()
        try:
            chunk = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return []
        if "error" in chunk:
            error = chunk["error"] or {}
            return [frame("error", {"type": "error", "error": {"type": "api_error", "message": error.get("message", "")}})]
        out = [] if self.started else self._start(chunk)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.block_kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out.append(frame("content_block_delta", {"type": "content_block_delta", "index": self.block,
                                                         "delta": {"type": "text_delta", "text": delta["content"]}}))
            for call in delta.get("tool_calls") or []:
                number = call.get("index", 0)
                fn = call.get("function") or {}
                if number not in self.tools:
                    out += self._open("tool_use", {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": {}})
                    self.tools[number] = self.block if self.block is not None else 0
                if fn.get("arguments"):
                    out.append(frame("content_block_delta", {"type": "content_block_delta", "index": self.tools[number],
                                                             "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]}}))
            if choice.get("finish_reason"):
                self.stop = STOP.get(choice["finish_reason"], "end_turn")
        return out

    def finish(self) -> list[bytes]:
        if self.done or not self.started:
            return []
        self.done = True
        out = self._close()
        usage = _usage(self.usage)
        out.append(frame("message_delta", {"type": "message_delta", "delta": {"stop_reason": self.stop, "stop_sequence": None},
                                           "usage": {"output_tokens": usage["output_tokens"], "input_tokens": usage["input_tokens"],
                                                     "cache_read_input_tokens": usage["cache_read_input_tokens"]}}))
        out.append(frame("message_stop", {"type": "message_stop"}))
        return out
