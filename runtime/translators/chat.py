"""OpenAI Chat Completions: its requests, answers and `chat.completion.chunk` streams, read into the
hub's model and written from it. Chat Completions is the protocol every OpenAI-compatible provider
serves, so clients of the other protocols reach OpenAI models through it.

A tool message carries only text: a tool result's images follow it in a user turn. A result marked
as an error is prefixed `Error: `.
"""

from __future__ import annotations

import time
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
    OutputFormat,
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
    joined_text,
)
from .sse import SseEvent, event_object, frame

FINISH_IN: dict[str, Stop] = {"stop": "end", "length": "length", "tool_calls": "tool_use", "function_call": "tool_use",
                              "content_filter": "refusal"}
FINISH_OUT: dict[Stop, str] = {"end": "stop", "stop_sequence": "stop", "length": "length", "tool_use": "tool_calls",
                               "refusal": "content_filter"}


def _parts(content: Any) -> list[Text | Image]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)] if content else []
    parts: list[Text | Image] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("text", "refusal"):
            parts.append(Text(str(part.get(kind) or part.get("text") or "")))
        elif kind == "image_url":
            url = part.get("image_url")
            parts.append(Image(str(url.get("url", "")) if isinstance(url, dict) else str(url)))
        elif kind in ("input_audio", "file"):
            raise TranslationError(f"content of type {kind} cannot be translated to another protocol through the gateway")
    return parts


def _tool_choice(choice: Any) -> ToolChoice | None:
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)
    if isinstance(choice, dict):
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        if name:
            return ToolChoice("tool", str(name))
    return None


def _output(p: dict[str, Any]) -> OutputFormat | None:
    fmt = p.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return OutputFormat("json_object")
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        return OutputFormat("json_schema", str(spec.get("name") or "output"), spec.get("schema"), spec.get("strict"))
    return None


def read_request(p: dict[str, Any]) -> Request:
    coverage.refuse_chat(p)
    request = Request()
    for m in p.get("messages") or []:
        if not isinstance(m, dict):
            continue
        role, content = m.get("role"), m.get("content")
        if role in ("system", "developer"):
            request.system.append(joined_text(content))
        elif role == "user":
            request.add("user", list(_parts(content)))
        elif role == "assistant":
            parts: list[Part] = list(_parts(content))
            for call in m.get("tool_calls") or []:
                fn = call.get("function") or {}
                arguments = fn.get("arguments")
                parts.append(ToolCall(str(call.get("id")), str(fn.get("name")),
                                      arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()))
            request.add("assistant", parts)
        elif role == "tool":
            result = [Text(content)] if isinstance(content, str) else _parts(content)
            request.add("user", [ToolResult(str(m.get("tool_call_id")), tuple(result))])
        elif role == "function" or m.get("function_call"):
            raise TranslationError(
                "legacy function calling (a `function` role or `function_call`) has no ids to pair a call with its "
                "result; send tools and tool_calls instead"
            )
    request.tools = [
        Tool(t["function"]["name"], t["function"].get("description", ""),
             t["function"].get("parameters") or {"type": "object", "properties": {}})
        for t in p.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function" and t.get("function")
    ]
    request.tool_choice = _tool_choice(p.get("tool_choice"))
    if isinstance(p.get("parallel_tool_calls"), bool):
        request.parallel_tool_calls = p["parallel_tool_calls"]
    request.max_tokens = p.get("max_completion_tokens") or p.get("max_tokens")
    request.temperature, request.top_p = p.get("temperature"), p.get("top_p")
    stop = p.get("stop")
    request.stop = [stop] if isinstance(stop, str) else list(stop or [])
    request.stream = p.get("stream") is True
    options = p.get("stream_options")
    request.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    request.user = p["user"] if isinstance(p.get("user"), str) else None
    request.output = _output(p)
    request.dropped = coverage.dropped_fields(p, coverage.CARRIED["chat"]) + coverage.dropped_tools(p.get("tools"), "function")
    return request


