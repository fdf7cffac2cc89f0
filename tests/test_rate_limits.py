"""Rate limits in the language: checked at their tokens, lowered per member, shown by `policy explain`,
asserted by `policy test`, laid out by `policy fmt`, written alike in YAML and the DSL, loaded by the runtime."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from artifact import canonical_json
from compiler import compile_policy, compile_sources, render_text
from policy.fmt import format_text
from policy.loader import SourceFile
from runtime.ratelimit.limits import Rate
from runtime.table import RateLimitInstance, table_from_artifact
from tests.conftest import ACME, FIXED_NOW
from tests.support.cli import policy

LIMITS = """\
rate_limits:
  per-engineer:
    scope: principal
    requests: 60/minute
    tokens: 400000/minute
    in_flight: 8
  eng-gpt-4o:
    scope: team
    target: engineering
    models: [gpt-4o]
    requests: 300/minute
"""
LIMITS_DSL = """\
rate_limit per-engineer {
  scope = principal
  requests = 60/minute; tokens = 400000/minute; in_flight = 8
}
rate_limit eng-gpt-4o { scope = team; target = engineering; models = [gpt-4o]; requests = 300/minute }
"""
CASES = """\
tests:
  - name: alice's gpt-4o counts against her own limit and the team's gpt-4o limit
    vk: vk-alice-codex
    model: gpt-4o
    expect: {decision: allow, rate_limits: [eng-gpt-4o, per-engineer/alice@acme.com]}
  - name: alice's gpt-5-mini counts against her own limit only
    vk: vk-alice-codex
    model: gpt-5-mini
    expect: {decision: allow, rate_limits: [eng-gpt-4o]}
"""


@pytest.fixture
def limited(tmp_path: Path) -> Path:
    """acme with a per-engineer limit and a team limit on gpt-4o."""
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "rate_limits.yaml").write_text(LIMITS)
    return repo


def test_a_limit_on_each_principal_is_one_instance_per_principal_and_listed_on_their_keys(limited: Path) -> None:
    result = compile_policy(limited, now=FIXED_NOW)
    assert result.artifact is not None and not result.diagnostics
    table = result.artifact.table
    principals = {k.principal for k in table.virtual_keys.values() if k.principal}
    assert {i for i in table.rate_limits if i.startswith("per-engineer/")} == {f"per-engineer/{p}" for p in principals}
    alice = table.virtual_keys["vk-alice-codex"]
    assert alice.rate_limits == ["eng-gpt-4o", "per-engineer/alice@acme.com"]
    assert result.artifact.source_map["rate_limits"] == {"per-engineer": "rate_limits.yaml:2",
                                                         "eng-gpt-4o": "rate_limits.yaml:7"}


def test_the_runtime_loads_each_instance_with_its_line_and_shares_the_keys_lists(limited: Path) -> None:
    result = compile_policy(limited, now=FIXED_NOW)
    assert result.artifact is not None
    loaded = table_from_artifact(result.artifact)
    assert loaded.rate_limits["per-engineer/alice@acme.com"] == RateLimitInstance(
        "per-engineer", "principal", "alice@acme.com", None, Rate(60, 60), Rate(400_000, 60), 8, "rate_limits.yaml:2")
    assert loaded.rate_limits["eng-gpt-4o"].models == ("gpt-4o",)
    by_list: dict[tuple[str, ...], set[int]] = {}
    for key in loaded.keys.values():
        by_list.setdefault(key.rate_limits, set()).add(id(key.rate_limits))
    assert all(len(ids) == 1 for ids in by_list.values())
    assert len(by_list) < len(loaded.keys)


def test_explain_lists_the_limits_with_their_lines_and_which_apply(limited: Path) -> None:
    proc = policy("explain", str(limited), "--vk", "vk-alice-codex", "--model", "gpt-5-mini")
    assert proc.returncode == 0, proc.stderr
    cited = {text.strip(): source for text, source in (line.rsplit("  ", 1) for line in proc.stdout.splitlines()[1:])}
    assert cited["rate limit eng-gpt-4o: team engineering, 300 requests per minute "
                 "(models gpt-4o: does not apply to gpt-5-mini)"] == "rate_limits.yaml:7"
    assert cited["rate limit per-engineer/alice@acme.com: principal alice@acme.com, 60 requests per minute, "
                 "400,000 tokens per minute, 8 in flight"] == "rate_limits.yaml:2"
    assert proc.stdout.splitlines()[-1].lstrip().startswith("decision: allow")
    as_json = json.loads(policy("explain", str(limited), "--vk", "vk-alice-codex", "--model", "gpt-4o",
                                "--format", "json").stdout)
    assert as_json["rate_limits"] == [
        {"instance": "eng-gpt-4o", "applies": True, "source": "rate_limits.yaml:7"},
        {"instance": "per-engineer/alice@acme.com", "applies": True, "source": "rate_limits.yaml:2"},
    ]


def test_policy_test_asserts_the_limits_a_request_counts_against(limited: Path) -> None:
    (limited / "policy_test.yaml").write_text(CASES)
    proc = policy("test", str(limited))
    assert proc.returncode == 1
    assert "PASS  alice's gpt-4o counts against her own limit and the team's gpt-4o limit" in proc.stdout
    assert ("rate_limits: expected ['eng-gpt-4o'], got ['per-engineer/alice@acme.com']  (rate_limits.yaml:2)"
            in proc.stdout)


def test_the_dsl_and_yaml_lower_to_the_same_limits(tmp_path: Path) -> None:
    tables = []
    for name, text in (("rate_limits.yaml", LIMITS), ("rate_limits.gp", LIMITS_DSL)):
        repo = tmp_path / name
        shutil.copytree(ACME, repo)
        (repo / name).write_text(text)
        result = compile_policy(repo, now=FIXED_NOW)
        assert result.artifact is not None, [d.message for d in result.diagnostics]
        tables.append(result.artifact)
    assert canonical_json(tables[0].table) == canonical_json(tables[1].table)
    assert tables[1].source_map["rate_limits"] == {"per-engineer": "rate_limits.gp:1", "eng-gpt-4o": "rate_limits.gp:5"}


def test_fmt_orders_the_section_after_budgets_and_its_fields() -> None:
    messy = ("rate_limits:\n  a: {in_flight: 2, requests: 1/second, models: [gpt-4o], target: t, scope: team}\n"
             "budgets:\n  b: {scope: org, window: day, limit_usd: 1}\n")
    formatted = format_text(messy)
    assert formatted.index("budgets:") < formatted.index("rate_limits:")
    assert "a: {scope: team, target: t, models: [gpt-4o], requests: 1/second, in_flight: 2}" in formatted
    assert format_text(formatted) == formatted


MISTAKES = """\
rate_limits:
  nothing: {scope: principal}
  typo: {scope: team, target: enginering, requests: 60/min}
  zero: {scope: principal, tokens: 0/hour}
  huge: {scope: principal, requests: 2000000/second}
  models: {scope: org, models: [gpt-4, "claude-9*"], in_flight: 4}
  none-in-scope: {scope: vk, target: vk-alice-codex, models: [gemini-2.5-pro], requests: 1/second}
  bare: {scope: org, requests: 60}
  stuck: {scope: org, in_flight: 0}
