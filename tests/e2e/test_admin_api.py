"""The admin API end to end: `policy serve --admin-port` as a real process, traffic made here, and
every answer checked against the ledger, the access log and the OpenAPI document it publishes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from runtime.admin.api import CONTENT_SECURITY_POLICY
from runtime.ledger.sqlite import SqliteLedger
from tests.support.proxy_process import ProxyProcess, free_port
from tests.support.upstream import MockUpstream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

KEYS = {name: f"gp-adm-{name}-0123456789abcdefghijklmnopqrs" for name in ("alice", "bob", "erin", "gone")}
UPSTREAM_SECRET = "upstream-credential-never-shown-4d1f"
ADMIN_TOKEN = "admin-token-for-the-e2e-test-9c2b"
PROMPT = "the quarterly numbers are confidential zebra-unicorn-42"
ENV = {"E2E_OPENAI_KEY": UPSTREAM_SECRET, "E2E_ADMIN_TOKEN": ADMIN_TOKEN}
AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
PER_REQUEST_PICO = 16_000_000_000  # 11 input + 5 output tokens at $1,000 per 1M


def digest(name: str) -> str:
    return hashlib.sha256(KEYS[name].encode()).hexdigest()


def policy(upstream: str) -> str:
    return f"""\
gateway:
  header_prefix: X-LangWatch-
  admin: {{token: env:E2E_ADMIN_TOKEN}}
providers:
  openai-primary: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_OPENAI_KEY}}
models:
  gpt-4o: {{providers: [openai-primary], price: {{input: 1000, cached_input: 500, output: 1000}}}}
  gpt-4o-mini: {{providers: [openai-primary], price: {{input: 100, output: 100}}}}
teams:
  engineering:
    members: [alice@acme.com, bob@acme.com]
    defaults: {{models_allowed: [gpt-4o], model_aliases: {{smart: gpt-4o}}}}
  data-science: {{members: [erin@acme.com], defaults: {{models_allowed: [gpt-4o, gpt-4o-mini]}}}}
virtual_keys:
  vk-alice: {{key_sha256: {digest("alice")}, key_prefix: {KEYS["alice"][:12]}, principal: alice@acme.com, team: engineering}}
  vk-bob: {{key_sha256: {digest("bob")}, key_prefix: {KEYS["bob"][:12]}, principal: bob@acme.com, team: engineering}}
  vk-erin: {{key_sha256: {digest("erin")}, key_prefix: {KEYS["erin"][:12]}, principal: erin@acme.com, team: data-science}}
  vk-gone: {{key_sha256: {digest("gone")}, key_prefix: {KEYS["gone"][:12]}, team: engineering, status: revoked}}
budgets:
  eng-daily: {{scope: team, target: engineering, window: day, limit_usd: 0.1, on_breach: {{warn: 50%, block: 100%}}}}
  ds-monthly: {{scope: team, target: data-science, window: month, limit_usd: 100}}
rate_limits:
  erin-burst: {{scope: vk, target: vk-erin, requests: 2/minute}}
"""


@dataclass
class Stack:
    proxy: ProxyProcess
    admin: str
    data: Path
    log: Path
    client_errors: list[tuple[str, str]]
    """Each refusal's status and error code, and the message the client got."""
    made: Counter[str]
    """Requests made, by outcome: `ok`, `refused`."""


