"""Several credentials per provider (`api_keys`): requests spread by weight, a credential answered
429 or 401 rests on its own while the others serve, the provider fails over only once every one
rests, Azure regions as credentials, SIGHUP re-reading each reference; the credential's id, never
its value, in the access log, the events, the headers and the metrics."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.access_log import AccessLog, EventLog
from tests.support.apps import app_from
from tests.support.clock import ManualClock
from tests.support.proxy_process import ProxyProcess
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
POOL_KEY = "gp-e2e-pool-0123456789abcdefghijklmnopq"
AZURE_KEY = "gp-e2e-azure-0123456789abcdefghijklmnop"
BACKUP_KEY = "gp-e2e-backup-0123456789abcdefghijklmno"
SECRETS = {
    "E2E_KEY_A": "pool-credential-a-0123456789",
    "E2E_KEY_B": "pool-credential-b-9876543210",
    "E2E_KEY_BACKUP": "backup-credential-5555555555",
    "E2E_AZURE_EAST": "azure-east-credential-0123456789abcdef",
    "E2E_AZURE_WEST": "azure-west-credential-fedcba9876543210",
}
KEY_A, KEY_B = SECRETS["E2E_KEY_A"], SECRETS["E2E_KEY_B"]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def policy(pool: str, backup: str, east: str, west: str) -> str:
    return f"""\
providers:
  pool:
    type: openai
    base_url: {pool}/v1
    api_keys:
      - {{id: key-a, api_key: env:E2E_KEY_A, weight: 3}}
      - {{id: key-b, api_key: env:E2E_KEY_B}}
  backup: {{type: openai, base_url: "{backup}/v1", api_key: env:E2E_KEY_BACKUP}}
  azure:
    type: azure_openai
    api_version: "2024-10-21"
    deployments: {{gpt-4o: gpt4o-prod}}
    api_keys:
      - {{id: eastus, base_url: "{east}", api_key: env:E2E_AZURE_EAST}}
      - {{id: westeurope, base_url: "{west}", api_key: env:E2E_AZURE_WEST, api_version: "2025-01-01"}}
models:
  gpt-4o: {{providers: [pool, backup, azure]}}
virtual_keys:
  vk-pool:
    key_sha256: {digest(POOL_KEY)}
    models_allowed: [gpt-4o]
    fallback: {{on: [5xx, 429], chain: [backup]}}
  vk-azure:
    key_sha256: {digest(AZURE_KEY)}
    models_allowed: [gpt-4o]
    model_aliases: {{gpt-4o: azure/gpt-4o}}
  vk-backup:
    key_sha256: {digest(BACKUP_KEY)}
    models_allowed: [gpt-4o]
    model_aliases: {{gpt-4o: backup/gpt-4o}}
"""


@dataclass
class Setup:
    base_url: str
    pool: MockUpstream
    backup: MockUpstream
    east: MockUpstream
    west: MockUpstream
    log: io.StringIO
    events: io.StringIO
    clock: ManualClock
    """The circuits' clock: a rest ends when the test advances it."""
    server: ServerThread

    def chat(self, key: str = POOL_KEY) -> httpx.Response:
        return httpx.post(
            self.base_url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"}, timeout=20,
        )

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]

    def event_records(self, name: str) -> list[dict[str, Any]]:
        return [e for e in map(json.loads, self.events.getvalue().splitlines()) if e["event"] == name]

    def metrics(self) -> str:
        return httpx.get(self.base_url + "/metrics").text

    def carried(self, upstream: MockUpstream) -> list[str]:
        """Which of the pool's credentials each request to `upstream` carried, as A or B."""
        names = {f"Bearer {KEY_A}": "A", f"Bearer {KEY_B}": "B"}
        return [names[r.headers["authorization"]] for r in upstream.requests]

    def assert_no_credential_value_anywhere(self) -> None:
        said = self.log.getvalue() + self.events.getvalue() + self.metrics()
        assert not [name for name, value in SECRETS.items() if value in said]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    with MockUpstream() as pool, MockUpstream() as backup, MockUpstream() as east, MockUpstream() as west:
        (tmp_path / "policy.yaml").write_text(policy(pool.base_url, backup.base_url, east.base_url, west.base_url))
        log, events, clock = io.StringIO(), io.StringIO(), ManualClock()
        app = app_from(tmp_path, access_log=AccessLog(log), events=EventLog(events), clock=clock)
        with ServerThread(app) as server:
            yield Setup(server.base_url, pool, backup, east, west, log, events, clock, server)


def served_by(r: httpx.Response) -> tuple[int, str, str | None, str]:
    return r.status_code, r.headers["x-langwatch-provider"], r.headers.get("x-langwatch-credential"), \
        r.headers["x-langwatch-fallback-count"]


