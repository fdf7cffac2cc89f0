"""`policy serve --workers 2`: one port, one compile per reload, every worker on the same revision,
a worker killed under traffic replaced, and every charge in the shared ledger."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.ledger.sqlite import SqliteLedger
from tests.e2e.conftest import ALICE_KEY, UPSTREAM_AZURE_SECRET, UPSTREAM_OPENAI_SECRET, policy_text
from tests.support.proxy_process import ProxyProcess, free_port
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


def serving_connection_from(client_port: int, pids: set[int]) -> int:
    """The worker holding the accepted end of the client's connection from `client_port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[2].split(":")[1], 16) == client_port and fields[3] == "01":
            inodes.add(fields[9])
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    raise AssertionError("no worker holds the connection")


def ask_and_hold(port: int) -> socket.socket:
    """A chat request on a connection of its own, left waiting for its answer."""
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hold"}]}).encode()
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        + f"authorization: Bearer {ALICE_KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body
    )
    return conn


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
            traffics = [traffic]
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
            traffic.stop.set()
            traffic.join(timeout=15)
            upstream.fail(hold=True, times=1, path_contains="chat")
            seen = len(upstream.requests)
            held = ask_and_hold(proxy.port)
            upstream.wait_for_requests(seen + 1)
            victim = serving_connection_from(held.getsockname()[1], before)
            traffic = Traffic(proxy.base_url)
            traffic.start()
            traffics.append(traffic)
            traffic.wait_for_more(10)
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda: named(log, "worker_exited"))
            wait_until(lambda: named(log, "ledger_recovered"))
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
            held.close()
            proxy.stop()
            assert proxy.proc.returncode == 0

    statuses = [status for t in traffics for status in t.statuses]
    errors = [error for t in traffics for error in t.errors]
    assert set(statuses) == {200}
    # the killed worker's requests in flight (traffic goes one at a time, so at most one) are cut
    assert len(errors) <= 1, errors
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
    answered = len(statuses)
    assert logged_pico > 0 and answered >= 100
    assert rows[0].spent > logged_pico
    assert sum(e["reservations"] for e in named(log, "ledger_recovered")) >= 1


def test_with_workers_the_admin_api_is_served_once_by_worker_zero_and_by_its_replacement(tmp_path: Path) -> None:
    """The parent binds `--admin-port` once; worker 0 serves it, and the worker that replaces a
    killed worker 0 serves it on the same port, with the spend every worker wrote to the ledger."""
    policy = tmp_path / "policy"
    policy.mkdir()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    admin_port = free_port()
    token = "admin-token-for-the-workers-test-5e1d"
    admin = f"http://127.0.0.1:{admin_port}/admin/api/status"
    auth = {"authorization": f"Bearer {token}", "connection": "close"}
    with MockUpstream() as upstream:
        text = policy_text(upstream.base_url).replace(
            "  header_prefix: X-LangWatch-\n", "  header_prefix: X-LangWatch-\n  admin: {token: env:E2E_ADMIN_TOKEN}\n", 1
        )
        (policy / "policy.yaml").write_text(text + BUDGET)
        env = {**ENV, "E2E_ADMIN_TOKEN": token}
        extra = ("--workers", "2", "--no-watch", "--data", str(data), "--admin-port", str(admin_port))
        with ProxyProcess(policy, log, env, *extra) as proxy:
            wait_until(lambda: named(log, "serving"))
            assert named(log, "serving")[0]["admin_url"] == f"http://127.0.0.1:{admin_port}/admin/"
            assert httpx.get(admin, headers={"connection": "close"}).status_code == 401
            assert httpx.get(proxy.base_url + "/admin/api/status", headers=auth).status_code == 404
            traffic = Traffic(proxy.base_url)
            traffic.start()
            traffic.wait_for_more(10)
            traffic.stop.set()
            traffic.join(timeout=15)
            answered = len(traffic.statuses)
            wait_until(lambda: httpx.get(admin, headers=auth).json()["requests_today"] == answered)

            zero = named(log, "serving")[0]["worker_pids"][0]
            os.kill(zero, signal.SIGKILL)
            wait_until(lambda: any(e["worker"] == 0 and e["pid"] != zero for e in named(log, "worker_serving")))
            status = httpx.get(admin, headers=auth)
            assert status.status_code == 200 and status.json()["requests_today"] == answered
            proxy.stop()
    assert set(traffic.statuses) == {200} and not traffic.errors
