"""Run the real Claude Code CLI (npm @anthropic-ai/claude-code, pinned and installed by `make test`)
with its base URL set to the proxy; nothing off loopback is reachable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.support.codex import CodexRun

CLAUDE_CODE_VERSION = "2.1.197"
CLAUDE_BIN = ROOT / ".tools" / "node_modules" / ".bin" / "claude"


def run_claude(
    base_url: str, key: str, model: str, prompt: str, home: Path, timeout_s: float = 120, retries: int | None = None
) -> CodexRun:
    """`retries`, if given, is Claude Code's `CLAUDE_CODE_MAX_RETRIES` (0: show the first error);
    by default it retries 10 times, a 429 after its `Retry-After` unless that is over 60 s."""
    if not CLAUDE_BIN.exists():
        raise RuntimeError(f"{CLAUDE_BIN} is missing: `make test` installs @anthropic-ai/claude-code@{CLAUDE_CODE_VERSION}")
    workdir = home / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": key,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if retries is not None:
        env["CLAUDE_CODE_MAX_RETRIES"] = str(retries)
    proc = subprocess.run(
        [str(CLAUDE_BIN), "-p", prompt, "--model", model], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=timeout_s, stdin=subprocess.DEVNULL, check=False,
    )
    return CodexRun(proc.returncode, proc.stdout, proc.stderr)
