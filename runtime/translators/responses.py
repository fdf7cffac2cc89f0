"""OpenAI Responses: its requests (Codex's), answers and event streams, read into the hub's model and
written from it.

A written Response carries every field OpenAI's published schema requires, echoing the request's
instructions, tools and sampling settings. Reasoning items in the input are left behind (they are
the model's own notes, readable only by the model that wrote them); input items of tools only
OpenAI runs are refused, since leaving them out would hand the model a history with holes.
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
from .sse import SseEvent, SseParser, event_object, frame

STORED_ITEMS = frozenset({"item_reference"})
TOOL_HISTORY = ("local_shell_call", "custom_tool_call", "computer_call", "code_interpreter_call", "mcp_call",
                "image_generation_call", "file_search_call", "apply_patch_call", "shell_call")
"""Input items that are turns with tools other protocols do not have: refused (see the docstring)."""
ENDS = {"response.completed", "response.incomplete", "response.failed"}


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
        if kind in ("input_text", "output_text", "text"):
            parts.append(Text(str(part.get("text", ""))))
        elif kind == "refusal":
            parts.append(Text(str(part.get("refusal", ""))))
        elif kind == "input_image":
            if not part.get("image_url"):
                raise TranslationError("an input_image given by file_id refers to a file stored by OpenAI; "
                                       "send it as image_url (a data: URL) for models of other protocols")
            parts.append(Image(str(part["image_url"])))
        elif kind in ("input_audio", "input_file", "file"):
            raise TranslationError(f"content of type {kind} cannot be translated to another protocol through the gateway")
    return parts


def _tool_choice(choice: Any) -> ToolChoice | None:
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return ToolChoice("tool", str(choice["name"]))
    return None


def _output(p: dict[str, Any]) -> OutputFormat | None:
    text = p.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_object":
        return OutputFormat("json_object", field="text.format")
    if fmt.get("type") == "json_schema":
        return OutputFormat("json_schema", str(fmt.get("name") or "output"), fmt.get("schema"), fmt.get("strict"),
                            "text.format")
    return None


def read_request(p: dict[str, Any]) -> Request:
    coverage.refuse_responses(p)
    request = Request()
    if isinstance(p.get("instructions"), str) and p["instructions"]:
        request.system.append(p["instructions"])
    items = p.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    skipped: set[str] = set()
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                request.system.append(joined_text(item.get("content")))
            elif role in ("user", "assistant"):
                request.add(role, list(_parts(item.get("content"))))
        elif kind == "function_call":
            arguments = item.get("arguments")
            request.add("assistant", [ToolCall(str(item.get("call_id")), str(item.get("name")),
                                               arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode())])
        elif kind == "function_call_output":
            output = item.get("output")
            parts = [Text(output)] if isinstance(output, str) else _parts(output)
            request.add("user", [ToolResult(str(item.get("call_id")), tuple(parts))])
        elif isinstance(kind, str) and kind.startswith(TOOL_HISTORY):
            raise TranslationError(f"input item {kind} is a turn with a tool only OpenAI models have; "
                                   "the conversation cannot be sent without it")
        elif kind in STORED_ITEMS:
            raise TranslationError(f"input item {kind} refers to an item stored by OpenAI; a model of another "
                                   "protocol cannot see it")
        else:
            skipped.add(f"input:{kind}")
    request.tools = [Tool(str(t["name"]), str(t.get("description") or ""), t.get("parameters") or {"type": "object", "properties": {}})
                     for t in p.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function" and t.get("name")]
    request.tool_choice = _tool_choice(p.get("tool_choice"))
    if isinstance(p.get("parallel_tool_calls"), bool):
        request.parallel_tool_calls = p["parallel_tool_calls"]
    request.max_tokens = p.get("max_output_tokens")
    request.temperature, request.top_p = p.get("temperature"), p.get("top_p")
    request.stream = p.get("stream") is True
    request.user = p["user"] if isinstance(p.get("user"), str) else None
    request.output = _output(p)
    text = p.get("text")
    hints = sorted(f"text.{k}" for k, v in text.items() if k != "format" and v is not None) if isinstance(text, dict) else []
    request.dropped = sorted(coverage.dropped_fields(p, coverage.CARRIED["responses"]) + hints) \
        + coverage.dropped_tools(p.get("tools"), "function") + sorted(skipped)
    return request


def _content(parts: list[Text | Image], role: str) -> list[dict[str, Any]]:
    kind = "output_text" if role == "assistant" else "input_text"
    return [{"type": kind, "text": p.text} if isinstance(p, Text) else {"type": "input_image", "image_url": p.url, "detail": "auto"}
            for p in parts]


def write_request(request: Request, model: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for turn in request.turns:
        pending: list[Text | Image] = []
        for part in [*turn.parts, None]:
            if isinstance(part, Text | Image):
                pending.append(part)
                continue
            if pending:
                items.append({"type": "message", "role": turn.role, "content": _content(pending, turn.role)})
                pending = []
            if isinstance(part, ToolCall):
                items.append({"type": "function_call", "call_id": part.id, "name": part.name, "arguments": part.arguments})
            elif isinstance(part, ToolResult):
                items.append({"type": "function_call_output", "call_id": part.call_id, "output": _result(part)})
    out: dict[str, Any] = {"model": model, "input": items, "store": False}
    system = "\n\n".join(s for s in request.system if s)
    if system:
        out["instructions"] = system
    if request.max_tokens:
        out["max_output_tokens"] = request.max_tokens
    for name in ("temperature", "top_p"):
        if getattr(request, name) is not None:
            out[name] = getattr(request, name)
    if request.stream:
        out["stream"] = True
    if request.tools:
        out["tools"] = [{"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters,
                         "strict": False} for t in request.tools]
        if request.tool_choice is not None:
            out["tool_choice"] = _write_tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = request.parallel_tool_calls
    if request.output is not None:
        out["text"] = {"format": _format(request.output)}
    if request.user is not None:
        out["user"] = request.user
    if request.stop:
        request.dropped.append("stop")
    return out


def _result(part: ToolResult) -> str | list[dict[str, Any]]:
    text = f"Error: {part.text()}" if part.is_error else part.text()
    if not part.images:
        return text
    return _content([Text(text), *part.images] if text else list(part.images), "user")


def _format(output: OutputFormat) -> dict[str, Any]:
    if output.kind == "json_object":
        return {"type": "json_object"}
    fmt: dict[str, Any] = {"type": "json_schema", "name": output.name, "schema": output.schema or {"type": "object"}}
    if output.strict is not None:
        fmt["strict"] = output.strict
    return fmt


def _write_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    return {"type": "function", "name": choice.name} if choice.kind == "tool" else choice.kind


def read_usage(usage: Any) -> Usage:
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    return Usage(int(usage.get("input_tokens") or 0), int(details.get("cached_tokens") or 0), 0,
                 int(usage.get("output_tokens") or 0), int(out_details.get("reasoning_tokens") or 0))


def write_usage(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": usage.cache_write_tokens},
            "output_tokens": usage.output_tokens, "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens}


def _stop(response: dict[str, Any], has_calls: bool) -> Stop:
    reason = (response.get("incomplete_details") or {}).get("reason")
    if response.get("status") == "incomplete":
        return "refusal" if reason == "content_filter" else "length"
    return "tool_use" if has_calls else "end"


def read_answer(resp: dict[str, Any]) -> Answer:
    if not isinstance(resp.get("output"), list):
        raise TranslationError("the answer has no `output` list: it is not a Responses answer")
    parts: list[Text | ToolCall] = []
    for item in resp["output"]:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            text = "".join(str(c.get("text") or c.get("refusal") or "") for c in item.get("content") or [] if isinstance(c, dict))
            if text:
                parts.append(Text(text))
        elif item.get("type") == "function_call":
            parts.append(ToolCall(str(item.get("call_id")), str(item.get("name")), str(item.get("arguments") or "")))
    stop = _stop(resp, any(isinstance(p, ToolCall) for p in parts))
    created = resp.get("created_at")
    return Answer(str(resp.get("id", "")), str(resp.get("model", "")), parts, stop, read_usage(resp.get("usage")),
                  int(created) if isinstance(created, int | float) else None)


def answer_id(answer_id: str) -> str:
    return "resp_" + answer_id.removeprefix("chatcmpl-").removeprefix("msg_").removeprefix("resp_")


def _text_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}


def _call_item(call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {"id": f"fc_{call.id}", "type": "function_call", "status": status, "call_id": call.id, "name": call.name,
            "arguments": call.arguments}


def response_object(request: Request, ident: str, model: str, created: int, status: str, output: list[dict[str, Any]],
                    usage: Usage | None, stop: Stop | None = None) -> dict[str, Any]:
    """A Response with every field the published schema requires, the request's settings echoed
    (the schema has no null usage: a response still in progress has none)."""
    incomplete = status in ("completed", "incomplete") and stop in ("length", "refusal")
    reason = "content_filter" if stop == "refusal" else "max_output_tokens"
    choice = request.tool_choice
    response = {
        "id": ident, "object": "response", "created_at": created,
        "status": "incomplete" if incomplete else status,
        "error": None, "incomplete_details": {"reason": reason} if incomplete else None,
        "instructions": "\n\n".join(request.system) or None, "model": model, "output": output,
        "tools": [{"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters,
                   "strict": False} for t in request.tools],
        "tool_choice": _write_tool_choice(choice) if choice is not None else "auto",
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "temperature": request.temperature, "top_p": request.top_p, "max_output_tokens": request.max_tokens,
        "metadata": {},
    }
    if usage is not None:
        response["usage"] = write_usage(usage)
    return response


def write_answer(answer: Answer, request: Request, model: str, created: int | None = None) -> dict[str, Any]:
    base = answer_id(answer.id).removeprefix("resp_")
    output: list[dict[str, Any]] = []
    for part in answer.parts:
        if isinstance(part, Text):
            output.append(_text_item(f"msg_{base}_{len(output)}", part.text))
        else:
            output.append(_call_item(part))
    when = int(time.time()) if created is None else created
    return response_object(request, answer_id(answer.id), model, when, "completed", output, answer.usage, answer.stop)


class StreamReader:
    """The Responses event stream in, hub events out."""

    def __init__(self) -> None:
        self._calls: dict[str, int] = {}
        self._has_calls = False

    def feed(self, event: SseEvent) -> list[Event]:
        data = event_object(event)
        if data is None:
            return []
        kind = data.get("type") or event.event
        if kind == "response.created":
            response = data.get("response") or {}
            created = response.get("created_at")
            return [Started(str(response.get("id", "")), None, int(created) if isinstance(created, int | float) else None)]
        if kind == "response.output_text.delta":
            return [TextDelta(str(data.get("delta", "")))]
        if kind == "response.output_item.added":
            item = data.get("item") or {}
            if item.get("type") == "function_call":
                index = self._calls[str(item.get("id"))] = len(self._calls)
                self._has_calls = True
                out: list[Event] = [ToolCallStarted(index, str(item.get("call_id")), str(item.get("name")))]
                if item.get("arguments"):
                    out.append(ToolArguments(index, str(item["arguments"])))
                return out
            return []
        if kind == "response.function_call_arguments.delta" and str(data.get("item_id")) in self._calls:
            return [ToolArguments(self._calls[str(data.get("item_id"))], str(data.get("delta", "")))]
        if kind in ENDS:
            response = data.get("response") or {}
            if kind == "response.failed":
                error = response.get("error") or {}
                return [Failed(str(error.get("code") or "server_error"), str(error.get("message") or ""))]
            return [UsageSeen(read_usage(response.get("usage"))), Stopped(_stop(response, self._has_calls)), Finished()]
        if kind == "error":
            return [Failed(str(data.get("code") or "server_error"), str(data.get("message") or ""))]
        return []


class StreamWriter:
    """Hub events in, the Responses event sequence out (what Codex accepts): `response.created`,
    an output item per text run and per tool call, and `response.completed` with the whole Response."""

    def __init__(self, request: Request, model: str, created: int | None = None) -> None:
        self.request = request
        self.model = model
        self.created = int(time.time()) if created is None else created
        self.seq = 0
        self.id = "resp_"
        self.usage = Usage()
        self.stop: Stop = "end"
        self.items: list[dict[str, Any]] = []
        self.started = False
        self._text: list[str] | None = None
        self._calls: dict[int, int] = {}
        self._args: dict[int, list[str]] = {}
        self._done = False

    def _event(self, kind: str, **data: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return frame(kind, payload)

    def _response(self, status: str) -> dict[str, Any]:
        done = status != "in_progress"
        return response_object(self.request, self.id, self.model, self.created, status, self.items if done else [],
                               self.usage if done else None, self.stop if done else None)

    def _start(self, ident: str) -> list[bytes]:
        self.started = True
        self.id = answer_id(ident)
        return [self._event("response.created", response=self._response("in_progress")),
                self._event("response.in_progress", response=self._response("in_progress"))]

    def write(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            if event.usage is not None:
                self.usage = self.usage.merged(event.usage)
            return [] if self.started else self._start(event.id)
        out = [] if self.started or isinstance(event, Failed) else self._start("")
        if isinstance(event, TextDelta):
            if self._text is None:
                out += self._close()
                out += self._open_text()
            assert self._text is not None
            self._text.append(event.text)
            position = len(self.items) - 1
            out.append(self._event("response.output_text.delta", item_id=self.items[position]["id"], output_index=position,
                                   content_index=0, delta=event.text, logprobs=[]))
        elif isinstance(event, ToolCallStarted):
            out += self._close()
            call = ToolCall(event.id, event.name, "")
            item = _call_item(call, "in_progress")
            self._calls[event.index] = len(self.items)
            self._args[event.index] = []
            self.items.append(item)
            out.append(self._event("response.output_item.added", output_index=len(self.items) - 1, item=dict(item)))
        elif isinstance(event, ToolArguments) and event.index in self._calls:
            self._args[event.index].append(event.fragment)
            position = self._calls[event.index]
            out.append(self._event("response.function_call_arguments.delta", item_id=self.items[position]["id"],
                                   output_index=position, delta=event.fragment))
        elif isinstance(event, UsageSeen):
            self.usage = self.usage.merged(event.usage)
        elif isinstance(event, Stopped):
            self.stop = event.stop
        elif isinstance(event, Finished):
            out += self._end()
        elif isinstance(event, Failed):
            failed = {**self._response("failed"), "error": {"code": "server_error", "message": event.message}}
            out.append(self._event("response.failed", response=failed))
        return out

    def _open_text(self) -> list[bytes]:
        position = len(self.items)
        item = _text_item(f"msg_{self.id.removeprefix('resp_')}_{position}", "", "in_progress")
        item["content"] = []
        self.items.append(item)
        self._text = []
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        return [self._event("response.output_item.added", output_index=position, item=dict(item)),
                self._event("response.content_part.added", item_id=item["id"], output_index=position, content_index=0,
                            part=part)]

    def _close(self) -> list[bytes]:
        """Ends the open text item, and every tool call's item (their arguments are complete once
        anything else follows them)."""
        out: list[bytes] = []
        if self._text is not None:
            position = len(self.items) - 1
            item = self.items[position]
            text = "".join(self._text)
            self._text = None
            done = _text_item(item["id"], text)
            item.update(done)
            part = done["content"][0]
            out += [
                self._event("response.output_text.done", item_id=item["id"], output_index=position, content_index=0,
                            text=text, logprobs=[]),
                self._event("response.content_part.done", item_id=item["id"], output_index=position, content_index=0,
                            part=part),
                self._event("response.output_item.done", output_index=position, item=item),
            ]
        for index, position in list(self._calls.items()):
            item = self.items[position]
            arguments = "".join(self._args.pop(index, [])) or "{}"
            item.update(status="completed", arguments=arguments)
            del self._calls[index]
            out += [
                self._event("response.function_call_arguments.done", item_id=item["id"], name=item["name"],
                            output_index=position, arguments=arguments),
                self._event("response.output_item.done", output_index=position, item=item),
            ]
        return out

    def _end(self) -> list[bytes]:
        if self._done:
            return []
        self._done = True
        out = self._close()
        out.append(self._event("response.completed", response=self._response("completed")))
        return out

    def finish(self) -> list[bytes]:
        return []

    def error(self, event: bytes) -> bytes:
        """The surface's `error` event, numbered in this stream's sequence as the schema requires."""
        parsed = SseParser().feed(event)
        data = event_object(parsed[-1]) if parsed else None
        if data is None:
            return event
        return self._event(str(data.get("type") or "error"),
                           **{k: v for k, v in data.items() if k not in ("type", "sequence_number")})
