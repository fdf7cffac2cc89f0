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
from .resolve import Effective, Resolved, Route, Target

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
    }
    if policy.gateway is not None:
        result["gateway"] = {"gateway": line("gateway")}
    keys: dict[str, KeyLines] = {}
    route_sets: dict[str, dict[str, RouteLines]] = {}
    set_ids: dict[int, str] = {}
    route_lines: dict[tuple[int, object], RouteLines] = {}
    for vid, rk in resolved.keys.items():
        entry: KeyLines = {"self": line("virtual_keys", vid)}
        status = index.keys.get(("virtual_keys", vid, "status"))
        if status is not None:
            entry["status"] = status.short
        expires_at = index.keys.get(("virtual_keys", vid, "expires_at"))
        if expires_at is not None:
            entry["expires_at"] = expires_at.short
        eff = rk.settings
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
            set_id = set_ids.get(id(rk.routes))
            if set_id is None:
                routes: dict[str, RouteLines] = {}
                for name, route in rk.routes.items():
                    # Route sets share the route objects of their models (see resolve), so their lines once.
                    memo = (id(route), eff.fallback.path if eff.fallback else None)
                    lines = route_lines.get(memo)
                    if lines is None:
                        lines = route_lines[memo] = _route(policy, eff, route, line)
                    routes[name] = lines
                set_id = set_ids[id(rk.routes)] = hashlib.sha256(canonical_json(routes)).hexdigest()[:16]
                route_sets[set_id] = routes
            entry["routes"] = set_id
        keys[vid] = entry
    result["virtual_keys"] = keys
    result["routes"] = route_sets
    return result


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
