"""`policy serve` as a real process on 127.0.0.1, for tests of signals, reloads and restarts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


READY_WITHIN_S = 60.0
"""How long `policy serve` may take to answer /readyz: it takes a second or two, but several
seconds with workers on a loaded machine, and the wait ends as soon as it answers."""


class ProxyProcess:
    """Without `--data` or $GATEPOST_DATA the proxy keeps its ledger in the default per-user state
    directory, here $XDG_STATE_HOME under the log's folder, so no test writes to the user's home."""

    def __init__(
        self, source: Path, log: Path, env: dict[str, str] | None = None, *extra: str, cwd: Path | None = None
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._args = [sys.executable, "-m", "cli", "serve", str(source), "--port", str(self.port), *extra]
        self._env = {**os.environ, "XDG_STATE_HOME": str(log.parent / "state"), **(env or {})}
        self._cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ProxyProcess:
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(
            self._args, stdout=self._log_file, stderr=subprocess.STDOUT, env=self._env, cwd=self._cwd
        )
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"policy serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(self.base_url + "/readyz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"policy serve did not become ready within {READY_WITHIN_S:g} s")

    def signal(self, sig: int = signal.SIGHUP) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self) -> None:
        """Stop the proxy as an operator does (SIGTERM) and wait for it to exit: it first finishes
        every request it has, so each one's access-log line is written and its charge settled
        (both come after the client has its answer)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log_file.close()