def call(base_url: str, key: str, model: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": PROMPT}]}, timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("admin")
    (tmp / "policy").mkdir()
    data, log, admin_port = tmp / "data", tmp / "proxy.log", free_port()
    with MockUpstream() as upstream:
        (tmp / "policy" / "policy.yaml").write_text(policy(upstream.base_url))
        extra = ("--data", str(data), "--admin-port", str(admin_port), "--no-watch")
        with ProxyProcess(tmp / "policy", log, ENV, *extra) as proxy:
            errors: list[tuple[str, str]] = []
            made: Counter[str] = Counter()
            plan = [("alice", "gpt-4o")] * 3 + [("alice", "smart"), ("bob", "gpt-4o"), ("erin", "gpt-4o-mini"),
                                                  ("erin", "gpt-4o"), ("erin", "gpt-4o"), ("alice", "gpt-4o-mini"),
                                                  ("gone", "gpt-4o"), ("nobody", "gpt-4o")]
            for who, model in plan:
                answer = call(proxy.base_url, KEYS.get(who, "gp-unknown-key-000000000000000000"), model)
                if answer.status_code == 200:
                    made["ok"] += 1
                else:
                    made["refused"] += 1
                    error = answer.json()["error"]
                    errors.append((f"{answer.status_code}:{error['code']}", error["message"]))
            stack = Stack(proxy, f"http://127.0.0.1:{admin_port}", data, log, errors, made)
            wait_until(lambda: _get(stack, "/admin/api/status")["requests_today"] == sum(made.values()))
            yield stack


def _get(stack: Stack, path: str, **params: Any) -> Any:
    answer = httpx.get(stack.admin + path, headers=AUTH, params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _access_lines(stack: Stack) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stack.log.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if "request_id" in line]


def _ledger(stack: Stack) -> SqliteLedger:
    return SqliteLedger(stack.data, read_only=True)


def test_the_traffic_made_is_what_the_test_expects(stack: Stack) -> None:
    assert stack.made == Counter(ok=7, refused=4)
    assert [code for code, _ in stack.client_errors] == [
        "429:rate_limit_exceeded", "403:model_not_allowed", "401:invalid_api_key", "401:invalid_api_key"]


def test_status_counts_today_as_the_access_log_does(stack: Stack) -> None:
    status = _get(stack, "/admin/api/status")
    lines = _access_lines(stack)
    spent = sum(Decimal(line.get("cost_usd") or "0") for line in lines)
    assert status["requests_today"] == len(lines) == 11
    assert status["refusals_today"] == sum(1 for line in lines if line["status"] in (401, 402, 403, 429)) == 4
    assert Decimal(status["spend_today_usd"]) == spent
    assert status["spend_today_pico"] == int(spent * 10**12)
    assert status["revision"] == lines[0]["revision"]
    assert status["providers"] == [{"provider": "openai-primary", "type": "openai", "state": "closed",
                                    "ready_in_s": 0.0, "credentials": 1, "credentials_missing": []}]
    assert status["budgets_warn"] == 1


def test_budgets_equal_the_ledger_counters_and_sort_closest_to_blocking_first(stack: Stack) -> None:
    budgets = _get(stack, "/admin/api/budgets")
    ledger = _ledger(stack)
    try:
        rows = {(r.instance, r.window): r for r in ledger.counters()}
    finally:
        ledger.close()
    assert [b["budget"] for b in budgets] == ["eng-daily", "ds-monthly"]
    for b in budgets:
        row = rows[(b["instance"], b["window_label"])]
        assert (b["spent_pico"], b["limit_pico"], b["block_pico"], b["warn_pico"]) == (
            row.spent, row.limit_pico, row.block_pico, row.warn_pico)
        assert b["reserved_pico"] <= row.reserved  # the file also counts headroom leased and not in use
    eng = budgets[0]
    assert eng["spent_pico"] == 5 * PER_REQUEST_PICO
    assert eng["state"] == "warn" and eng["warn_fraction"] == 0.5 and eng["fraction_used"] == 0.8
    assert eng["source"] == "policy.yaml:20"


def test_spend_by_team_key_model_and_provider_adds_up_to_the_access_log(stack: Stack) -> None:
    lines = _access_lines(stack)
    by_key: Counter[str] = Counter()
    for line in lines:
        if line.get("cost_usd"):
            by_key[line["vk"]] += int(Decimal(line["cost_usd"]) * 10**12)
    for group_by in ("team", "key", "model", "provider"):
        for granularity in ("day", "hour"):
            series = _get(stack, "/admin/api/spend", group_by=group_by, granularity=granularity)
            assert series["total_pico"] == sum(by_key.values())
            assert len(series["buckets"]) == (90 if granularity == "day" else 48)
            for line in series["lines"]:
                assert sum(p["spent_pico"] for p in line["points"]) == line["total_pico"]
    keys = {line["name"]: line["total_pico"] for line in _get(stack, "/admin/api/spend", group_by="key")["lines"]}
    assert keys == dict(by_key)
    teams = _get(stack, "/admin/api/spend", group_by="team")["lines"]
    budgets = {b["budget"]: b["spent_pico"] for b in _get(stack, "/admin/api/budgets")}
    assert {t["name"]: t["total_pico"] for t in teams} == {"engineering": budgets["eng-daily"],
                                                          "data-science": budgets["ds-monthly"]}
    assert {t["name"]: t["requests"] for t in teams} == {"engineering": 5, "data-science": 2}


def test_keys_show_what_each_may_use_and_when_it_was_last_used_never_its_hash(stack: Stack) -> None:
    page = _get(stack, "/admin/api/keys")
    assert page["total"] == 4 and page["page"] == 1
    keys = {k["id"]: k for k in page["items"]}
    assert keys["vk-alice"]["models"] == ["gpt-4o"] and keys["vk-alice"]["aliases"] == ["smart"]
    assert keys["vk-alice"]["last_used"] is not None and keys["vk-gone"]["last_used"] is None
    assert keys["vk-gone"]["status"] == "revoked"
    assert {k["id"] for k in _get(stack, "/admin/api/keys", search="DATA-SCI")["items"]} == {"vk-erin"}
    second = _get(stack, "/admin/api/keys", page=2, per_page=3)
    assert (second["total"], [k["id"] for k in second["items"]]) == (4, ["vk-gone"])


def test_refusals_carry_the_message_the_client_saw_and_the_policy_line(stack: Stack) -> None:
    page = _get(stack, "/admin/api/refusals")
    assert page["total"] == 4
    assert [(f"{r['status']}:{r['code']}", r["message"]) for r in reversed(page["items"])] == stack.client_errors
    by_code = {f"{r['status']}:{r['code']}": r for r in page["items"]}
    limited = by_code["429:rate_limit_exceeded"]
    assert (limited["key"], limited["model"], limited["source"]) == ("vk-erin", "gpt-4o", "policy.yaml:23")
    assert by_code["403:model_not_allowed"]["key"] == "vk-alice"
    assert by_code["403:model_not_allowed"]["source"] == "policy.yaml:12"
    erin = _get(stack, "/admin/api/refusals", key="vk-erin")
    assert [r["code"] for r in erin["items"]] == ["rate_limit_exceeded"]
    unknown = _get(stack, "/admin/api/refusals", reason="invalid_api_key")
    assert unknown["total"] == 2 and {r["key"] for r in unknown["items"]} == {None, "vk-gone"}
    counts = {c["code"]: c["count"] for c in _get(stack, "/admin/api/refusals/counts")}
    assert counts == {"invalid_api_key": 2, "rate_limit_exceeded": 1, "model_not_allowed": 1}


def test_rate_limits_and_circuits(stack: Stack) -> None:
    [limit] = _get(stack, "/admin/api/rate-limits")
    ledger = _ledger(stack)
    try:
        [usage] = ledger.limit_usage()
    finally:
        ledger.close()
    assert (limit["instance"], limit["requests_limit"], limit["source"]) == (usage.instance, 2, "policy.yaml:23")
    assert 0 < limit["requests_used"] <= 2 and abs(limit["requests_used"] - usage.requests_used) < 0.1
    [circuit] = _get(stack, "/admin/api/circuits")
    assert circuit["provider"] == "openai-primary" and circuit["state"] == "closed"
    assert [c["id"] for c in circuit["credentials"]] == ["openai-primary"]


def test_the_openapi_document_lists_every_path_and_each_answer_matches_it(stack: Stack) -> None:
    document = _get(stack, "/admin/openapi.json")
    assert document["openapi"].startswith("3.")
    paths = {p for p in document["paths"] if p.startswith("/admin/api/")}
    assert paths == {"/admin/api/status", "/admin/api/keys", "/admin/api/budgets", "/admin/api/rate-limits",
                     "/admin/api/circuits", "/admin/api/refusals", "/admin/api/refusals/counts", "/admin/api/spend"}
    for path in sorted(paths):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator({**schema, "components": document["components"]}).validate(_get(stack, path))


def test_every_admin_path_needs_the_token_and_every_answer_has_the_security_headers(stack: Stack) -> None:
    paths = [*_get(stack, "/admin/openapi.json")["paths"], "/admin/openapi.json", "/admin/", "/admin/no-such-page", "/"]
    for path in paths:
        for headers in ({}, {"authorization": "Bearer wrong-token"}, {"authorization": f"Basic {ADMIN_TOKEN}"},
                        {"cookie": "gatepost_admin=wrong"}):
            answer = httpx.get(stack.admin + path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            _assert_hardened(answer)
    assert httpx.get(stack.admin + "/admin/api/status", headers={"cookie": f"gatepost_admin={ADMIN_TOKEN}"}).is_success
    _assert_hardened(httpx.get(stack.admin + "/admin/api/status", headers=AUTH))
    _assert_hardened(httpx.get(stack.admin + "/admin/no-such-page", headers=AUTH))
    _assert_hardened(httpx.get(stack.admin + "/admin/api/spend", params={"group_by": "nope"}, headers=AUTH))


def _assert_hardened(answer: httpx.Response) -> None:
    headers = answer.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "server" not in headers


def test_the_proxy_port_has_no_admin_path(stack: Stack) -> None:
    for path in ("/admin/api/status", "/admin/openapi.json", "/admin/"):
        for headers in ({}, AUTH):
            assert httpx.get(stack.proxy.base_url + path, headers=headers).status_code == 404


def test_no_answer_holds_a_key_hash_a_credential_or_prompt_text(stack: Stack) -> None:
    texts = []
    for path in [*_get(stack, "/admin/openapi.json")["paths"], "/admin/openapi.json"]:
        texts.append(httpx.get(stack.admin + path, headers=AUTH).text)
    for group_by in ("team", "key", "model", "provider"):
        texts.append(httpx.get(stack.admin + "/admin/api/spend", params={"group_by": group_by}, headers=AUTH).text)
    texts.append(httpx.get(stack.admin + "/admin/api/refusals", params={"per_page": 500}, headers=AUTH).text)
    everything = "\n".join(texts)
    forbidden = [*KEYS.values(), *(digest(name) for name in KEYS), UPSTREAM_SECRET, ADMIN_TOKEN, PROMPT, "zebra-unicorn",
                 "E2E_ADMIN_TOKEN"]
    for secret in forbidden:
        assert secret not in everything
    db = sqlite3.connect(stack.data / "ledger.sqlite3")
    try:
        stored = "\n".join(str(row) for table in ("refusals", "activity", "keys_seen")
                           for row in db.execute(f"SELECT * FROM {table}"))
    finally:
        db.close()
    for secret in forbidden:
        assert secret not in stored


@pytest.mark.parametrize(("gateway", "env", "said"), [
    ("gateway: {header_prefix: X-LangWatch-}", {}, "--admin-port needs an admin token: set gateway.admin.token to env:NAME or file:PATH"),
    ("gateway: {admin: {token: env:E2E_ADMIN_TOKEN}}", {"E2E_ADMIN_TOKEN": ""},
     "gateway.admin.token: environment variable E2E_ADMIN_TOKEN is not set"),
])
def test_serve_refuses_to_start_the_admin_api_without_its_token(tmp_path: Path, gateway: str, env: dict[str, str],
                                                                 said: str) -> None:
    source = (Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "policy.yaml").read_text()
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "policy.yaml").write_text(source.replace("gateway:\n  header_prefix: X-LangWatch-"
                                                                    "     # the default: X-LangWatch-Cache, "
                                                                    "X-LangWatch-Fallback-Count, ...", gateway))
    port, admin_port = free_port(), free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "serve", str(tmp_path / "policy"), "--port", str(port), "--admin-port",
         str(admin_port), "--data", str(tmp_path / "data")],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )
    assert proc.returncode == 2
    assert proc.stderr == f"policy serve: error: {said}; not starting\n"
    assert not (tmp_path / "data").exists()


