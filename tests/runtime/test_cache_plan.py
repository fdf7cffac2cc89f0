"""Cache modes applied per target: force reaches requests translated to Anthropic, and only those."""

from __future__ import annotations

import json

from runtime.surfaces import CHAT, MESSAGES, RESPONSES
from runtime.table import Target
from runtime.translation import plan
from runtime.upstream import Outbound

ANTHROPIC = Target("anthropic-fallback", "claude-haiku", "claude-haiku", "anthropic")
OPENAI = Target("openai-primary", "gpt-4o", "gpt-4o", "openai")
CHAT_BODY = {"model": "gpt-4o", "messages": [{"role": "system", "content": "long system prompt"},
                                             {"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                                             {"role": "user", "content": "next"}]}


def test_force_adds_breakpoints_to_a_chat_request_translated_to_anthropic() -> None:
    step = plan(CHAT, ANTHROPIC, Outbound("chat", CHAT_BODY, False, {}, None, "force"))
    sent = step.outbound.payload
    assert step.injected and step.outbound.surface == "messages"
    assert sent["system"] == [{"type": "text", "text": "long system prompt", "cache_control": {"type": "ephemeral"}}]
    assert sent["messages"][1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in json.dumps(sent["messages"][2])


def test_force_leaves_openai_bound_requests_alone() -> None:
    step = plan(CHAT, OPENAI, Outbound("chat", CHAT_BODY, False, {}, None, "force"))
    assert not step.injected and step.outbound.payload == CHAT_BODY


def test_respect_translated_request_carries_no_openai_cache_key() -> None:
    body = {"model": "gpt-4o", "input": "hi", "prompt_cache_key": "thread-1"}
    step = plan(RESPONSES, ANTHROPIC, Outbound("responses", body, False, {}, None, "respect"))
    assert "prompt_cache_key" not in step.outbound.payload and not step.injected


def test_disable_strips_anthropic_directives_on_native_requests() -> None:
    body = {"model": "claude-haiku", "max_tokens": 5, "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}]}
    step = plan(MESSAGES, ANTHROPIC, Outbound("messages", body, False, {}, None, "disable"))
    assert "cache_control" not in json.dumps(step.outbound.payload)


def test_disable_and_force_read_cache_control_only_where_anthropic_defines_it() -> None:
    from runtime import cache

    user_schema = {"type": "object", "properties": {"cache_control": {"type": "string"}}}
    payload = {
        "model": "claude",
        "cache_control": {"type": "ephemeral"},
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "set_cache", "input_schema": user_schema, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "set_cache",
                                               "input": {"cache_control": "no-store"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
                {"type": "text", "text": "ok", "cache_control": {"type": "ephemeral"}}]}]},
        ],
    }
    stripped = cache.strip("messages", payload)
    assert "cache_control" not in stripped and "cache_control" not in stripped["system"][0]
    assert "cache_control" not in stripped["tools"][0] and stripped["tools"][0]["input_schema"] == user_schema
    assert stripped["messages"][0]["content"][0]["input"] == {"cache_control": "no-store"}, "a tool call's input is content"
    assert "cache_control" not in stripped["messages"][1]["content"][0]["content"][0]
    assert not cache.has_cache_control(stripped)
    only_user_content = {"model": "claude", "tools": [{"name": "set_cache", "input_schema": user_schema}],
                         "messages": [{"role": "user", "content": "hi"}]}
    assert not cache.has_cache_control(only_user_content), "force must still add breakpoints here"
