"""The artifact: deterministic bytes, a revision that follows behaviour, a valid schema, no secrets."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from artifact import encode
from compiler import compile_policy
from tests.conftest import ACME, FIXED_NOW, ROOT


def artifact_bytes(root: Path) -> bytes:
    result = compile_policy(root, now=FIXED_NOW)
    assert not result.errors, [f"{d.span}: {d.code} {d.message}" for d in result.errors]
    assert result.artifact is not None
    return encode(result.artifact)


def copy_in_shuffled_order(src: Path, dst: Path, seed: int) -> None:
    files = [p for p in src.rglob("*") if p.is_file()]
    random.Random(seed).shuffle(files)
    for path in files:
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        os.utime(target, (seed, seed))


def test_same_repo_compiles_to_identical_bytes() -> None:
    assert artifact_bytes(ACME) == artifact_bytes(ACME)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_file_creation_order_does_not_change_the_artifact(tmp_path: Path, seed: int) -> None:
    copy = tmp_path / "acme"
    copy_in_shuffled_order(ACME, copy, seed)
    assert artifact_bytes(copy) == artifact_bytes(ACME)


def test_comments_and_reformatting_keep_the_revision(tmp_path: Path) -> None:
    copy = tmp_path / "acme"
    shutil.copytree(ACME, copy)
    budgets = next(p for p in copy.rglob("*.yaml") if "budgets:" in p.read_text())
    budgets.write_text("# a comment that changes nothing\n\n" + budgets.read_text())
    before = json.loads(artifact_bytes(ACME))
    after = json.loads(artifact_bytes(copy))
    assert after["revision"] == before["revision"]
    assert after["sources"] != before["sources"]


def test_changing_one_budget_limit_changes_the_revision(tmp_path: Path) -> None:
    copy = tmp_path / "acme"
    shutil.copytree(ACME, copy)
    budgets = next(p for p in copy.rglob("*.yaml") if "limit_usd: 100\n" in p.read_text())
    budgets.write_text(budgets.read_text().replace("limit_usd: 100\n", "limit_usd: 101\n", 1))
    before = json.loads(artifact_bytes(ACME))
    after = json.loads(artifact_bytes(copy))
    assert after["revision"] != before["revision"]
    changed = [k for k in before["table"]["budgets"] if before["table"]["budgets"][k] != after["table"]["budgets"][k]]
    assert len(changed) == 1 and after["table"]["budgets"][changed[0]]["limit_micros"] == 101_000_000


def test_artifact_validates_against_the_checked_in_schema() -> None:
    schema = json.loads((ROOT / "schemas" / "routing-table.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(artifact_bytes(ACME)), schema)


def test_artifact_holds_no_secret_values() -> None:
    data = json.loads(artifact_bytes(ACME))
    for pid, provider in data["table"]["providers"].items():
        assert provider["api_key"] is None or re.fullmatch(r"(env|file):\S+", provider["api_key"]), pid
    text = artifact_bytes(ACME).decode()
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}", text)
    for digest, vk_id in data["table"]["keys"].items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest), vk_id
    assert all(len(k["key_prefix"] or "x" * 12) == 12 for k in data["table"]["virtual_keys"].values())


def test_artifact_is_canonical_json() -> None:
    raw = artifact_bytes(ACME)
    data = json.loads(raw)
    again = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    assert raw == again
    assert "float" not in {type(v).__name__ for v in _scalars(data)}


def _scalars(value: object) -> list[object]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    return [value]


def test_source_map_names_reviewed_lines() -> None:
    data = json.loads(artifact_bytes(ACME))
    source_map = data["source_map"]
    for where, item in _lines(source_map):
        path, _, number = item.rpartition(":")
        assert (ACME / path).is_file(), (where, item)
        assert int(number) >= 1
    for vid, entry in source_map["virtual_keys"].items():
        assert entry["routes"] in source_map["routes"], vid
        table = data["table"]
        assert source_map["routes"][entry["routes"]].keys() == table["route_sets"][table["virtual_keys"][vid]["routes"]].keys()
    glob = source_map["routes"][source_map["virtual_keys"]["vk-erin-notebooks"]["routes"]]["gemini-2.5-pro"]
    assert glob == {"granted_by": {"entry": "gemini-2.5-*", "source": "profiles.yaml:16"},
                    "targets": ["models/google.yaml:5"]}


def _lines(value: object, where: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    """Every file:line string of the source map (`entry`, `pinned_by` and a key's `routes` name no line)."""
    if isinstance(value, dict):
        named = {k: v for k, v in value.items() if k not in ("entry", "pinned_by")}
        if isinstance(named.get("routes"), str):
            del named["routes"]
        return [found for k, v in named.items() for found in _lines(v, (*where, k))]
    if isinstance(value, list):
        return [found for v in value if v is not None for found in _lines(v, where)]
    assert isinstance(value, str), where
    return [(where, value)]


def test_route_sources_are_shared_by_keys_with_the_same_settings() -> None:
    data = json.loads(artifact_bytes(ACME))
    keys = data["source_map"]["virtual_keys"]
    assert keys["vk-alice-codex"]["routes"] == keys["vk-bob-codex"]["routes"]
    assert keys["vk-alice-codex"]["routes"] != keys["vk-platform-shared"]["routes"]
    assert len(data["source_map"]["routes"]) < len(keys)


SINGLE_TARGET = """\
providers:
  openai-primary: {type: openai, api_key: env:OPENAI_API_KEY, timeouts: {total_s: 300}}
models:
  gpt-4o: {providers: [openai-primary]}
virtual_keys:
  vk-solo:
    key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    models_allowed: [gpt-4o]
    fallback: {on: [5xx, 429], chain: [], retries: 2}
"""


def test_a_single_target_route_keeps_its_conditions_for_retries(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(SINGLE_TARGET)
    result = compile_policy(tmp_path, now=FIXED_NOW)
    assert result.artifact is not None
    table = result.artifact.table
    route = table.route_sets[table.virtual_keys["vk-solo"].routes]["gpt-4o"]
    assert route.fallback_on == ["5xx", "429"] and route.retries == 2 and len(route.targets) == 1
    assert [d.code for d in result.diagnostics] == ["GP309"]
