"""Budgets end to end: 402 naming the scope, warnings at 80%, team and per-principal instances,
concurrency, two proxies sharing one ledger, and a proxy killed mid-request."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from runtime.ledger.base import Ledger
from runtime.ledger.redis import RedisLedger
from runtime.ledger.sqlite import SqliteLedger
from tests.support.apps import app_from
from tests.support.ledger_charges import recorded_charges
from tests.support.proxy_process import ProxyProcess
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

KEYS = {name: f"gp-e2e-{name}-0123456789abcdefghijklmnopq" for name in ("alice", "bob", "erin", "shared")}
PER_REQUEST_USD = 0.016  # the mock reports 11 input + 5 output tokens; the test model costs $1,000 per 1M
ENV = {"E2E_OPENAI_KEY": "upstream-credential"}


def digest(name: str) -> str:
    return hashlib.sha256(KEYS[name].encode()).hexdigest()


def budget_policy(upstream: str, budgets: str) -> str:
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  openai-primary: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_OPENAI_KEY}}
models:
  gpt-4o: {{providers: [openai-primary], price: {{input: 1000, cached_input: 500, output: 1000}}}}
  gpt-4o-mini: {{providers: [openai-primary], price: {{input: 100, output: 100}}}}
teams:
  engineering:
    members: [alice@acme.com, bob@acme.com]
    defaults:
      models_allowed: [gpt-4o]
      fallback: {{on: [5xx], chain: [{{provider: openai-primary, model: gpt-4o-mini}}]}}
  data-science: {{members: [erin@acme.com], defaults: {{models_allowed: [gpt-4o]}}}}
virtual_keys:
  vk-alice: {{key_sha256: {digest("alice")}, key_prefix: {KEYS["alice"][:12]}, principal: alice@acme.com, team: engineering}}
  vk-bob: {{key_sha256: {digest("bob")}, key_prefix: {KEYS["bob"][:12]}, principal: bob@acme.com, team: engineering}}
  vk-erin: {{key_sha256: {digest("erin")}, key_prefix: {KEYS["erin"][:12]}, principal: erin@acme.com, team: data-science}}
  vk-eng-shared: {{key_sha256: {digest("shared")}, key_prefix: {KEYS["shared"][:12]}, team: engineering}}
budgets:
{budgets}
"""


PER_PRINCIPAL = "  per-engineer: {scope: principal, target: '*', window: month, limit_usd: 0.08, on_breach: {warn: 80%, block: 100%}}"
TEAM_DAILY = "  eng-daily: {scope: team, target: engineering, window: day, timezone: Europe/Amsterdam, limit_usd: 0.05, on_breach: {warn: 80%, block: 100%}}"


class Proxy:
    def __init__(self, base_url: str, data: Path, server: ServerThread | None = None) -> None:
        self.base_url = base_url
        self.data = data
        self.server = server

    def wait_settled(self) -> None:
        """Return once every request has finished: the proxy settles a charge after the client has
        its answer, so a ledger read right after a response could race the settle."""
        assert self.server is not None, "only an in-process proxy can say when its requests ended"
        self.server.wait_idle()

    def client(self, who: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url + "/v1", api_key=KEYS[who], max_retries=0)

    def call(self, who: str, max_tokens: int = 16) -> httpx.Response:
        return httpx.post(
            self.base_url + "/v1/chat/completions",
            json={"model": "gpt-4o", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {KEYS[who]}"}, timeout=30,
        )


def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budgets: str, backend: str = "sqlite") -> Iterator[Proxy]:
    monkeypatch.setenv("E2E_OPENAI_KEY", "upstream-credential")
    with MockUpstream() as upstream, contextlib.ExitStack() as stack:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(budget_policy(upstream.base_url, budgets))
        ledger: Ledger
        if backend == "redis":
            ledger = RedisLedger(stack.enter_context(RedisServer(tmp_path / "redis")).url)
        else:
            ledger = SqliteLedger(tmp_path / "data")
        app = app_from(tmp_path / "policy", ledger=ledger)
        with ServerThread(app) as server:
            proxy = Proxy(server.base_url, tmp_path / "data", server)
            proxy.upstream = upstream  # type: ignore[attr-defined]
            proxy.ledger = ledger  # type: ignore[attr-defined]
            yield proxy
        assert app.budgets is not None
        app.budgets.close()
        ledger.close()


