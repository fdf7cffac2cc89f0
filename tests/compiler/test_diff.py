"""`policy diff`: a semantic diff of lowered tables, classed the way a reviewer weighs changes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from compiler import compile_policy
from compiler.diff import diff_tables, render_json, render_markdown, render_text
from tests.conftest import ACME, FIXED_NOW, ROOT

NEW_KEY = """\
# yaml-language-server: $schema=../../../schemas/policy.schema.json
virtual_keys:
  vk-gina-codex:
    key_sha256: 5f2b1c0c1d0e6f9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f
    key_prefix: gp-Gina0000x
    principal: gina@acme.com
    team: engineering
    extends: codex-default
"""


def edit(repo: Path, rel: str, old: str, new: str) -> None:
    path = repo / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


def artifact(root: Path) -> dict[str, object]:
    result = compile_policy(root, now=FIXED_NOW)
    assert result.artifact is not None, [f"{d.span} {d.message}" for d in result.errors]
    return dict(result.artifact)


@pytest.fixture
def team_on_azure(tmp_path: Path) -> Path:
    """acme with the whole Codex profile's gpt-4o pinned to the Azure deployment."""
    repo = tmp_path / "base"
    shutil.copytree(ACME, repo)
    edit(repo, "profiles.yaml", "model_aliases: {fast: gpt-5-mini}", "model_aliases: {fast: gpt-5-mini, gpt-4o: azure-east/gpt-4o}")
    return repo


def test_one_line_alias_edit_moves_the_whole_team(team_on_azure: Path, tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    head = tmp_path / "head"
    shutil.copytree(team_on_azure, head)
    edit(head, "profiles.yaml", "gpt-4o: azure-east/gpt-4o}", "gpt-4o: openai-primary/gpt-4o}")
    d = diff_tables(artifact(team_on_azure), artifact(head))
    moved = [c for c in d.changes if c.what.startswith("gpt-4o: azure-east -> openai-primary")]
    assert {c.subject for c in moved} == {
        "vk vk-alice-codex", "vk vk-bob-codex", "vk vk-carol-codex", "vk vk-dave-codex", "vk vk-cold-benchmark",
    }
    assert render_text(d) == snapshot(name="text")
    assert render_markdown(d) == snapshot(name="markdown")


def test_realistic_change_set_in_every_format(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    head = tmp_path / "head"
    shutil.copytree(ACME, head)
    (head / "virtual_keys/engineering/gina.yaml").write_text(NEW_KEY)
    edit(head, "teams.yaml", "members: [alice@acme.com, bob@acme.com, carol@acme.com, dave@acme.com]",
         "members: [alice@acme.com, bob@acme.com, carol@acme.com, dave@acme.com, gina@acme.com]")
    edit(head, "virtual_keys/engineering/bob.yaml", "extends: codex-default", "extends: codex-default\n    status: revoked")
    edit(head, "budgets.yaml", "limit_usd: 100\n", "limit_usd: 150\n")
    edit(head, "budgets.yaml", "on_breach: {warn: 75%, block: 100%}", "on_breach: {warn: 90%, block: 120%}")
    edit(head, "profiles.yaml", "models_allowed: [gpt-5-mini, gpt-5, gpt-4o, claude-haiku-4-5-20251001]",
         "models_allowed: [gpt-5-mini, gpt-5, gpt-4o, o3, claude-haiku-4-5-20251001]")
    edit(head, "profiles.yaml", "on: [5xx, timeout, 429]", "on: [5xx]")
    edit(head, "profiles.yaml", "cache: {mode: respect, allow_override: true}", "cache: {mode: disable}")
    d = diff_tables(artifact(ACME), artifact(head))
    counts = d.counts()
    assert all(counts[k] > 0 for k in counts), counts
    assert render_text(d) == snapshot(name="text")
    assert render_markdown(d) == snapshot(name="markdown")
    assert render_json(d) == snapshot(name="json")


def policy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "policy.cli", *args], capture_output=True, text=True, cwd=cwd)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_diff_between_git_revisions_leaves_the_working_tree_alone(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ACME, repo / "policies")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "add", ".")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qm", "base")
    git(repo, "checkout", "-q", "-b", "raise-budget")
    edit(repo / "policies", "budgets.yaml", "limit_usd: 100\n", "limit_usd: 150\n")
    git(repo, "-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-qam", "raise the team budget")
    (repo / "policies" / "budgets.yaml").write_text("not: [valid")
    proc = policy("diff", "main", "HEAD", "--dir", "policies", "--format", "json", cwd=repo)
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert data["summary"]["changes"] == 1 and data["summary"]["raises_spend"] == 1
    assert data["changes"][0]["subject"] == "budget eng-daily"
    assert (repo / "policies" / "budgets.yaml").read_text() == "not: [valid"
    assert policy("diff", "main", "main", "--dir", "policies", cwd=repo).returncode == 0
    assert policy("diff", "main", "no-such-branch", "--dir", "policies", cwd=repo).returncode == 2


def test_a_side_that_does_not_compile_exits_1(tmp_path: Path) -> None:
    head = tmp_path / "head"
    shutil.copytree(ACME, head)
    edit(head, "virtual_keys/engineering/bob.yaml", "extends: codex-default", "extends: codex-defualt")
    proc = policy("diff", str(ACME), str(head), cwd=ROOT)
    assert proc.returncode == 1 and "GP203" in proc.stderr
