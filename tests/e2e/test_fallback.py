"""Fallback along the compiled targets, retries with Retry-After, cool-down of a failing provider,
and one clear error when every target failed."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.access_log import AccessLog
from tests.support.apps import app_from
from tests.support.clock import ManualClock
from tests.support.proxy_process import free_port
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-fallback-0123456789abcdefghijklm"
RETRY_KEY = "gp-e2e-retry-0123456789abcdefghijklmnop"
DEAD_KEY = "gp-e2e-dead-0123456789abcdefghijklmnopq"
SINGLE_KEY = "gp-e2e-single-0123456789abcdefghijklmno"


def policy(primary: str, backup: str, dead: str) -> str:
    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  primary:
    type: openai
    base_url: {primary}/v1
    api_key: env:E2E_KEY
    timeouts: {{connect_s: 1, read_s: 1, total_s: 1}}
    circuit: {{failures: 3, cooldown_s: 1}}
  backup: {{type: openai, base_url: "{backup}/v1", api_key: env:E2E_KEY}}
  dead: {{type: openai, base_url: "{dead}/v1", api_key: env:E2E_KEY, circuit: {{failures: 0}}}}
models:
  gpt-4o: {{providers: [primary, backup]}}
  gpt-4o-mini: {{providers: [backup]}}
  gpt-5: {{providers: [dead, backup]}}
virtual_keys:
  vk-fallback:
    key_sha256: {digest(KEY)}
    models_allowed: [gpt-4o, gpt-5]
    fallback: {{on: [5xx, timeout, 429, connect], chain: [backup, {{provider: backup, model: gpt-4o-mini}}]}}
  vk-retry:
    key_sha256: {digest(RETRY_KEY)}
    models_allowed: [gpt-4o]
    fallback: {{on: [429], chain: [backup], retries: 1}}
  vk-no-timeout-fallback:
    key_sha256: {digest(DEAD_KEY)}
    models_allowed: [gpt-4o]
    fallback: {{on: [5xx], chain: [backup]}}
  vk-single-target:
    key_sha256: {digest(SINGLE_KEY)}
    models_allowed: [gpt-4o-mini]
    fallback: {{on: [5xx, 429], chain: [], retries: 2}}
"""


@dataclass
class Setup:
    base_url: str
    primary: MockUpstream
    backup: MockUpstream
    log: io.StringIO
    clock: ManualClock
    """The circuits' clock: a cool-down passes when the test advances it."""
    server: ServerThread

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]

    def chat(self, key: str = KEY, model: str = "gpt-4o", stream: bool = False) -> httpx.Response:
        return httpx.post(
            self.base_url + "/v1/chat/completions",
            json={"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"}, timeout=20,
        )


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("E2E_KEY", "upstream-credential")
    with MockUpstream() as primary, MockUpstream() as backup:
        (tmp_path / "policy.yaml").write_text(policy(primary.base_url, backup.base_url, f"http://127.0.0.1:{free_port()}"))
        log = io.StringIO()
        clock = ManualClock()
        app = app_from(tmp_path, access_log=AccessLog(log), clock=clock)
        with ServerThread(app) as server:
            yield Setup(server.base_url, primary, backup, log, clock, server)


def headers_of(r: httpx.Response) -> tuple[str, str]:
    return r.headers["x-langwatch-provider"], r.headers["x-langwatch-fallback-count"]


def test_first_target_answers_with_count_0(setup: Setup) -> None:
    r = setup.chat()
    assert r.status_code == 200 and headers_of(r) == ("primary", "0")


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_falls_back_to_the_next_target(setup: Setup, status: int) -> None:
    setup.primary.fail(status=status, times=1)
    r = setup.chat()
    assert r.status_code == 200 and headers_of(r) == ("backup", "1")
    assert r.json()["model"] == "gpt-4o" and len(setup.backup.requests) == 1


def test_read_timeout_falls_back(setup: Setup) -> None:
    setup.primary.fail(hold=True, times=1)
    started = time.monotonic()
    r = setup.chat()
    assert r.status_code == 200 and headers_of(r) == ("backup", "1")
    assert time.monotonic() - started < 2.5