@pytest.fixture
def per_principal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    yield from serve(tmp_path, monkeypatch, PER_PRINCIPAL)


@pytest.fixture
def team_daily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    yield from serve(tmp_path, monkeypatch, TEAM_DAILY)


def test_sdk_gets_402_naming_the_scope_once_the_budget_is_spent(per_principal: Proxy) -> None:
    alice = per_principal.client("alice")
    warnings = []
    for _ in range(5):
        raw = alice.chat.completions.with_raw_response.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=16)
        warnings.append(raw.headers.get("x-langwatch-budget-warning"))
    assert warnings == [None, None, None, "principal:80", "principal:100"]  # each answer counts its own charge
    with pytest.raises(openai.APIStatusError) as info:
        alice.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=16)
    error = info.value
    assert error.status_code == 402 and error.response.headers["x-should-retry"] == "false"
    body = error.response.json()["error"]
    assert body["code"] == "budget_exceeded"
    assert body["message"].startswith("principal 'alice@acme.com' has spent $0.08 of its $0.08 month budget 'per-engineer'")
    assert body["meta"]["instance"] == "per-engineer/alice@acme.com" and body["meta"]["scope"] == "principal"
    assert body["meta"]["spend_usd"] == "0.08" and body["meta"]["limit_usd"] == "0.08"


def test_a_streamed_answer_warns_from_the_spend_before_it(per_principal: Proxy) -> None:
    """A stream's headers leave before its usage is known: its warning is the spend before it."""
    alice = per_principal.client("alice")
    warnings = []
    for _ in range(5):
        with alice.chat.completions.with_streaming_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=16, stream=True,
            stream_options={"include_usage": True},
        ) as raw:
            warnings.append(raw.headers.get("x-langwatch-budget-warning"))
            raw.read()
        per_principal.wait_settled()
    assert warnings == [None, None, None, None, "principal:80"]


def test_per_principal_star_budget_blocks_one_engineer_not_another(per_principal: Proxy) -> None:
    while per_principal.call("alice").status_code == 200:
        pass
    assert per_principal.call("alice").status_code == 402
    assert per_principal.call("bob").status_code == 200


def test_team_budget_blocks_every_key_of_the_team_and_no_other(team_daily: Proxy) -> None:
    statuses = [team_daily.call("shared").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 402]
    for who in ("alice", "bob", "shared"):
        response = team_daily.call(who)
        assert response.status_code == 402
        assert "team 'engineering' has spent $0.064 of its $0.05 day budget 'eng-daily'" in response.json()["error"]["message"]
    assert team_daily.call("erin").status_code == 200


def test_warn_crossing_is_logged_once_and_counted(capfd: pytest.CaptureFixture[str], per_principal: Proxy) -> None:
    for _ in range(6):
        per_principal.call("alice")
    events = [json.loads(ln) for ln in capfd.readouterr().err.splitlines() if '"budget_warning"' in ln]
    assert len(events) == 1 and events[0]["instance"] == "per-engineer/alice@acme.com" and events[0]["percent"] == 80
    metrics = httpx.get(per_principal.base_url + "/metrics").text
    assert 'gatepost_budget_warnings_total{budget="per-engineer",scope="principal"} 1' in metrics
    assert 'gatepost_budget_blocks_total{budget="per-engineer",scope="principal"} 1' in metrics


def spent_usd(data: Path, instance: str) -> float:
    rows = [r for r in SqliteLedger(data).counters() if r.instance == instance]
    return sum(r.spent for r in rows) / 1e12


