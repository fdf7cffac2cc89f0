"""Every pair of the four protocols through the hub (client x target, natives excluded), whole and
streamed, text and tool calls: what a client receives conforms to its protocol's published schema
(OpenAI's OpenAPI document, vendored) or its SDK's types (anthropic, google-genai), and carries
the answer's text, tool call, stop reason and usage."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types
import orjson
import pytest
from google.genai import types as gemini_types
from pydantic import TypeAdapter

from runtime.surfaces import CHAT, GEMINI, MESSAGES, RESPONSES
from runtime.table import Target
from runtime.translation import ErrorTranslator, HubStream, StreamTranslator, plan
from runtime.translators import CODECS
from runtime.translators.model import Request, Text
from runtime.translators.sse import SseParser, frame
from runtime.upstream import Outbound
from tests.support.openai_schemas import problems, stream_event

CREATED = 1_795_000_000
WIRES = ("chat", "responses", "messages", "gemini")
PAIRS = [(client, wire) for client in WIRES for wire in WIRES if client != wire]
ARGS = '{"city":"Utrecht"}'

WHOLE: dict[str, dict[str, Any]] = {
    "chat": {
        "id": "chatcmpl-1", "object": "chat.completion", "created": CREATED, "model": "up",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}]}}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49, "prompt_tokens_details": {"cached_tokens": 32}},
    },
    "responses": {
        "id": "resp_1", "object": "response", "created_at": CREATED, "status": "completed", "model": "up",
        "output": [
            {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
            {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1", "name": "get_weather",
             "arguments": ARGS}],
        "usage": {"input_tokens": 40, "input_tokens_details": {"cached_tokens": 32}, "output_tokens": 9,
                  "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 49},
    },
    "messages": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "up",
        "content": [{"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Utrecht"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 8, "cache_read_input_tokens": 32, "cache_creation_input_tokens": 0, "output_tokens": 9},
    },
    "gemini": {
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Checking."}, {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Utrecht"}}}]},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 40, "cachedContentTokenCount": 32, "candidatesTokenCount": 9, "totalTokenCount": 49},
        "modelVersion": "up", "responseId": "1",
    },
}


def _stream(wire: str) -> bytes:
    """The same answer as WHOLE[wire], as that protocol streams it."""
    if wire == "chat":
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": CREATED, "model": "up"}
        deltas: list[tuple[dict[str, Any], str | None]] = [
            ({"role": "assistant", "content": ""}, None), ({"content": "Check"}, None), ({"content": "ing."}, None),
            ({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}, None),
            ({"tool_calls": [{"index": 0, "function": {"arguments": ARGS[:8]}}]}, None),
            ({"tool_calls": [{"index": 0, "function": {"arguments": ARGS[8:]}}]}, None), ({}, "tool_calls")]
        frames = [frame(None, {**base, "choices": [{"index": 0, "delta": d, "finish_reason": f}]}) for d, f in deltas]
        return b"".join([*frames, frame(None, {**base, "choices": [], "usage": WHOLE["chat"]["usage"]}), frame(None, "[DONE]")])
    if wire == "responses":
        whole = WHOLE["responses"]
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": {**whole, "status": "in_progress", "output": [], "usage": None}},
            {"type": "response.output_item.added", "output_index": 0, "item": {**whole["output"][0], "content": []}},
            {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "Check"},
            {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0, "delta": "ing."},
            {"type": "response.output_item.added", "output_index": 1, "item": {**whole["output"][1], "arguments": ""}},
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": ARGS},
            {"type": "response.completed", "response": whole},
        ]
        return b"".join(frame(e["type"], {**e, "sequence_number": i}) for i, e in enumerate(events))
    if wire == "messages":
        message = WHOLE["messages"]
        named: list[dict[str, Any]] = [
            {"type": "message_start", "message": {**message, "content": [], "stop_reason": None,
                                                  "usage": {**message["usage"], "output_tokens": 1}}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Check"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ing."}},
            {"type": "content_block_stop", "index": 0},
            {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ARGS}},
            {"type": "content_block_stop", "index": 1},
            {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 9}},
            {"type": "message_stop"},
        ]
        return b"".join(frame(e["type"], e) for e in named)
    whole = WHOLE["gemini"]
    first = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Check"}]}, "index": 0}], "modelVersion": "up"}
    second = {"candidates": [{"content": {"role": "model", "parts": [{"text": "ing."}]}, "index": 0}], "modelVersion": "up"}
    last = {**whole, "candidates": [{**whole["candidates"][0], "content": {"role": "model", "parts": [whole["candidates"][0]["content"]["parts"][1]]}}]}
    return b"".join(frame(None, c) for c in (first, second, last))


def _request(client: str, stream: bool) -> Request:
    request = Request(stream=stream, include_usage=True)
    request.system.append("be brief")
    return request


def _events(raw: bytes) -> list[tuple[str | None, Any]]:
    return [(e.event, e.data if e.data == "[DONE]" else json.loads(e.data)) for e in SseParser().feed(raw)]


def check_whole(client: str, answer: dict[str, Any]) -> None:
    if client == "chat":
        assert problems("CreateChatCompletionResponse", answer) == []
    elif client == "responses":
        assert problems("Response", answer) == []
    elif client == "messages":
        anthropic.types.Message.model_validate(answer)
    else:
        gemini_types.GenerateContentResponse.model_validate(answer)


def check_event(client: str, name: str | None, data: Any) -> None:
    if client == "chat":
        if data != "[DONE]":
            assert problems("ErrorResponse" if "error" in data else "CreateChatCompletionStreamResponse", data) == []
    elif client == "responses":
        assert name == data["type"]
        assert problems(stream_event(data["type"]), data) == [], data["type"]
        assert problems("ResponseStreamEvent", data) == [], data["type"]
    elif client == "messages":
        assert name == data["type"]
        if name != "error":
            TypeAdapter(anthropic.types.RawMessageStreamEvent).validate_python(data)
    else:
        assert name is None
        if "error" not in data:
            gemini_types.GenerateContentResponse.model_validate(data)


def _text_and_call(client: str, answer: dict[str, Any]) -> tuple[str, tuple[str, Any], dict[str, int]]:
    """(text, (tool name, arguments), usage figures) of a whole answer in the client's protocol."""
    if client == "chat":
        message = answer["choices"][0]["message"]
        call = message["tool_calls"][0]["function"]
        usage = answer["usage"]
        return message["content"], (call["name"], json.loads(call["arguments"])), {
            "in": usage["prompt_tokens"], "cached": usage["prompt_tokens_details"]["cached_tokens"], "out": usage["completion_tokens"]}
    if client == "responses":
        text = "".join(c["text"] for i in answer["output"] if i["type"] == "message" for c in i["content"])
        [fc] = [i for i in answer["output"] if i["type"] == "function_call"]
        usage = answer["usage"]
        return text, (fc["name"], json.loads(fc["arguments"])), {
            "in": usage["input_tokens"], "cached": usage["input_tokens_details"]["cached_tokens"], "out": usage["output_tokens"]}
    if client == "messages":
        text = "".join(b["text"] for b in answer["content"] if b["type"] == "text")
        [use] = [b for b in answer["content"] if b["type"] == "tool_use"]
        usage = answer["usage"]
        return text, (use["name"], use["input"]), {
            "in": usage["input_tokens"] + usage["cache_read_input_tokens"], "cached": usage["cache_read_input_tokens"],
            "out": usage["output_tokens"]}
    parts = answer["candidates"][0]["content"]["parts"]
    text = "".join(p.get("text", "") for p in parts)
    [call] = [p["functionCall"] for p in parts if "functionCall" in p]
    meta = answer["usageMetadata"]
    return text, (call["name"], call["args"]), {"in": meta["promptTokenCount"], "cached": meta.get("cachedContentTokenCount", 0),
                                                "out": meta["candidatesTokenCount"]}


