"""`type: openai_compatible` providers (vLLM, Ollama, ...): Chat Completions only, with or without a
key, against a mock that answers 404 on /v1/responses as vLLM does."""

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
KEY = "gp-e2e-vllm-0123456789abcdefghijklmnopqr"
FALLBACK_KEY = "gp-e2e-vllm-fallback-0123456789abcdefghij"
UPSTREAM_SECRET = "groq-upstream-credential-0123456789"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(vllm: str, groq: str, openai_url: str) -> str:
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  local-vllm: {{type: openai_compatible, base_url: "{vllm}/v1"}}
  groq: {{type: openai_compatible, base_url: "{groq}/v1", api_key: env:GROQ_KEY}}
  openai-primary: {{type: openai, base_url: "{openai_url}/v1", api_key: env:GROQ_KEY}}
models:
  llama-3.1-8b:
    providers: [local-vllm]
    price: {{input: 1000, output: 2000}}
  llama-3.3-70b: {{providers: [groq], price: {{input: 0.59, output: 0.79}}}}
  gpt-4o: {{providers: [openai-primary]}}
budgets:
  team-month: {{scope: team, target: engineering, window: month, limit_usd: 1000}}
teams:
  engineering: {{members: [alice@acme.com]}}
virtual_keys:
  vk-alice:
    key_sha256: {digest(KEY)}
    principal: alice@acme.com
    team: engineering
    models_allowed: [llama-3.1-8b, llama-3.3-70b]
    model_aliases: {{fast: llama-3.1-8b}}
  vk-fallback:
    key_sha256: {digest(FALLBACK_KEY)}
    models_allowed: [llama-3.1-8b, gpt-4o]
    fallback: {{on: [5xx], chain: [{{provider: openai-primary, model: gpt-4o}}]}}
"""


@dataclass
class Setup:
    base_url: str
    vllm: MockUpstream
    groq: MockUpstream
    primary: MockUpstream
    log: io.StringIO
    server: ServerThread

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url + "/v1", api_key=key, max_retries=0)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("GROQ_KEY", UPSTREAM_SECRET)
    with MockUpstream(chat_only=True) as vllm, MockUpstream(chat_only=True) as groq, MockUpstream() as primary:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(vllm.base_url, groq.base_url, primary.base_url))
        log = io.StringIO()
        ledger = SqliteLedger(tmp_path / "data")
        app = app_from(tmp_path / "policy", access_log=AccessLog(log), ledger=ledger)
        try:
            with ServerThread(app) as server:
                yield Setup(server.base_url, vllm, groq, primary, log, server)
        finally:
            if app.budgets is not None:
                app.budgets.close()
            ledger.close()


def test_a_chat_completion_reaches_a_keyless_server_without_an_authorization_header(setup: Setup) -> None:
    reply = setup.client().chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "mock reply from llama-3.1-8b"
    [seen] = setup.vllm.requests
    assert seen.path == "/v1/chat/completions" and seen.json["model"] == "llama-3.1-8b"
    assert "authorization" not in seen.headers


def test_a_keyed_server_gets_its_bearer_credential(setup: Setup) -> None:
    setup.client().chat.completions.create(model="llama-3.3-70b", messages=[{"role": "user", "content": "hi"}])
    [seen] = setup.groq.requests
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_SECRET}"


def test_a_stream_is_relayed_and_its_usage_charged_at_the_registry_price(setup: Setup) -> None:
    stream = setup.client().chat.completions.create(
        model="llama-3.1-8b", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock reply from llama-3.1-8b"
    assert all(c.usage is None for c in chunks)
    assert setup.vllm.requests[0].json["stream_options"] == {"include_usage": True}
    [record] = setup.records()
    assert record["provider"] == "local-vllm" and record["status"] == 200
    assert record["usage"]["input_tokens"] == 11 and record["usage"]["output_tokens"] == 5
    assert record["cost_usd"] == "0.021"


def test_a_responses_client_reaches_it_through_translation_to_chat(setup: Setup) -> None:
    reply = setup.client().responses.create(model="llama-3.1-8b", input="hi")
    assert reply.output_text == "mock reply from llama-3.1-8b"
    assert [r.path for r in setup.vllm.requests] == ["/v1/chat/completions"]


def test_a_messages_client_reaches_it_through_translation_to_chat(setup: Setup) -> None:
    client = anthropic.Anthropic(base_url=setup.base_url, api_key=KEY, max_retries=0)
    reply = client.messages.create(model="llama-3.1-8b", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].type == "text" and reply.content[0].text == "mock reply from llama-3.1-8b"
    assert [r.path for r in setup.vllm.requests] == ["/v1/chat/completions"]


def test_a_5xx_falls_back_to_the_next_target(setup: Setup) -> None:
    setup.vllm.fail(status=503, times=1)
    reply = setup.client(FALLBACK_KEY).chat.completions.create(
        model="llama-3.1-8b", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "mock reply from gpt-4o"
    assert len(setup.vllm.requests) == 1 and len(setup.primary.requests) == 1


def test_a_4xx_is_relayed_as_the_server_gave_it(setup: Setup) -> None:
    setup.vllm.fail(status=400, body={"error": {"message": "max_tokens too large", "type": "BadRequestError"}})
    r = httpx.post(setup.base_url + "/v1/chat/completions", headers={"authorization": f"Bearer {KEY}"},
                   json={"model": "llama-3.1-8b", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400 and r.json()["error"]["message"] == "max_tokens too large"
    assert r.headers["x-langwatch-provider"] == "local-vllm"


def test_a_401_from_the_server_is_the_gateways_credential_problem(setup: Setup) -> None:
    setup.groq.fail(status=401)
    with pytest.raises(openai.InternalServerError) as info:
        setup.client().chat.completions.create(model="llama-3.3-70b", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and "groq" in info.value.message
    assert UPSTREAM_SECRET not in info.value.message
