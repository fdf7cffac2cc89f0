"""The reference page's "known good setup", end to end: Codex (Responses API, streaming) on a
route whose OpenAI primary answers 503 is answered by the Anthropic fallback through
translation, and charged at the Claude model's price."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from runtime.ledger.sqlite import SqliteLedger
from tests.support.codex import run_codex
from tests.support.proxy_process import ProxyProcess
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-knowngood-0123456789abcdefghijk"


def policy(openai_base: str, anthropic_base: str) -> str:
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  openai-primary: {{type: openai, base_url: "{openai_base}/v1", api_key: env:E2E_OPENAI_KEY}}
  anthropic-fallback: {{type: anthropic, base_url: "{anthropic_base}", api_key: env:E2E_ANTHROPIC_KEY}}
models:
  gpt-5-mini: {{providers: [openai-primary], price: {{input: 0.25, cached_input: 0.025, output: 2.00}}}}
  gpt-5: {{providers: [openai-primary], price: {{input: 1.25, cached_input: 0.125, output: 10.00}}}}
  gpt-4o: {{providers: [openai-primary], price: {{input: 2.50, cached_input: 1.25, output: 10.00}}}}
  claude-haiku-4-5-20251001: {{providers: [anthropic-fallback], price: {{input: 1.00, cached_input: 0.10, output: 5.00}}}}
teams:
  engineering: {{members: [alice@acme.com], defaults: {{models_allowed: [gpt-5-mini]}}}}
profiles:
  codex-default:
    models_allowed: [gpt-5-mini, gpt-5, gpt-4o, claude-haiku-4-5-20251001]
    fallback: {{on: [5xx, timeout, 429], chain: [openai-primary, {{provider: anthropic-fallback, model: claude-haiku-4-5-20251001}}]}}
    cache: {{mode: respect}}
virtual_keys:
  vk-alice-codex:
    key_sha256: {hashlib.sha256(KEY.encode()).hexdigest()}
    key_prefix: {KEY[:12]}
    principal: alice@acme.com
    team: engineering
    extends: codex-default
budgets:
  per-engineer: {{scope: principal, target: "*", window: month, limit_usd: 300, on_breach: {{warn: 80%, block: 100%}}}}
  eng-daily: {{scope: team, target: engineering, window: day, timezone: Europe/Amsterdam, limit_usd: 100, on_breach: {{warn: 80%, block: 100%}}}}
"""


def test_codex_falls_back_to_claude_when_openai_answers_503(tmp_path: Path) -> None:
    with MockUpstream() as openai_mock, MockUpstream() as anthropic_mock:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(openai_mock.base_url, anthropic_mock.base_url))
        env = {"E2E_OPENAI_KEY": "o", "E2E_ANTHROPIC_KEY": "a"}
        log = tmp_path / "serve.log"
        with ProxyProcess(tmp_path / "policy", log, env, "--data", str(tmp_path / "data")) as proxy:
            openai_mock.fail(status=503, times=10)
            run = run_codex(proxy.base_url + "/v1", KEY, "gpt-4o", "say hi", tmp_path / "codex")
        assert run.returncode == 0, run.stderr[-2000:]
        assert "mock reply from claude-haiku-4-5-20251001" in run.stdout
        assert openai_mock.requests and openai_mock.requests[0].json["stream"] is True
        assert anthropic_mock.requests[0].path == "/v1/messages"
        records = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{") and '"surface"' in ln]
        answered = [r for r in records if r.get("status") == 200]
        assert answered, records
        record = answered[-1]
        assert record["provider"] == "anthropic-fallback" and record["fallback_count"] == 1
        assert record["translated"] == "openai<-anthropic" and record["upstream_model"] == "claude-haiku-4-5-20251001"
        rows = {r.instance: r for r in SqliteLedger(tmp_path / "data").counters()}
        claude_cost = (11 * 1_000_000 + 5 * 5_000_000) * len(anthropic_mock.requests)
        assert rows["per-engineer/alice@acme.com"].spent == claude_cost
        assert rows["eng-daily"].spent == claude_cost


def test_the_headers_say_who_answered(tmp_path: Path) -> None:
    import httpx

    with MockUpstream() as openai_mock, MockUpstream() as anthropic_mock:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(openai_mock.base_url, anthropic_mock.base_url))
        env = {"E2E_OPENAI_KEY": "o", "E2E_ANTHROPIC_KEY": "a"}
        with ProxyProcess(tmp_path / "policy", tmp_path / "serve.log", env, "--data", str(tmp_path / "data")) as proxy:
            openai_mock.fail(status=503, times=1)
            r = httpx.post(proxy.base_url + "/v1/responses", json={"model": "gpt-4o", "input": "hi", "stream": True},
                           headers={"authorization": f"Bearer {KEY}"}, timeout=20)
    assert r.status_code == 200
    assert r.headers["x-langwatch-fallback-count"] == "1"
    assert r.headers["x-langwatch-provider"].split(";")[0] == "anthropic-fallback"
    assert "translated-from=anthropic" in r.headers["x-langwatch-provider"]
    assert "event: response.completed" in r.text
