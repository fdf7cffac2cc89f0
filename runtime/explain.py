"""A decision as a reviewer reads it: every step with the policy line behind it.

`policy explain` and `policy test` call the proxy's own `decide` here, so what they show is what
production does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .budget.cost import PICO_PER_MICRO, usd
from .decision import Allow, Deny, authenticate, decide_for_key
from .source_map import Grant
from .surfaces import BY_PATH, GEMINI
from .table import KeyEntry, LoadedTable, Provider

SURFACE_PROTOCOL = {s.name: s.protocol for s in (*BY_PATH.values(), GEMINI)}


@dataclass
class Explanation:
    """The decision, its steps as (text, policy line), and the lines behind the decision and each target."""

    key: KeyEntry | None
    model: str
    surface: str
    decision: Allow | Deny
    steps: list[tuple[str, str | None]] = field(default_factory=list)
    grant: Grant | None = None
    target_sources: tuple[str | None, ...] = ()

    @property
    def decision_source(self) -> str | None:
        return self.steps[-1][1] if self.steps else None

    def to_json(self, table: LoadedTable) -> dict[str, Any]:
        d = self.decision
        data: dict[str, Any] = {
            "vk": self.key.id if self.key else None,
            "model": self.model,
            "surface": self.surface,
            "decision": "allow" if isinstance(d, Allow) else "deny",
            "decision_source": self.decision_source,
            "steps": [{"step": text, "source": source} for text, source in self.steps],
        }
        if isinstance(d, Deny):
            data.update(status=d.status, code=d.code, message=d.message)
        else:
            data.update(
                resolved_model=d.route.model,
                alias_chain=list(d.route.alias_chain),
                granted_by={"entry": self.grant.entry, "source": self.grant.source} if self.grant else None,
                targets=[
                    {"provider": t.provider, "model": t.model, "upstream_model": t.upstream_model,
                     "protocol": t.protocol, "wire": t.wire,
                     "translated": t.protocol not in (SURFACE_PROTOCOL[self.surface], "mock")
                     or (t.wire is not None and t.wire != self.surface), "source": source}
                    for t, source in zip(d.targets, self.target_sources, strict=True)
                ],
                fallback_on=sorted(d.route.fallback_on),
                retries=d.route.retries,
                cache={"mode": d.key.cache.mode, "allow_override": d.key.cache.allow_override, "salt": d.key.cache.salt},
                budgets=list(d.key.budgets),
            )
        return data


def keys_with_prefix(table: LoadedTable, key_prefix: str) -> list[KeyEntry]:
    return sorted((k for k in table.keys.values() if key_prefix and k.key_prefix and k.key_prefix.startswith(key_prefix)),
                  key=lambda k: k.id)


def find_key(table: LoadedTable, vk_id: str | None, key_prefix: str | None) -> KeyEntry | None:
    """The key named by id, or the one key whose prefix starts with `key_prefix` (None when several do)."""
    if vk_id is not None:
        return table.keys.get(vk_id)
    matches = keys_with_prefix(table, key_prefix or "")
    return matches[0] if len(matches) == 1 else None


def explain(table: LoadedTable, key: KeyEntry, model: str, surface: str, now: datetime) -> Explanation:
    digest = next(d for d, k in table.keys_by_hash.items() if k is key)
    found = authenticate(table, digest, now)
    steps: list[tuple[str, str | None]] = []
    who = ", ".join(x for x in (
        f"principal {key.principal}" if key.principal else "", f"team {key.team}" if key.team else "",
        f"profile {key.profile}" if key.profile else "") if x)
    steps.append((f"virtual key {key.label}" + (f": {who}" if who else ""), key.source))
    if isinstance(found, Deny):
        because = key.status_source if key.status != "active" else key.expires_source
        steps.append((_denied(found), because or key.source))
        return Explanation(key, model, surface, found, steps)
    decision = decide_for_key(key, surface, model)
    route = key.routes.get(model)
    if isinstance(decision, Deny):
        steps.append((_denied(decision), route.source if route is not None else key.allowed_source))
        return Explanation(key, model, surface, decision, steps)
    route = decision.route
    grant = route.grant
    if route.alias_chain:
        chain = " -> ".join(route.alias_chain)
        first = f", first target {route.targets[0].provider}" if route.targets else ""
        steps.append((f"alias {chain} resolves to model {route.model}{first}", route.source))
    if grant is None:
        steps.append((f"allowed: {route.model} is in models_allowed", key.allowed_source))
    elif grant.entry == route.model:
        steps.append((f"allowed: {route.model} is listed in models_allowed", grant.source))
    else:
        steps.append((f"allowed: {route.model} matches '{grant.entry}' in models_allowed", grant.source))
    protocol = SURFACE_PROTOCOL[surface]
    conditions = ", ".join(sorted(route.fallback_on)) or "none"
    defaulted = f"default ({key.source})" if key.source else "default"
    steps.append((f"targets, in order (fallback on {conditions}; retries {route.retries}):",
                  key.fallback_source or defaulted))
    by_target = dict(zip(route.targets, route.target_sources, strict=False))  # no lines from older artifacts
    target_sources = tuple(by_target.get(t) for t in decision.targets)
    for i, (t, source) in enumerate(zip(decision.targets, target_sources, strict=True), 1):
        translated = "" if t.protocol in (protocol, "mock") else f", translated {protocol} <-> {t.protocol}"
        if not translated and t.wire is not None and t.wire != surface:
            translated = f", translated {surface} <-> {t.wire}"
        upstream = f", upstream model {t.upstream_model}" if t.upstream_model != t.model else ""
        only = f", {t.wire} only" if t.wire is not None else ""
        steps.append((f"  {i}. {t.provider} / {t.model}{upstream}{only}{translated}{_spread(table.providers[t.provider])}",
                      source))
    override = "per-request override allowed" if key.cache.allow_override else "no per-request override"
    salt = ", salted" if key.cache.salt else ""
    steps.append((f"cache: {key.cache.mode} ({override}{salt})", key.cache_source or defaulted))
    for instance in key.budgets:
        spec = table.budgets[instance]
        limit = usd(spec.limit_micros * PICO_PER_MICRO)
        warn = f"warn {spec.warn_bp / 100:g}%, " if spec.warn_bp is not None else ""
        subject = "the organisation" if spec.scope == "org" else f"{spec.scope} {spec.target}"
        steps.append((f"budget {instance}: {subject}, {limit} per {spec.window} "
                      f"({spec.timezone}; {warn}block {spec.block_bp / 100:g}%)", spec.source))
    if grant is not None:
        where = f" in {grant.source}" if grant.source else ""
        steps.append((f"decision: allow (allowed by '{grant.entry}'{where})", grant.source))
    else:
        steps.append(("decision: allow", route.source))
    return Explanation(key, model, surface, decision, steps, grant, target_sources)


def _spread(provider: Provider) -> str:
    """How a provider that lists api_keys shares its requests: each credential by id and weight."""
    if not provider.pooled:
        return ""
    return ", credentials by weight: " + ", ".join(f"{c.id} ({c.weight})" for c in provider.credentials)


def _denied(deny: Deny) -> str:
    return f"decision: deny {deny.status} {deny.code}: {deny.message}"
