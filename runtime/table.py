"""The routing table as the proxy holds it: built from a verified artifact, frozen, read by attribute.

`artifact` verifies a file (format version, schema, revision) before anything here sees it; this
module turns the validated `RoutingTable` into the records the request path reads, plain slots
dataclasses, with the source map's lines attached to the key, route and budget they cite.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

from artifact import (
    ArtifactError,
    BudgetSpec,
    KeyLines,
    KeySpec,
    ModelSpec,
    ProviderSpec,
    RateLimitSpec,
    RateSpec,
    RouteLines,
    RouteSpec,
    RoutingTable,
    SourceMap,
    TelemetrySpec,
    decode,
    read,
    release_table,
)

from .exceptions import TableError as TableError
from .ratelimit.limits import Rate
from .source_map import Grant, RouteSources, key_lines, route_set, route_sources

SINGLE_WIRE: Mapping[str, str] = MappingProxyType({"openai_compatible": "chat"})
"""Provider types that accept one surface of their protocol only: vLLM, Ollama, Groq and the other
OpenAI-compatible servers speak Chat Completions, not Responses (they answer 404 on /responses)."""


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str
    upstream_model: str
    protocol: str
    wire: str | None = None
    """The one surface the target accepts when its provider speaks only one of its protocol's
    (`SINGLE_WIRE`: "chat" for openai_compatible); None when it accepts every surface of `protocol`."""


@dataclass(frozen=True, slots=True)
class Route:
    requested: str
    model: str
    alias_chain: tuple[str, ...]
    targets: tuple[Target, ...]
    fallback_on: frozenset[str]
    retries: int
    source: str | None
    """The line that made the route: the alias for an alias, else the `models_allowed` entry that grants it."""
    grant: Grant | None
    target_sources: tuple[str | None, ...]
    """The line behind each target, in the order of `targets`."""


@dataclass(frozen=True, slots=True)
class CachePolicy:
    mode: str
    allow_override: bool
    salt: bool


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: str
    status: str
    expires_at: datetime | None
    principal: str | None
    team: str | None
    key_prefix: str | None
    profile: str | None
    cache: CachePolicy
    budgets: tuple[str, ...]
    rate_limits: tuple[str, ...]
    """The rate limit instances that apply to the key, sorted."""
    routes: Mapping[str, Route] = field(repr=False)
    source: str | None
    allowed_source: str | None
    status_source: str | None
    expires_source: str | None
    fallback_source: str | None
    cache_source: str | None

    @property
    def label(self) -> str:
        """How logs and error messages name the key: its id and prefix, never the key."""
        return f"{self.id} ({self.key_prefix}…)" if self.key_prefix else self.id


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float
    read_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    type: str
    protocol: str
    base_url: str | None
    api_key: str | None
    api_version: str | None
    deployments: Mapping[str, str]
    timeouts: Timeouts
    circuit_failures: int
    circuit_cooldown_s: float
    credentials: tuple[Credential, ...] = ()
    """Every credential, in policy order: the `api_keys` entries, else one for `api_key` (or for none,
    a provider that needs no credential), named as the provider."""
    pooled: bool = False
    """The provider lists `api_keys`: each credential cools down on its own and is named in logs,
    headers and metrics."""

    region: str | None = None
    project: str | None = None
    location: str | None = None
    cloud_credentials: Mapping[str, str] = field(default_factory=dict)
    """bedrock's AWS key references, vertex's service-account reference (`service_account`), by name."""


@dataclass(frozen=True, slots=True)
class Credential:
    """One credential of a provider, and the provider as a request carrying it reaches it."""

    provider: str
    id: str
    reference: str | None
    """env:NAME or file:PATH; None for a provider that needs no credential."""
    weight: int
    upstream: Provider
    """The provider with this credential's base_url and api_version, for the upstream adapter."""

    @property
    def key(self) -> tuple[str, str]:
        """(provider, credential id): unique in a table."""
        return (self.provider, self.id)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Where and how the gateway sends its traces (runtime/telemetry/)."""

    endpoint: str
    """An http(s) URL, or an env:/file: reference to one, resolved when tracing starts."""
    service_name: str
    sampling_ratio: float
    record_content: bool


@dataclass(frozen=True, slots=True)
class Gateway:
    header_prefix: str
    client_deadline_s: float
    max_body_bytes: int
    max_answer_bytes: int
    max_event_bytes: int
    header_timeout_s: float
    body_timeout_s: float
    idle_timeout_s: float
    max_header_bytes: int
    max_headers: int
    max_connections: int
    max_in_flight: int
    admin_token: str | None = None
    """env:NAME or file:PATH of the admin API's token (resolved only by `policy serve --admin-port`)."""
    telemetry: Telemetry | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """Micro-USD per 1M tokens, i.e. pico-USD per token."""

    input: int
    cached_input: int
    output: int
    reasoning: int


