"""Routes whose targets speak different protocols: served by translation where one exists
(OpenAI <-> Anthropic), which native prompt-cache directives do not survive; refused where none
exists (Gemini <-> anything else).

An alias crosses protocols too when the name it answers to belongs to one protocol and its targets
to another (`gpt-4o -> claude-sonnet-4-5`): clients ask for that name on its own protocol's
surface, so their requests are translated even though every target speaks the same protocol. The
name's protocol is its own model entry's, or else the vendor's naming (gpt-/o1/o3/o4/chatgpt-/
codex- for OpenAI, claude- for Anthropic, gemini- for Gemini); a name like `fast` has none."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from policy.source import Path

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic
from ..resolve import PROTOCOLS, ResolvedKey, Route

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
            protocol = PROTOCOLS.get(provider.type) if provider is not None else None
            if protocol not in (None, "mock"):
                return protocol
        return None
    for prefixes, protocol in NAMED_PROTOCOLS:
        if route.requested.startswith(prefixes):
            return protocol
    return None


def _protocols(ctx: Context, route: Route) -> list[str]:
    found = []
    for target in route.targets:
        provider = ctx.policy.providers.get(target.provider)
        protocol = PROTOCOLS.get(provider.type) if provider is not None else None
        if protocol is not None and protocol != "mock" and protocol not in found:
            found.append(protocol)
    return found


def _crossing(ctx: Context, resolved: ResolvedKey, route: Route) -> tuple[list[str], bool, Path]:
    """The protocols a route's requests meet, first the one they are asked in; whether an alias
    brought the crossing (its name's protocol is not its targets'); and the path that brought it."""
    protocols = _protocols(ctx, route)
    asked = _requested_protocol(ctx, route)
    by_alias = asked is not None and bool(protocols) and asked not in protocols
    if asked is not None and by_alias:
        protocols.insert(0, asked)
    if len(protocols) < 2:
        return protocols, by_alias, route.source
    return protocols, by_alias, route.source if by_alias else _source_of_crossing(ctx, resolved, route)


def check_protocols(ctx: Context) -> Iterator[Diagnostic]:
    reported: set[object] = set()
    seen_routes: set[int] = set()
    crossings: dict[int, tuple[list[str], bool, Path]] = {}
    for vid, resolved in ctx.resolved.keys.items():
        if id(resolved.routes) in seen_routes:
            continue
        seen_routes.add(id(resolved.routes))
        for name, route in sorted(resolved.routes.items()):
            # Route sets that differ only in an alias share their models' routes (see resolve).
            found = crossings.get(id(route))
            if found is None:
                found = crossings[id(route)] = _crossing(ctx, resolved, route)
            protocols, by_alias, where = found
            if len(protocols) < 2:
                continue
            if "gemini" in protocols:
                key = ("gemini", where)
                if key not in reported:
                    reported.add(key)
                    mixes = (
                        f"alias '{name}' of virtual key '{vid}' sends requests for that {protocols[0]} model to "
                        f"{' and '.join(protocols[1:])} targets"
                        if by_alias else f"route '{name}' of virtual key '{vid}' mixes {' and '.join(protocols)} targets"
                    )
                    yield Diagnostic.of(
                        codes.UNTRANSLATABLE_ROUTE,
                        f"{mixes}; there is no translation to or from gemini, so no client surface could use every target",
                        ctx.index.value(*where),
                        hint="keep gemini models on routes of their own (gemini-cli talks to them natively)",
                    )
                continue
            if resolved.settings.cache is not None and resolved.settings.cache.value.mode in ("force", "disable"):
                continue
            key = ("cache", where)
            if key in reported:
                continue
            reported.add(key)
            crossing = (
                f"alias '{name}' of virtual key '{vid}' sends requests for that {protocols[0]} model to "
                f"{protocols[1]} targets: they are translated"
                if by_alias else
                f"route '{name}' of virtual key '{vid}' reaches {protocols[1]} targets from {protocols[0]} ones: "
                "those requests are translated"
            )
            yield Diagnostic.of(
                codes.CROSS_PROTOCOL_CACHE,
                f"{crossing}, and native prompt-cache directives (prompt_cache_key, "
                "cache_control, cached_content) do not cross a translation",
                ctx.index.value(*where),
                hint="cache: {mode: force} injects Anthropic cache breakpoints into translated requests",
            )


def _source_of_crossing(ctx: Context, resolved: ResolvedKey, route: Route) -> tuple[str | int, ...]:
    """The alias or fallback hop that brought the first target of another protocol."""
    settings = resolved.settings
    first = _protocols(ctx, replace(route, targets=route.targets[:1]))
    for target in route.targets[1:]:
        provider = ctx.policy.providers.get(target.provider)
        if provider is not None and PROTOCOLS.get(provider.type) not in (*first, "mock"):
            if target.hop is not None and settings.fallback is not None:
                return (*settings.fallback.path, "chain", target.hop)
            break
    return route.source
