"""Resolve pass: each VK's effective settings, allowed models, aliases, route targets and budgets.

Resolution never reports: it tolerates broken references (leaving a gap) so that the checks in
`compiler/checks/` can say what is wrong, each in its own terms, and lowering runs only when no
error was found.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

from policy.models import Cache, Fallback, FallbackHop, PolicyDocument, Provider, Scope, Settings, VirtualKey
from policy.source import Path

T = TypeVar("T")

GLOB_CHARS = frozenset("*?[")
PROTOCOLS = {
    "openai": "openai", "azure_openai": "openai", "openai_compatible": "openai",
    "anthropic": "anthropic", "gemini": "gemini", "mock": "mock",
}
PROTOCOLS |= {"bedrock": "anthropic", "vertex": "gemini"}
"""Each provider type's protocol; a vertex provider's Claude models speak anthropic (`target_protocol`)."""
CHAT_ONLY_TYPES = frozenset({"openai_compatible"})
"""Provider types that speak Chat Completions only, not Responses (the runtime's `SINGLE_WIRE`)."""


def upstream_model(provider: Provider, model: str) -> str:
    """The name `provider` knows the registry's `model` by: an Azure deployment, a Bedrock model id
    or inference profile, a Vertex model id; the registry name itself when none is given."""
    if provider.type == "azure_openai":
        return (provider.deployments or {}).get(model, model)
    if provider.type in ("bedrock", "vertex"):
        return (provider.model_ids or {}).get(model, model)
    return model


def target_protocol(provider: Provider, model: str) -> str | None:
    """The protocol `provider` speaks for `model`: Vertex publishes Claude (rawPredict, the Messages
    body) beside Gemini (generateContent), told apart by the model id."""
    if provider.type == "vertex" and upstream_model(provider, model).startswith("claude"):
        return "anthropic"
    return PROTOCOLS.get(provider.type)


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A setting and the policy path it was written at."""

    value: T
    path: Path


@dataclass
class Effective:
    models_allowed: Sourced[list[str]] | None = None
    aliases: dict[str, Sourced[str]] = field(default_factory=dict)
    fallback: Sourced[Fallback] | None = None
    cache: Sourced[Cache] | None = None


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    hop: int | None  # index in the fallback chain, None for the primary


@dataclass
class AliasResolution:
    model: str | None
    provider: str | None
    chain: tuple[str, ...]
    cycle: bool = False


@dataclass
class Route:
    requested: str
    model: str
    alias_chain: tuple[str, ...]
    targets: list[Target]
    source: Path
    grant: Path  # the models_allowed entry (exact name or glob) that allows `model`
    pinned_by: Path | None = None  # the alias that chose the first target's provider


@dataclass(slots=True)
class ResolvedKey:
    id: str
    key: VirtualKey
    profiles: list[str]
    profile_cycle: bool
    settings: Effective
    allowed: dict[str, Path]
    aliases: dict[str, AliasResolution]
    routes: dict[str, Route]
    budgets: list[str]
    rate_limits: list[str]


class BudgetInstance(NamedTuple):
    """One budget's instance for a team, principal or key (or the budget itself): one per key
    of a `target: '*'` budget of keys, 100k at 50k keys, so a tuple rather than an object."""

    id: str
    budget: str
    target: str


class RateLimitInstance(NamedTuple):
    """One rate limit's instance for a team, principal or key, or the organisation's."""

    id: str
    limit: str
    target: str


@dataclass
class Resolved:
    keys: dict[str, ResolvedKey]
    budget_instances: dict[str, BudgetInstance]
    rate_limit_instances: dict[str, RateLimitInstance] = field(default_factory=dict)
    rate_limit_models: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    """Each rate limit's `models` expanded to the registered models they name, sorted; None for every model."""


def is_glob(pattern: str) -> bool:
    return not GLOB_CHARS.isdisjoint(pattern)


def profile_chain(policy: PolicyDocument, start: str | None) -> tuple[list[str], bool]:
    """Profiles from the most specific outwards; True when the chain loops."""
    chain: list[str] = []
    current = start
    while current is not None and current in policy.profiles:
        if current in chain:
            return chain, True
        chain.append(current)
        current = policy.profiles[current].extends
    return chain, False


def _levels(policy: PolicyDocument, vk_id: str, vk: VirtualKey, profiles: list[str]) -> list[tuple[Settings, Path]]:
    levels: list[tuple[Settings, Path]] = [(vk, ("virtual_keys", vk_id))]
    levels += [(policy.profiles[p], ("profiles", p)) for p in profiles]
    team = policy.teams.get(vk.team) if vk.team else None
    if team is not None and team.defaults is not None:
        levels.append((team.defaults, ("teams", vk.team or "", "defaults")))
    return levels


def effective_settings(levels: list[tuple[Settings, Path]]) -> Effective:
    """Settings from the most specific level that sets each; aliases merged name by name."""
    eff = Effective()
    for settings, path in reversed(levels):
        _apply(eff, settings, path)
    return eff


def _apply(eff: Effective, settings: Settings, path: Path) -> None:
    if settings.models_allowed is not None:
        eff.models_allowed = Sourced(settings.models_allowed, (*path, "models_allowed"))
    if settings.fallback is not None:
        eff.fallback = Sourced(settings.fallback, (*path, "fallback"))
    if settings.cache is not None:
        eff.cache = Sourced(settings.cache, (*path, "cache"))
    for name, target in (settings.model_aliases or {}).items():
        eff.aliases[name] = Sourced(target, (*path, "model_aliases", name))


def expand_allowed(policy: PolicyDocument, eff: Effective) -> dict[str, Path]:
    allowed: dict[str, Path] = {}
    if eff.models_allowed is None:
        return allowed
    names = sorted(policy.models)
    for i, entry in enumerate(eff.models_allowed.value):
        path = (*eff.models_allowed.path, i)
        matches = fnmatch.filter(names, entry) if is_glob(entry) else [entry] if entry in policy.models else []
        for name in matches:
            allowed.setdefault(name, path)
    return allowed


def split_target(target: str) -> tuple[str | None, str]:
    provider, sep, model = target.partition("/")
    return (provider, model) if sep else (None, target)


def resolve_alias(policy: PolicyDocument, aliases: dict[str, Sourced[str]], name: str) -> AliasResolution:
    chain = [name]
    current = name
    while True:
        provider, target = split_target(aliases[current].value)
        if provider is None and target in aliases and target != current:
            if target in chain:
                return AliasResolution(None, None, tuple(chain), cycle=True)
            chain.append(target)
            current = target
            continue
        model = target if target in policy.models else None
        return AliasResolution(model, provider, tuple(chain))


def serves(policy: PolicyDocument, provider: str, model: str) -> bool:
    entry = policy.models.get(model)
    return entry is not None and provider in entry.providers


def hop_of(hop: str | FallbackHop) -> FallbackHop:
    return FallbackHop(provider=hop) if isinstance(hop, str) else hop


def route_targets(policy: PolicyDocument, model: str, pinned: str | None, hops: list[FallbackHop]) -> list[Target]:
    providers = policy.models[model].providers
    first_provider = pinned if pinned is not None else (providers[0] if providers else None)
    targets: list[Target] = []
    seen: set[tuple[str, str]] = set()
    if first_provider is not None:
        targets.append(Target(first_provider, model, None))
        seen.add((first_provider, model))
    for i, hop in enumerate(hops):
        hop_model = hop.model if hop.model is not None else model
        if hop.model is None and not serves(policy, hop.provider, model):
            continue
        if hop.provider not in policy.providers or hop_model not in policy.models:
            continue
        if (hop.provider, hop_model) in seen:
            continue
        seen.add((hop.provider, hop_model))
        targets.append(Target(hop.provider, hop_model, i))
    return targets


def _instance(name: str, scope: Scope, target: str, vk_id: str, vk: VirtualKey) -> tuple[str, str] | None:
    """The id and target of the instance of a budget or rate limit that applies to the key, if one does."""
    subject: str | None
    if scope == "org":
        return name, target
    if scope == "team":
        subject = vk.team
    elif scope == "principal":
        subject = vk.principal
    else:
        subject = vk_id
    if subject is None:
        return None
    if target == "*":
        return f"{name}/{subject}", subject
    return (name, subject) if target == subject else None


def expand_models(policy: PolicyDocument, entries: list[str] | None) -> tuple[str, ...] | None:
    """The registered models a rate limit's `models` names (exact names and globs), sorted."""
    if entries is None:
        return None
    names = sorted(policy.models)
    found = {m for e in entries for m in (fnmatch.filter(names, e) if is_glob(e) else [e] if e in policy.models else [])}
    return tuple(sorted(found))


class _RateLimits:
    """The rate limit instances each key is under: those whose scope and target take the key and
    whose models the key can request (one list per distinct result, shared by the keys that have it)."""

    def __init__(self, policy: PolicyDocument) -> None:
        self.policy = policy
        self.instances: dict[str, RateLimitInstance] = {}
        self.models = {name: expand_models(policy, limit.models) for name, limit in policy.rate_limits.items()}
        self.reaches: dict[tuple[int, str], bool] = {}
        self.lists: dict[tuple[str, ...], list[str]] = {}

    def of(self, vk_id: str, vk: VirtualKey, routes: dict[str, Route]) -> list[str]:
        found: list[str] = []
        for name, limit in self.policy.rate_limits.items():
            instance = _instance(name, limit.scope, "org" if limit.scope == "org" else limit.target, vk_id, vk)
            if instance is None or not self._reaches(name, routes):
                continue
            instance_id, target = instance
            if instance_id not in self.instances:
                self.instances[instance_id] = RateLimitInstance(instance_id, name, target)
            found.append(instance_id)
        memo = tuple(sorted(found))
        shared = self.lists.get(memo)
        if shared is None:
            shared = self.lists[memo] = list(memo)
        return shared

    def _reaches(self, name: str, routes: dict[str, Route]) -> bool:
        models = self.models[name]
        if models is None:
            return True
        memo = (id(routes), name)
        reached = self.reaches.get(memo)
        if reached is None:
            wanted = set(models)
            reached = self.reaches[memo] = any(route.model in wanted for route in routes.values())
        return reached


def resolve(policy: PolicyDocument) -> Resolved:
    keys: dict[str, ResolvedKey] = {}
    instances: dict[str, BudgetInstance] = {}
    inherited: dict[tuple[str | None, str | None], tuple[list[str], bool, Effective, tuple[object, ...]]] = {}
    route_cache: dict[tuple[object, ...], tuple[dict[str, AliasResolution], dict[str, Route], dict[str, Path]]] = {}
    model_routes: dict[tuple[object, ...], Route] = {}
    rate_limits = _RateLimits(policy)
    allowed_by: dict[Path | None, dict[str, Path]] = {}
    """The models a `models_allowed` line allows, once per line: settings that differ in an alias
    or a fallback share it."""
    for vk_id, vk in policy.virtual_keys.items():
        base = inherited.get((vk.extends, vk.team))
        if base is None:
            profiles, cycle = profile_chain(policy, vk.extends)
            settings = effective_settings(_levels(policy, vk_id, vk, profiles)[1:])
            base = inherited[(vk.extends, vk.team)] = (profiles, cycle, settings, _settings_key(settings))
        profiles, cycle, inherited_settings, inherited_key = base
        eff = _overlay(inherited_settings, vk, ("virtual_keys", vk_id))
        cache_key = inherited_key if eff is inherited_settings else _settings_key(eff)
        cached = route_cache.get(cache_key)
        if cached is None:
            granted = eff.models_allowed.path if eff.models_allowed else None
            allowed = allowed_by.get(granted)
            if allowed is None:
                allowed = allowed_by[granted] = expand_allowed(policy, eff)
            aliases = {name: resolve_alias(policy, eff.aliases, name) for name in eff.aliases}
            routes = _routes(policy, eff, allowed, aliases, model_routes)
            cached = route_cache[cache_key] = (aliases, routes, allowed)
        aliases, routes, allowed = cached
        budgets: list[str] = []
        for budget_id, budget in policy.budgets.items():
            found = _instance(budget_id, budget.scope, budget.target, vk_id, vk)
            if found is not None:
                instance_id, target = found
                if instance_id not in instances:
                    instances[instance_id] = BudgetInstance(instance_id, budget_id, target)
                budgets.append(instance_id)
        keys[vk_id] = ResolvedKey(
            vk_id, vk, profiles, cycle, eff, allowed, aliases, routes, sorted(budgets), rate_limits.of(vk_id, vk, routes)
        )
    return Resolved(keys, instances, rate_limits.instances, rate_limits.models)


def _overlay(base: Effective, vk: VirtualKey, path: Path) -> Effective:
    """The VK's own settings over what it inherits; shares the inherited parts untouched."""
    if vk.models_allowed is None and vk.model_aliases is None and vk.fallback is None and vk.cache is None:
        return base
    eff = Effective(base.models_allowed, dict(base.aliases), base.fallback, base.cache)
    _apply(eff, vk, path)
    return eff


def _settings_key(eff: Effective) -> tuple[object, ...]:
    aliases = tuple(sorted((k, v.value, v.path) for k, v in eff.aliases.items()))
    return (
        eff.models_allowed.path if eff.models_allowed else None,
        aliases,
        eff.fallback.path if eff.fallback else None,
    )


def _routes(
    policy: PolicyDocument,
    eff: Effective,
    allowed: dict[str, Path],
    aliases: dict[str, AliasResolution],
    model_routes: dict[tuple[object, ...], Route],
) -> dict[str, Route]:
    """The routes of one set of settings. A model's own route depends only on the entry that allows
    it and the fallback, so sets that differ in an alias share it (`model_routes`), and the passes
    after this one can do a route's work once by its identity."""
    hops = [hop_of(h) for h in eff.fallback.value.chain] if eff.fallback else []
    fallback_path = eff.fallback.path if eff.fallback else None
    routes: dict[str, Route] = {}
    for model, path in allowed.items():
        if model in aliases:
            continue
        memo = (model, path, fallback_path)
        route = model_routes.get(memo)
        if route is None:
            route = model_routes[memo] = Route(model, model, (), route_targets(policy, model, None, hops), path, path)
        routes[model] = route
    for name, res in aliases.items():
        if res.model is None or res.model not in allowed:
            continue
        if res.provider is not None and res.provider not in policy.providers:
            continue
        targets = route_targets(policy, res.model, res.provider, hops)
        pinned_by = eff.aliases[res.chain[-1]].path if res.provider is not None else None
        routes[name] = Route(name, res.model, res.chain, targets, eff.aliases[name].path, allowed[res.model], pinned_by)
    return routes