ESTIMATE_USD = (len(b'{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}') // 2 * 1000 + 5 * 1000) / 1e6
"""The admission estimate of `Proxy.call(max_tokens=5)`: the documented overshoot bound per instance."""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_200_concurrent_requests_never_overshoot_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    budget = "  eng-daily: {scope: team, target: engineering, window: day, limit_usd: 0.16}"
    for proxy in serve(tmp_path, monkeypatch, budget, backend):
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(lambda _, p=proxy: p.call("shared", max_tokens=5).status_code, range(200)))
        rows = proxy.ledger.counters()  # type: ignore[attr-defined]
    ok = statuses.count(200)
    assert set(statuses) == {200, 402} and 8 <= ok <= 14
    [row] = rows
    assert row.reserved == 0
    assert row.spent / 1e12 == pytest.approx(ok * PER_REQUEST_USD)
    assert row.spent / 1e12 < 0.16 + ESTIMATE_USD


@contextlib.contextmanager
def shared_ledger(tmp_path: Path, backend: str) -> Iterator[tuple[tuple[str, ...], Callable[[], Ledger]]]:
    """The proxy arguments for one ledger shared by several processes, and a way to open it here."""
    if backend == "redis":
        with RedisServer(tmp_path / "redis") as server:
            yield ("--ledger", server.url), lambda: RedisLedger(server.url, read_only=True)
    else:
        yield ("--data", str(tmp_path / "data")), lambda: SqliteLedger(tmp_path / "data", read_only=True)


@contextlib.contextmanager
def two_proxies(tmp_path: Path, backend: str, budget: str) -> Iterator[tuple[list[Proxy], Callable[[], Ledger]]]:
    """Two `policy serve` processes on one shared ledger, and a way to open that ledger here once
    both have shut down (so every settle has landed)."""
    with MockUpstream() as upstream, shared_ledger(tmp_path, backend) as (extra, open_here):
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(budget_policy(upstream.base_url, budget))
        with ProxyProcess(tmp_path / "policy", tmp_path / "a.log", ENV, *extra) as a, \
                ProxyProcess(tmp_path / "policy", tmp_path / "b.log", ENV, *extra) as b:

            def after_shutdown() -> Ledger:
                a.stop()
                b.stop()
                return open_here()

            yield [Proxy(a.base_url, tmp_path / "data"), Proxy(b.base_url, tmp_path / "data")], after_shutdown


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_proxies_share_one_ledger(tmp_path: Path, backend: str) -> None:
    budget = "  eng-daily: {scope: team, target: engineering, window: day, limit_usd: 0.1}"
    with two_proxies(tmp_path, backend, budget) as (proxies, _):
        statuses = [proxies[i % 2].call("alice" if i % 3 else "bob").status_code for i in range(12)]
        assert statuses[:7] == [200] * 7 and set(statuses[7:]) == {402}
        assert proxies[0].call("shared").status_code == 402 and proxies[1].call("shared").status_code == 402
        assert proxies[0].call("erin").status_code == 200


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_proxies_under_concurrent_load_enforce_one_budget_together(tmp_path: Path, backend: str) -> None:
    budget = "  eng-daily: {scope: team, target: engineering, window: day, limit_usd: 0.16}"
    with two_proxies(tmp_path, backend, budget) as (proxies, ledger_after_shutdown):
        with ThreadPoolExecutor(max_workers=40) as pool:
            statuses = list(pool.map(lambda i: proxies[i % 2].call("shared", max_tokens=5).status_code, range(120)))
        ledger = ledger_after_shutdown()
        [row] = ledger.counters()
        ledger.close()
    ok = statuses.count(200)
    assert set(statuses) == {200, 402} and 8 <= ok <= 14
    assert row.reserved == 0
    assert row.spent / 1e12 == pytest.approx(ok * PER_REQUEST_USD)
    assert row.spent / 1e12 < 0.16 + ESTIMATE_USD


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_kill_9_mid_request_loses_no_charge_and_charges_none_twice(tmp_path: Path, backend: str) -> None:
    budget = "  eng-daily: {scope: team, target: engineering, window: day, limit_usd: 1000}"
    with MockUpstream() as upstream, shared_ledger(tmp_path, backend) as (extra, open_here):
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(budget_policy(upstream.base_url, budget))
        data = tmp_path / "data"
        with ProxyProcess(tmp_path / "policy", tmp_path / "first.log", ENV, *extra) as first:
            proxy = Proxy(first.base_url, data)
            for _ in range(3):
                assert proxy.call("alice").status_code == 200
            upstream.fail(hold=True, times=4)
            threads = [threading.Thread(target=lambda: _swallow(proxy.call, "alice")) for _ in range(4)]
            for t in threads:
                t.start()
            upstream.wait_for_requests(7)
            assert len(upstream.requests) == 7
            first.signal(signal.SIGKILL)
            first.proc.wait(timeout=10)  # type: ignore[union-attr]
        upstream.reset()
        ledger = open_here()
        [row] = ledger.counters()
        assert row.reserved > 0
        ledger.close()
        with ProxyProcess(tmp_path / "policy", tmp_path / "second.log", ENV, *extra):
            pass
        ledger = open_here()
        [row] = ledger.counters()
        charges = recorded_charges(ledger)
        ledger.close()
        assert row.reserved == 0
        assert len(charges) == 7 and len({c[0] for c in charges}) == 7
        settled = [c for c in charges if c[3] == "usage"]
        recovered = [c for c in charges if c[3].startswith("estimate: its process died")]
        assert len(settled) == 3 and len(recovered) == 4
        assert all(c[2] == c[1] for c in recovered)
        assert row.spent == sum(c[2] for c in charges)
        assert '"ledger_recovered"' in (tmp_path / "second.log").read_text()


