"""`policy init`: a starter repository that compiles, passes its tests and validates in editors."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.support.cli import policy, policy_process


def test_init_writes_a_repository_that_compiles_and_passes_its_tests(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    proc = policy_process("init", str(repo), "--principal", "sam.lee@acme.com")
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


def test_init_takes_a_directory_that_holds_only_dot_entries(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    proc = policy("init", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Next: policy compile . --check --strict && policy test ." in proc.stdout
    assert policy("compile", ".", "--check", "--strict", cwd=tmp_path).returncode == 0


def test_init_refuses_to_overwrite_a_file_of_the_starter(tmp_path: Path) -> None:
    workflow = tmp_path / ".github" / "workflows" / "gatepost.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("ours\n")
    proc = policy("init", str(tmp_path))
    assert proc.returncode == 2 and ".github/workflows/gatepost.yml" in proc.stderr
    assert workflow.read_text() == "ours\n" and not (tmp_path / "profiles.yaml").exists()


def test_the_starter_ignores_what_tools_write(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    assert policy("init", str(repo)).returncode == 0
    ignored = (repo / ".gitignore").read_text().splitlines()
    assert {".gatepost/", ".venv/", "routing-table.json", "gatepost.sarif"} <= set(ignored)


def test_the_starter_readme_commands_work_as_described(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    assert policy("init", str(repo)).returncode == 0
    readme = (repo / "README.md").read_text()
    assert "policy compile . --check --strict" in readme and "policy schema --check" in readme
    assert policy("schema", "--check", cwd=repo).returncode == 0
    printed = policy("keys", "new", "--id", "vk-gina-codex").stdout
    to_paste = [line for line in printed.split("Paste into the policy:")[1].splitlines() if line.strip()]
    assert f"paste the {['zero', 'one', 'two', 'three', 'four'][len(to_paste)]} lines it prints" in readme


def test_the_generated_workflow_fails_on_warnings(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    assert policy("init", str(repo)).returncode == 0
    workflow = (repo / ".github" / "workflows" / "gatepost.yml").read_text()
    assert "policy compile . --check --strict --format github" in workflow
