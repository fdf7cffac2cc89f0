"""A Chat Completions-only target (`Target.wire == "chat"`, an openai_compatible provider) is sent
Chat Completions only: natively from Chat, translated by the hub from every other surface, never a
Responses body."""

from __future__ import annotations

from types import MappingProxyType

from runtime.surfaces import CHAT, MESSAGES, RESPONSES
from runtime.table import Provider, Target, Timeouts
from runtime.translation import plan
from runtime.upstream import ADAPTERS, Outbound

VLLM = Target("local-vllm", "llama-3.1-8b", "llama-3.1-8b", "openai", "chat")
PROVIDER = Provider("local-vllm", "openai_compatible", "openai", "http://gpu-box:8000/v1/", None, None,
                    MappingProxyType({}), Timeouts(5, 60, 180), 5, 30)
CHAT_BODY = {"model": "llama-3.1-8b", "messages": [{"role": "user", "content": "hi"}]}


def test_chat_goes_as_it_is() -> None:
    step = plan(CHAT, VLLM, Outbound("chat", CHAT_BODY, False, {}))
    assert step.error is None and step.outbound.surface == "chat" and step.outbound.payload == CHAT_BODY


def test_messages_are_translated_to_chat() -> None:
    body = {"model": "llama-3.1-8b", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    step = plan(MESSAGES, VLLM, Outbound("messages", body, False, {}))
    assert step.error is None and step.outbound.surface == "chat" and "messages" in step.outbound.payload


def test_a_responses_request_is_never_sent_as_it_is_but_translated_to_chat() -> None:
    step = plan(RESPONSES, VLLM, Outbound("responses", {"model": "llama-3.1-8b", "input": "hi"}, False, {}))
    assert step.error is None and step.translated and step.outbound.surface == "chat"
    assert step.outbound.payload["messages"] == [{"role": "user", "content": "hi"}]


def test_the_adapter_posts_to_chat_completions_with_a_credential_only_when_there_is_one() -> None:
    out = Outbound("chat", CHAT_BODY, True, {})
    keyless = ADAPTERS["openai_compatible"](PROVIDER, None, VLLM, out)
    assert keyless.url == "http://gpu-box:8000/v1/chat/completions" and "authorization" not in keyless.headers
    assert keyless.headers["accept"] == "text/event-stream"
    keyed = ADAPTERS["openai_compatible"](PROVIDER, "sk-local", VLLM, out)
    assert keyed.headers["authorization"] == "Bearer sk-local"
