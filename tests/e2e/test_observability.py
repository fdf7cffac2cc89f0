"""What operators see: the JSON access log, Prometheus metrics, health, start-up reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ALICE_KEY, PLATFORM_KEY, UPSTREAM_OPENAI_SECRET, policy_text
from tests.support.proxy_process import ProxyProcess
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(tmp_path: Path):  # type: ignore[no-untyped-def]
    policy = tmp_path / "policy"
    policy.mkdir()
    log = tmp_path / "serve.log"
    with MockUpstream() as upstream:
        (policy / "policy.yaml").write_text(policy_text(upstream.base_url))
        # E2E_AZURE_KEY deliberately unset: the start-up report must name it.
        with ProxyProcess(policy, log, {"E2E_OPENAI_KEY": UPSTREAM_OPENAI_SECRET}) as proxy:
            yield proxy, log


def records(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_access_log_is_one_json_line_per_request_without_the_key(running) -> None:  # type: ignore[no-untyped-def]
    proxy, log = running
    with httpx.Client(base_url=proxy.base_url) as http:
        http.post("/v1/chat/completions", json={"model": "fast-nope", "messages": []}, headers={"authorization": f"Bearer {ALICE_KEY}"})
        http.post("/v1/responses", json={"model": "gpt-4o", "input": "hi"}, headers={"authorization": f"Bearer {ALICE_KEY}"})
        http.post("/v1/responses", json={"model": "gpt-4o", "input": "hi"}, headers={"authorization": "Bearer gp-typo-in-the-key-0123456789"})
    proxy.stop()
    requests = [r for r in records(log) if "surface" in r]
    assert len(requests) == 3
    denied, allowed, unknown = requests
    assert unknown["decision"] == "invalid_api_key" and unknown["key_prefix"] == "gp-typo-in-t" and "vk" not in unknown
    assert "gp-typo-in-the-key" not in log.read_text()
    assert denied["decision"] == "model_not_allowed" and denied["status"] == 403
    assert allowed["decision"] == "allow" and allowed["status"] == 200
    assert allowed["vk"] == "vk-alice-codex" and allowed["key_prefix"] == ALICE_KEY[:12]
    assert allowed["model"] == "gpt-4o" and allowed["upstream_model"] == "gpt-4o" and allowed["provider"] == "openai-primary"
    assert str(allowed["route_source"]).startswith("policy.yaml:") and isinstance(allowed["latency_ms"], float)
    text = log.read_text()
    assert ALICE_KEY not in text and UPSTREAM_OPENAI_SECRET not in text


def test_missing_credential_is_reported_at_start_without_a_value(running) -> None:  # type: ignore[no-untyped-def]
    proxy, log = running
    [report] = [r for r in records(log) if r.get("event") == "credential_missing"]
    assert report["provider"] == "azure-east"
    assert "E2E_AZURE_KEY" in str(report["problem"])
    with httpx.Client(base_url=proxy.base_url) as http:
        r = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []}, headers={"authorization": f"Bearer {PLATFORM_KEY}"})
    assert r.status_code == 200 and r.headers["x-langwatch-provider"] == "openai-primary"
    assert r.headers["x-langwatch-fallback-count"] == "1"


def test_metrics_health_and_readiness(running) -> None:  # type: ignore[no-untyped-def]
    proxy, _ = running
    with httpx.Client(base_url=proxy.base_url) as http:
        http.post("/v1/chat/completions", json={"model": "gpt-5-mini", "messages": []}, headers={"authorization": f"Bearer {ALICE_KEY}"})
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz").json()
        metrics = http.get("/metrics")
    assert ready["status"] == "ready" and ready["revision"].startswith("sha256:")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'gatepost_requests_total{vk="vk-alice-codex",model="gpt-5-mini",provider="openai-primary",status="200"} 1' in text
    assert re.search(r'gatepost_upstream_latency_seconds_count\{provider="openai-primary"\} 1', text)
    assert f'gatepost_policy_revision_info{{revision="{ready["revision"]}"}} 1' in text
    assert "# TYPE gatepost_reloads_total counter" in text
