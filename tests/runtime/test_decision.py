"""The pure decision function, over the example repository's compiled table."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from compiler import compile_policy
from runtime.decision import Allow, Decision, Deny, authenticate, decide_for_key
from runtime.table import LoadedTable, table_from_artifact
from tests.conftest import ACME, FIXED_NOW


@pytest.fixture(scope="module")
def table() -> LoadedTable:
    result = compile_policy(ACME, now=FIXED_NOW)
    assert result.artifact is not None
    return table_from_artifact(result.artifact)


def decide(table: LoadedTable, key_hash: str | None, surface: str, model: str | None, now: datetime) -> Decision:
    """What the proxy does for a request: authenticate the key, then decide for it."""
    key = authenticate(table, key_hash, now)
    return key if isinstance(key, Deny) else decide_for_key(key, surface, model)


def digest_of(table: LoadedTable, vk_id: str) -> str:
    return next(d for d, k in table.keys_by_hash.items() if k.id == vk_id)


def test_alias_is_rewritten_to_the_pinned_provider(table: LoadedTable) -> None:
    d = decide(table, digest_of(table, "vk-platform-shared"), "responses", "gpt-4o", FIXED_NOW)
    assert isinstance(d, Allow)
    assert [(t.provider, t.upstream_model) for t in d.targets] == [
        ("azure-east", "gpt4o-prod"), ("openai-primary", "gpt-4o"), ("anthropic-fallback", "claude-haiku-4-5-20251001"),
    ]
    assert d.route.alias_chain == ("gpt-4o",) and d.route.source is not None and d.route.source.startswith("virtual_keys/")


def test_same_name_without_the_alias_goes_to_openai_first(table: LoadedTable) -> None:
    d = decide(table, digest_of(table, "vk-alice-codex"), "chat", "gpt-4o", FIXED_NOW)
    assert isinstance(d, Allow) and d.targets[0].provider == "openai-primary"
    assert d.route.fallback_on == frozenset({"5xx", "timeout", "429"})


def test_off_list_model_is_403_naming_key_and_policy_line(table: LoadedTable) -> None:
    d = decide(table, digest_of(table, "vk-alice-codex"), "chat", "o3", FIXED_NOW)
    assert isinstance(d, Deny) and (d.status, d.code) == (403, "model_not_allowed")
    assert "vk-alice-codex" in d.message and "profiles.yaml:" in d.message


def test_alias_never_widens_access(table: LoadedTable) -> None:
    d = decide(table, digest_of(table, "vk-bob-codex"), "chat", "claude-sonnet-4-5-20250929", FIXED_NOW)
    assert isinstance(d, Deny) and d.status == 403


@pytest.mark.parametrize(
    ("key", "fragment"),
    [(None, "no API key"), (hashlib.sha256(b"wrong").hexdigest(), "no virtual key matches")],
)
def test_unknown_or_missing_key_is_401(table: LoadedTable, key: str | None, fragment: str) -> None:
    d = decide(table, key, "chat", "gpt-4o", FIXED_NOW)
    assert isinstance(d, Deny) and (d.status, d.code) == (401, "invalid_api_key") and fragment in d.message


def test_revoked_key_is_401(table: LoadedTable) -> None:
    d = decide(table, digest_of(table, "vk-dave-codex"), "chat", "gpt-4o", FIXED_NOW)
    assert isinstance(d, Deny) and d.status == 401 and "revoked" in d.message


def test_key_expires_at_its_instant(table: LoadedTable) -> None:
    key = digest_of(table, "vk-carol-codex")
    expiry = table.keys["vk-carol-codex"].expires_at
    assert expiry is not None
    assert isinstance(decide(table, key, "chat", "o3", expiry - timedelta(seconds=1)), Allow)
    late = decide(table, key, "chat", "o3", expiry)
    assert isinstance(late, Deny) and late.status == 401 and "expired" in late.message


def test_missing_model_is_400(table: LoadedTable) -> None:
    d = decide(table, digest_of(table, "vk-alice-codex"), "chat", None, FIXED_NOW)
    assert isinstance(d, Deny) and d.status == 400 and d.param == "model"


def test_a_route_of_another_protocol_is_reached_through_the_translation_hub(table: LoadedTable) -> None:
    d = decide(table, digest_of(table, "vk-erin-notebooks"), "chat", "gemini-2.5-pro", FIXED_NOW)
    assert isinstance(d, Allow) and [t.protocol for t in d.targets] == ["gemini"]


def test_decision_is_a_pure_function(table: LoadedTable) -> None:
    key = digest_of(table, "vk-alice-codex")
    first = decide(table, key, "responses", "fast", FIXED_NOW)
    assert all(decide(table, key, "responses", "fast", FIXED_NOW) == first for _ in range(3))
    assert isinstance(first, Allow) and first.route.model == "gpt-5-mini"


def test_decision_module_does_no_io() -> None:
    import ast

    source = (Path(__file__).resolve().parents[2] / "runtime" / "decision.py").read_text()
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {"__future__", "dataclasses", "datetime", "difflib", "typing", "table", ""}

