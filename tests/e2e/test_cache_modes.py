"""Cache modes against a mock upstream that records bodies and reports cached tokens when the
request carried a cache directive (OpenAI prompt_cache_key, Anthropic cache_control)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.access_log import AccessLog
from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEYS = {n: f"gp-e2e-cache-{n}-0123456789abcdefghijklmn" for n in ("respect", "cold", "salted", "force", "locked")}


def policy(upstream: str) -> str:
    def vk(name: str, cache: str) -> str:
        digest = hashlib.sha256(KEYS[name].encode()).hexdigest()
        return (f"  vk-{name}: {{key_sha256: {digest}, models_allowed: [gpt-4o, claude-haiku, gemini-2.5-flash], "
                f"model_aliases: {{haiku: claude-haiku, smart: gpt-4o}}, cache: {cache}}}\n")

    return (
        "gateway: {header_prefix: X-LangWatch-}\n"
        "providers:\n"
        f"  openai-primary: {{type: openai, base_url: '{upstream}/v1', api_key: env:E2E_OPENAI_KEY}}\n"
        f"  anthropic-main: {{type: anthropic, base_url: '{upstream}', api_key: env:E2E_ANTHROPIC_KEY}}\n"
        f"  gemini-main: {{type: gemini, base_url: '{upstream}', api_key: env:E2E_ANTHROPIC_KEY}}\n"
        "models:\n"
        "  gpt-4o: {providers: [openai-primary]}\n"
        "  claude-haiku: {providers: [anthropic-main]}\n"
        "  gemini-2.5-flash: {providers: [gemini-main]}\n"
        "virtual_keys:\n"
        + vk("respect", "{mode: respect, allow_override: true}")
        + vk("cold", "{mode: disable}")
        + vk("salted", "{mode: disable, salt: true}")
        + vk("force", "{mode: force}")
        + vk("locked", "{mode: respect, allow_override: false}")
    )


ACCESS_LOG = io.StringIO()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ServerThread, MockUpstream]]:
    monkeypatch.setenv("E2E_OPENAI_KEY", "x")
    monkeypatch.setenv("E2E_ANTHROPIC_KEY", "y")
    ACCESS_LOG.seek(0)
    ACCESS_LOG.truncate()
    with MockUpstream() as upstream:
        (tmp_path / "policy.yaml").write_text(policy(upstream.base_url))
        with ServerThread(app_from(tmp_path, access_log=AccessLog(ACCESS_LOG))) as server:
            yield server, upstream


@pytest.fixture
def proxy(served: tuple[ServerThread, MockUpstream]) -> tuple[str, MockUpstream]:
    server, upstream = served
    return server.base_url, upstream


def logged(server: ServerThread) -> list[dict[str, object]]:
    """The access log once the server has finished every request (it logs after the answer)."""
    server.wait_idle()
    return [json.loads(line) for line in ACCESS_LOG.getvalue().splitlines() if line.startswith("{")]


CHAT = {"model": "gpt-4o", "prompt_cache_key": "repo-42", "messages": [{"role": "system", "content": "long prompt"},
                                                                          {"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "claude-haiku", "max_tokens": 64,
    "system": [{"type": "text", "text": "long prompt", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                 {"role": "user", "content": [{"type": "text", "text": "again", "cache_control": {"type": "ephemeral"}}]}],
}
PLAIN_MESSAGES = {
    "model": "claude-haiku", "max_tokens": 64, "system": "long prompt",
    "messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "again"}],
}


def post(base_url: str, who: str, path: str, body: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.post(base_url + path, json=body, headers={"authorization": f"Bearer {KEYS[who]}", **headers})


def test_respect_forwards_directives_untouched_and_reports_a_hit(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    r = post(base_url, "respect", "/v1/chat/completions", CHAT)
    assert r.headers["x-langwatch-cache"] == "hit"
    r = post(base_url, "respect", "/v1/messages", MESSAGES)
    assert r.headers["x-langwatch-cache"] == "hit"
    assert upstream.requests[0].json == CHAT and upstream.requests[1].json == MESSAGES
    r = post(base_url, "respect", "/v1/chat/completions", {"model": "gpt-4o", "messages": CHAT["messages"]})
    assert r.headers["x-langwatch-cache"] == "miss"
    metrics = httpx.get(base_url + "/metrics").text
    assert 'gatepost_cache_lookups_total{vk="vk-respect",model="gpt-4o",provider="openai-primary",result="hit"} 1' in metrics
    assert 'gatepost_cache_lookups_total{vk="vk-respect",model="gpt-4o",provider="openai-primary",result="miss"} 1' in metrics


def test_disable_strips_every_directive_and_says_bypass(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    assert post(base_url, "cold", "/v1/chat/completions", CHAT).headers["x-langwatch-cache"] == "bypass"
    assert post(base_url, "cold", "/v1/messages", MESSAGES).headers["x-langwatch-cache"] == "bypass"
    chat, messages = upstream.requests[0].json, upstream.requests[1].json
    assert "prompt_cache_key" not in chat and chat["messages"] == CHAT["messages"]
    assert "cache_control" not in str(messages)
    assert messages["messages"][2]["content"][0]["text"] == "again"


def test_disable_with_salt_makes_every_prefix_unique(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    post(base_url, "salted", "/v1/chat/completions", CHAT)
    post(base_url, "salted", "/v1/chat/completions", CHAT)
    first, second = (r.json["messages"][0]["content"] for r in upstream.requests)
    assert first.startswith("[gatepost-nocache ") and second.startswith("[gatepost-nocache ") and first != second
    assert upstream.requests[0].json["messages"][1:] == CHAT["messages"]


def test_force_adds_breakpoints_to_anthropic_bound_requests_only(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    r = post(base_url, "force", "/v1/messages", PLAIN_MESSAGES)
    assert r.headers["x-langwatch-cache"] == "force"
    sent = upstream.requests[0].json
    assert sent["system"] == [{"type": "text", "text": "long prompt", "cache_control": {"type": "ephemeral"}}]
    assert sent["messages"][1]["content"] == [{"type": "text", "text": "ok", "cache_control": {"type": "ephemeral"}}]
    assert sent["messages"][2] == PLAIN_MESSAGES["messages"][2]
    post(base_url, "force", "/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    assert "cache_control" not in str(upstream.requests[1].json)
    post(base_url, "force", "/v1/messages", MESSAGES)
    assert upstream.requests[2].json == MESSAGES


def test_override_header_is_honoured_only_where_allowed(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    r = post(base_url, "respect", "/v1/chat/completions", CHAT, **{"X-LangWatch-Cache": "disable"})
    assert r.headers["x-langwatch-cache"] == "bypass" and "prompt_cache_key" not in upstream.requests[0].json
    r = post(base_url, "locked", "/v1/chat/completions", CHAT, **{"X-LangWatch-Cache": "disable"})
    assert r.headers["x-langwatch-cache"] == "hit" and upstream.requests[1].json == CHAT
    assert r.headers["x-langwatch-cache-override"].startswith("refused; this key's policy does not allow")
    r = post(base_url, "respect", "/v1/chat/completions", CHAT, **{"X-LangWatch-Cache": "disbale"})
    assert r.headers["x-langwatch-cache-override"] == (
        "refused; unknown cache mode 'disbale'; expected respect, disable or force")
    assert upstream.requests[2].json == CHAT, "a typo runs under the key's own mode, and says so"


def test_streams_carry_what_is_known_when_headers_are_sent(proxy: tuple[str, MockUpstream]) -> None:
    base_url, _ = proxy
    r = post(base_url, "cold", "/v1/chat/completions", {**CHAT, "stream": True})
    assert r.headers["x-langwatch-cache"] == "bypass"
    r = post(base_url, "respect", "/v1/chat/completions", {**CHAT, "stream": True})
    assert "x-langwatch-cache" not in r.headers
    metrics = httpx.get(base_url + "/metrics").text
    assert 'result="hit"} 1' in metrics


def test_a_stream_whose_first_event_reports_usage_says_hit_or_miss(proxy: tuple[str, MockUpstream]) -> None:
    """Anthropic's `message_start` (and Gemini's first chunk) report the prompt's cached tokens before
    any text: the headers wait for that event anyway, so they say hit or miss."""
    base_url, upstream = proxy
    r = post(base_url, "respect", "/v1/messages", {**MESSAGES, "stream": True})
    assert r.status_code == 200 and r.headers["x-langwatch-cache"] == "hit"
    r = post(base_url, "respect", "/v1/messages", {**PLAIN_MESSAGES, "stream": True})
    assert r.headers["x-langwatch-cache"] == "miss"
    r = post(base_url, "respect", "/v1/chat/completions", {**CHAT, "model": "haiku", "stream": True})
    assert r.headers["x-langwatch-cache"] == "miss", "a translated stream: the Anthropic upstream's first event"
    upstream.fail(replay="gemini-stream.sse", times=1)
    r = post_raw(base_url, "respect", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                 json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode())
    assert r.status_code == 200 and r.headers["x-langwatch-cache"] == "miss"


def test_a_codex_stream_under_respect_has_its_cache_lookup_in_the_access_log(served: tuple[ServerThread, MockUpstream]) -> None:
    """The Responses API reports usage in its last event, after the headers: the header is left out
    rather than guessed, and the access-log line of the answer's x-request-id says hit or miss."""
    server, _ = served
    r = post(server.base_url, "respect", "/v1/responses", {**RESPONSES, "stream": True})
    assert r.status_code == 200 and "x-langwatch-cache" not in r.headers
    [line] = [line for line in logged(server) if line["request_id"] == r.headers["x-request-id"]]
    assert line["cache_lookup"] == "hit" and line["cache"] == "hit" and line["cache_mode"] == "respect"


