"""Google Gemini generateContent: its requests (gemini-cli's), answers and streams, read into the
hub's model and written from it.

Gemini pairs a function's result with its call by name and order, not by id: results written here
take their call's name from the history, and calls read here without an id get one by position.
A tool result's images travel as inline data parts right after its `functionResponse`. Gemini
streams whole function calls; a stream written here holds a call's arguments until the call is
complete. Thought parts are the model's own notes and are not carried.
"""

from __future__ import annotations

import re
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
)
from .sse import SseEvent, event_object

FINISH_IN: dict[str, Stop] = {"STOP": "end", "MAX_TOKENS": "length", "SAFETY": "refusal", "RECITATION": "refusal",
                              "BLOCKLIST": "refusal", "PROHIBITED_CONTENT": "refusal", "SPII": "refusal",
                              "IMAGE_SAFETY": "refusal"}
FINISH_OUT: dict[Stop, str] = {"end": "STOP", "stop_sequence": "STOP", "tool_use": "STOP", "length": "MAX_TOKENS",
                               "refusal": "SAFETY"}
GENERATION_CARRIED = frozenset({"maxOutputTokens", "temperature", "topP", "stopSequences", "candidateCount",
                                "responseMimeType", "responseSchema", "responseJsonSchema"})
MODES = {"AUTO": "auto", "ANY": "required", "NONE": "none", "VALIDATED": "auto"}
SKIP_SIGNATURE = "skip_thought_signature_validator"
"""What Google documents as the thought signature of a function call the model did not make
(history from another model): without one, Gemini 3 refuses the request."""


