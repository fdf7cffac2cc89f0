"""Run the real Codex CLI (npm @openai/codex, pinned and installed by `make test`) against a base URL.

Codex gets a throw-away CODEX_HOME and HOME, a custom provider (`wire_api = "responses"`), and
proxy variables that send anything not on loopback to a closed port, so it can reach nothing but
the servers a test started.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT

CODEX_VERSION = "0.169.0"
CODEX_BIN = ROOT / ".tools" / "node_modules" / ".bin" / "codex"


@dataclass
class CodexRun:
    returncode: int
    stdout: str
    stderr: str


def codex_config(base_url: str, retries: int = 0) -> str:
    return f"""\
model_provider = "gatepost"

[model_providers.gatepost]
name = "Gatepost"
base_url = "{base_url}"
env_key = "GATEPOST_API_KEY"
wire_api = "responses"
request_max_retries = {retries}
stream_max_retries = {retries}
"""


def run_codex(
    base_url: str, key: str, model: str, prompt: str, home: Path, timeout_s: float = 120, *extra: str, retries: int = 0
) -> CodexRun:
    """`retries` is the provider's `request_max_retries` and `stream_max_retries`: Codex retries a
    429 within its turn (by `stream_max_retries`, after the answer's `Retry-After`), never in its
    transport."""
    if not CODEX_BIN.exists():
        raise RuntimeError(f"{CODEX_BIN} is missing: `make test` installs @openai/codex@{CODEX_VERSION}")
    codex_home = home / "codex-home"
    workdir = home / "work"
    codex_home.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(base_url, retries))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "GATEPOST_API_KEY": key,
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "ALL_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "RUST_LOG": "error",
    }
    proc = subprocess.run(
        [str(CODEX_BIN), "exec", "--skip-git-repo-check", *extra, "--model", model, prompt],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False,
    )
    return CodexRun(proc.returncode, proc.stdout, proc.stderr)