@dataclass(frozen=True, slots=True)
class ModelEntry:
    providers: tuple[str, ...]
    price: Price | None


@dataclass(frozen=True, slots=True)
class BudgetInstance:
    """One budget for one target (a `target: '*'` budget has one instance per team, principal or key)."""

    budget: str
    scope: str
    target: str
    window: str
    timezone: str
    limit_micros: int
    warn_bp: int | None
    block_bp: int
    source: str | None
    """The budget's line in the policy."""


@dataclass(frozen=True, slots=True)
class RateLimitInstance:
    """One rate limit for one target (a `target: '*'` limit has one instance per team, principal or key)."""

    limit: str
    scope: str
    target: str
    """The member this instance counts ("org" for scope org)."""
    models: tuple[str, ...] | None
    """Globs over the resolved model; None for every model."""
    requests: Rate | None
    tokens: Rate | None
    in_flight: int | None
    source: str | None
    """The rate limit's line in the policy."""


@dataclass(frozen=True, slots=True)
class LoadedTable:
    revision: str
    gateway: Gateway
    providers: Mapping[str, Provider]
    keys_by_hash: Mapping[str, KeyEntry]
    keys: Mapping[str, KeyEntry]
    models: Mapping[str, ModelEntry]
    budgets: Mapping[str, BudgetInstance]
    rate_limits: Mapping[str, RateLimitInstance]
    sources: tuple[str, ...]


RELEASE_STEP = 1000
"""Entries a step of `release_steps` lets go of: about 2-3 ms of deallocation at 10k-50k keys."""


def release_steps(table: LoadedTable, per_step: int = RELEASE_STEP) -> Iterator[None]:
    """Empty the mappings of a table no request reads any more, `per_step` entries between yields.

    Dropping the last reference to a large table frees it in one cascade of deallocations holding
    the interpreter lock (20 ms at 10k keys, 150 ms at 50k); the reloader runs these steps on the
    serving loop, a step per turn, once the table's last request is done. A `MappingProxyType`
    hides its dict from Python but not from the collector, which is how the dict is reached here."""
    for mapping in (table.keys_by_hash, table.keys, table.budgets, table.rate_limits, table.models, table.providers):
        owned = _dict_behind(mapping)
        while owned:
            for _ in range(min(per_step, len(owned))):
                owned.popitem()
            yield


def _dict_behind(mapping: Mapping[str, object]) -> dict[str, object] | None:
    if isinstance(mapping, dict):
        return mapping
    if isinstance(mapping, MappingProxyType):
        return next((d for d in gc.get_referents(mapping) if isinstance(d, dict)), None)
    return None


def load_table(path: Path) -> LoadedTable:
    try:
        with _collector_paused():
            return _owned(read(path))
    except ArtifactError as exc:
        raise TableError(str(exc)) from exc


def table_from_bytes(raw: bytes, name: str = "<artifact>") -> LoadedTable:
    try:
        with _collector_paused():
            return _owned(decode(raw, name))
    except ArtifactError as exc:
        raise TableError(str(exc)) from exc


def _owned(artifact: RoutingTable) -> LoadedTable:
    """The table of an artifact read here, which is then let go of a piece at a time (see
    `artifact.release_table`): it may be read in a thread beside the serving loop."""
    table = _build(artifact)
    release_table(artifact)
    return table


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Reading a table allocates many long-lived objects and no cycles worth collecting; the cyclic
    collector's full passes over the growing heap would make a large table's load superlinear.

    Once it is read, what the process holds is moved out of the collector's generations
    (`gc.freeze`): the table lives until the next reload, and a full pass over it, started by
    whichever allocation came next on the serving loop, would stall every request."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def table_from_artifact(artifact: RoutingTable) -> LoadedTable:
    """The serving state of a routing table, which is valid by construction: built by the compiler,
    or read and verified by `artifact.decode`."""
    with _collector_paused():
        return _build(artifact)