def test_connection_refused_falls_back(setup: Setup) -> None:
    r = setup.chat(model="gpt-5")
    assert r.status_code == 200 and headers_of(r) == ("backup", "1")


def test_429_moves_on_and_a_chain_hop_can_change_model(setup: Setup) -> None:
    setup.primary.fail(status=429, headers={"retry-after": "1"}, times=1)
    setup.backup.fail(status=503, times=1)
    r = setup.chat()
    assert r.status_code == 200 and headers_of(r) == ("backup", "2")
    assert r.json()["model"] == "gpt-4o-mini"


def test_retry_honours_retry_after_on_the_same_target(setup: Setup) -> None:
    setup.primary.fail(status=429, headers={"retry-after": "0.3"}, times=1)
    started = time.monotonic()
    r = setup.chat(key=RETRY_KEY)
    assert r.status_code == 200 and headers_of(r) == ("primary", "0")
    assert time.monotonic() - started >= 0.3
    assert len(setup.primary.requests) == 2 and setup.backup.requests == []


def test_a_retry_after_beyond_30_s_moves_on_instead_of_waiting(setup: Setup) -> None:
    setup.primary.fail(status=429, headers={"retry-after": "3600"}, times=1)
    started = time.monotonic()
    r = setup.chat(key=RETRY_KEY)
    assert r.status_code == 200 and headers_of(r) == ("backup", "1")
    assert time.monotonic() - started < 5 and len(setup.primary.requests) == 1


def test_400_is_returned_as_it_is_without_fallback(setup: Setup) -> None:
    setup.primary.fail(status=400, body={"error": {"message": "bad tool schema", "type": "invalid_request_error"}}, times=1)
    r = setup.chat()
    assert r.status_code == 400 and r.json()["error"]["message"] == "bad tool schema"
    assert setup.backup.requests == []


def test_condition_not_listed_is_not_a_reason_to_fall_back(setup: Setup) -> None:
    setup.primary.fail(hold=True, times=1)
    r = setup.chat(key=DEAD_KEY)
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"
    assert setup.backup.requests == []


def test_every_target_failed_is_one_error_listing_each_attempt(setup: Setup) -> None:
    setup.primary.fail(status=500, times=1)
    setup.backup.fail(status=502, times=2, body={"error": {"message": "secret upstream detail"}})
    r = setup.chat()
    assert r.status_code == 502
    error = r.json()["error"]
    assert error["code"] == "provider_error" and "secret upstream detail" not in r.text
    assert [(a["provider"], a["model"], a["reason"]) for a in error["meta"]["attempts"]] == [
        ("primary", "gpt-4o", "500"), ("backup", "gpt-4o", "502"), ("backup", "gpt-4o-mini", "502"),
    ]
    assert "all 3 targets failed" in error["message"] and r.headers["x-langwatch-fallback-count"] == "2"


def test_a_failing_provider_is_cooled_down_then_tried_again(setup: Setup) -> None:
    setup.primary.fail(status=500, times=3)
    for _ in range(3):
        assert headers_of(setup.chat()) == ("backup", "1")
    assert len(setup.primary.requests) == 3
    r = setup.chat()
    assert headers_of(r) == ("backup", "1") and len(setup.primary.requests) == 3
    metrics = httpx.get(setup.base_url + "/metrics").text
    assert 'gatepost_circuit_open{provider="primary"} 1' in metrics
    setup.clock.advance(1.1)
    assert headers_of(setup.chat()) == ("primary", "0")
    assert 'gatepost_circuit_open{provider="primary"} 0' in httpx.get(setup.base_url + "/metrics").text


def test_a_stream_is_never_switched_after_its_first_byte(setup: Setup) -> None:
    setup.primary.fail(die_after=3, times=1)
    r = setup.chat(stream=True)
    assert r.status_code == 200 and headers_of(r) == ("primary", "0")
    assert '"upstream stream failed: connect"' in r.text and "[DONE]" not in r.text
    assert setup.backup.requests == []


