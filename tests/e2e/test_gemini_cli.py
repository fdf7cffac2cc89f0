"""The real gemini-cli through the proxy to a Gemini model (the native route), streaming, with a
tool call round trip; it reaches nothing beyond the servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runtime.access_log import AccessLog
from tests.conftest import ROOT
from tests.support.apps import app_from
from tests.support.gemini_cli import GEMINI_BIN, GEMINI_CLI_VERSION, run_gemini
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-gemini-cli-0123456789abcdefghijklm"
UPSTREAM_SECRET = "gemini-upstream-credential-0123456789"


def policy(upstream: str) -> str:
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  gemini-main: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_GEMINI_KEY}}
models:
  gemini-2.5-flash: {{providers: [gemini-main], price: {{input: 0.3, output: 2.5}}}}
virtual_keys:
  vk-gemini-cli:
    key_sha256: {hashlib.sha256(KEY.encode()).hexdigest()}
    key_prefix: {KEY[:12]}
    models_allowed: [gemini-2.5-flash]
    model_aliases: {{fast: gemini-2.5-flash}}
"""


@dataclass
class Setup:
    base_url: str
    upstream: MockUpstream
    log: io.StringIO
    server: ServerThread

    def records(self) -> list[dict[str, Any]]:
        self.server.wait_idle()
        return [json.loads(line) for line in self.log.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("E2E_GEMINI_KEY", UPSTREAM_SECRET)
    with MockUpstream() as upstream:
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "policy.yaml").write_text(policy(upstream.base_url))
        log = io.StringIO()
        with ServerThread(app_from(tmp_path / "policy", access_log=AccessLog(log))) as server:
            yield Setup(server.base_url, upstream, log, server)


def test_gemini_cli_streams_an_answer_through_the_proxy(setup: Setup, tmp_path: Path) -> None:
    run = run_gemini(setup.base_url, KEY, "fast", "say ping", tmp_path / "home")
    assert run.returncode == 0, run.stderr
    assert "mock reply from gemini-2.5-flash" in run.stdout
    assert run.egress == [], "gemini-cli tried to reach beyond loopback"
    [seen] = setup.upstream.requests
    assert seen.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" and seen.query == {"alt": "sse"}
    assert seen.headers["x-goog-api-key"] == UPSTREAM_SECRET and KEY not in repr(seen.headers)
    assert seen.json["contents"][-1]["parts"][-1]["text"] == "say ping"
    [record] = setup.records()
    assert record["surface"] == "gemini" and record["provider"] == "gemini-main" and record["status"] == 200
    assert record["usage"]["input_tokens"] == 11 and record["usage"]["output_tokens"] == 5


def test_gemini_cli_runs_a_tool_and_sends_its_result_back(setup: Setup, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    (home / "work" / "notes.txt").write_text("the launch code is tangerine\n")
    setup.upstream.ask_tool("read_file", {"file_path": "notes.txt"})
    run = run_gemini(setup.base_url, KEY, "gemini-2.5-flash", "what is in notes.txt?", home)
    assert run.returncode == 0, run.stderr
    assert "mock reply from gemini-2.5-flash" in run.stdout
    assert run.egress == []
    first, second = setup.upstream.requests
    assert first.path == second.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    call, result = second.json["contents"][-2:]
    assert call["role"] == "model" and call["parts"][0]["functionCall"]["name"] == "read_file"
    response = result["parts"][0]["functionResponse"]
    assert response["name"] == "read_file" and "tangerine" in json.dumps(response["response"])


def test_gemini_cli_shows_the_gateways_403_for_a_model_off_the_list(setup: Setup, tmp_path: Path) -> None:
    run = run_gemini(setup.base_url, KEY, "gemini-2.5-pro", "say ping", tmp_path / "home")
    assert run.returncode != 0
    assert "model 'gemini-2.5-pro' is not allowed for virtual key vk-gemini-cli" in run.stdout + run.stderr
    assert setup.upstream.requests == [] and run.egress == []


def test_make_test_installs_the_gemini_cli_version_the_tests_pin() -> None:
    pinned = re.search(r"^GEMINI_CLI_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert pinned is not None and pinned.group(1) == GEMINI_CLI_VERSION
    package = GEMINI_BIN.resolve().parent.parent / "package.json"
    assert json.loads(package.read_text())["version"] == GEMINI_CLI_VERSION
