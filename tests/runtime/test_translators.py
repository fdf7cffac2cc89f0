"""Golden translations through the hub for the OpenAI <-> Anthropic pairs, tool calls included
(syrupy snapshots); every other pair is in test_translation_hub.py."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from syrupy.assertion import SnapshotAssertion

from runtime.exceptions import TranslationError
from runtime.translation import HubStream
from runtime.translators import chat, coverage, messages, responses
from runtime.translators.model import Request
from runtime.translators.sse import SseEvent, SseParser, frame
from tests.conftest import ROOT


def chat_to_messages(p: dict[str, Any], model: str) -> dict[str, Any]:
    return messages.write_request(chat.read_request(p), model)


def responses_to_messages(p: dict[str, Any], model: str) -> dict[str, Any]:
    return messages.write_request(responses.read_request(p), model)


def messages_to_chat(p: dict[str, Any], model: str) -> dict[str, Any]:
    return chat.write_request(messages.read_request(p), model)


def message_to_chat(m: dict[str, Any], model: str, created: int | None = None) -> dict[str, Any]:
    return chat.write_answer(messages.read_answer(m), Request(), model, created)


def message_to_response(m: dict[str, Any], model: str, created: int | None = None) -> dict[str, Any]:
    return responses.write_answer(messages.read_answer(m), Request(), model, created)


def chat_to_message(r: dict[str, Any], model: str) -> dict[str, Any]:
    return messages.write_answer(chat.read_answer(r), Request(), model)


def anthropic_to_chat_stream(model: str, include_usage: bool, created: int) -> HubStream:
    return HubStream(messages.StreamReader(), chat.StreamWriter(Request(include_usage=include_usage), model, created))


def anthropic_to_responses_stream(model: str, created: int) -> HubStream:
    return HubStream(messages.StreamReader(), responses.StreamWriter(Request(), model, created))


def chat_to_anthropic_stream(model: str) -> HubStream:
    return HubStream(chat.StreamReader(), messages.StreamWriter(Request(), model))



CREATED = 1_795_000_000
PNG = "data:image/png;base64,iVBORw0KGgo="
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

CHAT_REQUEST = {
    "model": "gpt-4o", "max_tokens": 512, "temperature": 0.2, "stop": "END", "user": "alice",
    "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": [{"type": "text", "text": "What is this and the weather?"},
                                     {"type": "image_url", "image_url": {"url": PNG}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Amsterdam\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12°C, rain"},
        {"role": "user", "content": "Thanks. Tomorrow?"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": WEATHER}}],
    "tool_choice": "auto", "parallel_tool_calls": False, "stream": True, "stream_options": {"include_usage": True},
}

RESPONSES_REQUEST = {
    "model": "gpt-4o", "instructions": "Be terse.", "max_output_tokens": 300, "stream": True, "store": False,
    "reasoning": {"effort": "low"}, "prompt_cache_key": "thread-1", "include": ["reasoning.encrypted_content"],
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Repo rules: no force push."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "List files"},
                                                        {"type": "input_image", "image_url": PNG}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_9", "name": "exec_command", "arguments": "{\"cmd\": \"ls\"}"},
        {"type": "function_call_output", "call_id": "call_9", "output": "README.md\nsetup.py"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Two files."}]},
        {"type": "message", "role": "user", "content": "Open README"},
    ],
    "tools": [{"type": "function", "name": "exec_command", "description": "Run a command", "parameters": {"type": "object"}},
              {"type": "web_search"}, {"type": "namespace", "name": "multi_agent_v1", "tools": []}],
    "tool_choice": "auto", "parallel_tool_calls": True,
}

MESSAGES_REQUEST = {
    "model": "claude-sonnet", "max_tokens": 1024, "stream": True, "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Fix the bug", "cache_control": {"type": "ephemeral"}},
                                     {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Reading the file."},
                                          {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.py"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "print(1)"}]}]},
    ],
    "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}}],
    "tool_choice": {"type": "any"}, "metadata": {"user_id": "session-7"},
}

ANTHROPIC_MESSAGE = {
    "id": "msg_01ABC", "type": "message", "role": "assistant", "model": "claude-haiku",
    "content": [{"type": "text", "text": "Checking the weather."},
                {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Utrecht"}}],
    "stop_reason": "tool_use", "stop_sequence": None,
    "usage": {"input_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5, "output_tokens": 17},
}

CHAT_RESPONSE = {
    "id": "chatcmpl-XYZ", "object": "chat.completion", "created": CREATED, "model": "gpt-5-mini",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Let me look.",
                 "tool_calls": [{"id": "call_5", "type": "function", "function": {"name": "Read", "arguments": "{\"path\":\"b.py\"}"}}]}}],
    "usage": {"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49, "prompt_tokens_details": {"cached_tokens": 32}},
}


def anthropic_stream() -> bytes:
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": [], "stop_reason": None,
                                                                "usage": {"input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 1}}}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "the weather."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Utrecht\"}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 17}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(frame(name, data) for name, data in events)


def chat_stream() -> bytes:
    base = {"id": "chatcmpl-XYZ", "object": "chat.completion.chunk", "created": CREATED, "model": "gpt-5-mini"}
    chunks: list[dict[str, Any] | str] = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "Let me "}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "look."}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_5", "type": "function",
                                                                    "function": {"name": "Read", "arguments": ""}}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"path\":"}}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"b.py\"}"}}]}, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {**base, "choices": [], "usage": CHAT_RESPONSE["usage"]},
        "[DONE]",
    ]
    return b"".join(frame(None, c) for c in chunks)


def run_stream(translator: Any, raw: bytes, chunk_size: int = 37) -> list[Any]:
    parser = SseParser()
    out: list[bytes] = []
    for i in range(0, len(raw), chunk_size):
        for event in parser.feed(raw[i : i + chunk_size]):
            out += translator.feed(event)
    for event in parser.finish():
        out += translator.feed(event)
    if hasattr(translator, "finish"):
        out += translator.finish()
    events = SseParser().feed(b"".join(out))
    return [{"event": e.event, "data": e.data if e.data == "[DONE]" else json.loads(e.data)} for e in events]


def test_chat_request_to_anthropic(snapshot: SnapshotAssertion) -> None:
    out = chat_to_messages(CHAT_REQUEST, "claude-haiku")
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][2]["content"][0]["type"] == "tool_result"
    assert out == snapshot


def test_anthropic_answer_to_chat(snapshot: SnapshotAssertion) -> None:
    out = message_to_chat(ANTHROPIC_MESSAGE, "claude-haiku", CREATED)
    assert out["usage"]["prompt_tokens"] == 125 and out["usage"]["prompt_tokens_details"]["cached_tokens"] == 100
    assert out == snapshot


def test_anthropic_stream_to_chat_stream(snapshot: SnapshotAssertion) -> None:
    events = run_stream(anthropic_to_chat_stream("claude-haiku", True, CREATED), anthropic_stream())
    assert events[-1]["data"] == "[DONE]"
    assert events == snapshot


def test_responses_request_to_anthropic(snapshot: SnapshotAssertion) -> None:
    out = responses_to_messages(RESPONSES_REQUEST, "claude-haiku")
    assert out["system"] == "Be terse.\n\nRepo rules: no force push."
    assert [t["name"] for t in out["tools"]] == ["exec_command"]
    assert out == snapshot


def test_anthropic_answer_to_response(snapshot: SnapshotAssertion) -> None:
    out = message_to_response(ANTHROPIC_MESSAGE, "claude-haiku", CREATED)
    assert [i["type"] for i in out["output"]] == ["message", "function_call"]
    assert out == snapshot


def test_anthropic_stream_to_responses_stream(snapshot: SnapshotAssertion) -> None:
    events = run_stream(anthropic_to_responses_stream("claude-haiku", CREATED), anthropic_stream())
    kinds = [e["event"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e["data"]["sequence_number"] for e in events] == list(range(len(events)))
    completed = events[-1]["data"]["response"]
    assert completed["id"] == "resp_01ABC" and completed["usage"]["total_tokens"] == 137
    assert events == snapshot


def test_anthropic_request_to_chat(snapshot: SnapshotAssertion) -> None:
    out = messages_to_chat(MESSAGES_REQUEST, "gpt-5-mini")
    assert "cache_control" not in json.dumps(out)
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "tool"]
    assert out == snapshot


def test_chat_answer_to_anthropic(snapshot: SnapshotAssertion) -> None:
    out = chat_to_message(CHAT_RESPONSE, "gpt-5-mini")
    assert out["stop_reason"] == "tool_use" and out["usage"]["cache_read_input_tokens"] == 32
    assert out == snapshot


def test_chat_stream_to_anthropic_stream(snapshot: SnapshotAssertion) -> None:
    events = run_stream(chat_to_anthropic_stream("gpt-5-mini"), chat_stream())
    assert [e["event"] for e in events][:2] == ["message_start", "content_block_start"]
    assert events[-1]["event"] == "message_stop"
    tool_json = "".join(e["data"]["delta"]["partial_json"] for e in events
                        if e["event"] == "content_block_delta" and e["data"]["delta"]["type"] == "input_json_delta")
    assert json.loads(tool_json) == {"path": "b.py"}
    assert events == snapshot


def test_the_captured_codex_request_becomes_a_valid_anthropic_request() -> None:
    codex = json.loads((ROOT / "tests" / "fixtures" / "codex-responses-request.json").read_text())
    out = responses_to_messages(codex, "claude-haiku-4-5-20251001")
    assert out["system"] and out["max_tokens"] == 4096 and out["stream"] is True
    assert {t["name"] for t in out["tools"]} >= {"exec_command"}
    assert all(m["role"] in ("user", "assistant") for m in out["messages"])
    assert all(out["messages"][i]["role"] != out["messages"][i + 1]["role"] for i in range(len(out["messages"]) - 1))
    orjson.dumps(out)


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [({"messages": [], "n": 2}, "n > 1"), ({"messages": [], "logprobs": True}, "logprobs"),
     ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}, "input_audio")],
)
def test_untranslatable_requests_say_why(request_body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TranslationError, match=fragment):
        chat_to_messages(request_body, "claude-haiku")


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [({"input": "hi", "previous_response_id": "resp_1"}, "previous_response_id"),
     ({"input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format json_schema"),
     ({"input": "hi", "tools": [{"type": "custom", "name": "apply_patch"}]}, "custom .free-form. tool 'apply_patch'"),
     ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference"),
     ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}, "file_id"),
     ({"input": "hi", "background": True}, "background")],
)
def test_untranslatable_responses_requests_say_why(request_body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TranslationError, match=fragment):
        responses_to_messages(request_body, "claude-haiku")


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [({"messages": [], "tools": [{"type": "code_execution_20250522", "name": "code_execution"}]}, "code_execution"),
     ({"messages": [], "tools": [{"type": "bash_20250124", "name": "bash"}]}, "bash_20250124"),
     ({"messages": [], "mcp_servers": [{"type": "url", "url": "https://example.invalid"}]}, "mcp_servers")],
)
def test_untranslatable_anthropic_requests_say_why(request_body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TranslationError, match=fragment):
        messages_to_chat(request_body, "gpt-5-mini")


def test_codex_request_leaves_behind_only_hints() -> None:
    codex = json.loads((ROOT / "tests" / "fixtures" / "codex-responses-request.json").read_text())
    left = coverage.dropped_fields(codex, coverage.RESPONSES_CARRIED) + coverage.dropped_tools(codex["tools"], "function")
    assert left == ["client_metadata", "include", "prompt_cache_key", "reasoning", "tools:namespace", "tools:web_search"]


def test_sse_parser_handles_split_events_and_crlf() -> None:
    parser = SseParser()
    raw = b"event: a\r\ndata: {\"x\":\r\ndata: 1}\r\n\r\n: comment\n\ndata: [DONE]\n\n"
    events = [e for i in range(len(raw)) for e in parser.feed(raw[i : i + 1])]
    assert events == [SseEvent("a", "{\"x\":\n1}"), SseEvent(None, "[DONE]")]


def test_the_captured_claude_code_request_becomes_a_valid_chat_request() -> None:
    from runtime.translators import coverage
    claude = json.loads((ROOT / "tests" / "fixtures" / "claude-messages-request.json").read_text())
    out = messages_to_chat(claude, "gpt-5-mini")
    assert out["messages"][0]["role"] == "system" and "\n\n" in out["messages"][0]["content"]
    assert len(out["tools"]) == len(claude["tools"]) and out["max_completion_tokens"] == 32000
    assert coverage.dropped_fields(claude, coverage.MESSAGES_CARRIED) == ["context_management", "thinking"]
    orjson.dumps(out)


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [({"messages": [{"role": "function", "name": "f", "content": "42"}]}, "legacy function calling"),
     ({"messages": [], "functions": [{"name": "f"}]}, "legacy `functions`"),
     ({"messages": [], "temperature": 1.7}, "temperature 1.7 is above Anthropic's maximum of 1")],
)
def test_chat_requests_that_would_lose_content_are_refused(request_body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TranslationError, match=fragment):
        chat_to_messages(request_body, "claude-haiku")


def test_tool_history_anthropic_lacks_is_refused_and_hints_are_not() -> None:
    with pytest.raises(TranslationError, match="local_shell_call"):
        responses_to_messages({"input": [{"type": "local_shell_call", "call_id": "c", "action": {}}]}, "claude-haiku")
    out = responses_to_messages({"input": [{"type": "reasoning", "summary": []}, {"role": "user", "content": "hi"}]}, "c")
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]


def test_images_in_a_chat_tool_result_reach_anthropic() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    out = chat_to_messages({"messages": [
        {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": "screen"}, image]},
    ]}, "claude-haiku")
    [result] = out["messages"][1]["content"]
    assert result["type"] == "tool_result" and [b["type"] for b in result["content"]] == ["text", "image"]


def test_documents_inside_an_anthropic_tool_result_are_refused_not_dropped() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
    with pytest.raises(TranslationError, match="document"):
        messages_to_chat({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [pdf]}]}]}, "gpt-5-mini")
