"""Routes that cross protocols: OpenAI-shaped clients answered by an Anthropic model and the
anthropic SDK answered by an OpenAI model, streaming and not, tool calls included."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import openai
import pytest

from runtime.ledger.sqlite import SqliteLedger
from tests.support.apps import app_from
from tests.support.codex import run_codex
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-translate-0123456789abcdefghijkl"
CLAUDE = "claude-haiku-4-5-20251001"


def policy(upstream: str) -> str:
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  openai-primary: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_OPENAI_KEY}}
  anthropic-main: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_ANTHROPIC_KEY}}
models:
  {CLAUDE}: {{providers: [anthropic-main], price: {{input: 1000, cached_input: 100, output: 5000}}}}
  gpt-5-mini: {{providers: [openai-primary], price: {{input: 250, output: 2000}}}}
virtual_keys:
  vk-translate:
    key_sha256: {hashlib.sha256(KEY.encode()).hexdigest()}
    key_prefix: {KEY[:12]}
    principal: dev@acme.com
    models_allowed: [{CLAUDE}, gpt-5-mini]
    model_aliases: {{gpt-4o: anthropic-main/{CLAUDE}, sonnet: openai-primary/gpt-5-mini}}
budgets:
  dev-daily: {{scope: principal, target: dev@acme.com, window: day, limit_usd: 1000}}
"""


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, MockUpstream, Spend]]:
    monkeypatch.setenv("E2E_OPENAI_KEY", "openai-credential")
    monkeypatch.setenv("E2E_ANTHROPIC_KEY", "anthropic-credential")
    with MockUpstream() as upstream:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(upstream.base_url))
        app = app_from(tmp_path / "policy", ledger=SqliteLedger(tmp_path / "data"))
        with ServerThread(app) as server:
            yield server.base_url, upstream, Spend(tmp_path / "data", server)


@dataclass(frozen=True)
class Spend:
    """The proxy's ledger, read once the proxy has settled every answer its clients received."""

    data: Path
    server: ServerThread


def spent(spend: Spend) -> int:
    spend.server.wait_idle()
    return sum(r.spent for r in SqliteLedger(spend.data).counters())


def test_chat_client_answered_by_claude(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, data = proxy
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    reply = raw.parse()
    assert reply.choices[0].message.content == f"mock reply from {CLAUDE}" and reply.model == CLAUDE
    assert raw.headers["x-langwatch-provider"] == "anthropic-main; translated-from=anthropic"
    sent = upstream.requests[0]
    assert sent.path == "/v1/messages" and sent.json["system"] == "be brief" and sent.json["max_tokens"] == 4096
    assert spent(data) == (11 * 1000 + 5 * 5000) * 10**6


def test_chat_stream_with_a_tool_call(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, _ = proxy
    upstream.ask_tool("get_weather", {"city": "Amsterdam"})
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "weather?"}],
                                                 tools=tools, stream=True, stream_options={"include_usage": True}))  # type: ignore[arg-type]
    calls = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads("".join(c.function.arguments or "" for c in calls)) == {"city": "Amsterdam"}  # type: ignore[union-attr]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 11
    assert upstream.requests[0].json["tools"][0]["input_schema"]["properties"]["city"] == {"type": "string"}
    plain = list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert all(c.choices and c.usage is None for c in plain), "no usage chunk the client did not ask for"


