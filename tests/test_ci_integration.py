"""What a policy repository copies from examples/acme: the CI workflow's commands and the
pre-commit hooks, run for real."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cli.gatepost_source import GatepostSource
from tests.conftest import ACME, ROOT
from tests.support.cli import policy

BIN = Path(sys.executable).parent


def workflow_commands() -> list[str]:
    workflow = yaml.safe_load((ACME / ".github" / "workflows" / "gatepost.yml").read_text())
    return [step["run"] for step in workflow["jobs"]["policy"]["steps"] if "policy " in step.get("run", "")]


def test_the_workflow_runs_the_commands_the_tests_run() -> None:
    commands = workflow_commands()
    assert any(c.startswith("policy compile . --check --strict --format github") for c in commands)
    assert "policy test ." in commands
    assert any("policy diff" in c and "--format markdown" in c for c in commands)


@pytest.mark.parametrize("command", ["policy compile . --check --strict --format github", "policy test .",
                                     "policy compile . --check --strict --format sarif > gatepost.sarif || true",
                                     "policy compile . -o routing-table.json"])
def test_each_workflow_command_passes_on_the_example_repo(command: str, tmp_path: Path) -> None:
    assert command in workflow_commands()
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("example", ["acme", "acme-dsl"])
def test_the_examples_are_clean_under_strict(example: str) -> None:
    """`make check` gates examples/acme with --strict, as the workflow gates a policy repository."""
    proc = policy("compile", str(ACME.parent / example), "--check", "--strict")
    assert proc.returncode == 0, proc.stderr


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def shipped_hooks(config: str) -> list[str]:
    [repo] = yaml.safe_load(config)["repos"]
    return [hook["id"] for hook in repo["hooks"]]


def test_policy_init_ships_the_same_hooks_and_steps_as_the_example(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    assert policy("init", str(repo)).returncode == 0
    config = (repo / ".pre-commit-config.yaml").read_text()
    assert shipped_hooks(config) == shipped_hooks((ACME / ".pre-commit-config.yaml").read_text())
    assert hook_source(config) == hook_source((ACME / ".pre-commit-config.yaml").read_text())
    assert (repo / ".github" / "workflows" / "gatepost.yml").read_text() == (
        ACME / ".github" / "workflows" / "gatepost.yml").read_text()


def install_step(workflow: str) -> str:
    steps = yaml.safe_load(workflow)["jobs"]["policy"]["steps"]
    [script] = [s["run"] for s in steps if "pip install" in s.get("run", "")]
    return str(script)


def hook_source(config: str) -> GatepostSource:
    [repo] = yaml.safe_load(config)["repos"]
    return GatepostSource(repo["repo"], str(repo["rev"]))


def test_the_workflow_installs_gatepost_from_the_pre_commit_hooks_repository_and_rev() -> None:
    source = hook_source((ACME / ".pre-commit-config.yaml").read_text())
    script = install_step((ACME / ".github" / "workflows" / "gatepost.yml").read_text())
    assert script == f'pip install "gatepost @ git+{source.url}@{source.rev}"' == source.pip_install
    assert "==" not in script


def test_policy_init_takes_the_gatepost_repository_and_rev_for_ci_and_pre_commit(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    made = policy("init", str(repo), "--gatepost-url", "https://git.acme.example/mirrors/gatepost",
                  "--gatepost-rev", "0123abcd")
    assert made.returncode == 0, made.stderr
    source = hook_source((repo / ".pre-commit-config.yaml").read_text())
    assert source == GatepostSource("https://git.acme.example/mirrors/gatepost", "0123abcd")
    script = install_step((repo / ".github" / "workflows" / "gatepost.yml").read_text())
    assert script == 'pip install "gatepost @ git+https://git.acme.example/mirrors/gatepost@0123abcd"'


def test_the_install_step_of_an_initialised_repository_installs_this_checkout(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("needs this project as a git repository (the step installs it by git URL)")
    head = git(ROOT, "rev-parse", "HEAD")
    repo = tmp_path / "policies"
    made = subprocess.run([str(BIN / "policy"), "init", str(repo), "--gatepost-url", str(ROOT), "--gatepost-rev", head],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert hook_source((repo / ".pre-commit-config.yaml").read_text()) == GatepostSource(str(ROOT), head)
    venv = tmp_path / "ci-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", "PIP_QUIET": "1"}
    env.pop("VIRTUAL_ENV", None)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True,
                   capture_output=True, timeout=300)
    script = install_step((repo / ".github" / "workflows" / "gatepost.yml").read_text())
    installed = subprocess.run(["bash", "-eo", "pipefail", "-c", script], cwd=repo, env=env, capture_output=True,
                               text=True, timeout=600)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (venv / "bin" / "policy").exists()
    checked = subprocess.run(["bash", "-c", "policy compile . --check"], cwd=repo, env=env, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_pre_commit_hook_works_in_a_fresh_repository(tmp_path: Path) -> None:
    """Every hook passes on the example; then the hook at fault alone on each mistake (a hook run
    is a process of its own, seconds each)."""
    if not (ROOT / ".git").exists():
        pytest.skip("needs this project as a git repository (pre-commit installs the hook from it)")
    repo = tmp_path / "policies"
    shutil.copytree(ACME, repo, ignore=shutil.ignore_patterns(".github", ".pre-commit-config.yaml"))
    shipped = (ACME / ".pre-commit-config.yaml").read_text()
    assert shipped_hooks(shipped) == ["gatepost-check", "gatepost-test", "gatepost-fmt"]
    (repo / ".pre-commit-config.yaml").write_text(
        shipped.replace("https://github.com/gatepost-dev/gatepost", str(ROOT))
        .replace("rev: v0.1.0", f"rev: {git(ROOT, 'rev-parse', 'HEAD')}")
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    run = [str(BIN / "pre-commit"), "run", "--all-files"]
    ok = subprocess.run(run, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gatepost policy compile --check" in ok.stdout and "Passed" in ok.stdout
    assert "gatepost policy fmt --check" in ok.stdout and "Failed" not in ok.stdout
    alice = repo / "virtual_keys" / "engineering" / "alice.yaml"
    alice.write_text(alice.read_text().replace("extends: codex-default", "extends: codex-defualt", 1))
    git(repo, "add", "-A")
    broken = subprocess.run([*run[:2], "gatepost-check", "--all-files"], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=600)
    assert broken.returncode == 1
    assert "error[GP203]" in broken.stdout and "did you mean 'codex-default'?" in broken.stdout
    alice.write_text(alice.read_text().replace("extends: codex-defualt", "extends: codex-default", 1)
                     .replace("    team: engineering\n", "    team:    engineering\n", 1))
    git(repo, "add", "-A")
    unformatted = subprocess.run([*run[:2], "gatepost-fmt", "--all-files"], cwd=repo, env=env, capture_output=True,
                                 text=True, timeout=600)
    assert unformatted.returncode == 1
    assert "file(s) not in canonical layout" in unformatted.stdout and "+    team: engineering" in unformatted.stdout


def diff_step() -> str:
    workflow = yaml.safe_load((ACME / ".github" / "workflows" / "gatepost.yml").read_text())
    [step] = [s for s in workflow["jobs"]["policy"]["steps"] if "policy diff" in s.get("run", "")]
    script: str = step["run"]
    assert "${{ github.base_ref }}" in script
    return script.replace("${{ github.base_ref }}", "main")


def run_step(script: str, repo: Path) -> subprocess.CompletedProcess[str]:
    """The step as GitHub runs a `run:` block: bash with errexit and pipefail."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=120)


