"""Anthropic answers (whole messages and event streams) as OpenAI Chat Completions and Responses
answers, for clients that spoke OpenAI to a route that reached an Anthropic model.

`model` in every answer is the model that answered. Usage is OpenAI's: input includes cache reads
and writes, with cache reads as `cached_tokens`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..exceptions import TranslationError
from .sse import SseEvent, frame

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
          "pause_turn": "stop", "refusal": "content_filter"}


def _usage_numbers(usage: dict[str, Any]) -> tuple[int, int, int]:
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    return int(usage.get("input_tokens") or 0) + read + written, read, int(usage.get("output_tokens") or 0)


def chat_usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt, cached, completion = _usage_numbers(usage)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def responses_usage(usage: dict[str, Any]) -> dict[str, Any]:
    prompt, cached, completion = _usage_numbers(usage)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + completion}


def _require_message(msg: dict[str, Any]) -> None:
    if not isinstance(msg.get("content"), list):
        raise TranslationError("the answer has no `content` list: it is not an Anthropic message")


def message_to_chat(msg: dict[str, Any], model: str, created: int | None = None) -> dict[str, Any]:
    _require_message(msg)
    text = "".join(b.get("text", "") for b in msg.get("content") or [] if b.get("type") == "text")
    calls = [
        {"id": b["id"], "type": "function", "function": {"name": b["name"], "arguments": orjson.dumps(b.get("input") or {}).decode()}}
        for b in msg.get("content") or [] if b.get("type") == "tool_use"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{msg.get('id', '')}",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": FINISH.get(msg.get("stop_reason") or "", "stop")}],
        "usage": chat_usage(msg.get("usage") or {}),
    }


def _response_items(msg: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    texts: list[str] = []
    base = str(msg.get("id", "")).removeprefix("msg_")

    def flush() -> None:
        if texts:
            part = {"type": "output_text", "text": "".join(texts), "annotations": []}
            items.append({"id": f"msg_{base}_{len(items)}", "type": "message", "status": "completed",
                          "role": "assistant", "content": [part]})
            texts.clear()

    for block in msg.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            flush()
            items.append({"id": f"fc_{block['id']}", "type": "function_call", "status": "completed",
                          "call_id": block["id"], "name": block["name"],
                          "arguments": orjson.dumps(block.get("input") or {}).decode()})
    flush()
    return items


def message_to_response(msg: dict[str, Any], model: str, created: int | None = None) -> dict[str, Any]:
    _require_message(msg)
    incomplete = msg.get("stop_reason") == "max_tokens"
    return {
        "id": f"resp_{str(msg.get('id', '')).removeprefix('msg_')}",
        "object": "response",
        "created_at": int(time.time()) if created is None else created,
        "status": "incomplete" if incomplete else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "error": None,
        "model": model,
        "output": _response_items(msg),
        "usage": responses_usage(msg.get("usage") or {}),
    }


class AnthropicToChatStream:
    """Anthropic stream events in, `chat.completion.chunk` frames out, ending in `[DONE]`."""

    def __init__(self, model: str, include_usage: bool = True, created: int | None = None) -> None:
        self.model = model
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.id = "chatcmpl-"
        self.usage: dict[str, Any] = {}
        self.finish_reason: str | None = None
        self._tools: dict[int, int] = {}
        self._done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return frame(None, {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def feed(self, event: SseEvent) -> list[bytes]:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return []
        kind = data.get("type") or event.event
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = f"chatcmpl-{message.get('id', '')}"
            self.usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._tools[data.get("index", 0)] = len(self._tools)
                call = {"index": index, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": ""}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta" and data.get("index", 0) in self._tools:
                call = {"index": self._tools[data.get("index", 0)], "function": {"arguments": delta.get("partial_json", "")}}
                return [self._chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reason = FINISH.get(reason, "stop")
                return [self._chunk({}, self.finish_reason)]
            return []
        if kind == "message_stop":
            return self._end()
        if kind == "error":
            error = data.get("error") or {}
            return [frame(None, {"error": {"message": error.get("message", "upstream error"),
                                           "type": error.get("type", "api_error"), "code": "provider_error"}})]
        return []

    def _end(self) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        out = []
        if self.include_usage:
            out.append(frame(None, {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                    "model": self.model, "choices": [], "usage": chat_usage(self.usage)}))
        out.append(frame(None, "[DONE]"))
        return out


class AnthropicToResponsesStream:
    """Anthropic stream events in, the Responses event sequence out (what Codex accepts), ending in
    `response.completed` with the whole response."""

    def __init__(self, model: str, created: int | None = None) -> None:
        self.model = model
        self.created = int(time.time()) if created is None else created
        self.seq = 0
        self.id = "resp_"
        self.usage: dict[str, Any] = {}
        self.stop: str | None = None
        self.items: list[dict[str, Any]] = []
        self._open: dict[int, int] = {}
        self._args: dict[int, list[str]] = {}
        self._texts: dict[int, list[str]] = {}
        self._done = False

    def _event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return frame(kind, payload)

    def _response(self, status: str) -> dict[str, Any]:
        done = status != "in_progress"
        incomplete = done and self.stop == "max_tokens"
        return {
            "id": self.id, "object": "response", "created_at": self.created,
            "status": "incomplete" if incomplete else status, "model": self.model,
            "output": self.items if done else [], "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "usage": responses_usage(self.usage) if done else None,
        }

    def feed(self, event: SseEvent) -> list[bytes]:
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return []
        kind = data.get("type") or event.event
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = f"resp_{str(message.get('id', '')).removeprefix('msg_')}"
            self.usage.update(message.get("usage") or {})
            return [self._event("response.created", response=self._response("in_progress")),
                    self._event("response.in_progress", response=self._response("in_progress"))]
        if kind == "content_block_start":
            return self._start(data.get("index", 0), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(data.get("index", 0), data.get("delta") or {})
        if kind == "content_block_stop":
            return self._stop(data.get("index", 0))
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            self.stop = (data.get("delta") or {}).get("stop_reason") or self.stop
            return []
        if kind == "message_stop":
            if self._done:
                return []
            self._done = True
            return [self._event("response.completed", response=self._response("completed"))]
        if kind == "error":
            error = data.get("error") or {}
            failed = {**self._response("failed"), "error": {"code": "provider_error", "message": error.get("message", "")}}
            return [self._event("response.failed", response=failed)]
        return []

    def _start(self, index: int, block: dict[str, Any]) -> list[bytes]:
        position = len(self.items)
        self._open[index] = position
        base = self.id.removeprefix("resp_")
        if block.get("type") == "tool_use":
            item = {"id": f"fc_{block.get('id')}", "type": "function_call", "status": "in_progress",
                    "call_id": block.get("id"), "name": block.get("name"), "arguments": ""}
            self._args[index] = []
            self.items.append(item)
            return [self._event("response.output_item.added", output_index=position, item=item)]
        if block.get("type") == "text":
            item = {"id": f"msg_{base}_{position}", "type": "message", "status": "in_progress", "role": "assistant",
                    "content": []}
            self._texts[index] = []
            self.items.append(item)
            part = {"type": "output_text", "text": "", "annotations": []}
            return [self._event("response.output_item.added", output_index=position, item=dict(item)),
                    self._event("response.content_part.added", item_id=item["id"], output_index=position,
                                content_index=0, part=part)]
        self._open.pop(index)
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[bytes]:
        if index not in self._open:
            return []
        position = self._open[index]
        item = self.items[position]
        if delta.get("type") == "text_delta" and index in self._texts:
            self._texts[index].append(delta.get("text", ""))
            return [self._event("response.output_text.delta", item_id=item["id"], output_index=position,
                                content_index=0, delta=delta.get("text", ""))]
        if delta.get("type") == "input_json_delta" and index in self._args:
            self._args[index].append(delta.get("partial_json", ""))
            return [self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=position,
                                delta=delta.get("partial_json", ""))]
        return []

    def _stop(self, index: int) -> list[bytes]:
        if index not in self._open:
            return []
        position = self._open.pop(index)
        item = self.items[position]
        if index in self._texts:
            text = "".join(self._texts.pop(index))
            part = {"type": "output_text", "text": text, "annotations": []}
            item.update(status="completed", content=[part])
            return [
                self._event("response.output_text.done", item_id=item["id"], output_index=position, content_index=0, text=text),
                self._event("response.content_part.done", item_id=item["id"], output_index=position, content_index=0, part=part),
                self._event("response.output_item.done", output_index=position, item=item),
            ]
        arguments = "".join(self._args.pop(index, [])) or "{}"
        item.update(status="completed", arguments=arguments)
        return [
            self._event("response.function_call_arguments.done", item_id=item["id"], output_index=position,
                        arguments=arguments),
            self._event("response.output_item.done", output_index=position, item=item),
        ]
