"""Claude and Gemini on Google Vertex AI through the proxy, against a mock Vertex whose token
endpoint verifies the service account's JWT assertion with the public half of a key pair made
here, and whose model endpoints take only the tokens it issued: the anthropic, openai and
google-genai SDKs, httpx on the Gemini surface, Claude Code, Codex and gemini-cli; tokens cached and
refreshed before they expire; a refused or unreachable token endpoint is a provider failure."""

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
from tests.support.servers import ServerThread
from tests.support.vertex import TEST_LOCATION, TEST_PROJECT, MockVertex, key_pair, service_account_file

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-vertex-0123456789abcdefghijklmnopq"
CLAUDE_ID = "claude-sonnet-4-5@20250929"


def vk(key: str) -> str:
    return f"key_sha256: {hashlib.sha256(key.encode()).hexdigest()}, key_prefix: {key[:12]}"


def policy(vertex: str, credentials: str) -> str:
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  vertex-ai:
    type: vertex
    project: {TEST_PROJECT}
    location: {TEST_LOCATION}
    base_url: "{vertex}"
    credentials: {credentials}
    model_ids: {{claude-sonnet-4-5: "{CLAUDE_ID}"}}
models:
  claude-sonnet-4-5: {{providers: [vertex-ai], price: {{input: 3, cached_input: 0.3, output: 15}}}}
  gemini-2.5-pro: {{providers: [vertex-ai], price: {{input: 1.25, cached_input: 0.31, output: 10}}}}
virtual_keys:
  vk-vertex: {{{vk(KEY)}, principal: dev@acme.com, models_allowed: [claude-sonnet-4-5, gemini-2.5-pro]}}
"""


@dataclass
class Stack:
    base_url: str
    vertex: MockVertex
    proxy: ServerThread
    log: io.StringIO
    account: str
    """The service-account key file's text, private key and all."""


def serve(tmp_path: Path, vertex: MockVertex, account: str, credentials: str | None = None) -> tuple[ServerThread, io.StringIO]:
    key_file = tmp_path / "service-account.json"
    key_file.write_text(account)
    (tmp_path / "policy").mkdir(exist_ok=True)
    (tmp_path / "policy" / "policy.yaml").write_text(policy(vertex.base_url, credentials or f"file:{key_file}"))
    log = io.StringIO()
    app = app_from(tmp_path / "policy", ledger=SqliteLedger(tmp_path / "data"), access_log=AccessLog(log))
    return ServerThread(app), log


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    private = key_pair()
    with MockVertex(private.public_key()) as vertex:
        account = service_account_file(private, vertex.token_uri)
        server, log = serve(tmp_path, vertex, account)
        with server as proxy:
            yield Stack(proxy.base_url, vertex, proxy, log, account)


def claude(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.base_url, api_key=KEY, max_retries=0)


def log_lines(stack: Stack) -> list[dict[str, object]]:
    stack.proxy.wait_idle()
    return [json.loads(line) for line in stack.log.getvalue().splitlines()]


def assert_no_secret(stack: Stack, *texts: str) -> None:
    private_key = json.loads(stack.account)["private_key"]
    secret_lines = [line for line in private_key.splitlines() if "PRIVATE KEY" not in line]
    for text in (stack.log.getvalue(), *texts):
        assert not any(line in text for line in secret_lines)
        assert json.loads(stack.account)["private_key_id"] not in text


def test_claude_through_raw_predict_with_a_token_fetched_once_and_cached(stack: Stack) -> None:
    client = claude(stack)
    for _ in range(3):
        reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert reply.content[0].text == f"mock reply from vertex {CLAUDE_ID}"  # type: ignore[union-attr]
    assert stack.vertex.token_requests == 1 and stack.vertex.refused == []
    seen = stack.vertex.requests[0]
    assert (seen.publisher, seen.model, seen.method) == ("anthropic", CLAUDE_ID, "rawPredict")
    assert seen.body["anthropic_version"] == "vertex-2023-10-16" and "model" not in seen.body
    lines = log_lines(stack)
    assert lines[0]["provider"] == "vertex-ai" and lines[0]["cost_usd"] == "0.000108"
    assert_no_secret(stack)


