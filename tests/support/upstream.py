"""A mock LLM provider for end-to-end tests: speaks OpenAI (and Azure OpenAI), Anthropic Messages
and Gemini, records every request it receives, and fails on demand (status codes, Retry-After,
answers held until the test releases them, streams that die mid-way or mid-event, streams that
end early without their final event, streams held or paced mid-way, streams held open or dropped
after their final event, bodies cut short, answers that echo the credential headers, failures of
one credential among several, 200s that are not their protocol's, floods of hundreds of megabytes,
and replays of the answers real providers gave the captured clients in `tests/fixtures/`). It
answers each protocol's token-count request with the words of the request's text
(`runtime.upstream.mock.word_count`), and as a Chat Completions-only server (`chat_only`, as vLLM
and Ollama are) it answers 404 on /v1/responses."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from runtime.upstream.mock import word_count
from tests.support.servers import ServerThread

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    port: int | None = None
    """The client's port: the same one twice means a kept-alive connection."""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Fault:
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False
    """Answer only once the test calls `release()`: a provider that does not answer in time."""
    die_after: int | None = None
    """Drop the connection after this many events (a non-streaming body: after this many halves)."""
    mid_event: bool = False
    """When dying, first send half of the next event."""
    end_after: int | None = None
    """End the stream cleanly after this many events, without its final one."""
    hold_after: int | None = None
    """Hold the stream after this many events until the test calls `release()`."""
    pace_s: float = 0.0
    """Wait this long after each event: a stream that trickles (for a deadline on the whole stream)."""
    junk_after: int | None = None
    """Send an event whose data is valid JSON of the wrong shape (`[1, 2]`) after this many events."""
    after_final: str | None = None
    """After the stream's final event: "hold" the connection open until `release()`, or "drop" it."""
    echo: bool = False
    """Echo the credential headers the request carried: in the error body with `status`, else in
    the answer's text (a stream's too)."""
    raw: tuple[str, bytes] | None = None
    """Answer 200 with this content type and body, whatever was asked."""
    flood: int | None = None
    """Answer 200 with this many bytes of one JSON value (a stream: one SSE line) that never ends,
    after `flood_after` events of a stream; `sent` counts what went out before the proxy hung up."""
    flood_after: int = 0
    replay: str | None = None
    times: int | None = None
    path_contains: str | None = None
    credential: str | None = None
    """Only requests that carry this credential (in any of `CREDENTIAL_HEADERS`): one key of several."""
    released: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    sent: int = field(default=0, init=False)
    stopped: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    """Set once a flood ended, sent whole or cut off by the proxy."""

    async def held(self) -> None:
        await asyncio.to_thread(self.released.wait)


