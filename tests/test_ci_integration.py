"""What a policy repository copies from examples/acme: the CI workflow's commands and the
pre-commit hooks, run for real."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ACME, ROOT

BIN = Path(sys.executable).parent


def workflow_commands() -> list[str]:
    workflow = yaml.safe_load((ACME / ".github" / "workflows" / "gatepost.yml").read_text())
    return [step["run"] for step in workflow["jobs"]["policy"]["steps"] if "policy " in step.get("run", "")]


def test_the_workflow_runs_the_commands_the_tests_run() -> None:
    commands = workflow_commands()
    assert any(c.startswith("policy compile . --check --format github") for c in commands)
    assert "policy test ." in commands
    assert any("policy diff" in c and "--format markdown" in c for c in commands)


@pytest.mark.parametrize("command", ["policy compile . --check --format github", "policy test .",
                                     "policy compile . --check --format sarif > gatepost.sarif || true",
                                     "policy compile . -o routing-table.json"])
def test_each_workflow_command_passes_on_the_example_repo(command: str, tmp_path: Path) -> None:
    assert command in workflow_commands()
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_the_pre_commit_hook_works_in_a_fresh_repository(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("needs this project as a git repository (pre-commit installs the hook from it)")
    repo = tmp_path / "policies"
    shutil.copytree(ACME, repo, ignore=shutil.ignore_patterns(".github", ".pre-commit-config.yaml"))
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {ROOT}\n    rev: {git(ROOT, 'rev-parse', 'HEAD')}\n"
        "    hooks:\n      - id: gatepost-check\n      - id: gatepost-test\n"
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    run = [str(BIN / "pre-commit"), "run", "--all-files"]
    ok = subprocess.run(run, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gatepost policy compile --check" in ok.stdout and "Passed" in ok.stdout
    alice = repo / "virtual_keys" / "engineering" / "alice.yaml"
    alice.write_text(alice.read_text().replace("extends: codex-default", "extends: codex-defualt", 1))
    git(repo, "add", "-A")
    broken = subprocess.run(run, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert broken.returncode == 1
    assert "error[GP203]" in broken.stdout and "did you mean 'codex-default'?" in broken.stdout
