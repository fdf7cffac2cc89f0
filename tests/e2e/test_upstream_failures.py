"""Upstream failures reach the client as one clear error in its surface's shape, never a hang."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from tests.support.apps import app_from
from tests.support.proxy_process import free_port
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-failures-0123456789abcdefghijkl"


def policy(upstream: str, dead: str) -> str:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    return f"""\
providers:
  slow:
    type: openai
    base_url: {upstream}/v1
    api_key: env:E2E_OPENAI_KEY
    timeouts: {{connect_s: 1, read_s: 1, total_s: 1}}
  dead:
    type: openai
    base_url: {dead}/v1
    api_key: env:E2E_OPENAI_KEY
models:
  gpt-4o: {{providers: [slow]}}
  gpt-5-mini: {{providers: [dead]}}
virtual_keys:
  vk-failures:
    key_sha256: {digest}
    models_allowed: [gpt-4o, gpt-5-mini]
"""


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("E2E_OPENAI_KEY", "upstream-credential")
    with MockUpstream() as upstream:
        (tmp_path / "policy.yaml").write_text(policy(upstream.base_url, f"http://127.0.0.1:{free_port()}"))
        with ServerThread(app_from(tmp_path)) as server:
            yield server, upstream


def post(base_url: str, model: str, stream: bool = False) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=15) as http:
        return http.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream},
            headers={"authorization": f"Bearer {KEY}"},
        )


def test_timeout_is_504(proxy) -> None:  # type: ignore[no-untyped-def]
    server, upstream = proxy
    upstream.fail(hold=True, times=1)
    response = post(server.base_url, "gpt-4o")
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout" and "slow" in error["message"] and "timeout" in error["message"]


def test_connection_refused_is_502(proxy) -> None:  # type: ignore[no-untyped-def]
    server, _ = proxy
    response = post(server.base_url, "gpt-5-mini")
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "provider_error" and error["meta"]["attempts"] == [
        {"provider": "dead", "model": "gpt-5-mini", "reason": "connect"}
    ]


def test_upstream_error_body_is_not_relayed(proxy) -> None:  # type: ignore[no-untyped-def]
    server, upstream = proxy
    upstream.fail(status=503, body={"error": {"message": "internal detail: token=abc123"}}, times=1)
    response = post(server.base_url, "gpt-4o")
    assert response.status_code == 502 and "abc123" not in response.text


def test_client_errors_from_the_provider_pass_through(proxy) -> None:  # type: ignore[no-untyped-def]
    server, upstream = proxy
    upstream.fail(status=400, body={"error": {"message": "max_tokens too large", "type": "invalid_request_error"}}, times=1)
    response = post(server.base_url, "gpt-4o")
    assert response.status_code == 400 and response.json()["error"]["message"] == "max_tokens too large"


def test_stream_that_dies_ends_with_an_error_event_not_silence(proxy) -> None:  # type: ignore[no-untyped-def]
    server, upstream = proxy
    upstream.fail(die_after=3, times=1)
    response = post(server.base_url, "gpt-4o", stream=True)
    assert response.status_code == 200
    events = [block for block in response.text.split("\n\n") if block.strip()]
    assert len(events) == 4
    error = json.loads(events[-1].removeprefix("data: "))["error"]
    assert error["code"] == "provider_error" and "upstream stream failed" in error["message"]
    assert "[DONE]" not in response.text