EXPECTED = ("Checking.", ("get_weather", {"city": "Utrecht"}), {"in": 40, "cached": 32, "out": 9})


@pytest.mark.parametrize(("client", "wire"), PAIRS)
def test_a_whole_answer_conforms_and_carries_everything(client: str, wire: str) -> None:
    answer = CODECS[client].write_answer(CODECS[wire].read_answer(WHOLE[wire]), _request(client, False), "up")
    check_whole(client, answer)
    assert _text_and_call(client, answer) == EXPECTED


def _translated_stream(client: str, wire: str, raw: bytes, chunk: int = 29) -> bytes:
    hub = StreamTranslator(HubStream(CODECS[wire].stream_reader(), CODECS[client].stream_writer(_request(client, True), "up", True)))
    out = b"".join(hub.feed(raw[i:i + chunk]) for i in range(0, len(raw), chunk))
    return out + hub.finish()


def _collect(client: str, events: list[tuple[str | None, Any]]) -> dict[str, Any]:
    """The whole answer a client builds from the stream (its final event, or its chunks merged)."""
    if client == "responses":
        return dict(events[-1][1]["response"])
    if client == "messages":
        with_blocks: dict[int, dict[str, Any]] = {}
        message = dict(events[0][1]["message"])
        for _, data in events:
            if data["type"] == "content_block_start":
                with_blocks[data["index"]] = dict(data["content_block"], _json="")
            elif data["type"] == "content_block_delta":
                block = with_blocks[data["index"]]
                if data["delta"]["type"] == "text_delta":
                    block["text"] += data["delta"]["text"]
                else:
                    block["_json"] += data["delta"]["partial_json"]
            elif data["type"] == "message_delta":
                message["usage"] = {**message["usage"], **data["usage"]}
        message["content"] = [{k: v for k, v in b.items() if k != "_json"} | ({"input": json.loads(b["_json"])} if b["type"] == "tool_use" else {})
                              for b in with_blocks.values()]
        return message
    if client == "chat":
        chunks = [d for _, d in events if d != "[DONE]"]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        calls = [t for c in chunks if c["choices"] for t in c["choices"][0]["delta"].get("tool_calls") or []]
        arguments = "".join(t["function"].get("arguments") or "" for t in calls)
        call = {"id": calls[0]["id"], "type": "function", "function": {"name": calls[0]["function"]["name"], "arguments": arguments}}
        return {"choices": [{"message": {"content": text, "tool_calls": [call]}}], "usage": chunks[-1]["usage"]}
    parts = [p for _, d in events for p in d["candidates"][0]["content"]["parts"]]
    return {"candidates": [{"content": {"parts": parts}}], "usageMetadata": events[-1][1]["usageMetadata"]}