def _build(artifact: RoutingTable) -> LoadedTable:
    table = artifact.table
    lines = artifact.source_map
    gw = table.gateway
    routes = _Routes(table.route_sets, lines, {pid: SINGLE_WIRE.get(p.type) for pid, p in table.providers.items()})
    instance_lists: dict[tuple[str, ...], tuple[str, ...]] = {}
    keys = {
        vid: _key(vid, spec, key_lines(lines, vid), routes, instance_lists) for vid, spec in table.virtual_keys.items()
    }
    budget_lines = lines.get("budgets", {})
    limit_lines = lines.get("rate_limits", {})
    return LoadedTable(
        revision=artifact.revision,
        gateway=Gateway(
            gw.header_prefix, gw.client_deadline_ms / 1000, gw.max_body_bytes, gw.max_answer_bytes, gw.max_event_bytes,
            gw.header_timeout_ms / 1000, gw.body_timeout_ms / 1000, gw.idle_timeout_ms / 1000,
            gw.max_header_bytes, gw.max_headers, gw.max_connections, gw.max_in_flight, gw.admin_token,
            _telemetry(gw.telemetry) if gw.telemetry is not None else None,
        ),
        providers=MappingProxyType({pid: _provider(pid, p) for pid, p in table.providers.items()}),
        keys_by_hash=MappingProxyType({digest: keys[vid] for digest, vid in table.keys.items()}),
        keys=MappingProxyType(keys),
        models=MappingProxyType({name: _model(m) for name, m in table.models.items()}),
        budgets=MappingProxyType({i: _budget(b, budget_lines.get(b.budget)) for i, b in table.budgets.items()}),
        rate_limits=MappingProxyType(
            {i: _rate_limit(r, limit_lines.get(r.limit)) for i, r in table.rate_limits.items()}
        ),
        sources=tuple(s.path for s in artifact.sources),
    )


def _provider(pid: str, p: ProviderSpec) -> Provider:
    t = p.timeouts
    provider = Provider(
        id=pid,
        type=p.type,
        protocol=p.protocol,
        base_url=p.base_url,
        api_key=p.api_key,
        api_version=p.api_version,
        deployments=MappingProxyType(dict(p.deployments)),
        timeouts=Timeouts(t.connect_ms / 1000, t.read_ms / 1000, t.total_ms / 1000),
        circuit_failures=p.circuit.failures,
        circuit_cooldown_s=p.circuit.cooldown_ms / 1000,
        region=p.region,
        project=p.project,
        location=p.location,
        cloud_credentials=MappingProxyType(dict(p.cloud_credentials)),
    )
    if p.api_keys is None:
        return replace(provider, credentials=(Credential(pid, pid, p.api_key, 1, provider),))
    credentials = tuple(
        Credential(pid, c.id, c.api_key, c.weight, replace(provider, base_url=c.base_url, api_version=c.api_version))
        for c in p.api_keys
    )
    return replace(provider, credentials=credentials, pooled=True)


def _model(m: ModelSpec) -> ModelEntry:
    p = m.price
    return ModelEntry(tuple(m.providers), Price(p.input, p.cached_input, p.output, p.reasoning) if p else None)


def _budget(b: BudgetSpec, source: str | None) -> BudgetInstance:
    return BudgetInstance(
        b.budget, b.scope, b.target, b.window, b.timezone, b.limit_micros, b.warn_bp, b.block_bp, source
    )


def _rate_limit(r: RateLimitSpec, source: str | None) -> RateLimitInstance:
    return RateLimitInstance(
        r.limit, r.scope, r.target, tuple(r.models) if r.models is not None else None,
        _rate(r.requests), _rate(r.tokens), r.in_flight, source,
    )


def _rate(r: RateSpec | None) -> Rate | None:
    return Rate(r.count, r.period_s) if r is not None else None


def _shared(names: list[str], lists: dict[tuple[str, ...], tuple[str, ...]]) -> tuple[str, ...]:
    """`names` as a tuple, one object for every key with the same instances."""
    found = tuple(names)
    return lists.setdefault(found, found)


def _key(
    vid: str, spec: KeySpec, lines: KeyLines, routes: _Routes, lists: dict[tuple[str, ...], tuple[str, ...]]
) -> KeyEntry:
    allowed_source = lines.get("models_allowed")
    cache = spec.cache
    return KeyEntry(
        id=vid,
        status=spec.status,
        expires_at=_parse_time(spec.expires_at) if spec.expires_at else None,
        principal=spec.principal,
        team=spec.team,
        key_prefix=spec.key_prefix,
        profile=spec.profile,
        cache=CachePolicy(cache.mode, cache.allow_override, cache.salt),
        budgets=tuple(spec.budgets),
        rate_limits=_shared(spec.rate_limits, lists),
        routes=routes.of(spec, lines, allowed_source),
        source=lines.get("self"),
        allowed_source=allowed_source,
        status_source=lines.get("status"),
        expires_source=lines.get("expires_at"),
        fallback_source=lines.get("fallback"),
        cache_source=lines.get("cache"),
    )


