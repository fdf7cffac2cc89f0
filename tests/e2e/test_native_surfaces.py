"""Anthropic Messages and Gemini surfaces on native routes: the anthropic SDK and plain httpx
(gemini-cli's wire format) through the proxy to a mock upstream of each protocol."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from runtime.ledger.sqlite import SqliteLedger
from tests.conftest import ROOT
from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-native-0123456789abcdefghijklmnop"
BROKE = "gp-e2e-broke-0123456789abcdefghijklmnopq"
GEMINI_KEY = "gp-e2e-gemini-0123456789abcdefghijklmnop"


def policy(upstream: str) -> str:
    def vk(key: str) -> str:
        return f"key_sha256: {hashlib.sha256(key.encode()).hexdigest()}, key_prefix: {key[:12]}"

    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  anthropic-main: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_ANTHROPIC_KEY}}
  gemini-main: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_GEMINI_KEY}}
  gemini-backup: {{type: gemini, base_url: "{upstream}/v1beta", api_key: env:E2E_GEMINI_KEY}}
models:
  claude-haiku-4-5-20251001: {{providers: [anthropic-main], price: {{input: 1, cached_input: 0.1, output: 5}}}}
  gemini-2.5-flash: {{providers: [gemini-main, gemini-backup], price: {{input: 0.3, cached_input: 0.075, output: 2.5}}}}
virtual_keys:
  vk-native: {{{vk(KEY)}, principal: dev@acme.com, models_allowed: [claude-haiku-4-5-20251001, gemini-2.5-flash]}}
  vk-broke: {{{vk(BROKE)}, principal: broke@acme.com, models_allowed: [claude-haiku-4-5-20251001, gemini-2.5-flash]}}
  vk-gemini: {{{vk(GEMINI_KEY)}, models_allowed: [gemini-2.5-flash],
              fallback: {{on: [5xx], chain: [{{provider: gemini-backup, model: gemini-2.5-flash}}]}}}}
budgets:
  tiny: {{scope: vk, target: vk-broke, window: day, limit_usd: 0.00001}}
"""


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, MockUpstream]]:
    monkeypatch.setenv("E2E_ANTHROPIC_KEY", "anthropic-upstream-credential")
    monkeypatch.setenv("E2E_GEMINI_KEY", "gemini-upstream-credential")
    with MockUpstream() as upstream:
        (tmp_path / "policy.yaml").write_text(policy(upstream.base_url))
        app = app_from(tmp_path, ledger=SqliteLedger(tmp_path / "data"))
        with ServerThread(app) as server:
            yield server.base_url, upstream


def client(base_url: str, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=key, max_retries=0)


