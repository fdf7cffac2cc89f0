"""`policy init`: a starter repository that compiles, passes its tests and validates in editors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def policy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=cwd)


def test_init_writes_a_repository_that_compiles_and_passes_its_tests(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    proc = policy("init", str(repo), "--principal", "sam.lee@acme.com")
    assert proc.returncode == 0, proc.stderr
    key = re.search(r"^  (gp-\S+)$", proc.stdout, re.M)
    assert key is not None
    assert key.group(1) not in "".join(p.read_text() for p in repo.rglob("*") if p.is_file())
    assert (repo / "virtual_keys" / "sam-lee.yaml").exists()
    assert (repo / ".github" / "workflows" / "gatepost.yml").exists() and (repo / ".pre-commit-config.yaml").exists()
    assert policy("compile", ".", "--check", "--strict", cwd=repo).returncode == 0
    tested = policy("test", ".", cwd=repo)
    assert tested.returncode == 0 and "2 passed, 0 failed" in tested.stdout
    assert "id: gatepost-fmt" in (repo / ".pre-commit-config.yaml").read_text()
    assert policy("fmt", "--check", ".", cwd=repo).returncode == 0
    for path in repo.rglob("*.yaml"):
        if path.name.startswith(".") or ".github" in path.parts:
            continue
        schema = re.match(r"# yaml-language-server: \$schema=(\S+)", path.read_text()).group(1)  # type: ignore[union-attr]
        assert (path.parent / schema).resolve().is_file(), path


def test_init_refuses_a_directory_with_files(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    proc = policy("init", str(tmp_path))
    assert proc.returncode == 2 and "not empty" in proc.stderr
