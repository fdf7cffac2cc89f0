"""Routes whose targets speak different protocols: served by the translation hub (every pair of
OpenAI, Anthropic and Gemini), which native prompt-cache directives do not survive.

An alias crosses protocols too when the name it answers to belongs to one protocol and its targets
to another (`gpt-4o -> claude-sonnet-4-5`): clients ask for that name on its own protocol's
surface, so their requests are translated even though every target speaks the same protocol. The
name's protocol is its own model entry's, or else the vendor's naming (gpt-/o1/o3/o4/chatgpt-/
codex- for OpenAI, claude- for Anthropic, gemini- for Gemini); a name like `fast` has none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from policy.source import Path

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic
from ..resolve import ResolvedKey, Route, Target, target_protocol

NAMED_PROTOCOLS = (
    (("gpt-", "o1", "o3", "o4", "chatgpt-", "codex-"), "openai"),
    (("claude-",), "anthropic"),
    (("gemini-",), "gemini"),
)


def _requested_protocol(ctx: Context, route: Route) -> str | None:
    """The protocol of the name an alias answers to, when it has one (module docstring)."""
    if not route.alias_chain:
        return None
    model = ctx.policy.models.get(route.requested)
    if model is not None:
        for pid in model.providers:
            provider = ctx.policy.providers.get(pid)
            protocol = target_protocol(provider, route.requested) if provider is not None else None
            if protocol not in (None, "mock"):
                return protocol
        return None
    for prefixes, protocol in NAMED_PROTOCOLS:
        if route.requested.startswith(prefixes):
            return protocol
    return None


def _protocols(ctx: Context, targets: list[Target]) -> list[str]:
    found = []
    for target in targets:
        provider = ctx.policy.providers.get(target.provider)
        protocol = target_protocol(provider, target.model) if provider is not None else None
        if protocol is not None and protocol != "mock" and protocol not in found:
            found.append(protocol)
    return found


@dataclass(frozen=True)
class _Crossing:
    """One route that crosses protocols, and the setting (alias or fallback hop) that makes it."""

    route: str
    protocols: tuple[str, ...]
    by_alias: bool
    by_hop: bool
    where: Path


_RouteCrossing = tuple[tuple[str, ...], bool, Path] | None
"""A route's protocols (the asked one first), whether an alias brought the crossing, and the path
of the setting that did; None when the route stays in one protocol."""


class _Memo:
    """Each route's crossing worked out once. Route sets that differ only in an alias share their
    models' route objects (see resolve), known by identity; an alias's route is a route set's own,
    and is known by what its crossing depends on, the same for every key of a profile's alias."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.by_id: dict[int, _RouteCrossing] = {}
        self.by_content: dict[tuple[object, ...], _RouteCrossing] = {}

    def crossing(self, resolved: ResolvedKey, route: Route) -> _RouteCrossing:
        if id(route) in self.by_id:
            return self.by_id[id(route)]
        fallback = resolved.settings.fallback
        content = (route.requested, bool(route.alias_chain), tuple(route.targets), route.source,
                   fallback.path if fallback is not None else None)
        if content in self.by_content:
            crossing = self.by_content[content]
        else:
            crossing = self.by_content[content] = _route_crossing(self.ctx, resolved, route)
        self.by_id[id(route)] = crossing
        return crossing


def _route_crossing(ctx: Context, resolved: ResolvedKey, route: Route) -> _RouteCrossing:
    protocols = _protocols(ctx, route.targets)
    asked = _requested_protocol(ctx, route)
    by_alias = asked is not None and bool(protocols) and asked not in protocols
    if asked is not None and by_alias:
        protocols.insert(0, asked)
    if len(protocols) < 2:
        return None
    where = route.source if by_alias else _source_of_crossing(ctx, resolved, route)
    return tuple(protocols), by_alias, where