def _snake(name: str) -> str:
    return re.sub("([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _get(data: Any, name: str) -> Any:
    """A field by its JSON name (`mimeType`) or its proto name (`mime_type`): Google's API takes
    both, and the google-genai SDK sends some in the second form (`parameters_json_schema`)."""
    if not isinstance(data, dict):
        return None
    return data[name] if name in data else data.get(_snake(name))


def _lower_types(schema: Any) -> Any:
    """Gemini's OpenAPI-style `parameters` spell types in capitals (`OBJECT`); JSON Schema does not."""
    if isinstance(schema, dict):
        return {k: (v.lower() if k == "type" and isinstance(v, str) else _lower_types(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_lower_types(v) for v in schema]
    return schema


def _media(part: dict[str, Any], key: str) -> Image:
    blob = _get(part, key) or {}
    mime = str(_get(blob, "mimeType") or "")
    if not mime.startswith("image/"):
        raise TranslationError(f"a {key} part of type {mime or 'unknown'} cannot be translated to another protocol "
                               "(only images cross)")
    if key == "inlineData":
        return Image.of(mime, str(blob.get("data", "")))
    return Image(str(_get(blob, "fileUri") or ""))


def _result_parts(response: Any, nested: Any) -> tuple[tuple[Text | Image, ...], bool]:
    error = False
    if isinstance(response, dict) and set(response) == {"error"}:
        value, error = response["error"], True
    elif isinstance(response, dict) and set(response) <= {"output", "content"} and len(response) == 1:
        value = next(iter(response.values()))
    else:
        value = response
    parts: list[Text | Image] = []
    if value not in (None, "", {}):
        parts.append(Text(value if isinstance(value, str) else orjson.dumps(value).decode()))
    for part in nested if isinstance(nested, list) else []:
        if _get(part, "inlineData") is not None:
            parts.append(_media(part, "inlineData"))
    return tuple(parts), error


class _Calls:
    """Ids for calls that have none, and for their results: by name, first called first answered."""

    def __init__(self) -> None:
        self.count = 0
        self.pending: dict[str, list[str]] = {}

    def call(self, name: str, ident: Any) -> str:
        if not ident:
            ident = f"call_{self.count}"
        self.count += 1
        self.pending.setdefault(name, []).append(str(ident))
        return str(ident)

    def result(self, name: str, ident: Any) -> str:
        waiting = self.pending.get(name) or []
        if ident and str(ident) in waiting:
            waiting.remove(str(ident))
            return str(ident)
        if ident:
            return str(ident)
        return waiting.pop(0) if waiting else f"call_{name}"


def _parts(raw: list[Any], calls: _Calls, skipped: set[str] | None = None) -> list[Part]:
    """`skipped` collects the kinds of the parts left behind (thoughts: the model's own notes)."""
    parts: list[Part] = []
    for part in raw:
        if not isinstance(part, dict):
            continue
        if part.get("thought"):
            if skipped is not None:
                skipped.add("contents:thought")
            continue
        call, result = _get(part, "functionCall"), _get(part, "functionResponse")
        if isinstance(part.get("text"), str):
            if part["text"]:
                parts.append(Text(part["text"]))
        elif _get(part, "inlineData") is not None or _get(part, "fileData") is not None:
            parts.append(_media(part, "inlineData" if _get(part, "inlineData") is not None else "fileData"))
        elif isinstance(call, dict):
            name = str(call.get("name"))
            parts.append(ToolCall(calls.call(name, call.get("id")), name, orjson.dumps(call.get("args") or {}).decode()))
        elif isinstance(result, dict):
            name = str(result.get("name"))
            inner, error = _result_parts(result.get("response"), result.get("parts"))
            parts.append(ToolResult(calls.result(name, result.get("id")), inner, error, name))
        elif _get(part, "executableCode") is not None or _get(part, "codeExecutionResult") is not None:
            raise TranslationError("code execution parts are run by Google; a model of another protocol cannot see them")
    return parts


def _tool_choice(config: Any) -> ToolChoice | None:
    calling = _get(config, "functionCallingConfig")
    if not isinstance(calling, dict):
        return None
    kind = MODES.get(str(calling.get("mode", "AUTO")).upper(), "auto")
    names = _get(calling, "allowedFunctionNames") or []
    if kind == "required" and len(names) == 1:
        return ToolChoice("tool", str(names[0]))
    return ToolChoice(kind)  # type: ignore[arg-type]


def _output(config: dict[str, Any]) -> OutputFormat | None:
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if isinstance(schema, dict):
        field = "generationConfig.responseJsonSchema" if "responseJsonSchema" in config else "generationConfig.responseSchema"
        return OutputFormat("json_schema", "output", _lower_types(schema), None, field)
    if config.get("responseMimeType") == "application/json":
        return OutputFormat("json_object", field="generationConfig.responseMimeType")
    return None


def read_request(p: dict[str, Any]) -> Request:
    top = {_camel(k): v for k, v in p.items()}
    raw_config = top.get("generationConfig")
    config = {_camel(k): v for k, v in raw_config.items()} if isinstance(raw_config, dict) else {}
    coverage.refuse_gemini({**top, "generationConfig": config})
    request = Request()
    system = _get(p, "systemInstruction")
    if isinstance(system, str):
        request.system.append(system)
    elif isinstance(system, dict):
        text = "\n\n".join(str(x["text"]) for x in system.get("parts") or [] if isinstance(x, dict) and x.get("text"))
        if text:
            request.system.append(text)
    calls = _Calls()
    kinds: set[str] = set()
    for content in p.get("contents") or []:
        if not isinstance(content, dict):
            continue
        parts = _parts(content.get("parts") or [], calls, kinds)
        request.add("assistant" if content.get("role") == "model" else "user", parts)
    for tool in p.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        for declaration in _get(tool, "functionDeclarations") or []:
            schema = _get(declaration, "parametersJsonSchema") or _lower_types(declaration.get("parameters")) \
                or {"type": "object", "properties": {}}
            request.tools.append(Tool(str(declaration.get("name")), str(declaration.get("description") or ""), schema))
        kinds |= {f"tools:{_camel(k)}" for k in tool if _camel(k) != "functionDeclarations"}
    request.tool_choice = _tool_choice(_get(p, "toolConfig"))
    request.max_tokens = config.get("maxOutputTokens")
    request.temperature, request.top_p = config.get("temperature"), config.get("topP")
    request.stop = list(config.get("stopSequences") or [])
    request.output = _output(config)
    request.dropped = (coverage.dropped_fields(top, coverage.CARRIED["gemini"]) + sorted(kinds)
                       + [f"generationConfig.{k}" for k in sorted(config) if k not in GENERATION_CARRIED
                          and config[k] not in (None, False, [], {})])
    return request


def _image_part(image: Image) -> dict[str, Any]:
    inline = image.inline
    if inline is None:
        extension = image.url.rsplit(".", 1)[-1].lower()
        mime = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}.get(extension, "image/png")
        return {"fileData": {"mimeType": mime, "fileUri": image.url}}
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}


def _write_parts(parts: list[Part], names: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Text):
            out.append({"text": part.text})
        elif isinstance(part, Image):
            out.append(_image_part(part))
        elif isinstance(part, ToolCall):
            out.append({"functionCall": {"name": part.name, "args": part.input()}, "thoughtSignature": SKIP_SIGNATURE})
        else:
            name = part.name or names.get(part.call_id, part.call_id)
            text = part.text()
            response = {"error": text} if part.is_error else {"output": text}
            out.append({"functionResponse": {"name": name, "response": response}})
            out += [_image_part(image) for image in part.images]
    return out


def write_request(request: Request, model: str) -> dict[str, Any]:
    names = request.tool_names()
    contents = [{"role": "model" if t.role == "assistant" else "user", "parts": _write_parts(t.parts, names)}
                for t in request.merged_turns()]
    out: dict[str, Any] = {"contents": contents}
    system = "\n\n".join(s for s in request.system if s)
    if system:
        out["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        out["tools"] = [{"functionDeclarations": [{"name": t.name, "description": t.description,
                                                   "parametersJsonSchema": t.parameters} for t in request.tools]}]
        choice = request.tool_choice
        if choice is not None:
            calling: dict[str, Any] = {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}[choice.kind]}
            if choice.kind == "tool":
                calling["allowedFunctionNames"] = [choice.name]
            out["toolConfig"] = {"functionCallingConfig": calling}
    config: dict[str, Any] = {}
    if request.max_tokens:
        config["maxOutputTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.output is not None:
        config["responseMimeType"] = "application/json"
        if request.output.schema is not None:
            config["responseJsonSchema"] = request.output.schema
    if config:
        out["generationConfig"] = config
    if request.parallel_tool_calls is False:
        request.dropped.append("parallel_tool_calls")
    return out


def read_usage(meta: Any) -> Usage:
    meta = meta if isinstance(meta, dict) else {}
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    return Usage(int(meta.get("promptTokenCount") or 0), int(meta.get("cachedContentTokenCount") or 0), 0,
                 int(meta.get("candidatesTokenCount") or 0) + thoughts, thoughts)


def write_usage(usage: Usage) -> dict[str, int]:
    meta = {"promptTokenCount": usage.input_tokens, "candidatesTokenCount": usage.output_tokens - usage.reasoning_tokens,
            "totalTokenCount": usage.input_tokens + usage.output_tokens}
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def _candidate(chunk: dict[str, Any]) -> dict[str, Any]:
    candidates = chunk.get("candidates")
    first = candidates[0] if isinstance(candidates, list) and candidates else {}
    return first if isinstance(first, dict) else {}


def read_answer(body: dict[str, Any]) -> Answer:
    if "candidates" not in body and "promptFeedback" not in body:
        raise TranslationError("the answer has no `candidates`: it is not a Gemini answer")
    candidate = _candidate(body)
    parts = [p for p in _parts((candidate.get("content") or {}).get("parts") or [], _Calls())
             if isinstance(p, Text | ToolCall)]
    reason = candidate.get("finishReason")
    stop: Stop = FINISH_IN.get(str(reason), "end") if reason else "refusal" if not candidate else "end"
    if stop == "end" and any(isinstance(p, ToolCall) for p in parts):
        stop = "tool_use"
    return Answer(str(body.get("responseId", "")), str(body.get("modelVersion", "")), parts, stop,
                  read_usage(body.get("usageMetadata")))


def _call_part(call: ToolCall) -> dict[str, Any]:
    return {"functionCall": {"id": call.id, "name": call.name, "args": call.input()}}


def write_answer(answer: Answer, request: Request, model: str, created: int | None = None) -> dict[str, Any]:
    parts = [{"text": p.text} if isinstance(p, Text) else _call_part(p) for p in answer.parts]
    return {"candidates": [{"content": {"role": "model", "parts": parts or [{"text": ""}]},
                            "finishReason": FINISH_OUT[answer.stop], "index": 0}],
            "usageMetadata": write_usage(answer.usage), "modelVersion": model, "responseId": answer.id}


class StreamReader:
    """Gemini's stream chunks in, hub events out; its last chunk (with a finishReason) ends it."""

    def __init__(self) -> None:
        self._started = False
        self._calls = _Calls()
        self._has_calls = False

    def feed(self, event: SseEvent) -> list[Event]:
        chunk = event_object(event)
        if chunk is None:
            return []
        if isinstance(chunk.get("error"), dict):
            error = chunk["error"]
            return [Failed(str(error.get("status") or "api_error"), str(error.get("message") or ""))]
        out: list[Event] = []
        if not self._started:
            self._started = True
            out.append(Started(str(chunk.get("responseId", ""))))
        candidate = _candidate(chunk)
        for part in _parts((candidate.get("content") or {}).get("parts") or [], self._calls):
            if isinstance(part, Text):
                out.append(TextDelta(part.text))
            elif isinstance(part, ToolCall):
                index = self._calls.count - 1
                self._has_calls = True
                out += [ToolCallStarted(index, part.id, part.name), ToolArguments(index, part.arguments)]
        if chunk.get("usageMetadata"):
            out.append(UsageSeen(read_usage(chunk["usageMetadata"])))
        reason = candidate.get("finishReason")
        if reason:
            stop = FINISH_IN.get(str(reason), "end")
            out += [Stopped("tool_use" if stop == "end" and self._has_calls else stop), Finished()]
        return out


class StreamWriter:
    """Hub events in, Gemini stream chunks out: as SSE (`alt=sse`), or else as the chunks of one JSON
    array, sent as they come. A tool call goes out whole, once its arguments are complete."""

    def __init__(self, request: Request, model: str, created: int | None = None, sse: bool = True) -> None:
        self.model = model
        self.sse = sse
        self.id = ""
        self.usage = Usage()
        self.stop: Stop = "end"
        self.calls: dict[int, list[str]] = {}
        self.names: dict[int, tuple[str, str]] = {}
        self.sent = False
        self.done = False

    def _chunk(self, parts: list[dict[str, Any]], final: bool = False) -> bytes:
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if final:
            candidate["finishReason"] = FINISH_OUT[self.stop]
            chunk["usageMetadata"] = write_usage(self.usage)
        chunk |= {"modelVersion": self.model, "responseId": self.id}
        return self._emit(orjson.dumps(chunk))

    def _emit(self, data: bytes) -> bytes:
        if self.sse:
            return b"data: " + data + b"\r\n\r\n"
        lead = b",\r\n" if self.sent else b"["
        self.sent = True
        return lead + data

    def _flush_calls(self) -> list[dict[str, Any]]:
        parts = [_call_part(ToolCall(self.names[i][0], self.names[i][1], "".join(args))) for i, args in self.calls.items()]
        self.calls.clear()
        return parts

    def write(self, event: Event) -> list[bytes]:
        if isinstance(event, Started):
            self.id = event.id
            if event.usage is not None:
                self.usage = self.usage.merged(event.usage)
            return []
        if isinstance(event, TextDelta):
            calls = self._flush_calls()
            return [self._chunk([*calls, {"text": event.text}])]
        if isinstance(event, ToolCallStarted):
            self.calls[event.index] = []
            self.names[event.index] = (event.id, event.name)
        elif isinstance(event, ToolArguments) and event.index in self.calls:
            self.calls[event.index].append(event.fragment)
        elif isinstance(event, UsageSeen):
            self.usage = self.usage.merged(event.usage)
        elif isinstance(event, Stopped):
            self.stop = event.stop
        elif isinstance(event, Finished) and not self.done:
            self.done = True
            return [self._chunk(self._flush_calls() or [{"text": ""}], final=True)]
        elif isinstance(event, Failed):
            error = {"error": {"code": 502, "message": event.message, "status": event.kind.upper()}}
            return [self._emit(orjson.dumps(error))]
        return []

    def finish(self) -> list[bytes]:
        if self.sse:
            return []
        return [b"]" if self.sent else b"[]"]

    def error(self, event: bytes) -> bytes:
        """The surface's SSE error event, as this stream must end it (the array's last element)."""
        if self.sse:
            return event
        data = b"".join(line[5:].strip() for line in event.splitlines() if line.startswith(b"data:"))
        return self._emit(data) + b"]"