def test_responses_client_answered_by_claude(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, _, _ = proxy
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    assert client.responses.create(model="gpt-4o", input="hi").output_text == f"mock reply from {CLAUDE}"
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[-1].response.output_text == f"mock reply from {CLAUDE}"
    assert events[-1].response.usage is not None and events[-1].response.usage.total_tokens == 16


def test_anthropic_client_answered_by_an_openai_model(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, _ = proxy
    client = anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0)
    reply = client.messages.create(model="sonnet", max_tokens=64, system="be brief", messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "mock reply from gpt-5-mini"  # type: ignore[union-attr]
    with client.messages.stream(model="sonnet", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream) == "mock reply from gpt-5-mini"
    sent = upstream.requests[0].json
    assert upstream.requests[0].path == "/v1/chat/completions"
    assert sent["messages"][0] == {"role": "system", "content": "be brief"} and sent["max_completion_tokens"] == 64


def test_codex_through_translation_runs_the_tool_claude_asks_for(proxy: tuple[str, MockUpstream, Spend], tmp_path: Path) -> None:
    base_url, upstream, data = proxy
    upstream.ask_tool("exec_command", {"cmd": "echo hello-from-codex"})
    run = run_codex(base_url + "/v1", KEY, "gpt-4o", "run the command", tmp_path, 120,
                    "--dangerously-bypass-approvals-and-sandbox")
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"mock reply from {CLAUDE}" in run.stdout
    turns = [r.json for r in upstream.requests if r.path == "/v1/messages"]
    assert len(turns) >= 2
    assert any(t["name"] == "exec_command" for t in turns[0]["tools"])
    results = [b for m in turns[1]["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])
               if b.get("type") == "tool_result"]
    assert results and "hello-from-codex" in json.dumps(results)
    assert spent(data) == len(turns) * (11 * 1000 + 5 * 5000) * 10**6


def test_a_field_the_answer_depends_on_is_refused_before_any_upstream_call(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, _ = proxy
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                       response_format=schema)  # type: ignore[arg-type]
    assert refused.value.code == "untranslatable_request"
    assert "response_format json_schema asks for JSON output" in refused.value.message
    with pytest.raises(openai.BadRequestError) as stored:
        client.responses.create(model="gpt-4o", input="and then?", previous_response_id="resp_123")
    assert "previous_response_id refers to a conversation stored by OpenAI" in stored.value.message
    assert upstream.requests == []


def test_hints_without_an_equivalent_are_named_in_a_header_not_silently_lost(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, _ = proxy
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], seed=7, frequency_penalty=0.5,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    )
    assert raw.headers["x-langwatch-translation-dropped"] == "frequency_penalty,seed"
    sent = upstream.requests[0].json
    assert "seed" not in sent and "frequency_penalty" not in sent and sent["tools"][0]["name"] == "f"
    upstream.reset()
    responses = client.responses.with_raw_response.create(
        model="gpt-4o", input="hi", reasoning={"effort": "low"}, prompt_cache_key="k1",
        tools=[{"type": "web_search"}],  # type: ignore[list-item]
    )
    assert responses.headers["x-langwatch-translation-dropped"] == "prompt_cache_key,reasoning,tools:web_search"


def test_a_translated_hops_error_reaches_the_client_in_its_own_shape(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, _ = proxy
    upstream.fail(status=400, times=1, body={"type": "error", "error": {"type": "invalid_request_error",
                                                                        "message": "messages: text content blocks must be non-empty"}})
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert error.value.response.headers["x-langwatch-provider"] == "anthropic-main; translated-from=anthropic"
    body = error.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error"
    assert body["message"] == (f"anthropic-main/{CLAUDE} (anthropic, translated) answered 400: "
                               "messages: text content blocks must be non-empty")
    assert body["meta"] == {"provider": "anthropic-main", "translated_from": "anthropic",
                            "upstream_error_type": "invalid_request_error"}
    upstream.fail(status=400, times=1, body={"error": {"type": "invalid_request_error", "message": "bad tool schema"}})
    with pytest.raises(anthropic.BadRequestError) as native:
        anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0).messages.create(
            model="sonnet", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert native.value.body["type"] == "error"  # type: ignore[index]
    assert native.value.body["error"]["message"].endswith("(openai, translated) answered 400: bad tool schema")  # type: ignore[index]


def test_an_anthropic_client_on_an_openai_model(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, _ = proxy
    client = anthropic.Anthropic(base_url=base_url, api_key=KEY, max_retries=0)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    raw = client.messages.with_raw_response.create(
        model="sonnet", max_tokens=64, thinking={"type": "enabled", "budget_tokens": 32}, extra_body={"top_k": 5},
        system=[{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in English."}],
        tools=[{"name": "read", "description": "read a file", "input_schema": {"type": "object"}}],
        messages=[
            {"role": "user", "content": "look at a.png"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "a.png"}},
                                              {"type": "tool_use", "id": "t2", "name": "read", "input": {"path": "b"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a.png"}, image]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "no such file", "is_error": True},
            ]},
        ],
    )
    assert raw.headers["x-langwatch-translation-dropped"] == "thinking,top_k"
    sent = upstream.requests[0].json["messages"]
    assert sent[0] == {"role": "system", "content": "You are terse.\n\nAnswer in English."}
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert sent[3] == {"role": "tool", "tool_call_id": "t1", "content": "a.png"}
    assert sent[4] == {"role": "tool", "tool_call_id": "t2", "content": "Error: no such file"}
    assert sent[5]["content"][0] == {"type": "text", "text": "(images returned by tool call t1)"}
    assert sent[5]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    upstream.reset()
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="sonnet", max_tokens=16, messages=[{"role": "user", "content": "news?"}],
                               tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}])
    assert "of type web_search_20250305 is run by Anthropic" in str(refused.value)
    assert upstream.requests == []


def test_a_malformed_request_on_a_translated_route_is_a_400_not_a_crash(proxy: tuple[str, MockUpstream, Spend]) -> None:
    import httpx

    base_url, upstream, _ = proxy
    for path, body in (("/v1/messages", {"model": "sonnet", "max_tokens": 8, "messages": ["hi"]}),
                       ("/v1/messages", {"model": "sonnet", "max_tokens": 8, "messages": [], "tool_choice": "auto",
                                         "tools": [{"name": "f", "input_schema": {"type": "object"}}]}),
                       ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "assistant", "tool_calls": ["x"]}]})):
        r = httpx.post(base_url + path, json=body, headers={"authorization": f"Bearer {KEY}"})
        assert r.status_code == 400, (path, body, r.text)
        assert "does not have the shape of a" in r.text and r.headers["x-langwatch-policy-revision"]
    assert upstream.requests == []


def test_a_translated_answer_that_is_not_one_is_a_502(proxy: tuple[str, MockUpstream, Spend]) -> None:
    base_url, upstream, _ = proxy
    client = openai.OpenAI(base_url=base_url + "/v1", api_key=KEY, max_retries=0)
    for body, message in (("<html>maintenance</html>", f"anthropic-main ({CLAUDE}) answered 200 with JSON that is not an object"),
                          ({"unexpected": True}, f"anthropic-main/{CLAUDE} answered 200, but the answer")):
        upstream.fail(status=200, body=body, times=1)
        with pytest.raises(openai.InternalServerError) as failed:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert failed.value.status_code == 502 and failed.value.code == "provider_error"
        assert message in failed.value.message