def test_requests_spread_over_the_credentials_by_weight_in_a_fixed_order(setup: Setup) -> None:
    answers = [setup.chat() for _ in range(8)]
    assert setup.carried(setup.pool) == ["A", "A", "B", "A", "A", "A", "B", "A"]
    assert [served_by(r) for r in answers[:3]] == [(200, "pool", "key-a", "0"), (200, "pool", "key-a", "0"),
                                                   (200, "pool", "key-b", "0")]
    assert [r["credential"] for r in setup.records()] == ["key-a", "key-a", "key-b", "key-a"] * 2
    metrics = setup.metrics()
    assert 'gatepost_credential_attempts_total{provider="pool",credential="key-a",outcome="answered"} 6' in metrics
    assert 'gatepost_credential_attempts_total{provider="pool",credential="key-b",outcome="answered"} 2' in metrics
    setup.assert_no_credential_value_anywhere()


def test_a_429_rests_only_that_credential_while_the_other_serves(setup: Setup) -> None:
    setup.pool.fail(status=429, headers={"retry-after": "20"}, credential=KEY_A)
    first = setup.chat()
    assert served_by(first) == (200, "pool", "key-b", "0"), "the provider has not failed: no fallback"
    assert setup.records()[-1]["attempts"] == [
        {"provider": "pool", "model": "gpt-4o", "reason": "429", "credential": "key-a"},
        {"provider": "pool", "model": "gpt-4o", "reason": "answered", "credential": "key-b"},
    ]
    for _ in range(4):
        assert served_by(setup.chat()) == (200, "pool", "key-b", "0")
    assert setup.carried(setup.pool) == ["A", "B", "B", "B", "B", "B"], "key A rests for its Retry-After"
    assert setup.backup.requests == []
    metrics = setup.metrics()
    assert 'gatepost_credential_cooldowns_total{provider="pool",credential="key-a",cause="429"} 1' in metrics
    assert 'gatepost_credential_attempts_total{provider="pool",credential="key-a",outcome="429"} 1' in metrics
    assert 'gatepost_credential_attempts_total{provider="pool",credential="key-b",outcome="answered"} 5' in metrics
    assert 'gatepost_circuit_open{provider="pool"}' not in metrics
    setup.pool.reset()
    setup.clock.advance(21)
    assert sorted(str(served_by(setup.chat())[2]) for _ in range(4)) == ["key-a", "key-a", "key-a", "key-b"]
    setup.assert_no_credential_value_anywhere()


def test_a_refused_credential_is_taken_out_with_an_event_naming_it(setup: Setup) -> None:
    setup.pool.fail(status=401, body={"error": {"message": f"Incorrect API key provided: {KEY_A[:12]}"}},
                    credential=KEY_A)
    assert served_by(setup.chat()) == (200, "pool", "key-b", "0")
    [event] = setup.event_records("credential_refused")
    assert {k: event[k] for k in ("provider", "credential", "status", "rest_s")} == {
        "provider": "pool", "credential": "key-a", "status": 401, "rest_s": 300.0}
    for _ in range(3):
        assert served_by(setup.chat())[2] == "key-b"
    assert setup.carried(setup.pool) == ["A", "B", "B", "B", "B"]
    assert setup.records()[0]["attempts"][0] == {
        "provider": "pool", "model": "gpt-4o", "reason": "provider_401", "credential": "key-a"}
    assert 'gatepost_credential_cooldowns_total{provider="pool",credential="key-a",cause="refused"} 1' in setup.metrics()
    setup.clock.advance(301)
    assert served_by(setup.chat())[2] == "key-b", "tried again once its rest is over, and refused again"
    assert setup.carried(setup.pool)[-2:] == ["A", "B"] and len(setup.event_records("credential_refused")) == 2
    setup.assert_no_credential_value_anywhere()


def test_every_credential_resting_fails_the_provider_over_to_the_next_target(setup: Setup) -> None:
    setup.pool.fail(status=429, headers={"retry-after": "60"}, times=2)
    assert served_by(setup.chat()) == (200, "backup", None, "1")
    assert setup.carried(setup.pool) == ["A", "B"]
    assert [a.get("credential") for a in setup.records()[-1]["attempts"]] == ["key-a", "key-b", None]
    skipped = setup.chat()
    assert served_by(skipped) == (200, "backup", None, "1") and len(setup.pool.requests) == 2
    first = setup.records()[-1]["attempts"][0]
    assert first["reason"] == "circuit_open" and "every one of its 2 credentials" in first["detail"]
    metrics = setup.metrics()
    assert 'gatepost_circuit_open{provider="pool"} 1' in metrics
    assert 'gatepost_circuit_opened_total{provider="pool"} 1' in metrics
    setup.clock.advance(61)
    assert served_by(setup.chat()) == (200, "pool", "key-a", "0")
    assert 'gatepost_circuit_open{provider="pool"} 0' in setup.metrics()
    setup.assert_no_credential_value_anywhere()


