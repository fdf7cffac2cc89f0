"""`policy serve` as a new user first runs it: from the policy directory, with the defaults."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES
from tests.support.proxy_process import ProxyProcess, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

DEMO_KEY = "gp-quickstart-demo-key"
BUDGET = """
budgets:
  demo-daily:
    scope: vk
    target: vk-demo
    window: day
    timezone: UTC
    limit_usd: 5
"""


def events(log: Path) -> list[dict[str, object]]:
    found = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if "event" in record:
                found.append(record)
    return found


def test_fifty_requests_with_the_defaults_reload_nothing_and_write_nothing_beside_the_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    shutil.copytree(EXAMPLES / "quickstart", policy)
    (policy / "policy.yaml").write_text((policy / "policy.yaml").read_text() + BUDGET)
    before = sorted(p.relative_to(policy) for p in policy.rglob("*"))
    log = tmp_path / "serve.log"
    with ProxyProcess(Path("."), log, {"GATEPOST_DATA": ""}, cwd=policy) as proxy:
        with httpx.Client(base_url=proxy.base_url, headers={"authorization": f"Bearer {DEMO_KEY}"}) as http:
            for _ in range(50):
                answer = http.post("/v1/chat/completions", json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]})
                assert answer.status_code == 200
        (policy / "policy.yaml").write_text((policy / "policy.yaml").read_text().replace("limit_usd: 5", "limit_usd: 6"))
        wait_until(lambda: any(e["event"] == "reloaded" for e in events(log)))
    assert [e["event"] for e in events(log) if "reload" in str(e["event"])] == ["reloaded"]
    assert sorted(p.relative_to(policy) for p in policy.rglob("*")) == before
    assert (tmp_path / "state" / "gatepost" / "ledger.sqlite3").exists()


def test_a_busy_port_is_one_line_and_exit_4_before_anything_says_serving(tmp_path: Path) -> None:
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "serve", str(EXAMPLES / "quickstart"), "--port", str(port)],
            capture_output=True, text=True, timeout=30, env={**os.environ, "GATEPOST_DATA": str(tmp_path / "data")},
        )
    assert proc.returncode == 4
    assert proc.stderr == f"policy serve: cannot listen on 127.0.0.1:{port}: address already in use\n"
    assert proc.stdout == ""
    assert not (tmp_path / "data").exists()
