"""The `policy` command as a test runs it: in the test's process (`policy`), what a process of
its own prints and exits with, without a Python start-up and the imports of a command per call;
or as a process of its own (`policy_process`), as CI and engineers run it. Each command keeps at
least one test of the real process."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cli.main import main
from tests.conftest import ROOT


@dataclass(frozen=True)
class Ran:
    """What `subprocess.run(..., capture_output=True, text=True)` gives back and the tests read."""

    returncode: int
    stdout: str
    stderr: str


def policy(*args: str, cwd: Path = ROOT) -> Ran:
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    stderr = io.StringIO()
    with contextlib.chdir(cwd), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return Ran(code, stdout.buffer.getvalue().decode(), stderr.getvalue())


def policy_process(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=cwd, check=False)