@pytest.mark.parametrize(("client", "wire"), PAIRS)
def test_a_stream_conforms_event_by_event_and_carries_everything(client: str, wire: str) -> None:
    events = _events(_translated_stream(client, wire, _stream(wire)))
    for name, data in events:
        check_event(client, name, data)
    if client == "responses":
        assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
        assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    if client == "chat":
        assert events[-1][1] == "[DONE]"
    if client == "messages":
        assert events[-1][0] == "message_stop"
    if client == "gemini":
        assert events[-1][1]["candidates"][0]["finishReason"] == "STOP"
    assert _text_and_call(client, _collect(client, events)) == EXPECTED


@pytest.mark.parametrize(("client", "wire"), PAIRS)
def test_an_upstream_error_event_ends_the_stream_in_the_clients_shape(client: str, wire: str) -> None:
    raw = _stream(wire)
    cut = raw.index(b"\n\n", raw.index(b"Check")) + 2
    error = {
        "chat": frame(None, {"error": {"message": "overloaded", "type": "server_error", "code": None, "param": None}}),
        "responses": frame("error", {"type": "error", "code": "server_error", "message": "overloaded", "param": None,
                                     "sequence_number": 9}),
        "messages": frame("error", {"type": "error", "error": {"type": "overloaded_error", "message": "overloaded"}}),
        "gemini": frame(None, {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
    }[wire]
    events = _events(_translated_stream(client, wire, raw[:cut] + error))
    for name, data in events:
        check_event(client, name, data)
    last = events[-1][1]
    assert "overloaded" in json.dumps(last)
    assert {"chat": lambda: "error" in last, "responses": lambda: last["type"] == "response.failed",
            "messages": lambda: last["type"] == "error", "gemini": lambda: "error" in last}[client]()


TARGETS = {"chat": Target("p", "m", "m", "openai", "chat"), "responses": Target("p", "m", "m", "openai", "responses"),
           "messages": Target("p", "m", "m", "anthropic"), "gemini": Target("p", "m", "m", "gemini")}
SURFACES = {"chat": CHAT, "responses": RESPONSES, "messages": MESSAGES, "gemini": GEMINI}
REQUESTS: dict[str, dict[str, Any]] = {
    "chat": {"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]},
    "responses": {"model": "m", "instructions": "be brief", "input": "hi"},
    "messages": {"model": "m", "max_tokens": 64, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]},
    "gemini": {"systemInstruction": {"parts": [{"text": "be brief"}]}, "contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}


@pytest.mark.parametrize(("client", "wire"), PAIRS)
def test_plan_translates_exactly_when_the_target_does_not_serve_the_clients_surface(client: str, wire: str) -> None:
    step = plan(SURFACES[client], TARGETS[wire], Outbound(client, REQUESTS[client], False, {}))
    assert step.error is None and step.translated and step.outbound.surface == wire
    native = plan(SURFACES[client], TARGETS[client], Outbound(client, REQUESTS[client], False, {}))
    assert not native.translated and native.outbound.payload is REQUESTS[client]
    assert CODECS[wire].read_request(step.outbound.payload).system == ["be brief"]


@pytest.mark.parametrize("client", ["chat", "responses"])
def test_a_translated_error_answer_on_an_openai_surface_conforms(client: str) -> None:
    translator = ErrorTranslator(SURFACES[client], TARGETS["messages"], 429)
    translator.feed(orjson.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}))
    assert problems("ErrorResponse", orjson.loads(translator.finish())) == []


@pytest.mark.parametrize("wire", ["chat", "messages", "gemini"])
def test_a_stream_the_gateway_ends_with_an_error_conforms_on_the_responses_surface(wire: str) -> None:
    raw = _stream(wire)
    hub = StreamTranslator(HubStream(CODECS[wire].stream_reader(), CODECS["responses"].stream_writer(_request("responses", True), "up", True)))
    head = hub.feed(raw[: raw.index(b"\n\n", raw.index(b"Check")) + 2])
    events = _events(head + hub.error(RESPONSES.stream_error("provider_error", "upstream stream failed: connect")))
    assert events[-1][0] == "error" and events[-1][1]["message"] == "upstream stream failed: connect"
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    for name, data in events:
        check_event("responses", name, data)


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [({"contents": [], "generationConfig": {"candidateCount": 2}}, "candidateCount > 1"),
     ({"contents": [], "generation_config": {"response_logprobs": True}}, "responseLogprobs"),
     ({"contents": [], "cachedContent": "cachedContents/abc"}, "cachedContent refers to content stored by Google"),
     ({"contents": [{"role": "model", "parts": [{"executableCode": {"code": "print(1)"}}]}]}, "code execution"),
     ({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}]}]},
      "inlineData part of type application/pdf"),
     ({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}},
                                                {"fileData": {"mimeType": "video/mp4", "fileUri": "gs://v"}}]}]}, "video/mp4")],
)
def test_gemini_requests_that_would_lose_content_are_refused(request_body: dict[str, Any], fragment: str) -> None:
    from runtime.exceptions import TranslationError

    with pytest.raises(TranslationError, match=fragment):
        CODECS["gemini"].read_request(request_body)


