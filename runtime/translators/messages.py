"""Anthropic Messages: its requests, answers and event streams, read into the hub's model and
written from it.

Anthropic needs `max_tokens`; when the client set none, 4,096 is used. Its roles alternate, so
consecutive turns of one role are merged. `cache_control` has no equivalent elsewhere and is left
behind (OpenAI caches prompt prefixes automatically); cache mode `force` adds Anthropic breakpoints
to requests written here. Usage: Anthropic's `input_tokens` exclude cache reads and writes.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..exceptions import TranslationError
from . import coverage
from .model import (
    Answer,
    Event,
    Failed,
    Finished,
    Image,
    Part,
    Request,
    Started,
    Stop,
    Stopped,
    Text,
    TextDelta,
    Tool,
    ToolArguments,
    ToolCall,
    ToolCallStarted,
    ToolChoice,
    ToolResult,
    Usage,
    UsageSeen,
)
from .sse import SseEvent, event_object, frame

DEFAULT_MAX_TOKENS = 4096
STOP_IN: dict[str, Stop] = {"end_turn": "end", "stop_sequence": "stop_sequence", "max_tokens": "length",
                            "tool_use": "tool_use", "pause_turn": "end", "refusal": "refusal",
                            "model_context_window_exceeded": "length"}
STOP_OUT: dict[Stop, str] = {"end": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens",
                             "tool_use": "tool_use", "refusal": "refusal"}


def _image(block: dict[str, Any]) -> Image:
    source = block.get("source") or {}
    if source.get("type") == "url":
        return Image(str(source.get("url", "")))
    return Image.of(str(source.get("media_type") or "image/png"), str(source.get("data", "")))


NOTES = ("thinking", "redacted_thinking")
"""Blocks that are the model's own notes, readable only by the model that wrote them: left behind
(and named, as `content:<type>`)."""


def _parts(blocks: list[Any], skipped: set[str] | None = None) -> list[Part]:
    """`skipped` collects the kinds of the blocks left behind."""
    parts: list[Part] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(Text(str(block.get("text", ""))))
        elif kind == "image":
            parts.append(_image(block))
        elif kind == "tool_use":
            parts.append(ToolCall(str(block.get("id")), str(block.get("name")), orjson.dumps(block.get("input") or {}).decode()))
        elif kind == "tool_result":
            content = block.get("content")
            items = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            inner = [p for p in _parts([c for c in items if isinstance(c, dict)]) if isinstance(p, Text | Image)]
            parts.append(ToolResult(str(block.get("tool_use_id")), tuple(inner), bool(block.get("is_error"))))
        elif kind in ("document", "search_result"):
            raise TranslationError(f"content blocks of type {kind} cannot be translated to another protocol")
        elif kind in NOTES:
            if skipped is not None:
                skipped.add(f"content:{kind}")
        elif isinstance(kind, str) and (kind == "server_tool_use" or kind.endswith("_tool_result")):
            raise TranslationError(f"content blocks of type {kind} are a turn with a tool Anthropic runs; "
                                   "the conversation cannot be sent without it")
    return parts


def _tool_choice(choice: Any) -> tuple[ToolChoice | None, bool | None]:
    """Raises AttributeError for a choice that is not an object: the request is not a Messages one."""
    if choice is None:
        return None, None
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "any":
        return ToolChoice("required"), parallel
    if kind == "tool":
        return ToolChoice("tool", str(choice.get("name"))), parallel
    if kind in ("none", "auto"):
        return ToolChoice(kind), parallel
    return None, parallel


def read_request(p: dict[str, Any]) -> Request:
    coverage.refuse_messages(p)
    request = Request()
    system = p.get("system")
    if isinstance(system, str) and system:
        request.system.append(system)
    elif isinstance(system, list):
        text = "\n\n".join(b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str) and b["text"])
        if text:
            request.system.append(text)
    skipped: set[str] = set()
    for m in p.get("messages") or []:
        role, content = m.get("role"), m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        request.add("assistant" if role == "assistant" else "user", _parts(blocks, skipped))
    request.tools = [Tool(str(t.get("name")), str(t.get("description") or ""), t.get("input_schema") or {"type": "object"})
                     for t in p.get("tools") or [] if isinstance(t, dict) and t.get("name")]
    request.tool_choice, request.parallel_tool_calls = _tool_choice(p.get("tool_choice"))
    request.max_tokens = p.get("max_tokens")
    request.temperature, request.top_p = p.get("temperature"), p.get("top_p")
    request.stop = list(p.get("stop_sequences") or [])
    request.stream = p.get("stream") is True
    user = (p.get("metadata") or {}).get("user_id")
    request.user = user if isinstance(user, str) else None
    request.dropped = coverage.dropped_fields(p, coverage.CARRIED["messages"]) + sorted(skipped)
    return request


def _image_block(image: Image) -> dict[str, Any]:
    inline = image.inline
    if inline is None:
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}


def _block(part: Part) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        return _image_block(part)
    if isinstance(part, ToolCall):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": part.input()}
    content: str | list[dict[str, Any]]
    if len(part.parts) == 1 and isinstance(part.parts[0], Text):
        content = part.parts[0].text
    else:
        content = [_block(p) for p in part.parts]
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": content}
    if part.is_error:
        block["is_error"] = True
    return block


def write_request(request: Request, model: str) -> dict[str, Any]:
    coverage.refuse_for_target(request, "messages")
    messages = [{"role": t.role, "content": [_block(p) for p in t.parts]} for t in request.merged_turns()]
    out: dict[str, Any] = {"model": model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS, "messages": messages}
    system = "\n\n".join(s for s in request.system if s)
    if system:
        out["system"] = system
    if request.tools:
        out["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools]
    if request.temperature is not None:
        out["temperature"] = request.temperature
    if request.top_p is not None and request.temperature is None:
        out["top_p"] = request.top_p
    elif request.top_p is not None:
        request.dropped.append("top_p")
    if request.stream:
        out["stream"] = True
    if request.stop:
        out["stop_sequences"] = list(request.stop)
    choice = _write_tool_choice(request)
    if choice is not None and request.tools:
        out["tool_choice"] = choice
    if request.user is not None:
        out["metadata"] = {"user_id": request.user}
    return out


def _write_tool_choice(request: Request) -> dict[str, Any] | None:
    choice = request.tool_choice
    result: dict[str, Any] | None = None
    if choice is not None:
        result = {"type": "tool", "name": choice.name} if choice.kind == "tool" else \
            {"type": {"auto": "auto", "none": "none", "required": "any"}[choice.kind]}
    if request.parallel_tool_calls is False:
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def read_usage(usage: Any) -> Usage:
    usage = usage if isinstance(usage, dict) else {}
    read = int(usage.get("cache_read_input_tokens") or 0)
    written = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(int(usage.get("input_tokens") or 0) + read + written, read, written, int(usage.get("output_tokens") or 0))


def write_usage(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens,
            "cache_read_input_tokens": usage.cached_tokens, "cache_creation_input_tokens": usage.cache_write_tokens,
            "output_tokens": usage.output_tokens}


def read_answer(msg: dict[str, Any]) -> Answer:
    if not isinstance(msg.get("content"), list):
        raise TranslationError("the answer has no `content` list: it is not an Anthropic message")
    parts = [p for p in _parts(msg["content"]) if isinstance(p, Text | ToolCall)]
    return Answer(str(msg.get("id", "")), str(msg.get("model", "")), parts,
                  STOP_IN.get(msg.get("stop_reason") or "", "end"), read_usage(msg.get("usage")))


def answer_id(answer_id: str) -> str:
    return "msg_" + answer_id.removeprefix("chatcmpl-").removeprefix("resp_").removeprefix("msg_")


def write_answer(answer: Answer, request: Request, model: str, created: int | None = None) -> dict[str, Any]:
    return {
        "id": answer_id(answer.id), "type": "message", "role": "assistant", "model": model,
        "content": [_block(p) for p in answer.parts], "stop_reason": STOP_OUT[answer.stop], "stop_sequence": None,
        "usage": write_usage(answer.usage),
    }


class StreamReader:
    """Anthropic's event stream in, hub events out."""

    def __init__(self) -> None:
        self._calls: dict[int, int] = {}

    def feed(self, event: SseEvent) -> list[Event]:
        data = event_object(event)
        if data is None:
            return []
        kind = data.get("type") or event.event
        if kind == "message_start":
            message = data.get("message") or {}
            return [Started(str(message.get("id", "")), read_usage(message.get("usage")))]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self._calls[data.get("index", 0)] = len(self._calls)
                return [ToolCallStarted(index, str(block.get("id")), str(block.get("name")))]
            if block.get("type") == "text" and block.get("text"):
                return [TextDelta(str(block["text"]))]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [TextDelta(str(delta.get("text", "")))]
            if delta.get("type") == "input_json_delta" and data.get("index", 0) in self._calls:
                return [ToolArguments(self._calls[data.get("index", 0)], str(delta.get("partial_json", "")))]
            return []
        if kind == "message_delta":
            out: list[Event] = []
            usage = {k: v for k, v in (data.get("usage") or {}).items() if v is not None}
            if usage:
                out.append(UsageSeen(read_usage(usage)))
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason:
                out.append(Stopped(STOP_IN.get(reason, "end")))
            return out
        if kind == "message_stop":
            return [Finished()]
        if kind == "error":
            error = data.get("error") or {}
            return [Failed(str(error.get("type") or "api_error"), str(error.get("message") or ""))]
        return []


