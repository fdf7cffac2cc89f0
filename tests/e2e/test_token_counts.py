"""Token counts answered by the route's first target's own counting endpoint (Anthropic
`count_tokens`, OpenAI `responses/input_tokens`, Gemini `:countTokens`), decided like a request and
neither charged nor rate limited; estimated, and said to be, where the target has none."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from runtime.access_log import AccessLog
from runtime.ledger.sqlite import SqliteLedger
from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-counts-0123456789abcdefghijklmnop"
LIMITED_KEY = "gp-e2e-counts-limited-0123456789abcdefghi"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(upstream: str, vllm: str) -> str:
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  openai-main: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_KEY}}
  azure-east: {{type: azure_openai, base_url: "{upstream}", api_version: "2024-10-21", api_key: env:E2E_KEY,
               deployments: {{gpt-4o-mini: mini-prod}}}}
  anthropic-main: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_KEY}}
  gemini-main: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_KEY}}
  local-vllm: {{type: openai_compatible, base_url: "{vllm}/v1"}}
models:
  gpt-4o: {{providers: [openai-main], price: {{input: 2.5, output: 10}}}}
  gpt-4o-mini: {{providers: [azure-east], price: {{input: 0.15, output: 0.6}}}}
  claude-haiku-4-5: {{providers: [anthropic-main], price: {{input: 1, output: 5}}}}
  gemini-2.5-flash: {{providers: [gemini-main], price: {{input: 0.3, output: 2.5}}}}
  llama-3.1-8b: {{providers: [local-vllm], price: {{input: 0, output: 0}}}}
teams:
  engineering: {{members: [alice@acme.com]}}
budgets:
  eng-month: {{scope: team, target: engineering, window: month, limit_usd: 100}}
rate_limits:
  one-a-minute: {{scope: vk, target: vk-limited, requests: 1/minute}}
virtual_keys:
  vk-counts:
    key_sha256: {digest(KEY)}
    principal: alice@acme.com
    team: engineering
    models_allowed: [gpt-4o, gpt-4o-mini, claude-haiku-4-5, gemini-2.5-flash, llama-3.1-8b]
    model_aliases: {{claude: claude-haiku-4-5, flash: gemini-2.5-flash}}
  vk-limited:
    key_sha256: {digest(LIMITED_KEY)}
    models_allowed: [claude-haiku-4-5]
"""


@dataclass
class Setup:
    base_url: str
    upstream: MockUpstream
    vllm: MockUpstream
    log: io.StringIO
    server: ServerThread

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]

    def post(self, path: str, body: dict[str, Any], key: str = KEY) -> httpx.Response:
        return httpx.post(self.base_url + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=20)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("E2E_KEY", "upstream-credential")
    with MockUpstream() as upstream, MockUpstream(chat_only=True) as vllm:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(upstream.base_url, vllm.base_url))
        log = io.StringIO()
        ledger = SqliteLedger(tmp_path / "data")
        app = app_from(tmp_path / "policy", access_log=AccessLog(log), ledger=ledger)
        try:
            with ServerThread(app) as server:
                yield Setup(server.base_url, upstream, vllm, log, server)
        finally:
            if app.budgets is not None:
                app.budgets.close()
            ledger.close()


MESSAGES = [{"role": "user", "content": "how many tokens are in this prompt"}]


def test_the_anthropic_sdk_counts_through_the_providers_endpoint_with_the_resolved_model(setup: Setup) -> None:
    client = anthropic.Anthropic(base_url=setup.base_url, api_key=KEY, max_retries=0)
    raw = client.messages.with_raw_response.count_tokens(model="claude", system="be brief", messages=MESSAGES)
    assert raw.parse().input_tokens == 9
    assert raw.headers["x-langwatch-token-count"] == "provider"
    assert raw.headers["x-langwatch-provider"] == "anthropic-main"
    [seen] = setup.upstream.requests
    assert seen.path == "/v1/messages/count_tokens" and seen.json["model"] == "claude-haiku-4-5"
    assert seen.headers["x-api-key"] == "upstream-credential"
    [record] = setup.records()
    assert record["token_count"] == "provider" and record["decision"] == "allow" and record["model"] == "claude"
    assert record["status"] == 200 and "usage" not in record and "cost_usd" not in record


def test_the_openai_sdk_counts_responses_input_tokens_through_openai(setup: Setup) -> None:
    client = openai.OpenAI(base_url=setup.base_url + "/v1", api_key=KEY, max_retries=0)
    raw = client.responses.input_tokens.with_raw_response.count(
        model="gpt-4o", instructions="be brief", input="how many tokens are here"
    )
    assert raw.parse().input_tokens == 7
    assert raw.headers["x-langwatch-token-count"] == "provider"
    [seen] = setup.upstream.requests
    assert seen.path == "/v1/responses/input_tokens" and seen.json["model"] == "gpt-4o"
    assert seen.headers["authorization"] == "Bearer upstream-credential"


