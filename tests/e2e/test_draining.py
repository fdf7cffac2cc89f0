"""Readiness and draining as a load balancer sees them: `/readyz` says why a process should not be
sent traffic, and SIGTERM lets a stream in flight finish and settle before the process exits 0."""

from __future__ import annotations

import json
import signal
import threading
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from runtime.ledger.sqlite import SqliteLedger
from tests.e2e.conftest import ALICE_KEY, UPSTREAM_AZURE_SECRET, UPSTREAM_OPENAI_SECRET, policy_text
from tests.support.apps import app_from
from tests.support.proxy_process import ProxyProcess
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

ENV = {"E2E_OPENAI_KEY": UPSTREAM_OPENAI_SECRET, "E2E_AZURE_KEY": UPSTREAM_AZURE_SECRET}
BUDGET = """
budgets:
  alice-daily:
    scope: vk
    target: vk-alice-codex
    window: day
    timezone: UTC
    limit_usd: 1000
"""
STREAM = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
          "messages": [{"role": "user", "content": "hi"}]}


class Stream(threading.Thread):
    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.lines: list[str] = []
        self.started = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        try:
            with httpx.stream("POST", self.base_url + "/v1/chat/completions", json=STREAM, timeout=30,
                              headers={"authorization": f"Bearer {ALICE_KEY}"}) as r:
                for line in r.iter_lines():
                    if line:
                        self.lines.append(line)
                    if len(self.lines) >= 2:
                        self.started.set()
        except httpx.HTTPError as exc:
            self.error = repr(exc)
        finally:
            self.started.set()


def refuses_connections(base_url: str) -> bool:
    """No answer for a new connection: refused, or reset from the backlog of a socket closing."""
    try:
        httpx.get(base_url + "/healthz", timeout=2)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return True
    return False


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_a_stream_finish_settles_it_and_exits_0(tmp_path: Path, workers: str) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    with MockUpstream() as upstream:
        (policy / "policy.yaml").write_text(policy_text(upstream.base_url) + BUDGET)
        upstream.fail(hold_after=2, path_contains="chat", times=1)
        extra = ("--workers", workers, "--grace-period", "20", "--data", str(data))
        with ProxyProcess(policy, log, ENV, *extra) as proxy:
            assert proxy.proc is not None
            wait_until(lambda: '"event":"serving"' in log.read_text())
            stream = Stream(proxy.base_url)
            stream.start()
            assert stream.started.wait(15) and stream.error is None
            proxy.signal(signal.SIGTERM)
            wait_until(lambda: '"event":"draining"' in log.read_text())
            wait_until(lambda: refuses_connections(proxy.base_url))
            assert proxy.proc.poll() is None
            upstream.release()
            stream.join(timeout=20)
            assert proxy.proc.wait(timeout=20) == 0

    assert stream.error is None
    assert stream.lines[-1] == "data: [DONE]"
    served = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{") and '"status":200' in line]
    assert len(served) == 1
    ledger = SqliteLedger(data, read_only=True)
    try:
        rows = ledger.counters()
    finally:
        ledger.close()
    assert len(rows) == 1 and rows[0].reserved == 0
    assert rows[0].spent == int(Decimal(served[0]["cost_usd"]) * 10**12) > 0


def test_readyz_says_why_it_is_not_ready_and_healthz_stays_live(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.yaml").write_text(policy_text("http://127.0.0.1:9"))
    app = app_from(policy)
    with ServerThread(app) as server:
        assert httpx.get(server.base_url + "/readyz").status_code == 200
        app.readiness.draining = True
        r = httpx.get(server.base_url + "/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "not_ready", "reasons": ["draining"], "revision": app.serving.table.revision}
        app.readiness.loaded = False
        app.readiness.ledger_reachable = False
        assert httpx.get(server.base_url + "/readyz").json()["reasons"] == [
            "table_not_loaded", "ledger_unreachable", "draining",
        ]
        assert httpx.get(server.base_url + "/healthz").status_code == 200


def test_readyz_is_503_while_the_redis_ledger_does_not_answer(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.yaml").write_text(policy_text("http://127.0.0.1:9") + BUDGET)
    log = tmp_path / "serve.log"
    with RedisServer(tmp_path / "redis") as redis_server:
        port = redis_server.port
        with ProxyProcess(policy, log, ENV, "--ledger", redis_server.url) as proxy:
            assert httpx.get(proxy.base_url + "/readyz").status_code == 200
            redis_server.__exit__()
            wait_until(lambda: httpx.get(proxy.base_url + "/readyz").status_code == 503)
            assert httpx.get(proxy.base_url + "/readyz").json()["reasons"] == ["ledger_unreachable"]
            assert httpx.get(proxy.base_url + "/healthz").status_code == 200
            with RedisServer(tmp_path / "redis", port=port):
                wait_until(lambda: httpx.get(proxy.base_url + "/readyz").status_code == 200)
