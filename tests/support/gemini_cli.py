"""Run the real gemini-cli (npm @google/gemini-cli, pinned and installed by `make test`) against a
base URL.

gemini-cli gets a throw-away HOME whose `~/.gemini/settings.json` selects API-key auth and turns
off usage statistics, telemetry, auto-update and its notifications; the base URL and key come from
`GOOGLE_GEMINI_BASE_URL` and `GEMINI_API_KEY`, and proxy variables send anything not on loopback
to a trap on 127.0.0.1 that answers nothing and records what came (`GeminiRun.egress`), so it can
reach nothing but the servers a test started, and a test sees any attempt to reach further.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT
from tests.support.codex import CodexRun

GEMINI_CLI_VERSION = "0.61.0"
GEMINI_BIN = ROOT / ".tools" / "node_modules" / ".bin" / "gemini"

SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
}


@dataclass
class GeminiRun(CodexRun):
    egress: list[bytes] = field(default_factory=list)
    """The first bytes of each connection gemini-cli opened through its proxy (`CONNECT host:443`)."""


class EgressTrap:
    """A listener on 127.0.0.1 standing in for an HTTP proxy: it records the start of each
    connection and closes it, so nothing sent through it goes anywhere."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.seen: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    self.seen.append(conn.recv(1024))
                except OSError:
                    self.seen.append(b"")

    def __enter__(self) -> EgressTrap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        self._thread.join(timeout=5)


def run_gemini(base_url: str, key: str, model: str, prompt: str, home: Path, timeout_s: float = 120) -> GeminiRun:
    """`gemini -p PROMPT -m MODEL` in a fresh workspace under `home`, non-interactively."""
    if not GEMINI_BIN.exists():
        raise RuntimeError(f"{GEMINI_BIN} is missing: `make test` installs @google/gemini-cli@{GEMINI_CLI_VERSION}")
    workdir = home / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps(SETTINGS))
    with EgressTrap() as trap:
        proc = _run(base_url, key, model, prompt, home, workdir, f"http://127.0.0.1:{trap.port}", timeout_s)
    return GeminiRun(proc.returncode, proc.stdout, proc.stderr, trap.seen)


def _run(
    base_url: str, key: str, model: str, prompt: str, home: Path, workdir: Path, proxy: str, timeout_s: float
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_API_KEY": key,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_TELEMETRY_ENABLED": "false",
        "GEMINI_CLI_NO_RELAUNCH": "true",
        "NO_BROWSER": "true",
        "CI": "true",
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "ALL_PROXY": proxy,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    return subprocess.run(
        [str(GEMINI_BIN), "-p", prompt, "-m", model, "--output-format", "text"], cwd=workdir, env=env,
        capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False,
    )