"""


def test_each_mistake_is_reported_at_its_token(tmp_path: Path, snapshot: SnapshotAssertion) -> None:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    (repo / "rate_limits.yaml").write_text(MISTAKES)
    result = compile_policy(repo, now=FIXED_NOW)
    located = [(d.code, str(d.span)) for d in result.diagnostics]
    assert located == [
        ("GP103", "rate_limits.yaml:2:3"),
        ("GP408", "rate_limits.yaml:3:31"),
        ("GP104", "rate_limits.yaml:3:53"),
        ("GP104", "rate_limits.yaml:4:36"),
        ("GP104", "rate_limits.yaml:5:38"),
        ("GP202", "rate_limits.yaml:6:33"),
        ("GP210", "rate_limits.yaml:6:40"),
        ("GP409", "rate_limits.yaml:7:3"),
        ("GP104", "rate_limits.yaml:8:32"),
        ("GP104", "rate_limits.yaml:9:34"),
    ]
    assert render_text(result.diagnostics, result.sources) == snapshot


def test_a_rate_limit_is_case_sensitive_like_the_rest() -> None:
    files = [SourceFile("p.yaml", "rate_limits:\n  a: {scope: Org, requests: 1/Second}\n", "0" * 64)]
    result = compile_sources(files, now=FIXED_NOW)
    assert [d.code for d in result.errors] == ["GP104"]
    assert "'org'" in (result.errors[0].hint or "")


def test_compile_counts_the_rate_limit_instances(limited: Path, tmp_path: Path) -> None:
    proc = policy("compile", str(limited), "--out", str(tmp_path / "table.json"))
    assert proc.returncode == 0, proc.stderr
    assert ", 7 rate limit instances; revision" in proc.stderr