def test_the_google_genai_sdk_counts_through_gemini_with_the_alias_resolved(setup: Setup) -> None:
    from google import genai

    client = genai.Client(api_key=KEY, http_options={"base_url": setup.base_url})
    counted = client.models.count_tokens(model="flash", contents="count these five words please")
    assert counted.total_tokens == 5
    [seen] = setup.upstream.requests
    assert seen.path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert seen.headers["x-goog-api-key"] == "upstream-credential"
    assert setup.records()[0]["token_count"] == "provider"


def test_a_generate_content_request_names_the_resolved_model_upstream(setup: Setup) -> None:
    body = {"generateContentRequest": {"model": "models/flash", "contents": [{"parts": [{"text": "two words"}]}]}}
    r = httpx.post(setup.base_url + "/v1beta/models/flash:countTokens", json=body, headers={"x-goog-api-key": KEY})
    assert r.status_code == 200 and r.json() == {"totalTokens": 2}
    [seen] = setup.upstream.requests
    assert seen.json["generateContentRequest"]["model"] == "models/gemini-2.5-flash"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/v1/messages/count_tokens", {"model": "llama-3.1-8b", "messages": MESSAGES}, "input_tokens"),
    ("/v1/responses/input_tokens", {"model": "gpt-4o-mini", "input": "how many tokens"}, "input_tokens"),
])
def test_a_target_without_a_counting_endpoint_for_the_protocol_is_estimated_and_says_so(
    setup: Setup, path: str, body: dict[str, Any], field: str
) -> None:
    r = setup.post(path, body)
    assert r.status_code == 200 and r.json()[field] > 0
    assert r.headers["x-langwatch-token-count"] == "estimate"
    assert setup.upstream.requests == [] and setup.vllm.requests == []
    [record] = setup.records()
    assert record["token_count"] == "estimate" and record["decision"] == "allow"


@pytest.mark.parametrize(("path", "body", "answer", "counted_at"), [
    ("/v1/messages/count_tokens", {"model": "gpt-4o", "system": "be brief", "messages": MESSAGES},
     "input_tokens", "/v1/responses/input_tokens"),
    ("/v1/messages/count_tokens", {"model": "flash", "messages": MESSAGES}, "input_tokens",
     "/v1beta/models/gemini-2.5-flash:countTokens"),
    ("/v1beta/models/claude:countTokens", {"contents": [{"role": "user", "parts": [{"text": "how many tokens"}]}]},
     "totalTokens", "/v1/messages/count_tokens"),
    ("/v1/responses/input_tokens", {"model": "claude", "input": "how many tokens"}, "input_tokens",
     "/v1/messages/count_tokens"),
])
def test_a_target_counting_in_another_protocol_answers_through_translation(
    setup: Setup, path: str, body: dict[str, Any], answer: str, counted_at: str
) -> None:
    r = setup.post(path, body)
    assert r.status_code == 200, r.text
    assert set(r.json()) <= {answer, "object"} and r.json()[answer] >= 3
    assert r.headers["x-langwatch-token-count"] == "provider"
    [seen] = setup.upstream.requests
    assert seen.path == counted_at
    assert "how many tokens" in json.dumps(seen.json) and "max_tokens" not in seen.json
    [record] = setup.records()
    assert record["token_count"] == "provider" and record.get("cost_usd") is None and record["translated"]


def test_counts_are_decided_like_requests(setup: Setup) -> None:
    r = setup.post("/v1/messages/count_tokens", {"model": "claude-opus-4", "messages": MESSAGES})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = setup.post("/v1/messages/count_tokens", {"model": "claude", "messages": MESSAGES}, key="gp-unknown-key")
    assert r.status_code == 401
    assert setup.upstream.requests == []


def test_counts_are_neither_charged_nor_rate_limited(setup: Setup) -> None:
    for _ in range(3):
        r = setup.post("/v1/messages/count_tokens", {"model": "claude-haiku-4-5", "messages": MESSAGES}, LIMITED_KEY)
        assert r.status_code == 200
    generate = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": MESSAGES}
    assert setup.post("/v1/messages", generate, LIMITED_KEY).status_code == 200
    assert setup.post("/v1/messages", generate, LIMITED_KEY).status_code == 429


def test_provider_errors_are_mapped_as_for_any_request(setup: Setup) -> None:
    setup.upstream.fail(status=500, times=1)
    r = setup.post("/v1/messages/count_tokens", {"model": "claude", "messages": MESSAGES})
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"
    assert "anthropic-main (claude-haiku-4-5) answered 500" in r.json()["error"]["message"]
    setup.upstream.fail(status=400, body={"type": "error", "error": {"type": "invalid_request_error",
                                                                    "message": "messages: empty"}}, times=1)
    r = setup.post("/v1/messages/count_tokens", {"model": "claude", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["message"] == "messages: empty"
    setup.upstream.fail(status=401, times=1)
    r = setup.post("/v1/messages/count_tokens", {"model": "claude", "messages": MESSAGES})
    assert r.status_code == 502 and "refused the gateway's credential" in r.json()["error"]["message"]
