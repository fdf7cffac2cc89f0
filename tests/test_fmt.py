"""`policy fmt`: one canonical layout, comments kept, behaviour unchanged."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from compiler import compile_policy
from tests.conftest import ACME, ROOT

MESSY = """\
# Budgets of the platform team.
budgets:
    eng-daily:   # the team's daily cap
        on_breach: {block: 100%, warn: 80%}
        limit_usd: 100
        window: day
        scope: team
        target: engineering
# Providers come first in canonical order.
providers:
  openai-primary: {api_key: env:OPENAI_API_KEY, type: openai}
"""


def policy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "policy.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_the_example_repo_is_in_canonical_layout() -> None:
    proc = policy("fmt", str(ACME), "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fmt_reorders_reindents_and_keeps_comments(tmp_path: Path) -> None:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "budgets.yaml").write_text(MESSY.replace("eng-daily", "eng-daily-2").replace("openai-primary", "openai-extra"))
    before = compile_policy(repo)
    check = policy("fmt", str(repo), "--check")
    assert check.returncode == 1 and "--- a/budgets.yaml" in check.stdout
    assert policy("fmt", str(repo)).returncode == 0
    text = (repo / "budgets.yaml").read_text()
    assert text.index("providers:") < text.index("budgets:")
    assert "# the team's daily cap" in text and "# Budgets of the platform team." in text
    lines = [l.strip() for l in text.splitlines()]
    assert lines.index("scope: team") < lines.index("target: engineering") < lines.index("window: day") < lines.index("limit_usd: 100")
    assert "on_breach: {warn: 80%, block: 100%}" in text
    assert "  eng-daily-2:" in text and "    scope: team" in text
    after = compile_policy(repo)
    assert after.artifact is not None and before.artifact is not None
    assert after.artifact["revision"] == before.artifact["revision"]
    assert policy("fmt", str(repo), "--check").returncode == 0