class StreamWriter:
    """Hub events in, Anthropic's event sequence out: `message_start`, a content block per text run
    and per tool call, then `message_delta` with the stop reason and usage, and `message_stop`."""

    def __init__(self, request: Request, model: str, created: int | None = None) -> None:
        self.model = model
        self.started = False
        self.block: int | None = None
        self.block_kind: str | None = None
        self.blocks = 0
        self.calls: dict[int, int] = {}
        self.stop: Stop = "end"
        self.usage = Usage()
        self.done = False

    def _start(self, ident: str, usage: Usage | None) -> list[bytes]:
        self.started = True
        if usage is not None:
            self.usage = usage
        message: dict[str, Any] = {"id": answer_id(ident), "type": "message", "role": "assistant", "model": self.model,
                                   "content": [], "stop_reason": None, "stop_sequence": None,
                                   "usage": {**write_usage(self.usage), "output_tokens": self.usage.output_tokens}}
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

    def write(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            return [] if self.started else self._start(event.id, event.usage)
        out = [] if self.started or isinstance(event, Failed) else self._start("", None)
        if isinstance(event, TextDelta):
            if self.block_kind != "text":
                out += self._open("text", {"type": "text", "text": ""})
            out.append(frame("content_block_delta", {"type": "content_block_delta", "index": self.block,
                                                     "delta": {"type": "text_delta", "text": event.text}}))
        elif isinstance(event, ToolCallStarted):
            out += self._open("tool_use", {"type": "tool_use", "id": event.id, "name": event.name, "input": {}})
            self.calls[event.index] = self.block if self.block is not None else 0
        elif isinstance(event, ToolArguments) and event.index in self.calls:
            out.append(frame("content_block_delta", {"type": "content_block_delta", "index": self.calls[event.index],
                                                     "delta": {"type": "input_json_delta", "partial_json": event.fragment}}))
        elif isinstance(event, UsageSeen):
            self.usage = self.usage.merged(event.usage)
        elif isinstance(event, Stopped):
            self.stop = event.stop
        elif isinstance(event, Finished):
            out += self._end()
        elif isinstance(event, Failed):
            out.append(frame("error", {"type": "error", "error": {"type": event.kind if event.kind.endswith("_error") else "api_error",
                                                                  "message": event.message}}))
        return out

    def _end(self) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        out = self._close()
        usage = write_usage(self.usage)
        out.append(frame("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": STOP_OUT[self.stop], "stop_sequence": None},
                                           "usage": {"output_tokens": usage["output_tokens"], "input_tokens": usage["input_tokens"],
                                                     "cache_read_input_tokens": usage["cache_read_input_tokens"]}}))
        out.append(frame("message_stop", {"type": "message_stop"}))
        return out

    def finish(self) -> list[bytes]:
        return []

    def error(self, event: bytes) -> bytes:
        return event