def test_every_credential_refused_is_a_502_then_the_provider_is_skipped(setup: Setup) -> None:
    setup.pool.fail(status=401)
    refused = setup.chat()
    assert refused.status_code == 502 and refused.json()["error"]["code"] == "provider_auth_error"
    assert [a["credential"] for a in refused.json()["error"]["meta"]["attempts"]] == ["key-a", "key-b"]
    assert "refused the gateway's credential 'key-b' (401)" in refused.json()["error"]["message"]
    assert setup.backup.requests == [], "a refused credential is no reason to fall back"
    assert served_by(setup.chat()) == (200, "backup", None, "1"), "then the provider is open: skipped"
    assert [e["credential"] for e in setup.event_records("credential_refused")] == ["key-a", "key-b"]
    setup.assert_no_credential_value_anywhere()


def test_a_single_api_key_refused_is_reported_but_never_rests(setup: Setup) -> None:
    setup.backup.fail(status=401, times=2)
    answers = [setup.chat(BACKUP_KEY) for _ in range(3)]
    assert [r.status_code for r in answers] == [502, 502, 200] and len(setup.backup.requests) == 3
    assert "x-langwatch-credential" not in answers[2].headers and "credential" not in setup.records()[-1]
    events = setup.event_records("credential_refused")
    assert [(e["provider"], e["credential"], e["status"]) for e in events] == [("backup", "backup", 401)] * 2
    assert all("rest_s" not in e for e in events)
    setup.assert_no_credential_value_anywhere()


def test_azure_regions_are_credentials_each_with_its_endpoint_and_api_version(setup: Setup) -> None:
    answers = [setup.chat(AZURE_KEY) for _ in range(4)]
    assert [served_by(r)[1:3] for r in answers] == [("azure", "eastus"), ("azure", "westeurope")] * 2
    for upstream, key, version in [(setup.east, "E2E_AZURE_EAST", "2024-10-21"),
                                   (setup.west, "E2E_AZURE_WEST", "2025-01-01")]:
        assert [(r.path, r.query["api-version"], r.headers["api-key"]) for r in upstream.requests] == [
            ("/openai/deployments/gpt4o-prod/chat/completions", version, SECRETS[key])] * 2
    setup.east.fail(status=429, headers={"retry-after": "30"})
    assert [served_by(setup.chat(AZURE_KEY))[2] for _ in range(3)] == ["westeurope"] * 3
    assert len(setup.east.requests) == 3
    setup.assert_no_credential_value_anywhere()


def test_sighup_rereads_every_credential_reference(tmp_path: Path) -> None:
    first, second = tmp_path / "first.key", tmp_path / "second.key"
    first.write_text("first-credential-before-rotation\n")
    second.write_text("second-credential-before-rotation\n")
    source = tmp_path / "policy"
    source.mkdir()
    log = tmp_path / "serve.log"
    with MockUpstream() as upstream:
        (source / "policy.yaml").write_text(f"""\
providers:
  pool:
    type: openai
    base_url: {upstream.base_url}/v1
    api_keys: [file:{first}, file:{second}]
models:
  gpt-4o: {{providers: [pool]}}
virtual_keys:
  vk-pool: {{key_sha256: {digest(POOL_KEY)}, models_allowed: [gpt-4o]}}
""")
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        with ProxyProcess(source, log, {}, "--no-watch") as proxy:
            url = proxy.base_url + "/v1/chat/completions"
            auth = {"authorization": f"Bearer {POOL_KEY}"}
            assert [httpx.post(url, json=chat, headers=auth).status_code for _ in range(2)] == [200, 200]
            first.write_text("first-credential-after-rotation\n")
            second.write_text("second-credential-after-rotation\n")
            proxy.signal()
            wait_until(lambda: "credentials_reloaded" in log.read_text())
            answers = [httpx.post(url, json=chat, headers=auth) for _ in range(2)]
            proxy.stop()
    assert [r.headers["x-langwatch-credential"] for r in answers] == ["pool#1", "pool#2"]
    assert [r.headers["authorization"] for r in upstream.requests] == [
        f"Bearer {which}-credential-{when}-rotation"
        for when in ("before", "after") for which in ("first", "second")
    ]
    text = log.read_text()
    assert "credential-before-rotation" not in text and "credential-after-rotation" not in text
    event = next(json.loads(line) for line in text.splitlines() if "credentials_reloaded" in line)
    assert event["providers"] == ["pool"]
