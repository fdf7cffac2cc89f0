"""A key names its route set and the runtime resolves key -> route set: every key still gets exactly
the routes the policy resolves for it alone, with its own lines, whatever it shares with others."""

from __future__ import annotations

from pathlib import Path

import pytest

from artifact import decode, encode
from compiler import compile_policy
from compiler.index import SourceIndex
from compiler.merge import merge
from compiler.resolve import Resolved, resolve
from compiler.validate import validate
from compiler.values import normalise_condition
from policy.loader import discover, parse, read_source
from runtime.decision import SURFACE_PROTOCOLS, Allow, Deny, decide_for_key
from runtime.table import LoadedTable, table_from_artifact
from tests.conftest import ACME, FIXED_NOW

PROVIDERS = """\
providers:
  openai: {type: openai, api_key: env:OPENAI_KEY}
  azure: {type: azure_openai, base_url: "https://x.openai.azure.com", api_version: "2024-10-21", api_key: env:AZ,
          deployments: {gpt-4o: dep-4o, gpt-5: dep-5}}
  anthropic: {type: anthropic, api_key: env:ANTHROPIC_KEY}
models:
  gpt-4o: {providers: [openai, azure]}
  gpt-5: {providers: [openai, azure]}
  gpt-5-mini: {providers: [openai]}
  claude-haiku: {providers: [anthropic]}
  claude-sonnet: {providers: [anthropic]}
"""

ORGANISATION = """\
teams:
  platform: {defaults: {models_allowed: [gpt-4o, claude-*], fallback: {on: [5xx], chain: [anthropic]}}}
  research: {defaults: {models_allowed: [gpt-5*]}}
profiles:
  coder:
    models_allowed: [gpt-4o, gpt-5, gpt-5-mini, claude-haiku]
    model_aliases: {fast: gpt-5-mini, smart: azure/gpt-5}
    fallback: {on: [5xx, timeout], chain: [azure, {provider: anthropic, model: claude-haiku}], retries: 1}
  reader:
    models_allowed: [claude-*]
"""


def keys_text() -> str:
    """Keys of two profiles and two teams, some with settings of their own on top."""
    lines = ["virtual_keys:"]
    for n in range(48):
        lines.append(f"  vk-{n:02d}:\n    key_sha256: '{n:064x}'\n    principal: user{n}@example.com")
        lines.append(f"    team: {'platform' if n % 2 else 'research'}")
        if n % 3 == 0:
            lines.append("    extends: coder")
        elif n % 3 == 1:
            lines.append("    extends: reader")
        if n % 5 == 0:
            team_model = "claude-haiku" if n % 2 else "gpt-5"
            fast = ("gpt-5-mini", "claude-sonnet", team_model)[n % 3]
            mine = ", mine: azure/gpt-4o" if n % 3 == 0 else ""
            lines.append(f"    model_aliases: {{fast: {fast}{mine}}}")
        if n % 7 == 0:
            lines.append("    fallback: {on: [429], chain: [{provider: anthropic, model: claude-haiku}], retries: 2}")
        if n % 11 == 0:
            lines.append("    models_allowed: [gpt-4o, gpt-5, gpt-5-mini, claude-*]")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module", params=["overrides", "acme"])
def repository(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if request.param == "acme":
        return ACME
    root = tmp_path_factory.mktemp("shared")
    (root / "providers.yaml").write_text(PROVIDERS)
    (root / "organisation.yaml").write_text(ORGANISATION)
    (root / "keys.yaml").write_text(keys_text())
    return root


def resolved(root: Path) -> Resolved:
    index = SourceIndex()
    raw, _ = merge([parse(read_source(root, path)) for path in discover(root)], index)
    validated, _ = validate(raw, index)
    return resolve(validated.policy)


def served(root: Path) -> LoadedTable:
    """The table as `policy serve` of the artifact file holds it."""
    result = compile_policy(root, now=FIXED_NOW)
    assert result.artifact is not None, [f"{d.span} {d.message}" for d in result.errors]
    return table_from_artifact(decode(encode(result.artifact)))


def test_every_key_gets_the_routes_resolved_for_it_alone(repository: Path) -> None:
    policy = resolved(repository)
    table = served(repository)
    assert table.keys.keys() == policy.keys.keys()
    for vid, key in policy.keys.items():
        loaded = table.keys[vid]
        fallback = key.settings.fallback.value if key.settings.fallback else None
        conditions = {normalise_condition(c) for c in fallback.on} if fallback else set()
        assert loaded.routes.keys() == key.routes.keys(), vid
        for name, route in key.routes.items():
            got = loaded.routes[name]
            assert (got.requested, got.model, got.alias_chain) == (name, route.model, route.alias_chain), (vid, name)
            assert [(t.provider, t.model) for t in got.targets] == [(t.provider, t.model) for t in route.targets]
            assert got.fallback_on == conditions and got.retries == (fallback.retries if fallback else 0)


def test_a_decision_through_a_shared_set_is_the_keys_own(repository: Path) -> None:
    policy = resolved(repository)
    table = served(repository)
    for vid, key in policy.keys.items():
        for name, route in key.routes.items():
            for surface in SURFACE_PROTOCOLS:
                decision = decide_for_key(table.keys[vid], surface, name)
                assert isinstance(decision, Allow) and decision.key is table.keys[vid]
                assert [(t.provider, t.model) for t in decision.targets] == [
                    (t.provider, t.model) for t in route.targets
                ], (vid, name, surface)
        refused = decide_for_key(table.keys[vid], "chat", "not-a-model")
        assert isinstance(refused, Deny) and refused.status == 403


def test_keys_share_a_set_and_its_routes_yet_cite_their_own_alias_lines(tmp_path: Path) -> None:
    root = tmp_path / "policy"
    root.mkdir()
    (root / "providers.yaml").write_text(PROVIDERS)
    (root / "organisation.yaml").write_text(ORGANISATION)
    (root / "keys.yaml").write_text(keys_text())
    result = compile_policy(root, now=FIXED_NOW)
    assert result.artifact is not None
    artifact = result.artifact
    sets = {key.routes for key in artifact.table.virtual_keys.values()}
    assert len(artifact.table.route_sets) == len(sets) < len(artifact.table.virtual_keys)
    table = table_from_artifact(decode(encode(artifact)))
    # vk-06, vk-12 and vk-18: profile coder, team research, nothing of their own: one mapping.
    assert table.keys["vk-06"].routes is table.keys["vk-12"].routes is table.keys["vk-18"].routes
    # vk-15 and vk-45 (coder, platform) set the same aliases, each on a line of its own: one route
    # set, each key citing its own lines; the routes they do not set are vk-03's (coder, platform).
    specs, lines = artifact.table.virtual_keys, artifact.source_map["virtual_keys"]
    assert specs["vk-15"].routes == specs["vk-45"].routes != specs["vk-03"].routes
    a, b = table.keys["vk-15"], table.keys["vk-45"]
    for vid, key in (("vk-15", a), ("vk-45", b)):
        own = lines[vid]["model_aliases"]
        assert key.routes["mine"].source == own["mine"] and key.routes["fast"].source == own["fast"]
        assert str(own["mine"]).startswith("keys.yaml:")
    assert a.routes["mine"].source != b.routes["mine"].source
    assert a.routes["gpt-4o"] is b.routes["gpt-4o"] and a.routes["gpt-4o"] == table.keys["vk-03"].routes["gpt-4o"]