def test_a_stream_falls_back_before_its_first_byte(setup: Setup) -> None:
    setup.primary.fail(status=503, times=1)
    r = setup.chat(stream=True)
    assert r.status_code == 200 and headers_of(r) == ("backup", "1") and r.text.rstrip().endswith("data: [DONE]")


def test_retries_on_a_single_target_route_retry_503_and_429(setup: Setup) -> None:
    setup.backup.fail(status=503, times=1)
    setup.backup.fail(status=429, headers={"retry-after": "0.2"}, times=1)
    r = setup.chat(key=SINGLE_KEY, model="gpt-4o-mini")
    assert r.status_code == 200 and headers_of(r) == ("backup", "0")
    assert len(setup.backup.requests) == 3


def test_retries_on_a_single_target_route_end_in_one_error_naming_each_try(setup: Setup) -> None:
    setup.backup.fail(status=503, times=3)
    r = setup.chat(key=SINGLE_KEY, model="gpt-4o-mini")
    assert r.status_code == 502 and r.headers["x-langwatch-fallback-count"] == "0"
    assert [a["reason"] for a in r.json()["error"]["meta"]["attempts"]] == ["503", "503", "503"]
    assert "the only target failed" in r.json()["error"]["message"]


def test_retry_after_given_as_an_http_date_is_honoured(setup: Setup) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    setup.primary.fail(status=429, headers={"retry-after": when}, times=1)
    started = time.monotonic()
    r = setup.chat(key=RETRY_KEY)
    assert r.status_code == 200 and headers_of(r) == ("primary", "0")
    assert 0.9 <= time.monotonic() - started < 5
    assert len(setup.primary.requests) == 2


def test_the_access_log_and_metrics_record_each_attempt_with_its_reason(setup: Setup) -> None:
    setup.primary.fail(status=500, times=1)
    setup.backup.fail(status=429, times=1)
    assert headers_of(setup.chat()) == ("backup", "2")
    record = setup.records()[-1]
    assert record["attempts"] == [
        {"provider": "primary", "model": "gpt-4o", "reason": "500"},
        {"provider": "backup", "model": "gpt-4o", "reason": "429"},
        {"provider": "backup", "model": "gpt-4o-mini", "reason": "answered"},
    ]
    assert record["fallback_count"] == 2 and record["provider"] == "backup" and record["upstream_model"] == "gpt-4o-mini"
    setup.chat()
    assert "attempts" not in setup.records()[-1] and setup.records()[-1]["fallback_count"] == 0
    metrics = httpx.get(setup.base_url + "/metrics").text
    for provider, outcome, count in [("primary", "5xx", 1), ("backup", "429", 1), ("backup", "answered", 1),
                                     ("primary", "answered", 1)]:
        assert f'gatepost_upstream_attempts_total{{provider="{provider}",outcome="{outcome}"}} {count}' in metrics


def test_a_cooled_down_provider_is_logged_and_counted_as_skipped(setup: Setup) -> None:
    setup.primary.fail(status=500, times=3)
    for _ in range(4):
        setup.chat()
    assert setup.records()[-1]["attempts"][0] == {"provider": "primary", "model": "gpt-4o", "reason": "circuit_open"}
    metrics = httpx.get(setup.base_url + "/metrics").text
    assert 'gatepost_upstream_attempts_total{provider="primary",outcome="circuit_open"} 1' in metrics
    assert 'gatepost_circuit_opened_total{provider="primary"} 1' in metrics


@pytest.mark.parametrize(("key", "body", "status"), [
    ("gp-not-a-key", {"model": "gpt-4o", "messages": []}, 401),
    (KEY, {"model": "o3", "messages": []}, 403),
    (KEY, None, 400),
])
def test_fallback_count_is_on_denials_too(setup: Setup, key: str, body: dict[str, Any] | None, status: int) -> None:
    r = httpx.post(setup.base_url + "/v1/chat/completions", content=b"{not json" if body is None else json.dumps(body),
                   headers={"authorization": f"Bearer {key}"})
    assert r.status_code == status and r.headers["x-langwatch-fallback-count"] == "0"
