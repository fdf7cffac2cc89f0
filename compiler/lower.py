"""Lower pass: the resolved policy into the plain data of the artifact's `table`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from policy.models import FALLBACK_CONDITIONS, Cache, Circuit, PolicyDocument, Timeouts

from .resolve import PROTOCOLS, Resolved, ResolvedKey, Route
from .values import normalise_condition, parse_percent

MILLION = Decimal(1_000_000)
DEFAULT_PREFIX = "X-Gatepost-"


def micros(value: Decimal) -> int:
    return int(value * MILLION)


def millis(seconds: Decimal) -> int:
    return int(seconds * 1000)


def lower(policy: PolicyDocument, resolved: Resolved) -> dict[str, Any]:
    gateway = policy.gateway
    table: dict[str, Any] = {
        "gateway": {
            "header_prefix": gateway.header_prefix if gateway else DEFAULT_PREFIX,
            "client_deadline_ms": millis(gateway.client_deadline_s) if gateway else 600_000,
            "max_body_bytes": gateway.max_body_bytes if gateway else 10 * 1024 * 1024,
        },
        "providers": {pid: _provider(p, gateway.circuit if gateway else None) for pid, p in policy.providers.items()},
        "models": {name: _model(m) for name, m in policy.models.items()},
        "keys": {rk.key.key_sha256.strip(): vid for vid, rk in resolved.keys.items()},
        "virtual_keys": {},
        "budgets": {},
    }
    route_memo: dict[int, dict[str, Any]] = {}
    for vid, rk in resolved.keys.items():
        table["virtual_keys"][vid] = _key(policy, rk, route_memo)
    for inst_id, inst in resolved.budget_instances.items():
        budget = policy.budgets[inst.budget]
        warn = parse_percent(budget.on_breach.warn)
        block = parse_percent(budget.on_breach.block)
        table["budgets"][inst_id] = {
            "budget": inst.budget,
            "scope": budget.scope,
            "target": inst.target,
            "window": budget.window,
            "timezone": budget.timezone,
            "limit_micros": micros(budget.limit_usd),
            "warn_bp": int(warn * 100) if warn is not None else None,
            "block_bp": int((block or Decimal(100)) * 100),
        }
    return table


def _provider(p: Any, default_circuit: Circuit | None) -> dict[str, Any]:
    timeouts = p.timeouts or Timeouts()
    circuit = p.circuit or default_circuit or Circuit()
    return {
        "circuit": {"failures": circuit.failures, "cooldown_ms": millis(circuit.cooldown_s)},
        "type": p.type,
        "protocol": PROTOCOLS[p.type],
        "base_url": p.base_url.rstrip("/") if p.base_url else None,
        "api_key": p.api_key,
        "api_version": p.api_version,
        "deployments": dict(p.deployments or {}),
        "timeouts": {
            "connect_ms": millis(timeouts.connect_s),
            "read_ms": millis(timeouts.read_s),
            "total_ms": millis(timeouts.total_s),
        },
    }


def _model(m: Any) -> dict[str, Any]:
    price = None
    if m.price is not None:
        price = {
            "input": micros(m.price.input),
            "cached_input": micros(m.price.cached_input if m.price.cached_input is not None else m.price.input),
            "output": micros(m.price.output),
            "reasoning": micros(m.price.reasoning if m.price.reasoning is not None else m.price.output),
        }
    return {"providers": list(m.providers), "price": price}


def _key(policy: PolicyDocument, rk: ResolvedKey, memo: dict[int, dict[str, Any]]) -> dict[str, Any]:
    vk = rk.key
    cache = rk.settings.cache.value if rk.settings.cache else Cache()
    fallback = rk.settings.fallback.value if rk.settings.fallback else None
    conditions = sorted(
        {normalise_condition(c) for c in fallback.on} if fallback else set(),
        key=FALLBACK_CONDITIONS.index,
    )
    retries = fallback.retries if fallback else 0
    routes = memo.get(id(rk.routes))
    if routes is None:
        routes = memo[id(rk.routes)] = {
            name: _route(policy, route, conditions, retries) for name, route in rk.routes.items()
        }
    expires = vk.expires_at.isoformat() if vk.expires_at else None
    return {
        "status": vk.status,
        "expires_at": expires,
        "principal": vk.principal,
        "team": vk.team,
        "key_prefix": vk.key_prefix,
        "profile": rk.profiles[0] if rk.profiles else None,
        "cache": {"mode": cache.mode, "allow_override": cache.allow_override, "salt": cache.salt},
        "budgets": rk.budgets,
        "routes": routes,
    }


def _route(policy: PolicyDocument, route: Route, conditions: list[str], retries: int) -> dict[str, Any]:
    targets = []
    for t in route.targets:
        provider = policy.providers[t.provider]
        upstream = (provider.deployments or {}).get(t.model, t.model) if provider.type == "azure_openai" else t.model
        targets.append(
            {"provider": t.provider, "model": t.model, "upstream_model": upstream, "protocol": PROTOCOLS[provider.type]}
        )
    return {
        "model": route.model,
        "alias_chain": list(route.alias_chain),
        "targets": targets,
        "fallback_on": conditions,
        "retries": retries,
    }

