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
