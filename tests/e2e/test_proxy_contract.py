"""What the proxy promises beyond the happy path: streams outlive reloads, a provider's refusal of
the gateway's credential is not the client's problem, every response names its revision."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest

from cli.sources import load_source, source_files
from runtime.access_log import EventLog
from runtime.reload import Reloader
from tests.e2e.conftest import ALICE_KEY, UPSTREAM_OPENAI_SECRET, Stack, policy_text
from tests.support.apps import app_from
from tests.support.servers import served_in_this_loop
from tests.support.upstream import MockUpstream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

AUTH = {"authorization": f"Bearer {ALICE_KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_a_stream_outlives_the_reload_that_retired_its_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_OPENAI_KEY", UPSTREAM_OPENAI_SECRET)
    monkeypatch.setenv("E2E_AZURE_KEY", "unused")
    policy = tmp_path / "policy"
    policy.mkdir()
    with MockUpstream() as upstream:
        text = policy_text(upstream.base_url)
        (policy / "policy.yaml").write_text(text)
        upstream.fail(hold_after=1, path_contains="chat", times=1)
        changed = text.replace("api_key: env:E2E_OPENAI_KEY", "api_key: env:E2E_OPENAI_KEY\n    timeouts: {read_s: 30}")

        async def scenario() -> tuple[list[str], list[str], bool]:
            app = app_from(policy)
            events = io.StringIO()
            reloader = Reloader(app, policy, load_source, source_files, EventLog(events), retire_grace_s=0)
            async with served_in_this_loop(app) as base:
                old_transport = app.serving.transports["openai-primary"]
                lines: list[str] = []
                revisions: list[str] = []
                url = base + "/v1/chat/completions"
                async with httpx.AsyncClient(timeout=10) as http:
                    async with http.stream("POST", url, json={**CHAT, "stream": True}, headers=AUTH) as r:
                        revisions.append(r.headers["x-langwatch-policy-revision"])
                        async for line in r.aiter_lines():
                            lines.append(line)
                            if len(lines) == 2:
                                (policy / "policy.yaml").write_text(changed)
                                assert await reloader.reload("test")
                                await asyncio.gather(*reloader.retiring)
                                assert app.serving.transports["openai-primary"] is not old_transport
                                upstream.release()
                    after = await http.post(url, json=CHAT, headers=AUTH)
                    revisions.append(after.headers["x-langwatch-policy-revision"])
                retired_closed = getattr(old_transport, "_session", None) is None
            return lines, revisions, retired_closed

        lines, revisions, retired_closed = asyncio.run(scenario())
    data = [line for line in lines if line.startswith("data:")]
    assert data[-1] == "data: [DONE]" and not any('"error"' in line for line in data)
    assert "".join(json.loads(d[5:])["choices"][0]["delta"].get("content", "") for d in data[:-1]) == "mock reply from gpt-4o"
    assert revisions[0] != revisions[1], "the stream began on the old table, the next request on the new one"
    assert retired_closed, "the retired provider pool is closed once its last answer ended"


def test_a_provider_refusing_the_gateways_credential_is_a_502_not_the_clients_401(stack: Stack) -> None:
    body = {"error": {"message": "Incorrect API key provided: upst****ests", "type": "invalid_request_error",
                      "code": "invalid_api_key"}}
    stack.upstream.fail(status=401, body=body, times=1)
    r = httpx.post(stack.base_url + "/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "provider_auth_error" and "openai-primary" in error["message"]
    assert "upst" not in r.text and "Incorrect API key" not in r.text
    assert r.headers["x-langwatch-provider"] == "openai-primary" and r.headers["x-langwatch-fallback-count"] == "0"
    assert len(stack.upstream.requests) == 1, "a refused credential is not a reason to retry"


def test_health_metrics_and_unknown_methods_carry_the_revision(stack: Stack) -> None:
    revision = httpx.get(stack.proxy.base_url + "/readyz").json()["revision"]
    for method, path, status in [
        ("GET", "/healthz", 200), ("GET", "/readyz", 200), ("GET", "/metrics", 200), ("HEAD", "/", 200),
        ("GET", "/v1/chat/completions", 405), ("POST", "/v1/models", 405), ("GET", "/nowhere", 404),
    ]:
        r = httpx.request(method, stack.proxy.base_url + path)
        assert r.status_code == status, (method, path)
        assert r.headers["x-langwatch-policy-revision"] == revision, (method, path)
    r = httpx.get(stack.base_url + "/chat/completions")
    assert r.headers["allow"] == "POST" and r.json()["error"]["code"] == "method_not_allowed"


def test_refused_model_names_do_not_become_metric_series(stack: Stack) -> None:
    for name in ("rnd-aaa", "rnd-bbb"):
        assert httpx.post(stack.base_url + "/chat/completions", json={**CHAT, "model": name}, headers=AUTH).status_code == 403
    metrics = httpx.get(stack.proxy.base_url + "/metrics").text
    assert "rnd-aaa" not in metrics and "rnd-bbb" not in metrics
    assert 'status="403"' in metrics


def test_a_chat_stream_gets_no_usage_chunk_it_did_not_ask_for(stack: Stack) -> None:
    def stream(body: dict[str, object]) -> list[dict[str, object]]:
        with httpx.stream("POST", stack.base_url + "/chat/completions", json=body, headers=AUTH) as r:
            return [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:") and "[DONE]" not in line]

    plain = stream({**CHAT, "stream": True})
    assert stack.upstream.requests[-1].json["stream_options"] == {"include_usage": True}
    assert all(chunk["choices"] for chunk in plain) and all("usage" not in chunk for chunk in plain)
    asked = stream({**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    assert asked[-1]["choices"] == [] and asked[-1]["usage"]["total_tokens"] == 16  # type: ignore[index]


def test_sighup_picks_up_a_rotated_file_credential(tmp_path: Path) -> None:
    from tests.support.proxy_process import ProxyProcess

    secret = tmp_path / "openai.key"
    secret.write_text("first-provider-credential\n")
    policy = tmp_path / "policy"
    policy.mkdir()
    log = tmp_path / "serve.log"
    with MockUpstream() as upstream:
        text = policy_text(upstream.base_url).replace("env:E2E_OPENAI_KEY", f"file:{secret}")
        (policy / "policy.yaml").write_text(text)
        with ProxyProcess(policy, log, {"E2E_AZURE_KEY": "unused"}, "--no-watch") as proxy:
            url = proxy.base_url + "/v1/chat/completions"
            assert httpx.post(url, json=CHAT, headers=AUTH).status_code == 200
            secret.write_text("second-provider-credential\n")
            proxy.signal()
            wait_until(lambda: "credentials_reloaded" in log.read_text())
            assert httpx.post(url, json=CHAT, headers=AUTH).status_code == 200
    sent = [r.headers["authorization"] for r in upstream.requests]
    assert sent == ["Bearer first-provider-credential", "Bearer second-provider-credential"]
    event = next(json.loads(line) for line in log.read_text().splitlines() if "credentials_reloaded" in line)
    assert event["providers"] == ["openai-primary"] and "credential" not in json.dumps(event).replace("credentials_reloaded", "")


def test_a_fault_of_the_gateway_is_a_typed_500_with_its_log_line(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import openai

    import runtime.app

    log = io.StringIO()
    monkeypatch.setattr(stack.app, "access_log", runtime.app.AccessLog(log))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug that quotes gp-secret-material")

    monkeypatch.setattr(runtime.app, "decide_for_key", broken)
    client = openai.OpenAI(base_url=stack.base_url, api_key=ALICE_KEY, max_retries=0)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    stack.proxy.wait_idle()
    assert failed.value.code == "internal_error"
    assert failed.value.response.headers["x-langwatch-policy-revision"]
    assert failed.value.response.headers["x-langwatch-fallback-count"] == "0"
    [line] = [json.loads(ln) for ln in log.getvalue().splitlines()]
    assert line["status"] == 500 and line["internal_error"] == "RuntimeError" and line["vk"] == "vk-alice-codex"
    assert "gp-secret-material" not in log.getvalue()
