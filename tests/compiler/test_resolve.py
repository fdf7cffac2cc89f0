"""Resolve pass: what each virtual key may call and where each name goes, from the validated policy
alone. The cases live in `cases/resolve.yaml`; what they cannot say well is below them."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.index import SourceIndex
from compiler.merge import merge
from compiler.resolve import AliasResolution, Resolved, ResolvedKey, Target, resolve
from compiler.validate import validate
from policy.loader import SourceFile, parse
from policy.source import Path
from tests.compiler.fixture_cases import Case, load_cases, source

REGISTRY = """\
providers:
  openai: {type: openai, api_key: env:OPENAI_KEY}
  anthropic: {type: anthropic, api_key: env:ANTHROPIC_KEY}
models:
  gpt-4o: {providers: [openai]}
  gpt-5: {providers: [openai]}
  claude-haiku: {providers: [anthropic]}
"""


def resolved(files: list[SourceFile]) -> Resolved:
    """Merge, validate and resolve, as the pipeline does before its checks."""
    index = SourceIndex()
    raw, merge_problems = merge([parse(f) for f in files], index)
    validated, problems = validate(raw, index)
    assert [*merge_problems, *problems] == [], "a resolve case must be a well-formed policy"
    return resolve(validated.policy)


def dotted(path: Path) -> str:
    return ".".join(str(part) for part in path)


def target_text(target: Target) -> str:
    text = f"{target.provider}/{target.model}"
    return text if target.hop is None else f"{text} (hop {target.hop})"


def alias_text(resolution: AliasResolution) -> str:
    chain = " > ".join(resolution.chain)
    if resolution.cycle:
        return f"{chain}: cycle"
    model = resolution.model or "?"
    return f"{chain} -> {resolution.provider}/{model}" if resolution.provider else f"{chain} -> {model}"


def key_views(key: ResolvedKey) -> dict[str, Any]:
    settings = key.settings
    written = {"models_allowed": settings.models_allowed, "fallback": settings.fallback, "cache": settings.cache}
    return {
        "profiles": key.profiles,
        "profile_cycle": key.profile_cycle,
        "settings": {
            **{name: dotted(s.path) for name, s in written.items() if s is not None},
            "aliases": {name: dotted(s.path) for name, s in settings.aliases.items()},
        },
        "allowed": {model: dotted(grant) for model, grant in key.allowed.items()},
        "aliases": {name: alias_text(r) for name, r in key.aliases.items()},
        "routes": {name: [target_text(t) for t in route.targets] for name, route in key.routes.items()},
        "budgets": key.budgets,
    }


@pytest.mark.parametrize("case", load_cases("resolve"))
def test_resolve(case: Case) -> None:
    result = resolved(case.files)
    for vk_id, expected in case.expected.get("keys", {}).items():
        views = key_views(result.keys[vk_id])
        assert {view: views[view] for view in expected} == expected, vk_id
    if "budget_instances" in case.expected:
        instances = {i.id: f"{i.budget} for {i.target}" for i in result.budget_instances.values()}
        assert instances == case.expected["budget_instances"]


def test_a_route_remembers_the_lines_behind_it() -> None:
    """Where the name was written, which models_allowed entry grants its model, which alias pinned
    its provider: what `policy explain` and the artifact's source map point at."""
    keys = source("keys.yaml", """\
profiles:
  codex: {models_allowed: ["gpt-*"]}
virtual_keys:
  vk-a:
    key_sha256: a1
    extends: codex
    model_aliases: {smart: best, best: openai/gpt-5}
""")
    routes = resolved([source("registry.yaml", REGISTRY), keys]).keys["vk-a"].routes
    smart, plain = routes["smart"], routes["gpt-4o"]
    assert (smart.requested, smart.model, smart.alias_chain) == ("smart", "gpt-5", ("smart", "best"))
    assert dotted(smart.source) == "virtual_keys.vk-a.model_aliases.smart"
    assert dotted(smart.grant) == "profiles.codex.models_allowed.0"
    assert smart.pinned_by is not None and dotted(smart.pinned_by) == "virtual_keys.vk-a.model_aliases.best"
    assert (plain.alias_chain, plain.pinned_by) == ((), None)
    assert dotted(plain.source) == dotted(plain.grant) == "profiles.codex.models_allowed.0"


def test_keys_with_the_same_inherited_settings_share_one_route_map() -> None:
    """Resolution is done once per distinct set of route-deciding settings (lowering relies on it
    to lower each map once); a key that writes its own gets a map of its own, and its siblings
    keep theirs."""
    keys = source("keys.yaml", """\
profiles:
  codex:
    models_allowed: [gpt-4o, gpt-5]
    fallback: {on: [5xx], chain: [{provider: anthropic, model: claude-haiku}]}
virtual_keys:
  vk-a: {key_sha256: a1, extends: codex, cache: {mode: disable}}
  vk-b: {key_sha256: b2, extends: codex}
  vk-c: {key_sha256: c3, extends: codex, model_aliases: {gpt-4o: gpt-5}}
""")
    result = resolved([source("registry.yaml", REGISTRY), keys])
    a, b, c = (result.keys[k] for k in ("vk-a", "vk-b", "vk-c"))
    assert a.routes is b.routes and a.allowed is b.allowed
    assert c.routes is not a.routes
    assert [t.model for t in c.routes["gpt-4o"].targets] == ["gpt-5", "claude-haiku"]
    assert [t.model for t in a.routes["gpt-4o"].targets] == ["gpt-4o", "claude-haiku"]


def test_route_maps_that_differ_in_an_alias_share_the_routes_of_their_models() -> None:
    """A key with an alias of its own has a route map of its own, but a model's route depends only
    on the entry that allows it and the fallback: the two maps hold the same route object, so the
    checks, lowering and the source map do its work once (at 10k keys, one in ten with an alias)."""
    keys = source("keys.yaml", """\
profiles:
  codex:
    models_allowed: [gpt-4o, gpt-5]
    fallback: {on: [5xx], chain: [{provider: anthropic, model: claude-haiku}]}
virtual_keys:
  vk-a: {key_sha256: a1, extends: codex}
  vk-b: {key_sha256: b2, extends: codex, model_aliases: {fast: gpt-5}}
  vk-c: {key_sha256: c3, models_allowed: [gpt-4o, gpt-5]}
""")
    result = resolved([source("registry.yaml", REGISTRY), keys])
    a, b, c = (result.keys[k] for k in ("vk-a", "vk-b", "vk-c"))
    assert b.routes is not a.routes and set(b.routes) == {*a.routes, "fast"}
    assert all(b.routes[name] is route for name, route in a.routes.items())
    assert c.routes["gpt-5"] is not a.routes["gpt-5"]
    assert [t.model for t in c.routes["gpt-5"].targets] == ["gpt-5"]
