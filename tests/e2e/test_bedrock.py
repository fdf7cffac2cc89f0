"""Claude on AWS Bedrock through the proxy, against a mock Bedrock that checks real SigV4
signatures with botocore and validates every request against botocore's `bedrock-runtime`
service model: the anthropic and openai SDKs, streaming and not, Claude Code and Codex, fallback
between Anthropic direct and Bedrock, budgets, refused keys and rotated ones."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from runtime.access_log import AccessLog
from runtime.ledger.sqlite import SqliteLedger
from tests.support.apps import app_from
from tests.support.bedrock import (
    TEST_ACCESS_KEY_ID,
    TEST_REGION,
    TEST_SECRET_ACCESS_KEY,
    TEST_SESSION_TOKEN,
    MockBedrock,
)
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-bedrock-0123456789abcdefghijklmnop"
BROKE = "gp-e2e-bedrock-broke-0123456789abcdefghij"
PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ANTHROPIC_SECRET = "anthropic-direct-credential-for-tests"


def vk(key: str) -> str:
    return f"key_sha256: {hashlib.sha256(key.encode()).hexdigest()}, key_prefix: {key[:12]}"


def policy(bedrock: str, anthropic_direct: str, secret_ref: str = "env:E2E_AWS_SECRET", session: bool = False) -> str:
    token = "\n    aws_session_token: env:E2E_AWS_SESSION" if session else ""
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  anthropic-direct: {{type: anthropic, base_url: "{anthropic_direct}", api_key: env:E2E_ANTHROPIC_KEY}}
  bedrock-us:
    type: bedrock
    region: {TEST_REGION}
    base_url: "{bedrock}"
    aws_access_key_id: env:E2E_AWS_KEY_ID
    aws_secret_access_key: {secret_ref}{token}
    model_ids: {{claude-sonnet-4-5: "{PROFILE}", claude-haiku-4-5: anthropic.claude-haiku-4-5-20251001-v1:0}}
models:
  claude-sonnet-4-5: {{providers: [bedrock-us, anthropic-direct], price: {{input: 3, cached_input: 0.3, output: 15}}}}
  claude-haiku-4-5: {{providers: [anthropic-direct, bedrock-us], price: {{input: 1, cached_input: 0.1, output: 5}}}}
virtual_keys:
  vk-bedrock: {{{vk(KEY)}, principal: dev@acme.com, models_allowed: [claude-sonnet-4-5, claude-haiku-4-5],
               fallback: {{on: [5xx, 429], chain: [bedrock-us, anthropic-direct]}}}}
  vk-broke: {{{vk(BROKE)}, principal: broke@acme.com, models_allowed: [claude-sonnet-4-5]}}
budgets:
  tiny: {{scope: vk, target: vk-broke, window: day, limit_usd: 0.0001}}
"""


@dataclass
class Stack:
    base_url: str
    bedrock: MockBedrock
    anthropic_direct: MockUpstream
    proxy: ServerThread
    log: io.StringIO


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("E2E_AWS_KEY_ID", TEST_ACCESS_KEY_ID)
    monkeypatch.setenv("E2E_AWS_SECRET", TEST_SECRET_ACCESS_KEY)
    monkeypatch.setenv("E2E_ANTHROPIC_KEY", ANTHROPIC_SECRET)
    log = io.StringIO()
    with MockBedrock() as bedrock, MockUpstream() as direct:
        (tmp_path / "policy.yaml").write_text(policy(bedrock.base_url, direct.base_url))
        app = app_from(tmp_path, ledger=SqliteLedger(tmp_path / "data"), access_log=AccessLog(log))
        with ServerThread(app) as proxy:
            yield Stack(proxy.base_url, bedrock, direct, proxy, log)


def claude(stack: Stack, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.base_url, api_key=key, max_retries=0)


def log_lines(stack: Stack) -> list[dict[str, object]]:
    stack.proxy.wait_idle()
    return [json.loads(line) for line in stack.log.getvalue().splitlines()]