def test_claude_streams_through_stream_raw_predict_to_the_anthropic_and_openai_sdks(stack: Stack) -> None:
    with claude(stack).messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                       messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream) == f"mock reply from vertex {CLAUDE_ID}"
    client = openai.OpenAI(base_url=stack.base_url + "/v1", api_key=KEY, max_retries=0)
    chunks = list(client.chat.completions.create(model="claude-sonnet-4-5", stream=True,
                                                 messages=[{"role": "user", "content": "hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"mock reply from vertex {CLAUDE_ID}"
    assert client.responses.create(model="claude-sonnet-4-5", input="hi").output_text == f"mock reply from vertex {CLAUDE_ID}"
    assert [r.method for r in stack.vertex.requests] == ["streamRawPredict", "streamRawPredict", "rawPredict"]
    assert stack.vertex.requests[0].body["stream"] is True


def test_gemini_on_vertex_through_the_gemini_surface(stack: Stack) -> None:
    url = stack.base_url + "/v1beta/models/gemini-2.5-pro"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    whole = httpx.post(url + ":generateContent", headers={"x-goog-api-key": KEY}, json=body)
    assert whole.status_code == 200
    assert whole.json()["candidates"][0]["content"]["parts"][0]["text"] == "mock reply from vertex gemini-2.5-pro"
    streamed = httpx.post(url + ":streamGenerateContent?alt=sse", headers={"x-goog-api-key": KEY}, json=body)
    assert streamed.status_code == 200 and streamed.text.count("data: ") == 5
    array = httpx.post(url + ":streamGenerateContent", headers={"x-goog-api-key": KEY}, json=body)
    assert array.status_code == 200 and len(array.json()) == 5
    assert [(r.publisher, r.method, r.query) for r in stack.vertex.requests] == [
        ("google", "generateContent", ""), ("google", "streamGenerateContent", "alt=sse"),
        ("google", "streamGenerateContent", "alt=sse"),
    ]
    assert stack.vertex.token_requests == 1


def test_the_google_genai_sdk_reaches_gemini_on_vertex(stack: Stack) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=stack.base_url))
    assert client.models.generate_content(model="gemini-2.5-pro", contents="hi").text == "mock reply from vertex gemini-2.5-pro"
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-pro", contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "mock reply from vertex gemini-2.5-pro"
    [line, _] = log_lines(stack)
    assert line["cost_usd"] == "0.00006375"


def test_a_token_near_its_expiry_is_refreshed_before_the_request(tmp_path: Path) -> None:
    private = key_pair()
    with MockVertex(private.public_key(), expires_in=120) as vertex:
        server, _ = serve(tmp_path, vertex, service_account_file(private, vertex.token_uri))
        with server as proxy:
            client = anthropic.Anthropic(base_url=proxy.base_url, api_key=KEY, max_retries=0)
            for _ in range(2):
                client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert vertex.token_requests == 2 and vertex.refused == []


def test_a_key_the_token_endpoint_refuses_is_provider_auth_error(tmp_path: Path) -> None:
    private, impostor = key_pair(), key_pair()
    with MockVertex(private.public_key()) as vertex:
        account = service_account_file(impostor, vertex.token_uri)
        server, log = serve(tmp_path, vertex, account)
        with server as proxy:
            r = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY},
                           json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
            proxy.wait_idle()
    assert r.status_code == 502 and r.json()["error"]["code"] == "provider_auth_error"
    assert "vertex-ai" in r.json()["error"]["message"]
    assert vertex.refused == ["bad_assertion"] and vertex.requests == []
    private_key = json.loads(account)["private_key"]
    assert not any(line in log.getvalue() + r.text for line in private_key.splitlines()[1:-1])


def test_an_unreachable_token_endpoint_is_a_502_provider_error_not_a_crash(tmp_path: Path) -> None:
    private = key_pair()
    with MockVertex(private.public_key()) as vertex:
        account = service_account_file(private, "http://127.0.0.1:9/token")
        server, _ = serve(tmp_path, vertex, account)
        with server as proxy:
            r = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY},
                           json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
            after = httpx.get(proxy.base_url + "/readyz")
    assert r.status_code == 502 and r.json()["error"]["code"] == "provider_error"
    assert r.json()["error"]["meta"]["attempts"][0]["reason"] == "connect"
    assert after.status_code == 200


