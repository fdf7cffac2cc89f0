"""`policy fmt`: one canonical layout, comments kept, behaviour unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from compiler import compile_policy
from policy.fmt import format_text
from tests.conftest import ACME
from tests.support.cli import policy, policy_process

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


def test_the_example_repo_is_in_canonical_layout() -> None:
    proc = policy_process("fmt", str(ACME), "--check")
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
    lines = [ln.strip() for ln in text.splitlines()]
    assert lines.index("scope: team") < lines.index("target: engineering") < lines.index("window: day") < lines.index("limit_usd: 100")
    assert "on_breach: {warn: 80%, block: 100%}" in text
    assert "  eng-daily-2:" in text and "    scope: team" in text
    after = compile_policy(repo)
    assert after.artifact is not None and before.artifact is not None
    assert after.artifact.revision == before.artifact.revision
    assert policy("fmt", str(repo), "--check").returncode == 0


def comments(text: str) -> list[str]:
    return sorted(line.strip()[line.strip().index("#"):] for line in text.splitlines() if "#" in line)


def assert_fixed_point(text: str) -> str:
    once = format_text(text)
    assert format_text(once) == once, f"not idempotent:\n{text}\n---- once ----\n{once}"
    assert yaml.safe_load(once) == yaml.safe_load(text)
    assert comments(once) == comments(text)
    assert not once.startswith("\n") and once.endswith("\n") and not once.endswith("\n\n")
    return once


MESSY_INPUTS = [
    MESSY,
    "budgets:\n  eng-daily: {scope: team, target: engineering, window: day, limit_usd: 100, on_breach: {block: 100%}}\n"
    "\n# the providers\nproviders:\n  openai-primary: {type: openai, api_key: env:X}\n",
    "providers:\n  openai-primary:\n    api_key: env:X\n      # before type, odd indent\n    type: openai\n"
    "    # before the second provider\n  other: {type: openai, api_key: env:Y}\n",
    "# yaml-language-server: $schema=../schemas/policy.schema.json\n# Teams and providers.\nteams:\n"
    "  eng: {members: [a@x.com]}   # aligned\nproviders:\n  p: {type: mock}     # aligned too\n\n\n# the end\n",
    "virtual_keys:\n    vk-a:\n        team: t\n        # inside\n        key_sha256: abc\n    # before vk-b\n"
    "    vk-b:\n        key_sha256: def\n        models_allowed:\n          # the cheap one\n          - gpt-5-mini\n"
    "          - gpt-5   # the big one\n",
    "# header\n\n\n# about budgets\nbudgets:\n  b:\n    description: |\n      # not a comment\n\n      text\n"
    "    scope: org\n",
]


@pytest.mark.parametrize("text", MESSY_INPUTS)
def test_fmt_is_a_fixed_point_on_messy_input(text: str) -> None:
    assert_fixed_point(text)


def test_a_comment_moves_with_the_section_it_precedes_and_takes_its_indent() -> None:
    once = assert_fixed_point(MESSY_INPUTS[2])
    assert once.splitlines()[1:4] == ["  openai-primary:", "    # before type, odd indent", "    type: openai"]
    assert "  # before the second provider\n  other:" in once
    header = assert_fixed_point(MESSY_INPUTS[3])
    assert header.startswith("# yaml-language-server: $schema=../schemas/policy.schema.json\n")
    assert "  p: {type: mock}     # aligned too\n" in header


ACME_SECTIONS = {name: (ACME / rel).read_text().split("\n", 1)[1] for name, rel in {
    "gateway": "gateway.yaml", "providers": "providers.yaml", "models": "models/openai.yaml", "teams": "teams.yaml",
    "profiles": "profiles.yaml", "virtual_keys": "virtual_keys/engineering/alice.yaml", "budgets": "budgets.yaml",
}.items()}
SECTION_PREFIXES = ["", "\n", "# about {name}\n", "\n# about {name}\n\n", "\n\n   # odd indent about {name}\n"]


def with_entity_comment(text: str, indent: int) -> str:
    lines = text.splitlines(keepends=True)
    entities = [i for i, line in enumerate(lines) if line.startswith("  ") and not line.startswith("   ")]
    if len(entities) < 2:
        return text
    at = entities[1]
    return "".join(lines[:at]) + " " * indent + "# before an entity\n" + "".join(lines[at:])


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          phases=(Phase.explicit, Phase.generate))
@given(order=st.permutations(sorted(ACME_SECTIONS)),
       prefixes=st.lists(st.sampled_from(SECTION_PREFIXES), min_size=7, max_size=7),
       indents=st.lists(st.sampled_from([None, 0, 2, 4, 7]), min_size=7, max_size=7),
       tail=st.sampled_from(["", "\n", "# trailing note\n", "\n\n# trailing note\n\n"]))
def test_fmt_of_reordered_acme_with_comments_is_a_fixed_point(
        order: list[str], prefixes: list[str], indents: list[int | None], tail: str) -> None:
    parts = []
    for name, prefix, indent in zip(order, prefixes, indents, strict=True):
        body = ACME_SECTIONS[name]
        parts.append(prefix.format(name=name) + (body if indent is None else with_entity_comment(body, indent)))
    text = "".join(parts) + tail
    once = assert_fixed_point(text)
    sections = [line.rstrip(":") for line in once.splitlines() if line and line[0].isalpha()]
    assert sections == ["gateway", "providers", "models", "teams", "profiles", "virtual_keys", "budgets"]


def test_fmt_orders_each_api_keys_entry_and_keeps_the_list_order() -> None:
    text = """\
providers:
  pool:
    api_keys:
      - weight: 3
        api_key: env:KEY_B  # the team's own
        id: team-b
      - env:KEY_A
    type: openai
"""
    formatted = format_text(text)
    lines = [line.strip() for line in formatted.splitlines()]
    assert lines.index("type: openai") < lines.index("api_keys:")
    assert lines.index("- id: team-b") < lines.index("api_key: env:KEY_B  # the team's own") < lines.index("weight: 3")
    assert lines.index("weight: 3") < lines.index("- env:KEY_A")
    assert format_text(formatted) == formatted
