"""The routing table as the proxy holds it: loaded, verified and frozen.

The artifact is checked against its model (the same pydantic definition its JSON Schema comes
from) and its revision recomputed, so a truncated, hand-edited or foreign file is refused before
it can decide a single request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
from pydantic import ValidationError

from compiler.artifact import FORMAT_VERSION, RoutingTable
from compiler.emit import canonical_json

from .exceptions import TableError as TableError
from .source_map import key_sources, route_set, route_sources


@dataclass(frozen=True, slots=True)
class Target:
    provider: str
    model: str
    upstream_model: str
    protocol: str


@dataclass(frozen=True, slots=True)
class Route:
    requested: str
    model: str
    alias_chain: tuple[str, ...]
    targets: tuple[Target, ...]
    fallback_on: frozenset[str]
    retries: int
    source: str | None


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
    routes: Mapping[str, Route] = field(repr=False)
    source: str | None
    allowed_source: str | None

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


@dataclass(frozen=True, slots=True)
class Gateway:
    header_prefix: str
    client_deadline_s: float
    max_body_bytes: int


@dataclass(frozen=True, slots=True)
class LoadedTable:
    revision: str
    gateway: Gateway
    providers: Mapping[str, Provider]
    keys_by_hash: Mapping[str, KeyEntry]
    keys: Mapping[str, KeyEntry]
    models: Mapping[str, Any]
    budgets: Mapping[str, Any]
    sources: tuple[str, ...]
    source_map: Mapping[str, Any] = field(repr=False, default_factory=dict)


def load_table(path: Path) -> LoadedTable:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TableError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return table_from_bytes(raw, str(path))


def table_from_bytes(raw: bytes, name: str = "<artifact>") -> LoadedTable:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise TableError(f"{name}: not JSON: {exc}") from exc
    return table_from_artifact(data, name)


def table_from_artifact(data: Any, name: str = "<artifact>") -> LoadedTable:
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        found = data.get("format_version") if isinstance(data, dict) else None
        raise TableError(f"{name}: not a routing table of format {FORMAT_VERSION} (format_version: {found!r})")
    try:
        RoutingTable.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TableError(f"{name}: does not match the routing table schema at {where}: {first['msg']}") from exc
    revision = "sha256:" + hashlib.sha256(canonical_json(data["table"])).hexdigest()
    if revision != data["revision"]:
        raise TableError(f"{name}: revision {data['revision']} does not match its content ({revision}); refusing it")
    return _build(data, revision)


def _build(data: dict[str, Any], revision: str) -> LoadedTable:
    table = data["table"]
    gw = table["gateway"]
    gateway = Gateway(gw["header_prefix"], gw["client_deadline_ms"] / 1000, gw["max_body_bytes"])
    providers = {pid: _provider(pid, p) for pid, p in table["providers"].items()}
    source_map = data["source_map"]
    route_memo: dict[str, Route] = {}
    keys: dict[str, KeyEntry] = {}
    for vid, spec in table["virtual_keys"].items():
        sources = key_sources(source_map, vid)
        keys[vid] = _key(vid, spec, sources, route_set(source_map, sources), route_memo)
    by_hash = {digest: keys[vid] for digest, vid in table["keys"].items()}
    return LoadedTable(
        revision=revision,
        gateway=gateway,
        providers=MappingProxyType(providers),
        keys_by_hash=MappingProxyType(by_hash),
        keys=MappingProxyType(keys),
        models=MappingProxyType(table["models"]),
        budgets=MappingProxyType(table["budgets"]),
        sources=tuple(s["path"] for s in data["sources"]),
        source_map=MappingProxyType(data["source_map"]),
    )


def _provider(pid: str, p: dict[str, Any]) -> Provider:
    t = p["timeouts"]
    return Provider(
        id=pid,
        type=p["type"],
        protocol=p["protocol"],
        base_url=p["base_url"],
        api_key=p["api_key"],
        api_version=p["api_version"],
        deployments=MappingProxyType(dict(p["deployments"])),
        timeouts=Timeouts(t["connect_ms"] / 1000, t["read_ms"] / 1000, t["total_ms"] / 1000),
        circuit_failures=p["circuit"]["failures"],
        circuit_cooldown_s=p["circuit"]["cooldown_ms"] / 1000,
    )


def _key(
    vid: str, spec: dict[str, Any], sources: Mapping[str, Any], route_lines: Mapping[str, Any], memo: dict[str, Route]
) -> KeyEntry:
    aliases = sources.get("model_aliases", {})
    allowed_source = sources.get("models_allowed")
    routes: dict[str, Route] = {}
    for name, r in spec["routes"].items():
        grant = route_sources(route_lines, name, sources).grant
        source = aliases.get(name) if r["alias_chain"] else grant.source if grant else allowed_source
        memo_key = orjson.dumps([name, r, source], option=orjson.OPT_SORT_KEYS).decode()
        route = memo.get(memo_key)
        if route is None:
            route = memo[memo_key] = Route(
                requested=name,
                model=r["model"],
                alias_chain=tuple(r["alias_chain"]),
                targets=tuple(Target(t["provider"], t["model"], t["upstream_model"], t["protocol"]) for t in r["targets"]),
                fallback_on=frozenset(r["fallback_on"]),
                retries=r["retries"],
                source=source,
            )
        routes[name] = route
    expires = spec["expires_at"]
    cache = spec["cache"]
    return KeyEntry(
        id=vid,
        status=spec["status"],
        expires_at=_parse_time(expires) if expires else None,
        principal=spec["principal"],
        team=spec["team"],
        key_prefix=spec["key_prefix"],
        profile=spec["profile"],
        cache=CachePolicy(cache["mode"], cache["allow_override"], cache["salt"]),
        budgets=tuple(spec["budgets"]),
        routes=MappingProxyType(routes),
        source=sources.get("self"),
        allowed_source=allowed_source,
    )


def _parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
