"""Source map: the reviewed `file:line` behind every entity, setting and route of the artifact.

It sits beside the hashed table, so a moved line never changes the revision. Routes are cited
per route set: keys whose routes have the same sources share one entry, named by the sha256 of
its content, which keeps the map small when thousands of keys extend one profile. A target an
alias pinned (`provider/model`) is cited as null with the alias in `pinned_by`: its line is in the
key's own `model_aliases`, so keys that differ only in where they wrote an alias still share a set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from artifact import KeyLines, RouteLines, SourceMap, canonical_json
from policy.models import PolicyDocument
from policy.source import Path

from .index import SourceIndex
from .resolve import Effective, Resolved, ResolvedKey, Route, Target

Line = Callable[..., str | None]


def source_map(policy: PolicyDocument, resolved: Resolved, index: SourceIndex) -> SourceMap:
    def line(*path: str | int) -> str | None:
        span = index.key(*path)
        return span.short if span else None

    setting_lines: dict[Path, str | None] = {}

    def setting_line(path: Path) -> str | None:
        """The line of a setting, once per setting however many keys inherit it."""
        if path not in setting_lines:
            setting_lines[path] = line(*path)
        return setting_lines[path]

    result: SourceMap = {
        "providers": {eid: line("providers", eid) for eid in policy.providers},
        "models": {eid: line("models", eid) for eid in policy.models},
        "teams": {eid: line("teams", eid) for eid in policy.teams},
        "profiles": {eid: line("profiles", eid) for eid in policy.profiles},
        "budgets": {eid: line("budgets", eid) for eid in policy.budgets},
        "rate_limits": {eid: line("rate_limits", eid) for eid in policy.rate_limits},
    }
    if policy.gateway is not None:
        result["gateway"] = {"gateway": line("gateway")}
    keys: dict[str, KeyLines] = {}
    route_sets = _RouteSets(policy, line)
    inherited: dict[tuple[int, int], KeyLines] = {}
    for vid, rk in resolved.keys.items():
        # Keys without settings of their own share their effective settings and routes (see resolve).
        settings = inherited.get((id(rk.settings), id(rk.routes)))
        if settings is None:
            settings = inherited[(id(rk.settings), id(rk.routes))] = _settings(rk, setting_line, route_sets)
        entry = settings.copy()
        entry["self"] = line("virtual_keys", vid)
        status = index.written_key("virtual_keys", vid, "status")
        if status is not None:
            entry["status"] = status.short
        expires_at = index.written_key("virtual_keys", vid, "expires_at")
        if expires_at is not None:
            entry["expires_at"] = expires_at.short
        keys[vid] = entry
    result["virtual_keys"] = keys
    result["routes"] = route_sets.by_id
    return result


def _settings(rk: ResolvedKey, setting_line: Callable[[Path], str | None], route_sets: _RouteSets) -> KeyLines:
    """The lines of a key's settings and the id of its route set, the same for every key with the
    same effective settings and routes; its own line is the key's to fill in."""
    eff = rk.settings
    entry: KeyLines = {"self": None}
    if eff.models_allowed is not None:
        entry["models_allowed"] = setting_line(eff.models_allowed.path)
    if eff.fallback is not None:
        entry["fallback"] = setting_line(eff.fallback.path)
    if eff.cache is not None:
        entry["cache"] = setting_line(eff.cache.path)
    aliases = {name: setting_line(s.path) for name, s in eff.aliases.items() if name in rk.routes}
    if aliases:
        entry["model_aliases"] = aliases
    if rk.routes:
        entry["routes"] = route_sets.id_of(rk)
    return entry


class _RouteSets:
    """Route sets by id, the id the sha256 of their lines' content."""

    def __init__(self, policy: PolicyDocument, line: Line) -> None:
        self.policy = policy
        self.line = line
        self.by_id: dict[str, dict[str, RouteLines]] = {}
        self.ids: dict[int, str] = {}
        self.by_route: dict[tuple[int, object], RouteLines] = {}
        self.by_content: dict[tuple[object, ...], RouteLines] = {}

    def id_of(self, rk: ResolvedKey) -> str:
        set_id = self.ids.get(id(rk.routes))
        if set_id is None:
            routes = {name: self.route_lines(rk.settings, route) for name, route in rk.routes.items()}
            set_id = self.ids[id(rk.routes)] = hashlib.sha256(canonical_json(routes)).hexdigest()[:16]
            self.by_id[set_id] = routes
        return set_id

    def route_lines(self, eff: Effective, route: Route) -> RouteLines:
        """A route's lines once: route sets share the route objects of their models (see resolve),
        and an alias's route, a route set's own, is known by what its lines depend on."""
        fallback = eff.fallback.path if eff.fallback else None
        found = self.by_route.get((id(route), fallback))
        if found is None:
            allowed = eff.models_allowed.path if eff.models_allowed else None
            content = (route.model, route.grant, tuple(route.targets), route.pinned_by, fallback, allowed)
            found = self.by_content.get(content)
            if found is None:
                found = self.by_content[content] = _route(self.policy, eff, route, self.line)
            self.by_route[(id(route), fallback)] = found
        return found


def _route(policy: PolicyDocument, eff: Effective, route: Route, line: Line) -> RouteLines:
    allowed = eff.models_allowed
    entry = allowed.value[int(route.grant[-1])] if allowed is not None else route.model
    record: RouteLines = {
        "granted_by": {"entry": entry, "source": line(*route.grant)},
        "targets": [_target_line(policy, eff, route, t, line) for t in route.targets],
    }
    if route.pinned_by is not None:
        record["pinned_by"] = str(route.pinned_by[-1])
    return record


def _target_line(policy: PolicyDocument, eff: Effective, route: Route, target: Target, line: Line) -> str | None:
    """The line that put `target` in the route; None for a target an alias pinned (its line is the key's)."""
    if target.hop is not None and eff.fallback is not None:
        return line(*eff.fallback.path, "chain", target.hop)
    if route.pinned_by is not None:
        return None
    providers = policy.models[target.model].providers
    return line("models", target.model, "providers", providers.index(target.provider))