def test_messages_non_streaming(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    reply = client(base_url).messages.create(
        model="claude-haiku-4-5-20251001", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.content[0].text == "mock reply from claude-haiku-4-5-20251001"  # type: ignore[union-attr]
    [seen] = upstream.requests
    assert seen.path == "/v1/messages" and seen.headers["x-api-key"] == "anthropic-upstream-credential"
    assert KEY not in repr(seen.headers)


def test_messages_streaming(proxy: tuple[str, MockUpstream]) -> None:
    base_url, _ = proxy
    with client(base_url).messages.stream(
        model="claude-haiku-4-5-20251001", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "mock reply from claude-haiku-4-5-20251001"
    assert final.usage.output_tokens == 5


def test_cache_control_and_beta_pass_through_byte_for_byte(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    body = {
        "model": "claude-haiku-4-5-20251001", "max_tokens": 64,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}],
    }
    r = httpx.post(base_url + "/v1/messages?beta=true", json=body,
                   headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "anthropic-beta": "prompt-caching-2024-07-31"})
    assert r.status_code == 200
    seen = upstream.requests[0]
    assert seen.json == body
    assert seen.headers["anthropic-version"] == "2023-06-01" and seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"


def test_anthropic_sdk_errors(proxy: tuple[str, MockUpstream]) -> None:
    base_url, _ = proxy
    with pytest.raises(anthropic.AuthenticationError) as auth:
        client(base_url, "gp-wrong").messages.create(model="claude-haiku-4-5-20251001", max_tokens=8, messages=[])
    assert auth.value.response.headers["x-should-retry"] == "false"
    assert auth.value.body["type"] == "error" and auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        client(base_url).messages.create(model="claude-opus-4", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert "model 'claude-opus-4' is not allowed for virtual key vk-native" in str(denied.value)
    broke = client(base_url, BROKE)
    broke.messages.create(model="claude-haiku-4-5-20251001", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.APIStatusError) as budget:
        broke.messages.create(model="claude-haiku-4-5-20251001", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert budget.value.status_code == 402
    assert "virtual key 'vk-broke' has spent" in str(budget.value)


def test_claude_code_preflight_and_count_tokens(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    assert httpx.head(base_url + "/").status_code == 200
    r = httpx.post(base_url + "/v1/messages/count_tokens", headers={"x-api-key": KEY},
                   json={"model": "claude-haiku-4-5-20251001", "messages": [{"role": "user", "content": "hello there"}]})
    assert r.status_code == 200 and r.json() == {"input_tokens": 2}
    assert r.headers["x-langwatch-token-count"] == "provider"
    [seen] = upstream.requests
    assert seen.path == "/v1/messages/count_tokens" and seen.headers["x-api-key"] == "anthropic-upstream-credential"


def test_claude_code_captured_request_passes_through(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    body = json.loads((ROOT / "tests" / "fixtures" / "claude-messages-request.json").read_text())
    body["model"] = "claude-haiku-4-5-20251001"
    r = httpx.post(base_url + "/v1/messages?beta=true", json=body, headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}, timeout=30)
    assert r.status_code == 200 and "event: message_stop" in r.text
    assert upstream.requests[0].json == body


def test_gemini_generate_content(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "cachedContent": "cachedContents/abc"}
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-flash:generateContent", json=body, headers={"x-goog-api-key": KEY})
    assert r.status_code == 200
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == "mock reply from gemini-2.5-flash"
    seen = upstream.requests[0]
    assert seen.path == "/v1beta/models/gemini-2.5-flash:generateContent" and seen.json == body
    assert seen.headers["x-goog-api-key"] == "gemini-upstream-credential"


def test_gemini_stream_with_key_in_query(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    r = httpx.post(base_url + f"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={KEY}",
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert r.status_code == 200
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "mock reply from gemini-2.5-flash"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert upstream.requests[0].query == {"alt": "sse"}


def test_gemini_errors_in_googles_shape(proxy: tuple[str, MockUpstream]) -> None:
    base_url, _ = proxy
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-pro:generateContent", json={"contents": []}, headers={"x-goog-api-key": KEY})
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED" and "gemini-2.5-pro" in error["message"]
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": []})
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"


def test_gemini_budget_exceeded_is_a_402_in_googles_shape(proxy: tuple[str, MockUpstream]) -> None:
    base_url, _ = proxy
    url = base_url + "/v1beta/models/gemini-2.5-flash:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 8}}
    assert httpx.post(url, json=body, headers={"x-goog-api-key": BROKE}).status_code == 200
    r = httpx.post(url, json=body, headers={"x-goog-api-key": BROKE})
    assert r.status_code == 402 and r.headers["x-should-retry"] == "false"
    error = r.json()["error"]
    assert error["code"] == 402 and error["status"] == "RESOURCE_EXHAUSTED"
    assert error["message"].startswith("virtual key 'vk-broke' has spent $0.000016 of its $0.00001 day budget 'tiny'")
    [info] = error["details"]
    assert info["reason"] == "budget_exceeded" and info["metadata"]["budget"] == "tiny"
    assert info["metadata"]["scope"] == "vk" and info["metadata"]["limit_usd"] == "0.00001"


def test_claude_code_answers_through_the_proxy(proxy: tuple[str, MockUpstream], tmp_path: Path) -> None:
    from tests.support.claude_code import run_claude

    base_url, upstream = proxy
    run = run_claude(base_url, KEY, "claude-haiku-4-5-20251001", "say hi", tmp_path)
    assert run.returncode == 0, run.stderr
    assert "mock reply from claude-haiku-4-5-20251001" in run.stdout
    messages = [r for r in upstream.requests if r.path == "/v1/messages"]
    assert messages and all(KEY not in repr(r.headers) for r in messages)
    assert messages[-1].headers["x-api-key"] == "anthropic-upstream-credential"


def test_claude_code_off_list_model_shows_our_403(proxy: tuple[str, MockUpstream], tmp_path: Path) -> None:
    from tests.support.claude_code import run_claude

    base_url, upstream = proxy
    run = run_claude(base_url, KEY, "claude-opus-4-1", "say hi", tmp_path, timeout_s=60)
    assert run.returncode != 0
    assert "not allowed for virtual key vk-native" in run.stdout + run.stderr
    assert upstream.requests == []


def test_gemini_stream_without_alt_sse_is_one_json_array(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, headers={"x-goog-api-key": KEY})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    chunks = r.json()
    assert isinstance(chunks, list) and len(chunks) > 1
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "mock reply from gemini-2.5-flash"
    assert upstream.requests[0].query == {"alt": "sse"}, "the proxy streams SSE from upstream either way"


def test_gemini_count_tokens_and_unknown_paths_answer_in_googles_shape(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    body = {"contents": [{"role": "user", "parts": [{"text": "hello there, how are you today?"}]}]}
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-flash:countTokens", json=body, headers={"x-goog-api-key": KEY})
    assert r.status_code == 200 and r.json() == {"totalTokens": 6}
    assert [seen.path for seen in upstream.requests] == ["/v1beta/models/gemini-2.5-flash:countTokens"]
    upstream.reset()
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-pro:countTokens", json=body, headers={"x-goog-api-key": KEY})
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-flash:embedContent", json=body, headers={"x-goog-api-key": KEY})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND" and ":generateContent" in error["message"]
    r = httpx.get(base_url + "/v1beta/models/gemini-2.5-flash:generateContent")
    assert r.status_code == 405 and r.json()["error"]["status"] and r.headers["allow"] == "POST"
    assert upstream.requests == []


def test_google_genai_sdk_streaming_and_not(proxy: tuple[str, MockUpstream]) -> None:
    from google import genai
    from google.genai import errors, types

    base_url, upstream = proxy
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=base_url))
    reply = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert reply.text == "mock reply from gemini-2.5-flash"
    assert reply.usage_metadata is not None and reply.usage_metadata.candidates_token_count == 5
    chunks = list(client.models.generate_content_stream(
        model="gemini-2.5-flash", contents="hi", config=types.GenerateContentConfig(max_output_tokens=32)))
    assert len(chunks) > 1 and "".join(c.text or "" for c in chunks) == "mock reply from gemini-2.5-flash"
    streamed = upstream.requests[-1]
    assert streamed.path.endswith(":streamGenerateContent") and streamed.json["generationConfig"]["maxOutputTokens"] == 32
    assert all(KEY not in repr(r.headers) for r in upstream.requests)
    with pytest.raises(errors.ClientError) as denied:
        client.models.generate_content(model="gemini-2.5-pro", contents="hi")
    assert denied.value.code == 403 and denied.value.status == "PERMISSION_DENIED"
    assert "gemini-2.5-pro" in str(denied.value.message)
    stranger = genai.Client(api_key="gp-wrong", http_options=types.HttpOptions(base_url=base_url))
    with pytest.raises(errors.ClientError) as unknown:
        stranger.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert unknown.value.code == 401


def test_gemini_falls_back_to_the_next_gemini_provider(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    upstream.fail(status=503, times=1)
    url = base_url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    r = httpx.post(url, json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, headers={"x-goog-api-key": GEMINI_KEY})
    assert r.status_code == 200
    texts = [json.loads(line[6:])["candidates"][0]["content"]["parts"][0]["text"] for line in r.text.splitlines()
             if line.startswith("data: ")]
    assert "".join(texts) == "mock reply from gemini-2.5-flash"
    assert r.headers["x-langwatch-provider"] == "gemini-backup" and r.headers["x-langwatch-fallback-count"] == "1"
    assert [req.path for req in upstream.requests] == ["/v1beta/models/gemini-2.5-flash:streamGenerateContent"] * 2


def test_a_json_array_stream_that_dies_ends_as_valid_json_with_the_error_last(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    upstream.fail(die_after=2, times=1)
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}, headers={"x-goog-api-key": KEY})
    assert r.status_code == 200
    chunks = r.json()
    assert len(chunks) == 3 and "candidates" in chunks[0] and "candidates" in chunks[1]
    assert chunks[-1]["error"]["code"] == 502 and "upstream stream failed" in chunks[-1]["error"]["message"]


def test_the_captured_claude_stream_reaches_the_anthropic_sdk_intact(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    upstream.fail(replay="claude-messages-stream.sse", path_contains="messages", times=1)
    body = json.loads((ROOT / "tests" / "fixtures" / "claude-messages-request.json").read_text())
    with client(base_url).messages.stream(
        model="claude-haiku-4-5-20251001", max_tokens=body["max_tokens"], messages=body["messages"],
        system=body["system"], tools=body["tools"],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "pong from mock upstream" and final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 12


def test_the_captured_gemini_cli_request_and_stream_pass_through(proxy: tuple[str, MockUpstream]) -> None:
    """gemini-cli's own request (its headers, its 31 KB body) and the stream it accepted, replayed."""
    from google import genai
    from google.genai import types

    base_url, upstream = proxy
    fixtures = ROOT / "tests" / "fixtures"
    body = json.loads((fixtures / "gemini-streamGenerateContent-request.json").read_text())
    captured = json.loads((fixtures / "gemini-streamGenerateContent-request.headers.json").read_text())["headers"]
    headers = {k: v for k, v in captured.items() if k.lower() not in ("host", "content-length", "connection")}
    headers["x-goog-api-key"] = KEY
    upstream.fail(replay="gemini-stream.sse", path_contains="gemini", times=1)
    r = httpx.post(base_url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", json=body, headers=headers)
    assert r.status_code == 200
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks) == "pong from mock upstream"
    assert upstream.requests[0].json == body, "the captured body reaches the provider as gemini-cli sent it"
    upstream.fail(replay="gemini-stream.sse", path_contains="gemini", times=1)
    sdk = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=base_url))
    texts = [c.text for c in sdk.models.generate_content_stream(model="gemini-2.5-flash", contents="ping")]
    assert "".join(t or "" for t in texts) == "pong from mock upstream"