RESPONSES = {"model": "gpt-4o", "prompt_cache_key": "thread-7", "instructions": "long prompt", "input": "hi"}
GEMINI = {"cachedContent": "cachedContents/abc123", "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
          "generationConfig": {"temperature": 1.0, "maxOutputTokens": 1e3}}
GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"


def post_raw(base_url: str, who: str, path: str, raw: bytes) -> httpx.Response:
    headers = {"authorization": f"Bearer {KEYS[who]}", "x-goog-api-key": KEYS[who], "content-type": "application/json"}
    return httpx.post(base_url + path, content=raw, headers=headers)


def client_bytes(body: dict[str, object]) -> bytes:
    """A body as a client might write it: indented, ASCII escapes, 1.0 and 1e3 kept as written."""
    return json.dumps(body, indent=1, ensure_ascii=True).replace('"hi"', '"h\\u00ef"').encode()


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/chat/completions", CHAT), ("/v1/responses", RESPONSES), ("/v1/messages", MESSAGES), (GEMINI_PATH, GEMINI),
])
def test_respect_forwards_the_clients_bytes_byte_for_byte(proxy: tuple[str, MockUpstream], path: str,
                                                           body: dict[str, object]) -> None:
    base_url, upstream = proxy
    raw = client_bytes({**body, "temperature": 1.0} if path != GEMINI_PATH else body)
    r = post_raw(base_url, "respect", path, raw)
    assert r.status_code == 200 and r.headers["x-langwatch-cache"] == "hit"
    assert upstream.requests[0].body == raw