def _content(parts: list[Text | Image]) -> str | list[dict[str, Any]]:
    if all(isinstance(p, Text) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, Text))
    return [{"type": "text", "text": p.text} if isinstance(p, Text) else {"type": "image_url", "image_url": {"url": p.url}}
            for p in parts]


def write_request(request: Request, model: str) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(s for s in request.system if s)
    if system:
        messages.append({"role": "system", "content": system})
    for turn in request.merged_turns(("assistant",)):
        parts: list[Text | Image] = []
        calls: list[dict[str, Any]] = []
        late: list[Text | Image] = []
        for part in turn.parts:
            if isinstance(part, ToolCall):
                calls.append({"id": part.id, "type": "function", "function": {"name": part.name, "arguments": part.arguments}})
            elif isinstance(part, ToolResult):
                text = f"Error: {part.text()}" if part.is_error else part.text()
                messages.append({"role": "tool", "tool_call_id": part.call_id, "content": text})
                if part.images:
                    late += [Text(f"(images returned by tool call {part.call_id})"), *part.images]
            else:
                parts.append(part)
        if late:
            messages.append({"role": "user", "content": _content(late)})
        if turn.role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": _content(parts) if parts else None}
            if calls:
                message["tool_calls"] = calls
            messages.append(message)
        elif parts:
            messages.append({"role": "user", "content": _content(parts)})
    out: dict[str, Any] = {"model": model, "messages": messages}
    if request.max_tokens:
        out["max_completion_tokens"] = request.max_tokens
    for name in ("temperature", "top_p"):
        if getattr(request, name) is not None:
            out[name] = getattr(request, name)
    if request.stop:
        out["stop"] = list(request.stop)
    if request.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    if request.tools:
        out["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                          "parameters": t.parameters}} for t in request.tools]
        choice = request.tool_choice
        if choice is not None and choice.kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
        elif choice is not None and choice.kind != "auto":
            out["tool_choice"] = choice.kind
        if request.parallel_tool_calls is False:
            out["parallel_tool_calls"] = False
    if request.output is not None:
        out["response_format"] = _response_format(request.output)
    if request.user is not None:
        out["user"] = request.user
    return out


def _response_format(output: OutputFormat) -> dict[str, Any]:
    if output.kind == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": output.name, "schema": output.schema or {"type": "object"}}
    if output.strict is not None:
        spec["strict"] = output.strict
    return {"type": "json_schema", "json_schema": spec}


def read_usage(usage: Any) -> Usage:
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details") or {}
    out_details = usage.get("completion_tokens_details") or {}
    return Usage(int(usage.get("prompt_tokens") or 0), int(details.get("cached_tokens") or 0), 0,
                 int(usage.get("completion_tokens") or 0), int(out_details.get("reasoning_tokens") or 0))


def write_usage(usage: Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def read_answer(resp: dict[str, Any]) -> Answer:
    if not isinstance(resp.get("choices"), list) or not resp["choices"]:
        raise TranslationError("the answer has no `choices`: it is not a Chat Completions answer")
    choice = resp["choices"][0]
    message = choice.get("message") or {}
    parts: list[Text | ToolCall] = []
    text = message.get("content") or message.get("refusal")
    if text:
        parts.append(Text(str(text)))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        parts.append(ToolCall(str(call.get("id")), str(fn.get("name")), str(fn.get("arguments") or "")))
    stop = FINISH_IN.get(choice.get("finish_reason") or "", "end")
    return Answer(str(resp.get("id", "")), str(resp.get("model", "")), parts, stop, read_usage(resp.get("usage")),
                  resp.get("created") if isinstance(resp.get("created"), int) else None)


def answer_id(answer_id: str) -> str:
    return answer_id if answer_id.startswith("chatcmpl-") else f"chatcmpl-{answer_id}"


def write_answer(answer: Answer, request: Request, model: str, created: int | None = None) -> dict[str, Any]:
    text = "".join(p.text for p in answer.parts if isinstance(p, Text))
    calls = [{"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
             for p in answer.parts if isinstance(p, ToolCall)]
    message: dict[str, Any] = {"role": "assistant", "content": text or None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": answer_id(answer.id), "object": "chat.completion",
        "created": int(time.time()) if created is None else created, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": FINISH_OUT[answer.stop], "logprobs": None}],
        "usage": write_usage(answer.usage),
    }


class StreamReader:
    """`chat.completion.chunk` events in, hub events out."""

    def __init__(self) -> None:
        self._started = False
        self._calls: dict[int, int] = {}

    def feed(self, event: SseEvent) -> list[Event]:
        if event.data.strip() == "[DONE]":
            return [Finished()]
        chunk = event_object(event)
        if chunk is None:
            return []
        if "error" in chunk:
            error = chunk["error"] if isinstance(chunk["error"], dict) else {}
            return [Failed(str(error.get("type") or error.get("code") or "api_error"), str(error.get("message") or ""))]
        out: list[Event] = []
        if not self._started:
            self._started = True
            out.append(Started(str(chunk.get("id", "")), None, chunk.get("created") if isinstance(chunk.get("created"), int) else None))
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if text:
                out.append(TextDelta(str(text)))
            for call in delta.get("tool_calls") or []:
                number = call.get("index", 0)
                fn = call.get("function") or {}
                if number not in self._calls:
                    self._calls[number] = len(self._calls)
                    out.append(ToolCallStarted(self._calls[number], str(call.get("id")), str(fn.get("name"))))
                if fn.get("arguments"):
                    out.append(ToolArguments(self._calls[number], str(fn["arguments"])))
            if choice.get("finish_reason"):
                out.append(Stopped(FINISH_IN.get(choice["finish_reason"], "end")))
        if chunk.get("usage"):
            out.append(UsageSeen(read_usage(chunk["usage"])))
        return out


class StreamWriter:
    """Hub events in, `chat.completion.chunk` frames out, ending in `[DONE]`: with a usage chunk
    when the client asked for one (`stream_options.include_usage`)."""

    def __init__(self, request: Request, model: str, created: int | None = None) -> None:
        self.model = model
        self.include_usage = request.include_usage
        self.created = int(time.time()) if created is None else created
        self.id = "chatcmpl-"
        self.usage = Usage()
        self.stopped = False
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return frame(None, {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    def write(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            self.id = answer_id(event.id)
            if event.usage is not None:
                self.usage = self.usage.merged(event.usage)
            return [self._chunk({"role": "assistant", "content": ""})]
        if isinstance(event, TextDelta):
            return [self._chunk({"content": event.text})]
        if isinstance(event, ToolCallStarted):
            call = {"index": event.index, "id": event.id, "type": "function", "function": {"name": event.name, "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        if isinstance(event, ToolArguments):
            return [self._chunk({"tool_calls": [{"index": event.index, "function": {"arguments": event.fragment}}]})]
        if isinstance(event, UsageSeen):
            self.usage = self.usage.merged(event.usage)
            return []
        if isinstance(event, Stopped):
            if self.stopped:
                return []
            self.stopped = True
            return [self._chunk({}, FINISH_OUT[event.stop])]
        if isinstance(event, Finished):
            return self._end()
        return [frame(None, {"error": {"message": event.message or "upstream error", "type": event.kind,
                                       "code": "provider_error", "param": None}})]

    def _end(self) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        out = [] if self.stopped else [self._chunk({}, "stop")]
        if self.include_usage:
            out.append(frame(None, {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                    "model": self.model, "choices": [], "usage": write_usage(self.usage)}))
        out.append(frame(None, "[DONE]"))
        return out

    def finish(self) -> list[bytes]:
        return []

    def error(self, event: bytes) -> bytes:
        return event
