"""Every error the gateway makes itself, on every endpoint of every surface, in that surface's own
shape: what the surface's SDK parses (the openai and anthropic SDKs' error classes and strict
models; google-genai's APIError) and, for Gemini, the google.rpc status of the HTTP status."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from google.genai import errors as google_errors

import runtime.app
from runtime.ledger.sqlite import SqliteLedger
from tests.support.apps import app_from
from tests.support.proxy_process import free_port
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-shapes-0123456789abcdefghijklmnop"
BROKE = "gp-e2e-broke-0123456789abcdefghijklmnopq"
CIRCUIT = "gp-e2e-circuit-0123456789abcdefghijklmno"
MAX_BODY = 4096
MODELS = {"openai": "gpt-4o", "anthropic": "claude-haiku-4-5-20251001", "gemini": "gemini-2.5-flash"}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "RESOURCE_EXHAUSTED", 403: "PERMISSION_DENIED",
    404: "NOT_FOUND", 405: "UNIMPLEMENTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
ANTHROPIC_TYPE = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error", 403: "permission_error",
    404: "not_found_error", 405: "invalid_request_error", 429: "rate_limit_error", 500: "api_error",
    502: "api_error", 503: "overloaded_error", 504: "timeout_error",
}


def policy(upstream: str, dead: str) -> str:
    def vk(key: str) -> str:
        return f"key_sha256: {hashlib.sha256(key.encode()).hexdigest()}, key_prefix: {key[:12]}"

    timeouts = "timeouts: {connect_s: 1, read_s: 0.5, total_s: 2}, circuit: {failures: 0}"
    dead_circuit = "circuit: {failures: 1, cooldown_s: 3600}"
    allowed = "models_allowed: [gpt-4o, claude-haiku-4-5-20251001, gemini-2.5-flash]"
    return f"""\
gateway: {{max_body_bytes: {MAX_BODY}}}
providers:
  openai-main: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_KEY, {timeouts}}}
  anthropic-main: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_KEY, {timeouts}}}
  gemini-main: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_KEY, {timeouts}}}
  openai-dead: {{type: openai, base_url: "{dead}/v1", api_key: env:E2E_KEY, {dead_circuit}}}
  anthropic-dead: {{type: anthropic, base_url: "{dead}", api_key: env:E2E_KEY, {dead_circuit}}}
  gemini-dead: {{type: gemini, base_url: "{dead}", api_key: env:E2E_KEY, {dead_circuit}}}
models:
  gpt-4o: {{providers: [openai-main, openai-dead], price: {{input: 2.5, output: 10}}}}
  claude-haiku-4-5-20251001: {{providers: [anthropic-main, anthropic-dead], price: {{input: 1, output: 5}}}}
  gemini-2.5-flash: {{providers: [gemini-main, gemini-dead], price: {{input: 0.3, output: 2.5}}}}
virtual_keys:
  vk-shapes: {{{vk(KEY)}, {allowed}}}
  vk-broke: {{{vk(BROKE)}, principal: broke@acme.com, {allowed}}}
  vk-circuit:
    {{{vk(CIRCUIT)}, {allowed},
     model_aliases: {{gpt-4o: openai-dead/gpt-4o, claude-haiku-4-5-20251001: anthropic-dead/claude-haiku-4-5-20251001,
                     gemini-2.5-flash: gemini-dead/gemini-2.5-flash}}}}
budgets:
  tiny: {{scope: principal, target: broke@acme.com, window: day, limit_usd: 0.000001}}  # the first answer spends it
