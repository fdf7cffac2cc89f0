"""Request ids: a client's valid `x-request-id` is kept, anything else replaced by a new one; every
answer returns it, relayed or the gateway's own; the access-log line records it and the provider is
sent it. Log lines open with an RFC 3339 UTC timestamp. And the headers' default prefix is the
reference page's `X-LangWatch-`."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import runtime.app
from runtime.access_log import AccessLog
from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-reqid-0123456789abcdefghijklmnopq"
AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
GENERATED = re.compile(r"[0-9a-f]{32}")
RFC3339_UTC_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass
class Proxy:
    base_url: str
    upstream: MockUpstream
    server: ServerThread
    log: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines()]


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """A policy without a `gateway` section: every header under the default prefix."""
    monkeypatch.setenv("E2E_KEY", "upstream-credential-for-request-ids")
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    with MockUpstream() as upstream:
        (tmp_path / "policy.yaml").write_text(f"""\
providers:
  openai-main: {{type: openai, base_url: "{upstream.base_url}/v1", api_key: env:E2E_KEY}}
models:
  gpt-4o: {{providers: [openai-main]}}
virtual_keys:
  vk-reqid: {{key_sha256: {digest}, key_prefix: {KEY[:12]}, models_allowed: [gpt-4o]}}
""")
        log = io.StringIO()
        with ServerThread(app_from(tmp_path, access_log=AccessLog(log))) as server:
            yield Proxy(server.base_url, upstream, server, log)


def test_a_clients_request_id_is_returned_logged_and_sent_upstream(proxy: Proxy) -> None:
    sent = "req_7f3c-2a.b:c/d+e="
    r = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers={**AUTH, "x-request-id": sent})
    assert r.status_code == 200 and r.headers.get_list("x-request-id") == [sent]
    [seen] = proxy.upstream.requests
    assert seen.headers["x-request-id"] == sent
    [line] = proxy.lines()
    assert line["request_id"] == sent


@pytest.mark.parametrize("sent", ["x" * 129, "two words", "<script>", 'quote"d', "ünïcode".encode().decode("latin-1")])
def test_an_unsafe_request_id_is_replaced_not_refused(proxy: Proxy, sent: str) -> None:
    r = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT,
                   headers={**AUTH, "x-request-id": sent.encode("latin-1")})  # type: ignore[dict-item]
    assert r.status_code == 200
    made = r.headers["x-request-id"]
    assert GENERATED.fullmatch(made)
    assert proxy.upstream.requests[0].headers["x-request-id"] == made
    assert proxy.lines()[0]["request_id"] == made


def test_every_answer_carries_a_request_id_of_its_own(proxy: Proxy) -> None:
    answers = [
        httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH),
        httpx.post(proxy.base_url + "/v1/chat/completions", json={**CHAT, "stream": True}, headers=AUTH),
        httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT),
        httpx.post(proxy.base_url + "/v1/chat/completions", json={**CHAT, "model": "o3"}, headers=AUTH),
        httpx.get(proxy.base_url + "/v1/chat/completions"),
        httpx.get(proxy.base_url + "/nowhere"),
        httpx.get(proxy.base_url + "/v1/models", headers=AUTH),
        httpx.post(proxy.base_url + "/v1/messages/count_tokens", json={"model": "gpt-4o", "messages": []}, headers=AUTH),
        httpx.get(proxy.base_url + "/healthz"),
        httpx.head(proxy.base_url + "/"),
    ]
    ids = [r.headers.get_list("x-request-id") for r in answers]
    assert all(len(found) == 1 and GENERATED.fullmatch(found[0]) for found in ids), ids
    assert len({found[0] for found in ids}) == len(ids)
    logged = {line["request_id"]: line["status"] for line in proxy.lines()}
    assert logged == {ids[0][0]: 200, ids[1][0]: 200, ids[2][0]: 401, ids[3][0]: 403, ids[7][0]: 200}


def test_a_gateway_fault_answers_with_the_clients_request_id(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(runtime.app, "decide_for_key", broken)
    r = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers={**AUTH, "x-request-id": "trace-500"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "trace-500"
    assert proxy.lines()[0]["request_id"] == "trace-500"


def test_the_providers_own_request_id_is_passed_on_under_its_own_name(proxy: Proxy) -> None:
    proxy.upstream.fail(status=400, headers={"x-request-id": "req_from_the_provider"}, times=1)
    r = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers={**AUTH, "x-request-id": "mine"})
    assert r.status_code == 400
    assert r.headers.get_list("x-request-id") == ["mine"]
    assert r.headers["x-langwatch-upstream-request-id"] == "req_from_the_provider"


def test_log_lines_open_with_an_rfc3339_utc_timestamp(proxy: Proxy) -> None:
    httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH)
    [line] = proxy.lines()
    assert next(iter(line)) == "ts" and RFC3339_UTC_MS.fullmatch(line["ts"])


def test_the_default_header_prefix_is_the_reference_pages(proxy: Proxy) -> None:
    r = httpx.post(proxy.base_url + "/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.headers["x-langwatch-fallback-count"] == "0"
    assert r.headers["x-langwatch-provider"] == "openai-main"
    assert r.headers["x-langwatch-policy-revision"]
    assert not [name for name in r.headers if name.startswith("x-gatepost-")]