@dataclass
class _Affected:
    """What one setting makes cross: routes and keys counted, the first of them as the example.
    Keys are added in order, each with all its routes at once."""

    example_key: str
    example: _Crossing
    routes: int = 0
    keys: int = 0
    last_key: str = ""

    def add(self, vid: str, routes: int) -> None:
        self.routes += routes
        if vid != self.last_key:
            self.keys += 1
            self.last_key = vid

    def routes_text(self) -> str:
        example = f"route '{self.example.route}' of virtual key '{self.example_key}'"
        if self.routes == 1:
            return example
        return f"{self.routes} routes of {self.keys} virtual key{'s' * (self.keys > 1)} (e.g. {example})"

    def keys_text(self) -> str:
        if self.keys == 1:
            return f"virtual key '{self.example_key}'"
        return f"{self.keys} virtual keys (e.g. '{self.example_key}')"

    def through(self) -> str:
        return " through this fallback hop" if self.example.by_hop else ""


@dataclass
class _Setting:
    """The crossings of one route set that one setting makes: what each key with that route set
    adds to the setting's `_Affected`."""

    where: Path
    example: _Crossing
    routes: int = 0


def _by_setting(resolved: ResolvedKey, memo: _Memo) -> list[_Setting]:
    """A route set's crossing routes grouped by the setting that makes them, in the order the
    settings first occur among its routes by name, so a key adds each setting's routes at once
    (at 10k keys that was 163,000 adds); the first route of each is its example."""
    found: dict[Path, _Setting] = {}
    for name, route in sorted(resolved.routes.items()):
        crossing = memo.crossing(resolved, route)
        if crossing is None:
            continue
        protocols, by_alias, where = crossing
        setting = found.get(where)
        if setting is None:
            example = _Crossing(name, protocols, by_alias, where != route.source, where)
            setting = found[where] = _Setting(where, example)
        setting.routes += 1
    return list(found.values())


def check_protocols(ctx: Context) -> Iterator[Diagnostic]:
    """One diagnostic per setting that makes routes cross, at that setting's line: a profile's
    fallback hop crosses on every route of every key that inherits it, so it is reported once,
    with how many routes and keys it affects and one of them as an example."""
    by_routes: dict[int, list[_Setting]] = {}
    memo = _Memo(ctx)
    uncached: dict[Path, _Affected] = {}
    for vid, resolved in sorted(ctx.resolved.keys.items()):
        settings = by_routes.get(id(resolved.routes))
        if settings is None:
            settings = by_routes[id(resolved.routes)] = _by_setting(resolved, memo)
        if not settings:
            continue
        cache = resolved.settings.cache
        if cache is not None and cache.value.mode in ("force", "disable"):
            continue
        for setting in settings:
            affected = uncached.get(setting.where)
            if affected is None:
                affected = uncached[setting.where] = _Affected(vid, setting.example)
            affected.add(vid, setting.routes)
    for where, affected in uncached.items():
        first = affected.example
        if first.by_alias:
            crossing_text = (f"alias '{first.route}' sends requests for that {first.protocols[0]} model to "
                             f"{first.protocols[1]} targets on {affected.keys_text()}: they are translated")
        else:
            verb = "reaches" if affected.routes == 1 else "reach"
            crossing_text = (f"{affected.routes_text()} {verb} {first.protocols[1]} targets from "
                             f"{first.protocols[0]} ones{affected.through()}: those requests are translated")
        yield Diagnostic.of(
            codes.CROSS_PROTOCOL_CACHE,
            f"{crossing_text}, and native prompt-cache directives (prompt_cache_key, "
            "cache_control, cached_content) do not cross a translation",
            ctx.index.value(*where),
            hint="cache: {mode: force} injects Anthropic cache breakpoints into translated requests",
        )


def _source_of_crossing(ctx: Context, resolved: ResolvedKey, route: Route) -> Path:
    """The alias or fallback hop that brought the first target of another protocol."""
    settings = resolved.settings
    first = _protocols(ctx, route.targets[:1])
    for target in route.targets[1:]:
        provider = ctx.policy.providers.get(target.provider)
        if provider is not None and target_protocol(provider, target.model) not in (*first, "mock"):
            if target.hop is not None and settings.fallback is not None:
                return (*settings.fallback.path, "chain", target.hop)
            break
    return route.source