def _swallow(fn: object, *args: object) -> None:
    try:
        fn(*args)  # type: ignore[operator]
    except httpx.HTTPError:
        pass


def test_policy_budgets_shows_each_instance(per_principal: Proxy) -> None:
    import subprocess
    import sys

    for _ in range(5):
        per_principal.call("alice")
    per_principal.call("bob")
    per_principal.wait_settled()
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "budgets", "--data", str(per_principal.data)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["instance", "window", "scope", "target", "spent", "in", "flight", "limit", "used", "state"]
    alice = next(ln for ln in lines if ln.startswith("per-engineer/alice@acme.com"))
    assert alice.split()[-5:] == ["$0.08", "$0.00", "$0.08", "100%", "blocked"]
    bob = next(ln for ln in lines if ln.startswith("per-engineer/bob@acme.com"))
    assert bob.split()[-5:] == ["$0.016", "$0.00", "$0.08", "20%", "ok"]
    data = json.loads(subprocess.run(
        [sys.executable, "-m", "cli", "budgets", "--data", str(per_principal.data), "--format", "json"],
        capture_output=True, text=True,
    ).stdout)
    assert {d["instance"]: d["state"] for d in data} == {"per-engineer/alice@acme.com": "blocked", "per-engineer/bob@acme.com": "ok"}


