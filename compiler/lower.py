"""Lower pass: the resolved policy into the artifact's `table`, validated as it is built.

Keys whose effective settings are the same share their routes (resolve made them once), and a
route or target that many keys reach is one object, so a policy of thousands of keys builds and
validates each distinct route once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from artifact import (
    BudgetSpec,
    CacheSpec,
    CircuitSpec,
    CredentialSpec,
    GatewaySpec,
    InstanceList,
    KeySpec,
    ModelSpec,
    PriceSpec,
    ProviderSpec,
    RateLimitSpec,
    RateSpec,
    RouteSet,
    RouteSpec,
    Table,
    TargetSpec,
    TimeoutsSpec,
    instance_list,
    route_set,
    sharing_field_names,
)
from policy.models import (
    FALLBACK_CONDITIONS,
    MAX_REQUESTS_PER_PERIOD,
    MAX_TOKENS_PER_PERIOD,
    ApiKey,
    Budget,
    Cache,
    Circuit,
    Gateway,
    Model,
    PolicyDocument,
    Provider,
    RateLimit,
    Timeouts,
    credential_entries,
)

from .resolve import PROTOCOLS, Resolved, ResolvedKey, Route, target_protocol, upstream_model
from .values import normalise_condition, parse_percent, parse_rate

MILLION = Decimal(1_000_000)
DEFAULT_PREFIX = "X-LangWatch-"


def micros(value: Decimal) -> int:
    return int(value * MILLION)


def millis(seconds: Decimal) -> int:
    return int(seconds * 1000)


def lower(policy: PolicyDocument, resolved: Resolved) -> Table:
    gateway = policy.gateway
    shared = _Shared(policy)
    return Table(
        gateway=GatewaySpec(
            header_prefix=gateway.header_prefix if gateway else DEFAULT_PREFIX,
            client_deadline_ms=millis(gateway.client_deadline_s) if gateway else 600_000,
            max_body_bytes=gateway.max_body_bytes if gateway else 10 * 1024 * 1024,
            max_answer_bytes=(gateway or Gateway()).max_answer_bytes,
            max_event_bytes=(gateway or Gateway()).max_event_bytes,
            **_inbound(gateway or Gateway()),
            admin_token=gateway.admin.token if gateway and gateway.admin else None,
        ),
        providers={pid: _provider(pid, p, gateway.circuit if gateway else None) for pid, p in policy.providers.items()},
        models={name: _model(m) for name, m in policy.models.items()},
        keys={rk.key.key_sha256.strip(): vid for vid, rk in resolved.keys.items()},
        virtual_keys={vid: _key(rk, shared) for vid, rk in resolved.keys.items()},
        budgets=_budgets(policy, resolved),
        rate_limits=_rate_limits(policy, resolved),
    )


def _inbound(gateway: Gateway) -> dict[str, int]:
    """The bounds on client connections: their timeouts in milliseconds, their sizes and caps."""
    return {
        "header_timeout_ms": millis(gateway.header_timeout_s),
        "body_timeout_ms": millis(gateway.body_timeout_s),
        "idle_timeout_ms": millis(gateway.idle_timeout_s),
        "max_header_bytes": gateway.max_header_bytes,
        "max_headers": gateway.max_headers,
        "max_connections": gateway.max_connections,
        "max_in_flight": gateway.max_in_flight,
    }


def _credential(entry: ApiKey, p: Provider) -> CredentialSpec:
    base_url = entry.base_url or p.base_url
    assert entry.id is not None
    return CredentialSpec(
        id=entry.id, api_key=entry.api_key, weight=entry.weight, base_url=base_url.rstrip("/") if base_url else None,
        api_version=entry.api_version or p.api_version,
    )


def _provider(pid: str, p: Provider, default_circuit: Circuit | None) -> ProviderSpec:
    timeouts = p.timeouts or Timeouts()
    circuit = p.circuit or default_circuit or Circuit()
    return ProviderSpec(
        type=p.type,
        protocol=PROTOCOLS[p.type],
        base_url=p.base_url.rstrip("/") if p.base_url else None,
        api_key=p.api_key,
        api_keys=[_credential(entry, p) for entry in credential_entries(pid, p)] if p.api_keys is not None else None,
        api_version=p.api_version,
        deployments=dict(p.deployments or p.model_ids or {}),
        region=p.region,
        project=p.project,
        location=p.location,
        cloud_credentials=_cloud_credentials(p),
        timeouts=TimeoutsSpec(
            connect_ms=millis(timeouts.connect_s), read_ms=millis(timeouts.read_s), total_ms=millis(timeouts.total_s)
        ),
        circuit=CircuitSpec(failures=circuit.failures, cooldown_ms=millis(circuit.cooldown_s)),
    )


def _cloud_credentials(p: Provider) -> dict[str, str]:
    """The references of a provider signing with more than one secret (bedrock's AWS keys) or with
    a key file (vertex's service account), by name."""
    named = {
        "aws_access_key_id": p.aws_access_key_id, "aws_secret_access_key": p.aws_secret_access_key,
        "aws_session_token": p.aws_session_token, "service_account": p.credentials,
    }
    return {name: reference for name, reference in named.items() if reference is not None}


def _model(m: Model) -> ModelSpec:
    price = None
    if m.price is not None:
        price = PriceSpec(
            input=micros(m.price.input),
            cached_input=micros(m.price.cached_input if m.price.cached_input is not None else m.price.input),
            output=micros(m.price.output),
            reasoning=micros(m.price.reasoning if m.price.reasoning is not None else m.price.output),
        )
    return ModelSpec(providers=list(m.providers), price=price)


def _budgets(policy: PolicyDocument, resolved: Resolved) -> dict[str, BudgetSpec]:
    """One instance per target of each budget (a `target: '*'` budget has one per team, principal or key)."""
    limits = {bid: _limits(budget) for bid, budget in policy.budgets.items()}
    return {
        inst_id: sharing_field_names(BudgetSpec(budget=inst.budget, target=inst.target, **limits[inst.budget]))
        for inst_id, inst in resolved.budget_instances.items()
    }


def _limits(budget: Budget) -> dict[str, Any]:
    """What every instance of `budget` shares."""
    warn = parse_percent(budget.on_breach.warn)
    block = parse_percent(budget.on_breach.block)
    return {
        "scope": budget.scope,
        "window": budget.window,
        "timezone": budget.timezone,
        "limit_micros": micros(budget.limit_usd),
        "warn_bp": int(warn * 100) if warn is not None else None,
        "block_bp": int((block or Decimal(100)) * 100),
    }


def _rate_limits(policy: PolicyDocument, resolved: Resolved) -> dict[str, RateLimitSpec]:
    """One instance per target of each rate limit, as budgets have."""
    shared = {name: _rate_limit(limit, resolved.rate_limit_models[name]) for name, limit in policy.rate_limits.items()}
    return {
        inst_id: sharing_field_names(RateLimitSpec(limit=inst.limit, target=inst.target, **shared[inst.limit]))
        for inst_id, inst in resolved.rate_limit_instances.items()
    }


def _rate_limit(limit: RateLimit, models: tuple[str, ...] | None) -> dict[str, Any]:
    """What every instance of `limit` shares."""
    return {
        "scope": limit.scope,
        "models": list(models) if models is not None else None,
        "requests": _rate(limit.requests, MAX_REQUESTS_PER_PERIOD),
        "tokens": _rate(limit.tokens, MAX_TOKENS_PER_PERIOD),
        "in_flight": limit.in_flight,
    }


def _rate(text: str | None, most: int) -> RateSpec | None:
    if text is None:
        return None
    count, period_s = parse_rate(text, most)
    return RateSpec(count=count, period_s=period_s)


def _key(rk: ResolvedKey, shared: _Shared) -> KeySpec:
    vk = rk.key
    cache = rk.settings.cache.value if rk.settings.cache else Cache()
    spec = KeySpec(
        status=vk.status,
        expires_at=vk.expires_at.isoformat() if vk.expires_at else None,
        principal=vk.principal,
        team=vk.team,
        key_prefix=vk.key_prefix,
        profile=rk.profiles[0] if rk.profiles else None,
        cache=shared.cache(cache),
        budgets=rk.budgets,
        rate_limits=shared.instances(rk.rate_limits),
        routes=shared.routes_of(rk),
    )
    return sharing_field_names(spec)


class _Shared:
    """Each distinct route, target and cache setting built once, however many keys share it."""

    def __init__(self, policy: PolicyDocument) -> None:
        self.policy = policy
        self.by_set: dict[int, RouteSet] = {}
        self.sets: dict[tuple[tuple[str, ...], tuple[int, ...]], RouteSet] = {}
        self.routes: dict[tuple[object, ...], RouteSpec] = {}
        self.by_route: dict[tuple[int, tuple[str, ...], int], RouteSpec] = {}
        self.targets: dict[tuple[str, str], TargetSpec] = {}
        self.caches: dict[tuple[str, bool, bool], CacheSpec] = {}
        self.instance_lists: dict[int, InstanceList] = {}

    def instances(self, ids: list[str]) -> InstanceList:
        """A key's instance ids, validated once for the keys resolve gave the same list."""
        found = self.instance_lists.get(id(ids))
        if found is None:
            found = self.instance_lists[id(ids)] = instance_list(ids)
        return found

    def routes_of(self, rk: ResolvedKey) -> RouteSet:
        """The key's routes; keys with the same effective settings share one resolved route set,
        and so one validated `RouteSet`."""
        found = self.by_set.get(id(rk.routes))
        if found is None:
            fallback = rk.settings.fallback.value if rk.settings.fallback else None
            conditions = tuple(sorted(
                {normalise_condition(c) for c in fallback.on} if fallback else set(), key=FALLBACK_CONDITIONS.index
            ))
            retries = fallback.retries if fallback else 0
            routes = {name: self.shared_route(route, conditions, retries) for name, route in rk.routes.items()}
            found = self.by_set[id(rk.routes)] = self.shared_set(routes)
        return found

    def shared_set(self, routes: dict[str, RouteSpec]) -> RouteSet:
        """`routes` validated once however many resolved route sets lower to them: keys whose aliases
        were written on lines of their own resolve to route sets of their own, with the same routes."""
        memo = (tuple(routes), tuple(map(id, routes.values())))
        found = self.sets.get(memo)
        if found is None:
            found = self.sets[memo] = route_set(routes)
        return found

    def shared_route(self, route: Route, conditions: tuple[str, ...], retries: int) -> RouteSpec:
        """`route` lowered once, however many route sets hold it (see resolve)."""
        memo = (id(route), conditions, retries)
        found = self.by_route.get(memo)
        if found is None:
            found = self.by_route[memo] = self.route(route, conditions, retries)
        return found

    def route(self, route: Route, conditions: tuple[str, ...], retries: int) -> RouteSpec:
        targets = tuple((t.provider, t.model) for t in route.targets)
        memo = (route.model, route.alias_chain, targets, conditions, retries)
        found = self.routes.get(memo)
        if found is None:
            found = self.routes[memo] = RouteSpec(
                model=route.model,
                alias_chain=list(route.alias_chain),
                targets=[self.target(provider, model) for provider, model in targets],
                fallback_on=list(conditions),
                retries=retries,
            )
        return found

    def target(self, provider_id: str, model: str) -> TargetSpec:
        found = self.targets.get((provider_id, model))
        if found is None:
            provider = self.policy.providers[provider_id]
            protocol = target_protocol(provider, model) or PROTOCOLS[provider.type]
            found = self.targets[(provider_id, model)] = TargetSpec(
                provider=provider_id, model=model, upstream_model=upstream_model(provider, model),
                protocol=protocol,
            )
        return found

    def cache(self, cache: Cache) -> CacheSpec:
        memo = (cache.mode, cache.allow_override, cache.salt)
        found = self.caches.get(memo)
        if found is None:
            found = self.caches[memo] = CacheSpec(mode=cache.mode, allow_override=cache.allow_override, salt=cache.salt)
        return found
