"""Every command `make run` prints works as printed, against the quickstart it serves.

The banner is rendered the way the Makefile renders it. The Codex and Claude Code lines fetch
their pinned versions with npx; here the same pinned versions, installed in `.tools/` by `make
test`, stand in for npx's download, and nothing off loopback is reachable.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.support.claude_code import CLAUDE_BIN, CLAUDE_CODE_VERSION
from tests.support.codex import CODEX_BIN, CODEX_VERSION
from tests.support.proxy_process import ProxyProcess

pytestmark = pytest.mark.e2e

ANSWER = "Hello from the Gatepost mock provider"


def makefile_variable(name: str) -> str:
    found = re.search(rf"^{name} :?= (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert found, name
    return found.group(1)


def banner(port: int) -> str:
    text = (EXAMPLES / "quickstart" / "banner.txt").read_text()
    for placeholder in ("PORT", "DEMO_KEY", "CODEX_VERSION", "CLAUDE_CODE_VERSION"):
        value = str(port) if placeholder == "PORT" else makefile_variable(placeholder)
        text = text.replace(placeholder, value)
    return text


def commands(text: str) -> list[str]:
    """The indented command lines, continuations joined."""
    found: list[str] = []
    joined = ""
    for line in text.splitlines():
        if not line.startswith("  "):
            continue
        joined += line.strip()
        if joined.endswith("\\"):
            joined = joined[:-1] + " "
            continue
        found.append(joined)
        joined = ""
    return found


def test_the_banner_pins_the_versions_the_tests_run() -> None:
    assert makefile_variable("CODEX_VERSION") == CODEX_VERSION
    assert makefile_variable("CLAUDE_CODE_VERSION") == CLAUDE_CODE_VERSION
    assert "codex exec" not in banner(4000).replace(f"@openai/codex@{CODEX_VERSION} exec", "")


def test_every_command_the_banner_prints_answers(tmp_path: Path) -> None:
    with ProxyProcess(EXAMPLES / "quickstart", tmp_path / "serve.log") as proxy:
        export, *rest = commands(banner(proxy.port))
        assert export.startswith("export GATEPOST_BASE_URL=")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"),
            "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost", "RUST_LOG": "error",
        }
        (tmp_path / "home").mkdir()
        ran = []
        for command in rest:
            local = command.replace(f"npx --yes @openai/codex@{CODEX_VERSION}", str(CODEX_BIN)).replace(
                f"npx --yes @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}", str(CLAUDE_BIN))
            if "npx" not in command or (CODEX_BIN.exists() and CLAUDE_BIN.exists()):
                done = subprocess.run(["bash", "-c", f"{export}\n{local}"], cwd=ROOT, env=env, capture_output=True,
                                      text=True, timeout=180, stdin=subprocess.DEVNULL, check=False)
                assert done.returncode == 0 and ANSWER in done.stdout, (command, done.stdout, done.stderr)
                ran.append(command.split()[0])
    clients = ["npx", f"ANTHROPIC_BASE_URL=http://127.0.0.1:{proxy.port}"]
    assert ran == ["curl", ".venv/bin/python", *(clients if CODEX_BIN.exists() and CLAUDE_BIN.exists() else [])]
    assert len(rest) == 4