def test_policy_budgets_with_the_policy_lists_every_instance_at_its_current_limit(per_principal: Proxy, tmp_path: Path) -> None:
    import subprocess
    import sys

    for _ in range(2):
        per_principal.call("alice")
    per_principal.wait_settled()
    policy = tmp_path / "policy"
    raised = (policy / "policy.yaml").read_text().replace("limit_usd: 0.08", "limit_usd: 0.32")
    (tmp_path / "raised").mkdir()
    (tmp_path / "raised" / "policy.yaml").write_text(raised)
    owners_before = per_principal.data.joinpath("ledger.sqlite3").stat().st_mtime_ns
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "budgets", str(tmp_path / "raised"), "--data", str(per_principal.data),
         "--format", "json"], capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    rows = {d["instance"]: d for d in json.loads(proc.stdout)}
    assert set(rows) == {f"per-engineer/{who}@acme.com" for who in ("alice", "bob", "erin")}
    month = datetime.now(UTC).strftime("%Y-%m")
    assert {d["window_label"] for d in rows.values()} == {month}
    assert rows["per-engineer/alice@acme.com"]["spent_usd"] == "0.032"
    assert rows["per-engineer/alice@acme.com"]["limit_usd"] == "0.32"
    assert rows["per-engineer/erin@acme.com"]["spent_usd"] == "0" and rows["per-engineer/erin@acme.com"]["state"] == "ok"
    assert per_principal.data.joinpath("ledger.sqlite3").stat().st_mtime_ns == owners_before, "the ledger is only read"
    empty = tmp_path / "no-ledger-here"
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "budgets", str(policy), "--data", str(empty)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and f"no ledger in {empty}" in proc.stderr and not empty.exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "policy.yaml").write_text("budgets: [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "budgets", str(broken), "--data", str(per_principal.data)],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "policy.yaml:" in proc.stderr


def revision(served: ProxyProcess) -> str:
    return str(httpx.get(served.base_url + "/readyz").json()["revision"])


def test_a_changed_limit_applies_at_reload_with_spend_kept(tmp_path: Path) -> None:
    with MockUpstream() as upstream:
        (tmp_path / "policy").mkdir()
        policy = tmp_path / "policy" / "policy.yaml"
        policy.write_text(budget_policy(upstream.base_url, PER_PRINCIPAL))
        with ProxyProcess(tmp_path / "policy", tmp_path / "serve.log", ENV, "--data", str(tmp_path / "data")) as served:
            proxy = Proxy(served.base_url, tmp_path / "data")
            statuses = [proxy.call("alice").status_code for _ in range(6)]
            assert statuses == [200] * 5 + [402]
            before = revision(served)
            policy.write_text(budget_policy(upstream.base_url, PER_PRINCIPAL.replace("limit_usd: 0.08", "limit_usd: 0.16")))
            served.signal(signal.SIGHUP)
            wait_until(lambda: revision(served) != before)
            statuses = [proxy.call("alice").status_code for _ in range(6)]
            assert statuses == [200] * 5 + [402], "the raised limit admits exactly the room it adds; spend was kept"
            raised = revision(served)
            policy.write_text(budget_policy(upstream.base_url, PER_PRINCIPAL.replace("limit_usd: 0.08", "limit_usd: 0.02")))
            served.signal(signal.SIGHUP)
            wait_until(lambda: revision(served) != raised)
            deadline = time.monotonic() + 15
            while proxy.call("bob").status_code == 200 and time.monotonic() < deadline:
                pass
            response = proxy.call("bob")
            assert response.status_code == 402 and "of its $0.02 month budget" in response.json()["error"]["message"]
        ledger = SqliteLedger(tmp_path / "data", read_only=True)
        rows = {r.instance: r for r in ledger.counters()}
        ledger.close()
        assert rows["per-engineer/alice@acme.com"].spent == 10 * 16_000 * 10**6
        assert rows["per-engineer/bob@acme.com"].limit_pico == 2 * 10**10


def test_streaming_usage_is_requested_and_charged(per_principal: Proxy, tmp_path: Path) -> None:
    client = per_principal.client("alice")
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=16))
    assert all(chunk.choices and chunk.usage is None for chunk in chunks), "usage was asked for on the client's behalf, not shown to it"
    events = list(client.responses.create(model="gpt-4o", input="hi", stream=True, max_output_tokens=16))
    assert events[-1].type == "response.completed"
    rows = {r.instance: r for r in settled_counters(per_principal)}
    assert rows["per-engineer/alice@acme.com"].spent == 2 * 16_000 * 10**6


def test_a_fallback_answer_is_charged_at_the_answering_models_price(per_principal: Proxy) -> None:
    per_principal_upstream_fails_once(per_principal)
    response = per_principal.call("alice")
    assert response.status_code == 200 and response.headers["x-langwatch-fallback-count"] == "1"
    assert response.json()["model"] == "gpt-4o-mini"
    rows = {r.instance: r for r in settled_counters(per_principal)}
    assert rows["per-engineer/alice@acme.com"].spent == 16 * 100 * 10**6


def settled_counters(proxy: Proxy) -> list[Any]:
    proxy.wait_settled()
    return SqliteLedger(proxy.data).counters()


def per_principal_upstream_fails_once(proxy: Proxy) -> None:
    proxy.upstream.fail(status=500, times=1)  # type: ignore[attr-defined]
