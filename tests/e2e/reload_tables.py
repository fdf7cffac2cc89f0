"""Two routing tables of the e2e policy for the in-loop reload tests: the one served and the next,
which differs only in a price, so a reload between them changes the revision and nothing else."""

from __future__ import annotations

from pathlib import Path

from artifact import write_to
from compiler import compile_policy
from tests.e2e.conftest import ALICE_KEY, policy_text

AUTH = {"authorization": f"Bearer {ALICE_KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def compiled(policy: Path, text: str, out: Path) -> None:
    (policy / "policy.yaml").write_text(text)
    result = compile_policy(policy)
    assert result.artifact is not None
    with out.open("wb") as fh:
        write_to(result.artifact, fh)


def served_and_next(tmp_path: Path, upstream_url: str) -> tuple[Path, Path]:
    """The artifact to serve and the one to reload to, compiled from `tmp_path/policy`."""
    policy = tmp_path / "policy"
    policy.mkdir()
    served, following = tmp_path / "routing-table.json", tmp_path / "next.json"
    text = policy_text(upstream_url)
    compiled(policy, text, served)
    compiled(policy, text.replace("input: 2.50", "input: 2.75"), following)
    return served, following