class _Routes:
    """Each key's routes as the records the request path reads, built once for every key that names
    the same route set with the same lines: the keys of a profile share one mapping of `Route`s,
    and a key differs only where a line of its own (an alias it sets) is cited."""

    def __init__(
        self, route_sets: Mapping[str, Mapping[str, RouteSpec]], source_map: SourceMap,
        wires: Mapping[str, str | None],
    ) -> None:
        self.route_sets = route_sets
        self.source_map = source_map
        self.wires = wires
        self.plans: dict[tuple[str, str | None, str | None], tuple[dict[str, Route], tuple[str, ...]]] = {}
        self.mappings: dict[tuple[object, ...], Mapping[str, Route]] = {}
        self.built: dict[tuple[object, ...], Route] = {}
        self.targets: dict[tuple[str, str, str, str], Target] = {}

    def of(self, spec: KeySpec, lines: KeyLines, allowed_source: str | None) -> Mapping[str, Route]:
        """The key's routes: the mapping every key with the same route set, route lines and the
        same lines for the aliases those routes cite shares."""
        lines_id = lines.get("routes")
        plan = self.plans.get((spec.routes, lines_id, allowed_source))
        if plan is None:
            plan = self.plans[spec.routes, lines_id, allowed_source] = self.plan(spec.routes, lines, allowed_source)
        common, cited = plan
        aliases = lines.get("model_aliases", {})
        memo = (spec.routes, lines_id, allowed_source, *(aliases.get(name) for name in cited))
        found = self.mappings.get(memo)
        if found is None:
            routes = dict(common)
            route_lines = route_set(self.source_map, lines)
            for name, r in self.route_sets[spec.routes].items():
                if name not in common:
                    routes[name] = self.route_of(spec.routes, name, r, route_lines, lines, allowed_source)
            found = self.mappings[memo] = MappingProxyType(routes)
        return found

    def plan(self, set_id: str, lines: KeyLines, allowed_source: str | None) -> tuple[dict[str, Route], tuple[str, ...]]:
        """The routes of a set that cite no line of the key's own, built; and the aliases whose
        lines (the key's, or its profile's or team's) the others cite."""
        route_lines = route_set(self.source_map, lines)
        common: dict[str, Route] = {}
        cited: set[str] = set()
        for name, r in self.route_sets[set_id].items():
            pinned_by = route_lines[name].get("pinned_by") if name in route_lines else None
            if r.alias_chain or pinned_by is not None:
                cited.update(n for n in (name if r.alias_chain else None, pinned_by) if n is not None)
            else:
                common[name] = self.route_of(set_id, name, r, route_lines, lines, allowed_source)
        return common, tuple(sorted(cited))

    def route_of(
        self, set_id: str, name: str, r: RouteSpec, route_lines: Mapping[str, RouteLines], lines: KeyLines,
        allowed_source: str | None,
    ) -> Route:
        sources = route_sources(route_lines, name, lines)
        grant = sources.grant
        source = lines.get("model_aliases", {}).get(name) if r.alias_chain else grant.source if grant else allowed_source
        return self.route(set_id, name, r, source, sources)

    def route(self, set_id: str, name: str, r: RouteSpec, source: str | None, sources: RouteSources) -> Route:
        memo = (set_id, name, source, sources)
        route = self.built.get(memo)
        if route is None:
            route = self.built[memo] = Route(
                requested=name,
                model=r.model,
                alias_chain=tuple(r.alias_chain),
                targets=tuple(self.target(t.provider, t.model, t.upstream_model, t.protocol) for t in r.targets),
                fallback_on=frozenset(r.fallback_on),
                retries=r.retries,
                source=source,
                grant=sources.grant,
                target_sources=sources.targets,
            )
        return route

    def target(self, provider: str, model: str, upstream_model: str, protocol: str) -> Target:
        memo = (provider, model, upstream_model, protocol)
        found = self.targets.get(memo)
        if found is None:
            found = self.targets[memo] = Target(provider, model, upstream_model, protocol, self.wires.get(provider))
        return found


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _telemetry(spec: TelemetrySpec) -> Telemetry:
    return Telemetry(spec.endpoint, spec.service_name, spec.sampling_bp / 10_000, spec.record_content)