WHO = ["-c", "user.email=ci@example.com", "-c", "user.name=ci"]


def pull_request(tmp_path: Path, base: Path = ACME, branch: str = "raise-budget") -> Path:
    """A clone whose origin/main holds `base` (acme by default) and whose HEAD is a new branch."""
    origin = tmp_path / "origin"
    shutil.copytree(base, origin)
    git(origin, "init", "-q", "-b", "main")
    git(origin, "add", "-A")
    git(origin, *WHO, "commit", "-qm", "base")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(origin), str(clone)], check=True, capture_output=True)
    git(clone, "checkout", "-q", "-b", branch)
    return clone


def commit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    git(repo, *WHO, "commit", "-qam", f"edit {rel}")


def test_the_diff_step_treats_changes_as_success_and_writes_the_comment(tmp_path: Path) -> None:
    repo = pull_request(tmp_path)
    commit(repo, "budgets.yaml", "limit_usd: 100\n", "limit_usd: 150\n")
    proc = run_step(diff_step(), repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    comment = (repo / "diff.md").read_text()
    assert comment.startswith("### Gatepost policy diff")
    assert "`origin/main`" in comment and "`HEAD`" in comment and "limit $100.00 -> $150.00 per day" in comment


def test_the_diff_step_passes_without_changes_and_fails_when_head_does_not_compile(tmp_path: Path) -> None:
    repo = pull_request(tmp_path)
    unchanged = run_step(diff_step(), repo)
    assert unchanged.returncode == 0, unchanged.stderr
    assert "No changes" in (repo / "diff.md").read_text()
    commit(repo, "virtual_keys/engineering/bob.yaml", "extends: codex-default", "extends: codex-defualt")
    broken = run_step(diff_step(), repo)
    assert broken.returncode == 1 and "GP203" in broken.stderr


def test_the_pull_request_that_adds_the_policy_diffs_against_an_empty_one(tmp_path: Path) -> None:
    readme_only = tmp_path / "readme-only"
    readme_only.mkdir()
    (readme_only / "README.md").write_text("Gateway policy lives in policies/.\n")
    clone = pull_request(tmp_path, readme_only, "add-policy")
    shutil.copytree(ACME, clone / "policies", ignore=shutil.ignore_patterns(".github", ".pre-commit-config.yaml"))
    git(clone, "add", "-A")
    git(clone, *WHO, "commit", "-qm", "add the policy")
    proc = subprocess.run([str(BIN / "policy"), "diff", "origin/main", "HEAD", "--dir", "policies", "--format", "json"],
                          cwd=clone, capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "origin/main (policies/) has no policy files; compared as an empty policy" in proc.stderr
    diff = json.loads(proc.stdout)
    assert diff["changes"] and {c["action"] for c in diff["changes"] if c["subject"] != "gateway"} == {"+"}
    subjects = {c["subject"] for c in diff["changes"]}
    assert {"vk vk-alice-codex", "provider openai-primary", "budget eng-daily"} <= subjects
    assert diff["summary"]["widens_access"] > 0 and diff["summary"]["raises_spend"] == 0
    step = run_step(diff_step().replace("HEAD --format", "HEAD --dir policies --format"), clone)
    assert step.returncode == 0, step.stdout + step.stderr
    assert "vk-alice-codex" in (clone / "diff.md").read_text()
