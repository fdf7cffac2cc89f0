"""`policy serve --workers 2`: one port, one compile per reload, every worker on the same revision,
a worker killed under traffic replaced, and every charge in the shared ledger."""

from __future__ import annotations

import json
import os
import signal
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.ledger.sqlite import SqliteLedger
from tests.e2e.conftest import ALICE_KEY, UPSTREAM_AZURE_SECRET, UPSTREAM_OPENAI_SECRET, policy_text
from tests.support.proxy_process import ProxyProcess
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


class Traffic(threading.Thread):
    """Requests one after another, each on a new connection, so the kernel hands them to either
    worker; records each answer's status, or the error of one cut off."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._answered = threading.Condition()

    def wait_for_more(self, count: int, timeout_s: float = 20) -> None:
        with self._answered:
            target = len(self.statuses) + count
            if not self._answered.wait_for(lambda: len(self.statuses) >= target, timeout_s):
                raise AssertionError("the traffic did not get there")

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                r = httpx.post(
                    self.base_url + "/v1/chat/completions",
                    json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"authorization": f"Bearer {ALICE_KEY}", "connection": "close"}, timeout=10,
                )
            except httpx.HTTPError as exc:
                self.errors.append(repr(exc))
                continue
            with self._answered:
                self.statuses.append(r.status_code)
                self._answered.notify_all()


def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{") and '"event"' in line]


def named(log: Path, name: str) -> list[dict[str, Any]]:
    return [e for e in events(log) if e["event"] == name]


def workers_of(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in children}


def revisions_by_worker(base_url: str) -> dict[str, str]:
    """Who serves what, from `/metrics` (every worker's series, whichever worker answers)."""
    text = httpx.get(base_url + "/metrics", headers={"connection": "close"}).text
    found = {}
    for line in text.splitlines():
        if line.startswith("gatepost_policy_revision_info{"):
            labels = dict(part.split("=", 1) for part in line[line.index("{") + 1:line.index("}")].split(","))
            found[labels["worker"].strip('"')] = labels["revision"].strip('"')
    return found


def test_two_workers_reload_together_and_lose_nothing_when_one_is_killed(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    with MockUpstream() as upstream:
        text = policy_text(upstream.base_url) + BUDGET
        (policy / "policy.yaml").write_text(text)
        with ProxyProcess(policy, log, ENV, "--workers", "2", "--no-watch", "--data", str(data)) as proxy:
            assert proxy.proc is not None
            wait_until(lambda: named(log, "serving"))
            first = named(log, "serving")[0]["revision"]
            assert named(log, "serving")[0]["workers"] == 2
            wait_until(lambda: revisions_by_worker(proxy.base_url) == {"0": first, "1": first})
            traffic = Traffic(proxy.base_url)
            traffic.start()
            traffic.wait_for_more(20)

            (policy / "policy.yaml").write_text(text.replace("alice@acme.com", "alice@acme.example"))
            proxy.signal(signal.SIGHUP)
            wait_until(lambda: named(log, "workers_reloaded"))
            second = named(log, "workers_reloaded")[0]["revision"]
            assert second != first
            wait_until(lambda: revisions_by_worker(proxy.base_url) == {"0": second, "1": second})

            (policy / "policy.yaml").write_text(text.replace("extends: codex-default", "extends: codex-defualt", 1))
            proxy.signal(signal.SIGHUP)
            wait_until(lambda: named(log, "reload_refused"))
            traffic.wait_for_more(20)

            parent = proxy.proc.pid
            before = workers_of(parent)
            assert len(before) == 2
            victim = min(before)
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: named(log, "worker_exited"))
            wait_until(lambda: len(workers_of(parent) - {victim}) == 2)
            traffic.wait_for_more(40)

            (policy / "policy.yaml").write_text(text.replace("alice@acme.com", "alice@acme.test"))
            proxy.signal(signal.SIGHUP)
            wait_until(lambda: len(named(log, "workers_reloaded")) == 2)
            third = named(log, "workers_reloaded")[1]["revision"]
            wait_until(lambda: revisions_by_worker(proxy.base_url) == {"0": third, "1": third})
            traffic.wait_for_more(20)
            traffic.stop.set()
            traffic.join(timeout=15)
            proxy.stop()
            assert proxy.proc.returncode == 0

    assert set(traffic.statuses) == {200}
    assert len(traffic.errors) <= 2, traffic.errors
    refused = named(log, "reload_refused")
    assert len(refused) == 1 and "GP203" in refused[0]["diagnostics"] and refused[0]["serving"] == second
    exited = named(log, "worker_exited")
    assert len(exited) == 1 and exited[0]["pid"] == victim and exited[0]["status"] == "signal SIGKILL"
    ledger = SqliteLedger(data, read_only=True)
    try:
        rows = ledger.counters()
    finally:
        ledger.close()
    assert len(rows) == 1 and rows[0].reserved == 0
    logged = sum(
        Decimal(json.loads(line)["cost_usd"]) for line in log.read_text().splitlines()
        if line.startswith("{") and '"status":200' in line and '"cost_usd"' in line
    )
    logged_pico = int(logged * 10**12)
    answered = len([s for s in traffic.statuses if s == 200])
    assert logged_pico > 0 and answered >= 100
    assert rows[0].spent >= logged_pico
    if rows[0].spent > logged_pico:
        assert named(log, "ledger_recovered")