@pytest.mark.parametrize(("path", "body", "alias"), [
    ("/v1/chat/completions", CHAT, "smart"), ("/v1/responses", RESPONSES, "smart"), ("/v1/messages", MESSAGES, "haiku"),
])
def test_respect_through_an_alias_changes_nothing_but_the_model(proxy: tuple[str, MockUpstream], path: str,
                                                                body: dict[str, object], alias: str) -> None:
    base_url, upstream = proxy
    raw = client_bytes({**body, "model": alias})
    assert post_raw(base_url, "respect", path, raw).status_code == 200
    model = body["model"]
    assert upstream.requests[0].body == raw.replace(f'"model": "{alias}"'.encode(), f'"model": "{model}"'.encode())


def test_gemini_cached_content_is_kept_under_respect_and_stripped_under_disable(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    r = post(base_url, "respect", GEMINI_PATH, GEMINI, **{"x-goog-api-key": KEYS["respect"]})
    assert r.headers["x-langwatch-cache"] == "hit" and upstream.requests[0].json["cachedContent"] == "cachedContents/abc123"
    snake = {k: v for k, v in GEMINI.items() if k != "cachedContent"} | {"cached_content": "cachedContents/abc123"}
    for body in (GEMINI, snake):
        r = post(base_url, "cold", GEMINI_PATH, body, **{"x-goog-api-key": KEYS["cold"]})
        assert r.headers["x-langwatch-cache"] == "bypass"
    for sent in upstream.requests[1:]:
        assert "cachedContent" not in sent.json and "cached_content" not in sent.json
        assert sent.json["contents"] == GEMINI["contents"]


def test_salt_goes_first_on_every_surface(proxy: tuple[str, MockUpstream]) -> None:
    base_url, upstream = proxy
    post(base_url, "salted", "/v1/responses", RESPONSES)
    post(base_url, "salted", "/v1/messages", MESSAGES)
    post(base_url, "salted", "/v1/messages", PLAIN_MESSAGES)
    post(base_url, "salted", GEMINI_PATH, GEMINI, **{"x-goog-api-key": KEYS["salted"]})
    post(base_url, "salted", GEMINI_PATH, GEMINI, **{"x-goog-api-key": KEYS["salted"]})
    responses, blocks, plain, gemini, gemini_again = (r.json for r in upstream.requests)
    marker = re.compile(r"^\[gatepost-nocache [0-9a-f]{16}\]")
    assert marker.match(responses["instructions"]) and responses["instructions"].endswith("\nlong prompt")
    assert "prompt_cache_key" not in responses
    assert marker.match(blocks["system"][0]["text"]) and blocks["system"][1] == {"type": "text", "text": "long prompt"}
    assert marker.match(plain["system"]) and plain["system"].endswith("\nlong prompt")
    first, again = (g["systemInstruction"]["parts"][0]["text"] for g in (gemini, gemini_again))
    assert marker.match(first) and marker.match(again) and first != again
    assert "cachedContent" not in gemini and gemini["contents"] == GEMINI["contents"]


def test_hit_and_miss_are_logged_and_counted_under_force_and_disable(
    proxy: tuple[str, MockUpstream], served: tuple[ServerThread, MockUpstream]
) -> None:
    base_url, _ = proxy
    assert post(base_url, "force", "/v1/messages", PLAIN_MESSAGES).headers["x-langwatch-cache"] == "force"
    assert post(base_url, "cold", "/v1/chat/completions", CHAT).headers["x-langwatch-cache"] == "bypass"
    force, cold = logged(served[0])
    assert (force["cache"], force["cache_lookup"]) == ("force", "hit")
    assert (cold["cache"], cold["cache_lookup"]) == ("bypass", "miss")
    metrics = httpx.get(base_url + "/metrics").text
    assert 'gatepost_cache_lookups_total{vk="vk-force",model="claude-haiku",provider="anthropic-main",result="hit"} 1' in metrics
    assert 'gatepost_cache_lookups_total{vk="vk-cold",model="gpt-4o",provider="openai-primary",result="miss"} 1' in metrics
