"""Amounts under a cent read as what they are in the 402, `policy explain` and `policy budgets`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from runtime.ledger.sqlite import SqliteLedger
from tests.conftest import EXAMPLES, ROOT
from tests.support.apps import app_from
from tests.support.servers import ServerThread

DEMO_KEY = "gp-quickstart-demo-key"
TENTH_OF_A_CENT = """
budgets:
  demo-daily: {scope: vk, target: vk-demo, window: day, timezone: UTC, limit_usd: 0.001}
"""


def quickstart_with_a_tenth_of_a_cent(tmp_path: Path) -> Path:
    policy = tmp_path / "policy"
    shutil.copytree(EXAMPLES / "quickstart", policy)
    (policy / "policy.yaml").write_text((policy / "policy.yaml").read_text() + TENTH_OF_A_CENT)
    return policy


def test_a_tenth_of_a_cent_budget_is_shown_as_such(tmp_path: Path) -> None:
    policy = quickstart_with_a_tenth_of_a_cent(tmp_path)
    explained = subprocess.run(
        [sys.executable, "-m", "cli", "explain", str(policy), "--vk", "vk-demo", "--model", "gpt-4o"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert explained.returncode == 0, explained.stderr
    assert "budget demo-daily: vk vk-demo, $0.001 per day" in explained.stdout


def test_the_402_of_a_tenth_of_a_cent_budget_names_both_amounts(tmp_path: Path) -> None:
    policy = quickstart_with_a_tenth_of_a_cent(tmp_path)
    app = app_from(policy, ledger=SqliteLedger(tmp_path / "data"))
    with ServerThread(app) as server, httpx.Client(base_url=server.base_url) as http:
        for _ in range(200):
            answer = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {DEMO_KEY}"},
                               json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8})
            if answer.status_code != 200:
                break
    assert answer.status_code == 402
    message = answer.json()["error"]["message"]
    assert "of its $0.001 day budget 'demo-daily'" in message and "has spent $0.00 " not in message