def test_a_key_file_that_is_not_a_service_account_leaves_the_provider_out(tmp_path: Path) -> None:
    private = key_pair()
    with MockVertex(private.public_key()) as vertex:
        server, _ = serve(tmp_path, vertex, '{"type": "authorized_user", "refresh_token": "1//not-a-service-account"}')
        with server as proxy:
            r = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY},
                           json={"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 502 and r.json()["error"]["meta"]["attempts"][0]["reason"] == "no_credential"
    assert "1//not-a-service-account" not in r.text and vertex.token_requests == 0


def test_claude_code_reaches_claude_on_vertex(stack: Stack, tmp_path: Path) -> None:
    from tests.support.claude_code import run_claude

    run = run_claude(stack.base_url, KEY, "claude-sonnet-4-5", "say hi", tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"mock reply from vertex {CLAUDE_ID}" in run.stdout
    assert stack.vertex.refused == [] and stack.vertex.token_requests == 1
    assert_no_secret(stack, run.stdout, run.stderr)


def test_codex_reaches_claude_on_vertex(stack: Stack, tmp_path: Path) -> None:
    from tests.support.codex import run_codex

    run = run_codex(stack.base_url + "/v1", KEY, "claude-sonnet-4-5", "say hi", tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"mock reply from vertex {CLAUDE_ID}" in run.stdout
    assert stack.vertex.refused == []


def test_gemini_cli_reaches_gemini_on_vertex(stack: Stack, tmp_path: Path) -> None:
    from tests.support.gemini_cli import run_gemini

    run = run_gemini(stack.base_url, KEY, "gemini-2.5-pro", "say hi", tmp_path / "home")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "mock reply from vertex gemini-2.5-pro" in run.stdout
    assert run.egress == [], "gemini-cli tried to reach beyond loopback"
    assert [(r.publisher, r.method, r.query) for r in stack.vertex.requests] == [
        ("google", "streamGenerateContent", "alt=sse")]
    assert stack.vertex.refused == [] and stack.vertex.token_requests == 1
    assert_no_secret(stack, run.stdout, run.stderr)


def test_sighup_rereads_a_rotated_key_file(tmp_path: Path) -> None:
    from tests.support.proxy_process import ProxyProcess
    from tests.support.waiting import wait_until

    private, retired = key_pair(), key_pair()
    body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with MockVertex(private.public_key()) as vertex:
        key_file = tmp_path / "service-account.json"
        key_file.write_text(service_account_file(retired, vertex.token_uri))
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(vertex.base_url, f"file:{key_file}"))
        log = tmp_path / "serve.log"
        with ProxyProcess(tmp_path / "policy", log, {}, "--no-watch") as proxy:
            first = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY}, json=body)
            key_file.write_text(service_account_file(private, vertex.token_uri))
            proxy.signal()
            wait_until(lambda: "credentials_reloaded" in log.read_text())
            second = httpx.post(proxy.base_url + "/v1/messages", headers={"x-api-key": KEY}, json=body)
    assert first.status_code == 502 and first.json()["error"]["code"] == "provider_auth_error"
    assert second.status_code == 200 and vertex.token_requests == 2, (second.text, log.read_text())
    event = next(json.loads(line) for line in log.read_text().splitlines() if "credentials_reloaded" in line)
    assert event["providers"] == ["vertex-ai"]
    assert "PRIVATE KEY" not in log.read_text()