class MockUpstream:
    def __init__(self, chat_only: bool = False) -> None:
        self.chat_only = chat_only
        self.requests: list[Recorded] = []
        self._faults: list[Fault] = []
        self._holding: list[Fault] = []
        self._lock = threading.Condition()
        routes = [
            Route("/v1/responses/input_tokens", self._input_tokens, methods=["POST"]),
            Route("/v1/messages/count_tokens", self._count_tokens, methods=["POST"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/responses", self._responses, methods=["POST"]),
            Route("/openai/deployments/{deployment}/chat/completions", self._chat, methods=["POST"]),
            Route("/openai/v1/responses", self._responses, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/v1/messages", self._messages, methods=["POST"]),
            Route("/v1beta/models/{target}", self._gemini, methods=["POST"]),
        ]
        self.tool_calls: list[tuple[str, dict[str, Any]]] = []
        self.last_fault: Fault | None = None
        self.app = Starlette(routes=routes)
        self._server = ServerThread(self.app)
        self.base_url = self._server.base_url

    def __enter__(self) -> MockUpstream:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.__exit__(*exc)

    def fail(self, **kwargs: Any) -> None:
        fault = Fault(**kwargs)
        with self._lock:
            self._faults.append(fault)
            if fault.hold or fault.hold_after is not None or fault.after_final == "hold":
                self._holding.append(fault)

    def release(self) -> None:
        """Let every answer held so far go on."""
        with self._lock:
            holding, self._holding = self._holding, []
        for fault in holding:
            fault.released.set()

    def wait_for_requests(self, count: int, timeout_s: float = 10) -> None:
        """Return once this upstream has received `count` requests (each recorded before any hold)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self.requests) >= count, timeout_s):
                raise AssertionError(f"{len(self.requests)} requests arrived, not {count}")

    def ask_tool(self, name: str, arguments: dict[str, Any]) -> None:
        """The next answer (of any protocol) asks for this tool call instead of answering in text."""
        with self._lock:
            self.tool_calls.append((name, arguments))

    def _next_tool(self) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            return self.tool_calls.pop(0) if self.tool_calls else None

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def _take_fault(self, path: str, carried: set[str]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path_contains and fault.path_contains not in path:
                    continue
                if fault.credential is not None and fault.credential not in carried:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                self.last_fault = fault
                return fault
        return None

    async def _record(self, request: Request) -> tuple[Recorded, Fault | None]:
        body = await request.body()
        rec = Recorded(
            request.method, request.url.path, dict(request.query_params), {k.lower(): v for k, v in request.headers.items()}, body,
            request.client.port if request.client is not None else None,
        )
        with self._lock:
            self.requests.append(rec)
            self._lock.notify_all()
        fault = self._take_fault(request.url.path, _carried(rec))
        if fault is not None and fault.hold:
            await fault.held()
        return rec, fault

    @staticmethod
    def _fault_response(fault: Fault, rec: Recorded) -> Response | None:
        if fault.replay is not None:
            captured = (FIXTURES / fault.replay).read_text()
            return MockUpstream._stream([event + "\n\n" for event in captured.strip().split("\n\n")], fault)
        if fault.raw is not None:
            return Response(fault.raw[1], media_type=fault.raw[0])
        if fault.flood is not None and fault.flood_after == 0:
            streamed = bool((rec.json or {}).get("stream")) or "stream" in rec.path
            return MockUpstream._stream([], fault, media_type="text/event-stream" if streamed else "application/json")
        if fault.status is not None:
            message = f"mock failure {fault.status}"
            if fault.echo:
                message = f"invalid request; it carried {_credential_headers(rec)}"
            body = fault.body if fault.body is not None else {"error": {"message": message, "type": "server_error"}}
            return JSONResponse(body, status_code=fault.status, headers=fault.headers)
        return None

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})

    def _chat_tool(self, payload: dict[str, Any], model: str, ident: str, usage: dict[str, Any],
                   tool: tuple[str, dict[str, Any]], fault: Fault | None) -> Response:
        call_id = "call_" + uuid.uuid4().hex[:12]
        arguments = json.dumps(tool[1])
        call = {"id": call_id, "type": "function", "function": {"name": tool[0], "arguments": arguments}}
        if not payload.get("stream"):
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return self._json({"id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
                               "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                               "usage": usage}, fault)
        base = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        half = len(arguments) // 2
        deltas: list[dict[str, Any]] = [
            {"role": "assistant", "content": None},
            {"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": tool[0], "arguments": ""}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": arguments[:half]}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": arguments[half:]}}]},
        ]
        events = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        if (payload.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        return self._stream([f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"], fault)

    async def _chat(self, request: Request) -> Response:
        rec, fault = await self._record(request)
        if fault is not None and (early := self._fault_response(fault, rec)) is not None:
            return early
        payload = rec.json or {}
        model = payload.get("model") or request.path_params.get("deployment", "unknown")
        text = f"mock reply from {model}" + _echoed(fault, rec)
        cached = 7 if "prompt_cache_key" in payload else 0
        usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16, "prompt_tokens_details": {"cached_tokens": cached}}
        ident = "chatcmpl-" + uuid.uuid4().hex[:12]
        tool = self._next_tool()
        if tool is not None:
            return self._chat_tool(payload, model, ident, usage, tool, fault)
        if not payload.get("stream"):
            return self._json({
                "id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": usage,
            }, fault)
        base = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
        events += [{**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in _words(text)]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (payload.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        chunks = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
        return self._stream(chunks, fault)

    async def _counted(self, request: Request, answer: dict[str, Any], field: str) -> Response:
        rec, fault = await self._record(request)
        if fault is not None and (early := self._fault_response(fault, rec)) is not None:
            return early
        return self._json({**answer, field: word_count(rec.json)}, fault)

    async def _input_tokens(self, request: Request) -> Response:
        if self.chat_only:
            return await self._not_found(request)
        return await self._counted(request, {"object": "response.input_tokens"}, "input_tokens")

    async def _count_tokens(self, request: Request) -> Response:
        return await self._counted(request, {}, "input_tokens")

    async def _not_found(self, request: Request) -> Response:
        """What vLLM answers on a path it does not serve."""
        await self._record(request)
        return JSONResponse({"detail": "Not Found"}, status_code=404)

    async def _responses(self, request: Request) -> Response:
        if self.chat_only:
            return await self._not_found(request)
        rec, fault = await self._record(request)
        if fault is not None and (early := self._fault_response(fault, rec)) is not None:
            return early
        payload = rec.json or {}
        model = payload.get("model", "unknown")
        text = f"mock reply from {model}"
        ident = "resp_" + uuid.uuid4().hex[:12]
        item_id = "msg_" + uuid.uuid4().hex[:12]
        cached = 7 if "prompt_cache_key" in payload else 0
        usage = {"input_tokens": 11, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": 5,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 16}
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {"id": item_id, "type": "message", "status": "completed", "role": "assistant", "content": [part]}
        tool = self._next_tool()
        if tool is not None:
            item = {"id": "fc_" + item_id, "type": "function_call", "status": "completed", "call_id": "call_" + item_id,
                    "name": tool[0], "arguments": json.dumps(tool[1])}
        response = {"id": ident, "object": "response", "created_at": int(time.time()), "status": "completed",
                    "model": model, "output": [item], "usage": usage, "error": None, "incomplete_details": None}
        if not payload.get("stream"):
            return self._json(response, fault)
        pending = {**response, "status": "in_progress", "output": [], "usage": None}
        seq = iter(range(1000))
        if tool is not None:
            calls = [
                ("response.created", {"response": pending}),
                ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "arguments": ""}}),
                ("response.function_call_arguments.delta", {"item_id": item["id"], "output_index": 0, "delta": item["arguments"]}),
                ("response.function_call_arguments.done", {"item_id": item["id"], "output_index": 0, "name": tool[0],
                                                           "arguments": item["arguments"]}),
                ("response.output_item.done", {"output_index": 0, "item": item}),
                ("response.completed", {"response": response}),
            ]
            return self._stream([f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': next(seq), **data})}\n\n"
                                 for name, data in calls], fault)
        events = [
            ("response.created", {"response": pending}),
            ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
            ("response.content_part.added", {"item_id": item_id, "output_index": 0, "content_index": 0, "part": {**part, "text": ""}}),
            *[("response.output_text.delta", {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": w}) for w in _words(text)],
            ("response.output_text.done", {"item_id": item_id, "output_index": 0, "content_index": 0, "text": text}),
            ("response.content_part.done", {"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
            ("response.output_item.done", {"output_index": 0, "item": item}),
            ("response.completed", {"response": response}),
        ]
        chunks = [
            f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': next(seq), **data})}\n\n" for name, data in events
        ]
        return self._stream(chunks, fault)

    async def _messages(self, request: Request) -> Response:
        rec, fault = await self._record(request)
        if fault is not None and (early := self._fault_response(fault, rec)) is not None:
            return early
        payload = rec.json or {}
        model = payload.get("model", "unknown")
        ident = "msg_" + uuid.uuid4().hex[:12]
        tool = self._next_tool()
        cached = 7 if "cache_control" in json.dumps(payload) else 0
        usage = {"input_tokens": 11 - cached, "output_tokens": 5, "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}
        if tool is not None:
            block: dict[str, Any] = {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:12], "name": tool[0], "input": tool[1]}
            stop = "tool_use"
        else:
            block = {"type": "text", "text": f"mock reply from {model}" + _echoed(fault, rec)}
            stop = "end_turn"
        message = {"id": ident, "type": "message", "role": "assistant", "model": model, "content": [block],
                   "stop_reason": stop, "stop_sequence": None, "usage": usage}
        if not payload.get("stream"):
            return self._json(message, fault)
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                                    ("ping", {"type": "ping"})]
        if block["type"] == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                                   "content_block": {"type": "text", "text": ""}}))
            for word in _words(block["text"]):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                       "delta": {"type": "text_delta", "text": word}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                                   "content_block": {**block, "input": {}}}))
            arguments = json.dumps(block["input"])
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                               "usage": {"output_tokens": 5}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        return self._stream([f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events], fault)

    async def _gemini(self, request: Request) -> Response:
        rec, fault = await self._record(request)
        if fault is not None and (early := self._fault_response(fault, rec)) is not None:
            return early
        model, _, method = request.path_params["target"].partition(":")
        if method == "countTokens":
            return self._json({"totalTokens": word_count(rec.json)}, fault)
        text = f"mock reply from {model}"
        usage = {"promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16}
        if {"cachedContent", "cached_content"} & set(rec.json or {}):
            usage["cachedContentTokenCount"] = 7
        tool = self._next_tool()
        if tool is not None:
            call = {"content": {"role": "model", "parts": [{"functionCall": {"name": tool[0], "args": tool[1]}}]},
                    "finishReason": "STOP", "index": 0}
            answer = {"candidates": [call], "usageMetadata": usage, "modelVersion": model}
            if method == "generateContent":
                return self._json(answer, fault)
            return self._stream([f"data: {json.dumps(answer)}\r\n\r\n"], fault)
        if method == "generateContent":
            return self._json({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                               "finishReason": "STOP", "index": 0}],
                               "usageMetadata": usage, "modelVersion": model}, fault)
        words = _words(text)
        chunks = []
        for i, word in enumerate(words):
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": word}]}, "index": 0}
            chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
            if i == len(words) - 1:
                candidate["finishReason"] = "STOP"
                chunk["usageMetadata"] = usage
            chunks.append(f"data: {json.dumps(chunk)}\r\n\r\n")
        return self._stream(chunks, fault)

    @staticmethod
    def _stream(chunks: list[str], fault: Fault | None, media_type: str = "text/event-stream") -> StreamingResponse:
        die_after = fault.die_after if fault is not None else None
        end_after = fault.end_after if fault is not None else None
        mid_event = fault.mid_event if fault is not None else False
        hold_after = fault.hold_after if fault is not None else None
        pace_s = fault.pace_s if fault is not None else 0.0
        junk_after = fault.junk_after if fault is not None else None
        flood_at = fault.flood_after if fault is not None and fault.flood is not None else None

        async def body() -> Any:
            for i, chunk in enumerate(chunks):
                if fault is not None and i == hold_after:
                    await fault.held()
                if fault is not None and i == flood_at:
                    async for piece in _flood(fault, media_type == "text/event-stream"):
                        yield piece
                    return
                if junk_after is not None and i == junk_after:
                    yield b"event: content_block_delta\ndata: [1, 2]\n\n"
                if end_after is not None and i >= end_after:
                    return
                if die_after is not None and i >= die_after:
                    if mid_event:
                        yield chunk.encode()[: len(chunk) // 2]
                        await asyncio.sleep(0.05)
                    raise _Drop
                yield chunk.encode()
                await asyncio.sleep(pace_s)
            if fault is not None and flood_at is not None and not chunks:
                async for piece in _flood(fault, media_type == "text/event-stream"):
                    yield piece
            if fault is not None and fault.after_final == "hold":
                await fault.held()
            if fault is not None and fault.after_final == "drop":
                raise _Drop

        return StreamingResponse(body(), media_type=media_type)

    @staticmethod
    def _json(body: Any, fault: Fault | None) -> Response:
        if fault is None or fault.die_after is None:
            return JSONResponse(body)
        text = json.dumps(body)
        half = len(text) // 2
        return MockUpstream._stream([text[:half], text[half:]], fault, media_type="application/json")


CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")
FLOOD_PIECE = b"a" * 65536


def _credential_headers(rec: Recorded) -> str:
    return ", ".join(f"{name}: {rec.headers[name]}" for name in CREDENTIAL_HEADERS if name in rec.headers)


def _carried(rec: Recorded) -> set[str]:
    """The credentials a request carried, as values (a Bearer token without its scheme)."""
    values = (rec.headers.get(name) for name in CREDENTIAL_HEADERS)
    return {value.removeprefix("Bearer ") for value in values if value}


def _echoed(fault: Fault | None, rec: Recorded) -> str:
    return f" (your request carried {_credential_headers(rec)})" if fault is not None and fault.echo else ""


async def _flood(fault: Fault, sse: bool) -> Any:
    """One JSON value (an SSE line) of `fault.flood` bytes that never ends."""
    assert fault.flood is not None
    try:
        start = b'data: {"x": "' if sse else b'{"x": "'
        fault.sent += len(start)
        yield start
        while fault.sent < fault.flood:
            fault.sent += len(FLOOD_PIECE)
            yield FLOOD_PIECE
            await asyncio.sleep(0)
    finally:
        fault.stopped.set()


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + words[-1:]


class _Drop(Exception):
    """Raised inside a streaming body: uvicorn then closes the connection with the answer unfinished."""
