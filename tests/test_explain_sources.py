"""`policy explain` cites the policy line behind every target and every decision, globs included."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from cli.commands.explain import render_text
from cli.commands.test import outcome
from cli.sources import load_source
from policy.models import TestCase as PolicyCase
from runtime.explain import explain
from runtime.table import LoadedTable
from tests.conftest import ACME, FIXED_NOW

TEAMS = """\
teams:
  engineering:
    defaults:
      models_allowed:
        - gpt-4o
        - claude-*
"""
REST = """\
providers:
  openai-primary: {type: openai, api_key: env:OPENAI_API_KEY}
  azure-east:
    type: azure_openai
    base_url: https://acme-east.openai.azure.com
    api_version: "2024-10-21"
    api_key: env:AZURE_EAST_KEY
    deployments: {gpt-4o: gpt4o-prod}
  anthropic-main: {type: anthropic, api_key: env:ANTHROPIC_API_KEY}
models:
  gpt-4o:
    providers: [openai-primary, azure-east]
  claude-sonnet-4-5:
    providers: [anthropic-main]
  claude-haiku-4-5:
    providers: [anthropic-main]
virtual_keys:
  vk-eng:
    key_sha256: {digest}
    key_prefix: gp-engineer1
    team: engineering
    model_aliases:
      smart: anthropic-main/claude-sonnet-4-5
    fallback:
      on: [5xx]
      chain:
        - openai-primary
        - azure-east
        - {provider: anthropic-main, model: claude-haiku-4-5}
"""


@pytest.fixture(scope="module")
def acme_table() -> LoadedTable:
    return load_source(ACME)


@pytest.fixture
def glob_table(tmp_path: Path) -> LoadedTable:
    (tmp_path / "teams.yaml").write_text(TEAMS)
    (tmp_path / "policy.yaml").write_text(REST.replace("{digest}", hashlib.sha256(b"gp-engineer1-key").hexdigest()))
    return load_source(tmp_path)


def test_a_glob_grant_names_the_glob_and_its_line(glob_table: LoadedTable) -> None:
    result = explain(glob_table, glob_table.keys["vk-eng"], "claude-haiku-4-5", "messages", FIXED_NOW)
    assert result.grant is not None and (result.grant.entry, result.grant.source) == ("claude-*", "teams.yaml:6")
    assert result.steps[-1] == ("decision: allow (allowed by 'claude-*' in teams.yaml:6)", "teams.yaml:6")
    assert ("allowed: claude-haiku-4-5 matches 'claude-*' in models_allowed", "teams.yaml:6") in result.steps


def test_each_target_names_the_line_that_put_it_there(glob_table: LoadedTable) -> None:
    gpt = explain(glob_table, glob_table.keys["vk-eng"], "gpt-4o", "chat", FIXED_NOW)
    # openai-primary is the registry's first provider; chain[0] repeats it and is skipped, chain[1] adds azure.
    assert [t.provider for t in gpt.decision.targets] == ["openai-primary", "azure-east", "anthropic-main"]  # type: ignore[union-attr]
    assert gpt.target_sources == ("policy.yaml:12", "policy.yaml:28", "policy.yaml:29")
    assert gpt.steps[-1] == ("decision: allow (allowed by 'gpt-4o' in teams.yaml:5)", "teams.yaml:5")
    smart = explain(glob_table, glob_table.keys["vk-eng"], "smart", "messages", FIXED_NOW)
    assert smart.target_sources == ("policy.yaml:23", "policy.yaml:29")
    assert smart.steps[-1] == ("decision: allow (allowed by 'claude-*' in teams.yaml:6)", "teams.yaml:6")


def test_every_target_is_cited_for_a_surface_of_another_protocol(glob_table: LoadedTable) -> None:
    result = explain(glob_table, glob_table.keys["vk-eng"], "gpt-4o", "gemini", FIXED_NOW)
    assert result.steps[-1] == ("decision: allow (allowed by 'gpt-4o' in teams.yaml:5)", "teams.yaml:5")
    assert result.target_sources == ("policy.yaml:12", "policy.yaml:28", "policy.yaml:29")


def test_a_failing_policy_test_cites_the_line_behind_what_it_got(glob_table: LoadedTable) -> None:
    case = PolicyCase.model_validate({"name": "haiku via openai", "vk": "vk-eng", "model": "claude-haiku-4-5",
                                    "expect": {"decision": "allow", "first_target": "openai-primary/claude-haiku-4-5"}})
    got = outcome(glob_table, case)
    assert got["sources"]["first_target"] == "policy.yaml:16"
    assert got["sources"]["decision"] == "teams.yaml:6"


@pytest.mark.parametrize(
    ("vk", "model", "surface"),
    [
        ("vk-platform-shared", "gpt-4o", "responses"),
        ("vk-alice-codex", "fast", "chat"),
        ("vk-erin-notebooks", "gemini-2.5-pro", "gemini"),
        ("vk-erin-notebooks", "default", "chat"),
        ("vk-alice-codex", "o3", "responses"),
        ("vk-dave-codex", "gpt-4o", "responses"),
        ("vk-carol-codex", "o3", "messages"),
    ],
)
def test_explain_output(acme_table: LoadedTable, snapshot: SnapshotAssertion, vk: str, model: str, surface: str) -> None:
    result = explain(acme_table, acme_table.keys[vk], model, surface, FIXED_NOW)
    assert render_text(acme_table, result) == snapshot


def test_explain_json_names_the_grant_and_each_target_line(acme_table: LoadedTable, snapshot: SnapshotAssertion) -> None:
    result = explain(acme_table, acme_table.keys["vk-frank-notebooks"], "default", "gemini", FIXED_NOW)
    assert result.to_json(acme_table) == snapshot


def test_a_defaulted_setting_cites_default_and_the_key_it_applies_to(acme_table: LoadedTable,
                                                                    glob_table: LoadedTable) -> None:
    erin = explain(acme_table, acme_table.keys["vk-erin-notebooks"], "gemini-2.5-pro", "gemini", FIXED_NOW)
    assert ("targets, in order (fallback on none; retries 0):",
            "default (virtual_keys/data-science/keys.yaml:4)") in erin.steps
    eng = explain(glob_table, glob_table.keys["vk-eng"], "gpt-4o", "chat", FIXED_NOW)
    assert ("cache: respect (no per-request override)", "default (policy.yaml:18)") in eng.steps
    assert all(source for _, source in erin.steps + eng.steps)