def test_messages_reach_invoke_model_signed_with_the_inference_profile_in_the_path(stack: Stack) -> None:
    reply = claude(stack).messages.create(model="claude-sonnet-4-5", max_tokens=64,
                                          messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == f"mock reply from bedrock {PROFILE}"  # type: ignore[union-attr]
    assert reply.usage.input_tokens == 11 and reply.usage.output_tokens == 5
    [seen] = stack.bedrock.requests
    assert seen.operation == "InvokeModel" and seen.model_id == PROFILE
    assert seen.body["anthropic_version"] == "bedrock-2023-05-31" and "model" not in seen.body
    assert seen.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/")
    assert KEY not in json.dumps(seen.headers)
    assert stack.bedrock.refused == []
    [line] = log_lines(stack)
    assert line["provider"] == "bedrock-us" and line["upstream_model"] == PROFILE and line["status"] == 200
    assert line["cost_usd"] == "0.000108"


def test_a_stream_of_event_stream_frames_reaches_the_anthropic_sdk_as_messages_events(stack: Stack) -> None:
    with claude(stack).messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                       messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"mock reply from bedrock {PROFILE}"
    assert final.usage.output_tokens == 5 and final.stop_reason == "end_turn"
    [seen] = stack.bedrock.requests
    assert seen.operation == "InvokeModelWithResponseStream" and "stream" not in seen.body
    [line] = log_lines(stack)
    assert line["usage"] and line["cost_usd"] == "0.000108"


def test_openai_clients_reach_claude_on_bedrock_through_translation(stack: Stack) -> None:
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=KEY, max_retries=0)
    reply = client.chat.completions.create(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == f"mock reply from bedrock {PROFILE}"
    chunks = list(client.chat.completions.create(model="claude-sonnet-4-5", stream=True,
                                                 messages=[{"role": "user", "content": "hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"mock reply from bedrock {PROFILE}"
    answer = client.responses.create(model="claude-sonnet-4-5", input="hi")
    assert answer.output_text == f"mock reply from bedrock {PROFILE}"
    assert [r.operation for r in stack.bedrock.requests] == ["InvokeModel", "InvokeModelWithResponseStream", "InvokeModel"]
    assert stack.bedrock.refused == []


def test_a_wrong_secret_is_refused_by_the_signature_check_and_is_provider_auth_error(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_AWS_SECRET", "not-the-secret-access-key-0123456789")
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "policy.yaml").write_text(policy(stack.bedrock.base_url, stack.anthropic_direct.base_url))
    log = io.StringIO()
    with ServerThread(app_from(tmp_path / "wrong", access_log=AccessLog(log))) as proxy:
        r = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY},
                       json={"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
        proxy.wait_idle()
    assert r.status_code == 502 and r.json()["error"]["code"] == "provider_auth_error"
    assert "bedrock-us" in r.json()["error"]["message"]
    assert stack.bedrock.refused == ["InvalidSignatureException"] and stack.bedrock.requests == []
    for secret in ("not-the-secret-access-key-0123456789", TEST_SECRET_ACCESS_KEY):
        assert secret not in r.text and secret not in log.getvalue()


def test_a_session_token_is_sent_and_signed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_AWS_KEY_ID", TEST_ACCESS_KEY_ID)
    monkeypatch.setenv("E2E_AWS_SECRET", TEST_SECRET_ACCESS_KEY)
    monkeypatch.setenv("E2E_AWS_SESSION", TEST_SESSION_TOKEN)
    monkeypatch.setenv("E2E_ANTHROPIC_KEY", ANTHROPIC_SECRET)
    with MockBedrock(session_token=TEST_SESSION_TOKEN) as bedrock:
        (tmp_path / "policy.yaml").write_text(policy(bedrock.base_url, "http://127.0.0.1:9", session=True))
        with ServerThread(app_from(tmp_path)) as proxy:
            reply = anthropic.Anthropic(base_url=proxy.base_url, api_key=KEY, max_retries=0).messages.create(
                model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text.startswith("mock reply from bedrock")  # type: ignore[union-attr]
    [seen] = bedrock.requests
    assert seen.headers["x-amz-security-token"] == TEST_SESSION_TOKEN
    assert "x-amz-security-token" in seen.headers["authorization"]


def test_fallback_crosses_from_anthropic_direct_to_bedrock_and_back(stack: Stack) -> None:
    stack.anthropic_direct.fail(status=529, times=1)
    reply = claude(stack).messages.create(model="claude-haiku-4-5", max_tokens=16,
                                          messages=[{"role": "user", "content": "hi"}])
    assert reply.content[0].text == "mock reply from bedrock anthropic.claude-haiku-4-5-20251001-v1:0"  # type: ignore[union-attr]
    stack.bedrock.fail(500, "InternalServerException")
    with httpx.Client(base_url=stack.base_url) as client:
        r = client.post("/v1/messages", headers={"x-api-key": KEY},
                        json={"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "mock reply from claude-sonnet-4-5"
    assert r.headers["x-langwatch-provider"] == "anthropic-direct" and r.headers["x-langwatch-fallback-count"] == "1"
    lines = log_lines(stack)
    assert [a["provider"] for a in lines[0]["attempts"]] == ["anthropic-direct", "bedrock-us"]  # type: ignore[index]
    assert lines[0]["provider"] == "bedrock-us" and lines[1]["provider"] == "anthropic-direct"


def test_bedrock_throttling_is_a_429_condition_and_a_mid_stream_exception_ends_the_stream_in_band(stack: Stack) -> None:
    stack.bedrock.fail(429, "ThrottlingException", times=2)
    r = httpx.post(stack.base_url + "/v1/messages", headers={"x-api-key": BROKE},
                   json={"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
    stack.bedrock.failures.clear()
    stack.bedrock.stream_exception = "throttlingException"
    with httpx.stream("POST", stack.base_url + "/v1/messages", headers={"x-api-key": KEY}, json={
            "model": "claude-sonnet-4-5", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "hi"}]}) as streamed:
        body = streamed.read().decode()
    assert streamed.status_code == 200 and "event: message_start" in body
    assert "event: error" in body and "throttlingException" in body and "message_stop" not in body


def test_budgets_price_bedrock_answers_and_block_past_the_limit(stack: Stack) -> None:
    client = claude(stack, BROKE)
    client.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    stack.proxy.wait_idle()
    with pytest.raises(anthropic.APIStatusError) as blocked:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert blocked.value.status_code == 402 and len(stack.bedrock.requests) == 1


def test_claude_code_reaches_claude_on_bedrock(stack: Stack, tmp_path: Path) -> None:
    from tests.support.claude_code import run_claude

    run = run_claude(stack.base_url, KEY, "claude-sonnet-4-5", "say hi", tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"mock reply from bedrock {PROFILE}" in run.stdout
    assert stack.bedrock.requests and stack.bedrock.refused == []
    assert all(r.operation == "InvokeModelWithResponseStream" for r in stack.bedrock.requests)
    betas = stack.bedrock.requests[-1].body["anthropic_beta"]
    assert "context-management-2025-06-27" in betas and "claude-code-20250219" not in betas


def test_codex_reaches_claude_on_bedrock(stack: Stack, tmp_path: Path) -> None:
    from tests.support.codex import run_codex

    run = run_codex(stack.base_url + "/v1", KEY, "claude-sonnet-4-5", "say hi", tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"mock reply from bedrock {PROFILE}" in run.stdout
    assert stack.bedrock.requests and stack.bedrock.refused == []


def test_sighup_rereads_a_rotated_secret_file(tmp_path: Path) -> None:
    from tests.support.proxy_process import ProxyProcess
    from tests.support.waiting import wait_until

    secret = tmp_path / "aws-secret"
    secret.write_text("an-old-secret-access-key-that-aws-revoked\n")
    (tmp_path / "policy").mkdir()
    log = tmp_path / "serve.log"
    body = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    with MockBedrock() as bedrock:
        (tmp_path / "policy" / "policy.yaml").write_text(
            policy(bedrock.base_url, "http://127.0.0.1:9", secret_ref=f"file:{secret}"))
        env = {"E2E_AWS_KEY_ID": TEST_ACCESS_KEY_ID, "E2E_ANTHROPIC_KEY": ANTHROPIC_SECRET}
        with ProxyProcess(tmp_path / "policy", log, env, "--no-watch") as proxy:
            first = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY}, json=body)
            secret.write_text(TEST_SECRET_ACCESS_KEY + "\n")
            proxy.signal()
            wait_until(lambda: "credentials_reloaded" in log.read_text())
            second = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY}, json=body)
    assert first.status_code == 502 and first.json()["error"]["code"] == "provider_auth_error"
    assert second.status_code == 200 and bedrock.refused == ["InvalidSignatureException"]
    event = next(json.loads(line) for line in log.read_text().splitlines() if "credentials_reloaded" in line)
    assert event["providers"] == ["bedrock-us"]
    for value in (TEST_SECRET_ACCESS_KEY, "an-old-secret-access-key-that-aws-revoked"):
        assert value not in log.read_text() and value not in first.text


def test_a_request_bedrock_refuses_reaches_the_client_as_anthropics_error(stack: Stack) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude(stack).messages.create(model="claude-sonnet-4-5", max_tokens=16,
                                      messages=[{"role": "user", "content": "hi"}], extra_body={"speed": "fast"})
    assert refused.value.status_code == 400 and stack.bedrock.refused == ["ValidationException"]
    error = refused.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Bedrock ValidationException: Malformed input request: #: extraneous key [speed]")


def test_the_artifact_holds_references_never_the_keys(stack: Stack, tmp_path: Path) -> None:
    from compiler import compile_policy

    result = compile_policy(tmp_path)
    assert result.artifact is not None
    text = result.artifact.model_dump_json()
    assert "env:E2E_AWS_SECRET" in text and TEST_SECRET_ACCESS_KEY not in text and TEST_ACCESS_KEY_ID not in text
