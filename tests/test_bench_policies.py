"""The peer benchmark's two policies (bench/proxy/): each compiles clean, and the governed one is
the plain one plus governance on the bench key (its team, two budgets, three rate limits), so a run
comparing the two measures what governance costs and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from compiler.pipeline import compile_policy
from tests.conftest import ROOT

BENCH = ROOT / "bench" / "proxy"
GOVERNANCE = ("teams", "budgets", "rate_limits")


def served(tmp_path: Path, template: str) -> Path:
    """The policy directory `serve.sh` makes from `template`."""
    directory = tmp_path / template
    directory.mkdir()
    text = (BENCH / template).read_text().replace("@UPSTREAM@", "http://127.0.0.1:9/v1")
    (directory / "policy.yaml").write_text(text)
    return directory


def parsed(template: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((BENCH / template).read_text())
    return loaded


def compiled_key(tmp_path: Path, template: str) -> Any:
    result = compile_policy(served(tmp_path, template))
    assert result.artifact is not None and not result.diagnostics, [str(d) for d in result.diagnostics]
    return result.artifact.table.virtual_keys["vk-bench"]


def test_the_governed_bench_policy_is_the_plain_one_with_governance_on_the_bench_key() -> None:
    plain, governed = parsed("policy.yaml.tmpl"), parsed("policy-governed.yaml.tmpl")
    assert not set(GOVERNANCE) & plain.keys()
    assert governed["virtual_keys"]["vk-bench"].pop("team") == "bench"
    assert {k: v for k, v in governed.items() if k not in GOVERNANCE} == plain


def test_both_bench_policies_compile_clean_and_only_the_governed_one_governs_the_bench_key(tmp_path: Path) -> None:
    plain = compiled_key(tmp_path, "policy.yaml.tmpl")
    assert plain.budgets == [] and plain.rate_limits == []
    governed = compiled_key(tmp_path, "policy-governed.yaml.tmpl")
    assert sorted(governed.budgets) == ["bench-principal-monthly", "bench-team-daily"]
    assert sorted(governed.rate_limits) == ["bench-in-flight", "bench-requests", "bench-tokens"]