def test_what_each_reader_leaves_behind_is_named() -> None:
    gemini = CODECS["gemini"].read_request({
        "contents": [{"role": "model", "parts": [{"text": "hmm", "thought": True}, {"text": "Hi."}]}],
        "safety_settings": [{"category": "c"}], "labels": {"team": "x"}, "tools": [{"google_search": {}}, {"codeExecution": {}}],
        "generationConfig": {"topK": 3, "seed": 7, "maxOutputTokens": 9, "thinkingConfig": {"thinkingBudget": 0}}})
    assert gemini.dropped == ["labels", "safetySettings", "contents:thought", "tools:codeExecution", "tools:googleSearch",
                              "generationConfig.seed", "generationConfig.thinkingConfig", "generationConfig.topK"]
    assert gemini.max_tokens == 9 and [p for t in gemini.turns for p in t.parts] == [Text("Hi.")]
    messages = CODECS["messages"].read_request({"max_tokens": 8, "top_k": 4, "messages": [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "...", "signature": "s"}, {"type": "text", "text": "ok"}]}]})
    assert messages.dropped == ["top_k", "content:thinking"]
    responses = CODECS["responses"].read_request({"input": [{"type": "reasoning", "summary": []}], "text": {"verbosity": "low"}})
    assert responses.dropped == ["text.verbosity", "input:reasoning"]
    both = CODECS["chat"].read_request({"messages": [], "temperature": 0.3, "top_p": 0.9})
    assert "top_p" not in CODECS["messages"].write_request(both, "claude") and both.dropped == ["top_p"]


def test_a_server_tool_turn_in_anthropic_history_is_refused() -> None:
    from runtime.exceptions import TranslationError

    with pytest.raises(TranslationError, match="web_search_tool_result"):
        CODECS["messages"].read_request({"messages": [{"role": "assistant", "content": [
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}]}]})


def test_a_gemini_json_array_stream_that_fails_midway_stays_valid_json() -> None:
    raw = _stream("messages")
    hub = StreamTranslator(HubStream(CODECS["messages"].stream_reader(), CODECS["gemini"].stream_writer(Request(), "up", False)))
    head = hub.feed(raw[: raw.index(b"\n\n", raw.index(b"ing.")) + 2])
    body = json.loads(head + hub.error(GEMINI.stream_error("provider_error", "upstream stream failed: connect")))
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in body[:-1]] == ["Check", "ing."]
    assert body[-1]["error"]["message"] == "upstream stream failed: connect"
