"""Reload without restart: new tables swap in atomically, broken ones are refused, nothing is lost."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ALICE_KEY, UPSTREAM_AZURE_SECRET, UPSTREAM_OPENAI_SECRET, policy_text
from tests.support.proxy_process import ProxyProcess
from tests.support.upstream import MockUpstream
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

ENV = {"E2E_OPENAI_KEY": UPSTREAM_OPENAI_SECRET, "E2E_AZURE_KEY": UPSTREAM_AZURE_SECRET}


class Traffic(threading.Thread):
    """A steady stream of requests, recording each answer's status and revision header."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.base_url = base_url
        self.results: list[tuple[int, str]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self._answered = threading.Condition()

    def wait_for(self, condition: Callable[[list[tuple[int, str]]], bool], timeout_s: float = 60) -> None:
        """Return once the answers so far meet `condition`, checked as each answer arrives."""
        with self._answered:
            if not self._answered.wait_for(lambda: condition(self.results), timeout_s):
                raise AssertionError("the traffic did not get there")

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as http:
            while not self.stop.is_set():
                try:
                    r = http.post(
                        "/v1/chat/completions",
                        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                        headers={"authorization": f"Bearer {ALICE_KEY}"},
                    )
                    answer = (r.status_code, r.headers.get("x-langwatch-policy-revision", ""))
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                with self._answered:
                    self.results.append(answer)
                    self._answered.notify_all()


def revision_now(base_url: str) -> str:
    return str(httpx.get(base_url + "/readyz").json()["revision"])


@pytest.mark.parametrize("trigger", ["sighup", "watch"])
def test_swap_then_refuse_a_broken_table_under_load(tmp_path: Path, trigger: str) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    log = tmp_path / "serve.log"
    with MockUpstream() as upstream:
        text = policy_text(upstream.base_url)
        (policy / "policy.yaml").write_text(text)
        extra = ("--no-watch",) if trigger == "sighup" else ()
        with ProxyProcess(policy, log, ENV, *extra) as proxy:
            first = revision_now(proxy.base_url)
            traffic = Traffic(proxy.base_url)
            traffic.start()
            traffic.wait_for(lambda answers: len(answers) > 20)

            (policy / "policy.yaml").write_text(text.replace("input: 2.50", "input: 2.75"))
            if trigger == "sighup":
                proxy.signal()
            wait_until(lambda: revision_now(proxy.base_url) != first)
            second = revision_now(proxy.base_url)
            traffic.wait_for(lambda answers: answers[-1][1] == second)

            (policy / "policy.yaml").write_text(text.replace("extends: codex-default", "extends: codex-defualt", 1))
            if trigger == "sighup":
                proxy.signal()
            wait_until(lambda: "reload_refused" in log.read_text())
            count = len(traffic.results)
            traffic.wait_for(lambda answers: len(answers) > count + 20)
            traffic.stop.set()
            traffic.join(timeout=10)

            assert revision_now(proxy.base_url) == second
    assert traffic.errors == []
    statuses = {status for status, _ in traffic.results}
    assert statuses == {200}
    revisions = [rev for _, rev in traffic.results]
    assert set(revisions) == {first, second}
    switch = revisions.index(second)
    assert all(r == first for r in revisions[:switch]) and all(r == second for r in revisions[switch:])
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{") and '"event"' in line]
    refused = [e for e in events if e["event"] == "reload_refused"]
    assert refused and "GP203" in refused[0]["diagnostics"] and refused[0]["serving"] == second
    assert any(e["event"] == "reloaded" and e["revision"] == second for e in events)


def test_refuses_to_start_on_a_policy_that_does_not_compile(tmp_path: Path) -> None:
    import subprocess
    import sys

    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.yaml").write_text(policy_text("http://127.0.0.1:9").replace("[gpt-5-mini, gpt-4o]", "[gpt-5-mni, gpt-4o]"))
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "serve", str(policy), "--port", "9"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert "error[GP202]" in proc.stderr and "did you mean 'gpt-5-mini'?" in proc.stderr
    assert "does not compile; not starting" in proc.stderr


def test_tampered_artifact_is_refused(tmp_path: Path) -> None:
    from artifact import encode
    from compiler import compile_policy
    from runtime.table import TableError, table_from_bytes

    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.yaml").write_text(policy_text("http://127.0.0.1:9"))
    result = compile_policy(policy)
    assert result.artifact is not None
    raw = encode(result.artifact)
    assert table_from_bytes(raw).revision == result.artifact.revision
    tampered = raw.replace(b'"status":"revoked"', b'"status":"active"')
    assert tampered != raw
    with pytest.raises(TableError, match="does not match its content"):
        table_from_bytes(tampered)
    with pytest.raises(TableError, match="not JSON"):
        table_from_bytes(raw[:100])


def test_serves_an_artifact_and_reloads_when_it_is_replaced(tmp_path: Path) -> None:
    import os

    from artifact import encode
    from compiler import compile_policy

    def compile_to(text: str, target: Path) -> str:
        src = tmp_path / "src"
        src.mkdir(exist_ok=True)
        (src / "policy.yaml").write_text(text)
        result = compile_policy(src)
        assert result.artifact is not None
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(encode(result.artifact))
        os.replace(tmp, target)
        return result.artifact.revision

    artifact = tmp_path / "table.json"
    with MockUpstream() as upstream:
        text = policy_text(upstream.base_url)
        first = compile_to(text, artifact)
        with ProxyProcess(artifact, tmp_path / "serve.log", ENV) as proxy:
            assert revision_now(proxy.base_url) == first
            second = compile_to(text.replace("input: 2.50", "input: 3.00"), artifact)
            wait_until(lambda: revision_now(proxy.base_url) == second)
            artifact.write_bytes(artifact.read_bytes()[:-40])
            wait_until(lambda: "reload_refused" in (tmp_path / "serve.log").read_text())
            assert revision_now(proxy.base_url) == second
            r = httpx.post(
                proxy.base_url + "/v1/chat/completions", json={"model": "gpt-4o", "messages": []},
                headers={"authorization": f"Bearer {ALICE_KEY}"},
            )
            assert r.status_code == 200 and r.headers["x-langwatch-policy-revision"] == second