"""


@dataclass
class Proxy:
    base_url: str
    upstream: MockUpstream


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    tmp = tmp_path_factory.mktemp("shapes")
    with pytest.MonkeyPatch.context() as patch, MockUpstream() as upstream:
        patch.setenv("E2E_KEY", "upstream-credential-for-shapes")
        (tmp / "policy.yaml").write_text(policy(upstream.base_url, f"http://127.0.0.1:{free_port()}"))
        with ServerThread(app_from(tmp, ledger=SqliteLedger(tmp / "data"))) as server:
            yield Proxy(server.base_url, upstream)


@dataclass(frozen=True)
class Endpoint:
    name: str
    protocol: str
    path: str
    body: Callable[[str], dict[str, Any]]
    generates: bool = True
    """Reaches a provider (a count of tokens is the gateway's own estimate)."""
    upstream_path: str = ""

    def url(self, model: str) -> str:
        return self.path.format(model=model)

    def headers(self, key: str | None) -> dict[str, str]:
        if key is None:
            return {}
        if self.protocol == "anthropic":
            return {"x-api-key": key, "anthropic-version": "2023-06-01"}
        if self.protocol == "gemini":
            return {"x-goog-api-key": key}
        return {"authorization": f"Bearer {key}"}


def _chat(model: str, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def _messages(model: str, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def _gemini(model: str) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


GEMINI = "/v1beta/models/{model}:"
ENDPOINTS = [
    Endpoint("chat", "openai", "/v1/chat/completions", _chat, upstream_path="/v1/chat/completions"),
    Endpoint("chat-stream", "openai", "/v1/chat/completions", lambda m: _chat(m, True),
             upstream_path="/v1/chat/completions"),
    Endpoint("responses-stream", "openai", "/v1/responses", lambda m: {"model": m, "input": "hi", "stream": True},
             upstream_path="/v1/responses"),
    Endpoint("messages", "anthropic", "/v1/messages", _messages, upstream_path="/v1/messages"),
    Endpoint("messages-stream", "anthropic", "/v1/messages?beta=true", lambda m: _messages(m, True),
             upstream_path="/v1/messages"),
    Endpoint("count_tokens", "anthropic", "/v1/messages/count_tokens", _messages, generates=False),
    Endpoint("generateContent", "gemini", GEMINI + "generateContent", _gemini, upstream_path="/v1beta/models/"),
    Endpoint("streamGenerateContent-sse", "gemini", GEMINI + "streamGenerateContent?alt=sse", _gemini,
             upstream_path="/v1beta/models/"),
    Endpoint("streamGenerateContent-json", "gemini", GEMINI + "streamGenerateContent", _gemini,
             upstream_path="/v1beta/models/"),
    Endpoint("countTokens", "gemini", GEMINI + "countTokens", _gemini, generates=False),
]


@dataclass(frozen=True)
class Case:
    name: str
    status: int
    code: str
    generating_only: bool = False
    model_in_body: bool = False
    upstream_fault: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("wrong method", 405, "method_not_allowed"),
    Case("malformed JSON", 400, "invalid_json"),
    Case("not an object", 400, "invalid_request_error"),
    Case("body over max_body_bytes", 400, "request_too_large"),
    Case("no model", 400, "invalid_request_error", model_in_body=True),
    Case("no key", 401, "invalid_api_key"),
    Case("model not allowed", 403, "model_not_allowed"),
    Case("budget spent", 402, "budget_exceeded", generating_only=True),
    Case("provider rate-limited", 429, "rate_limited", generating_only=True, upstream_fault={"status": 429}),
    Case("provider failed", 502, "provider_error", generating_only=True, upstream_fault={"status": 500}),
    Case("provider refused the gateway's credential", 502, "provider_auth_error", generating_only=True,
         upstream_fault={"status": 401}),
    Case("provider timed out", 504, "upstream_timeout", generating_only=True, upstream_fault={"hold": True}),
    Case("circuit open", 503, "circuit_open", generating_only=True),
    Case("fault of the gateway", 500, "internal_error", generating_only=True),
]


def provoke(proxy: Proxy, endpoint: Endpoint, case: Case, monkeypatch: pytest.MonkeyPatch) -> httpx.Response:
    model = MODELS[endpoint.protocol]
    key: str | None = KEY
    body: bytes = orjson.dumps(endpoint.body(model))
    if case.status == 405:
        return httpx.get(proxy.base_url + endpoint.url(model), headers=endpoint.headers(key))
    if case.code == "invalid_json":
        body = b'{"model": "' + model.encode() + b'", "messages": ['
    elif case.name == "not an object":
        body = b"[1, 2]"
    elif case.code == "request_too_large":
        body = orjson.dumps({**endpoint.body(model), "padding": "x" * MAX_BODY})
    elif case.name == "no model":
        body = orjson.dumps({k: v for k, v in endpoint.body(model).items() if k != "model"})
    elif case.status == 401:
        key = None
    elif case.status == 403:
        model = {"openai": "o3", "anthropic": "claude-opus-4", "gemini": "gemini-1.5-pro"}[endpoint.protocol]
        body = orjson.dumps(endpoint.body(model))
    elif case.status in (402, 503):
        key = BROKE if case.status == 402 else CIRCUIT
        httpx.post(proxy.base_url + endpoint.url(model), content=body, headers=endpoint.headers(key))
    elif case.status == 500:
        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(runtime.app, "decide_for_key", broken)
    if case.upstream_fault:
        proxy.upstream.fail(**case.upstream_fault, times=1, path_contains=endpoint.upstream_path)
    try:
        return httpx.post(proxy.base_url + endpoint.url(model), content=body, headers=endpoint.headers(key), timeout=10)
    finally:
        proxy.upstream.release()


def _applies(endpoint: Endpoint, case: Case) -> bool:
    if case.generating_only and not endpoint.generates:
        return False
    return not (case.model_in_body and endpoint.protocol == "gemini")


def assert_surface_shape(protocol: str, response: httpx.Response, status: int, code: str) -> None:
    """The body is the surface's error, as its SDK reads it, with the gateway's code in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if protocol == "openai":
        error = openai.OpenAI(api_key="unused")._make_status_error_from_response(response)
        assert error.status_code == status and error.code == code
        assert openai.types.ErrorObject.model_validate(body["error"], strict=True).code == code
        if status in (400, 401, 403, 404, 429) or status >= 500:
            expected = {400: openai.BadRequestError, 401: openai.AuthenticationError, 403: openai.PermissionDeniedError,
                        404: openai.NotFoundError, 429: openai.RateLimitError}.get(status, openai.InternalServerError)
            assert isinstance(error, expected)
    elif protocol == "anthropic":
        sdk_error = anthropic.Anthropic(api_key="unused")._make_status_error_from_response(response)
        assert sdk_error.status_code == status
        parsed = anthropic.types.ErrorResponse.model_validate(body, strict=True)
        assert parsed.error.type == ANTHROPIC_TYPE[status]
        assert body["error"]["code"] == code
    else:
        with pytest.raises(google_errors.APIError) as raised:
            google_errors.APIError.raise_for_response(response)
        assert raised.value.code == status and raised.value.status == GOOGLE_STATUS[status]
        assert isinstance(raised.value, google_errors.ClientError if status < 500 else google_errors.ServerError)
        assert set(body) == {"error"} and {"code", "message", "status"} <= set(body["error"])
        assert body["error"]["code"] == status and isinstance(body["error"]["message"], str)
        assert body["error"]["details"][0]["reason"] == code


@pytest.mark.parametrize(
    ("endpoint", "case"),
    [pytest.param(e, c, id=f"{e.name}: {c.name}") for e in ENDPOINTS for c in CASES if _applies(e, c)],
)
def test_every_gateway_error_is_in_its_surfaces_shape(
    proxy: Proxy, endpoint: Endpoint, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = provoke(proxy, endpoint, case, monkeypatch)
    assert_surface_shape(endpoint.protocol, response, case.status, case.code)


@pytest.mark.parametrize(("path", "protocol"), [
    ("/v1/chat/nowhere", "openai"),
    ("/chat/completions", "openai"),
    ("/v1/messages/batches", "anthropic"),
    ("/messages", "anthropic"),
    ("/v1/v1/messages", "anthropic"),
    ("/v1beta/models/gemini-2.5-flash:embedContent", "gemini"),
    ("/v1beta/cachedContents", "gemini"),
])
def test_an_unknown_path_is_a_404_in_its_familys_shape(proxy: Proxy, path: str, protocol: str) -> None:
    response = httpx.post(proxy.base_url + path, json={})
    assert_surface_shape(protocol, response, 404, "not_found")