def test_over_a_redis_ledger_budgets_come_from_redis_and_spend_from_the_data_directory(tmp_path: Path) -> None:
    from runtime.ledger.redis import RedisLedger
    from tests.support.redis_server import RedisServer

    (tmp_path / "policy").mkdir()
    admin_port = free_port()
    with MockUpstream() as upstream, RedisServer(tmp_path / "redis") as redis:
        (tmp_path / "policy" / "policy.yaml").write_text(policy(upstream.base_url))
        extra = ("--ledger", redis.url, "--data", str(tmp_path / "data"), "--admin-port", str(admin_port), "--no-watch")
        with ProxyProcess(tmp_path / "policy", tmp_path / "proxy.log", ENV, *extra) as proxy:
            for _ in range(2):
                assert call(proxy.base_url, KEYS["bob"], "gpt-4o").status_code == 200
            admin = f"http://127.0.0.1:{admin_port}"

            def spent() -> int:
                answer = httpx.get(admin + "/admin/api/spend", params={"group_by": "team"}, headers=AUTH)
                return int(answer.json()["total_pico"])

            wait_until(lambda: spent() == 2 * PER_REQUEST_PICO)
            budgets = {b["budget"]: b for b in httpx.get(admin + "/admin/api/budgets", headers=AUTH).json()}
            ledger = RedisLedger(redis.url, read_only=True)
            try:
                rows = {r.instance: r.spent for r in ledger.counters()}
            finally:
                ledger.close()
            assert budgets["eng-daily"]["spent_pico"] == rows[budgets["eng-daily"]["instance"]] == 2 * PER_REQUEST_PICO
            assert httpx.get(admin + "/admin/api/rate-limits", headers=AUTH).status_code == 200
