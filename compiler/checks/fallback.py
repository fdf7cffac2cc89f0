"""Fallback chains: retryable conditions, hops that name real providers and models and apply to a
route, and a worst case that fits the client's deadline."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from policy.models import FALLBACK_CONDITIONS, Fallback, Timeouts
from policy.source import Path

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, Related, suggest
from ..naming import describe
from ..resolve import ResolvedKey, hop_of, serves
from ..values import normalise_condition

NOT_RETRYABLE = {"4xx", "400", "401", "403", "404", "409", "413", "422"}


def check_fallback_conditions(ctx: Context) -> Iterator[Diagnostic]:
    """The conditions of each fallback, which need nothing outside its own entity."""
    for settings, path in ctx.settings_levels():
        if settings.fallback is not None:
            yield from _check_conditions(ctx, settings.fallback, (*path, "fallback"))


def check_fallback(ctx: Context) -> Iterator[Diagnostic]:
    for settings, path in ctx.settings_levels():
        if settings.fallback is not None:
            yield from _check_chain(ctx, settings.fallback, (*path, "fallback"))
    yield from _unusable_hops(ctx)
    yield from _hops_beyond_access(ctx)
    yield from _deadline(ctx)


def _check_conditions(ctx: Context, fallback: Fallback, path: tuple[str | int, ...]) -> Iterator[Diagnostic]:
    owner = describe(path)
    for i, raw in enumerate(fallback.on):
        condition = normalise_condition(raw)
        span = ctx.index.value(*path, "on", i)
        if str(raw) in FALLBACK_CONDITIONS:
            continue
        if condition in NOT_RETRYABLE or (condition.isdigit() and condition.startswith("4")):
            yield Diagnostic.of(
                codes.NON_RETRYABLE_CONDITION,
                f"fallback of {owner} moves on at {condition}, which cannot help: "
                "the same request fails the same way on every provider",
                span,
                hint=f"conditions are: {', '.join(FALLBACK_CONDITIONS)}",
            )
        else:
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"fallback of {owner} has unknown condition '{raw}'",
                span,
                hint=suggest(str(raw).strip(), FALLBACK_CONDITIONS) or f"conditions are: {', '.join(FALLBACK_CONDITIONS)}",
            )


def _check_chain(ctx: Context, fallback: Fallback, path: tuple[str | int, ...]) -> Iterator[Diagnostic]:
    policy = ctx.policy
    owner = describe(path)
    if not fallback.on and fallback.chain:
        yield Diagnostic.of(
            codes.INVALID_VALUE,
            f"fallback of {owner} has a chain but no conditions in `on`, so it would never be used",
            ctx.index.value(*path, "on"),
        )
    for i, raw_hop in enumerate(fallback.chain):
        hop = hop_of(raw_hop)
        hop_path = (*path, "chain", i)
        if not ctx.defined("providers", hop.provider):
            yield Diagnostic.of(
                codes.UNKNOWN_PROVIDER,
                f"fallback hop of {owner} names unknown provider '{hop.provider}'",
                ctx.index.value(*hop_path, "provider") if not isinstance(raw_hop, str) else ctx.index.value(*hop_path),
                hint=suggest(hop.provider, policy.providers),
            )
            continue
        if hop.model is None:
            continue
        model_span = ctx.index.value(*hop_path, "model")
        if hop.model not in policy.models:
            if not ctx.defined("models", hop.model):
                yield Diagnostic.of(
                    codes.UNKNOWN_MODEL,
                    f"fallback hop of {owner} names unknown model '{hop.model}'",
                    model_span,
                    hint=suggest(hop.model, policy.models),
                )
            continue
        if hop.provider in policy.providers and not serves(policy, hop.provider, hop.model):
            yield Diagnostic.of(
                codes.PROVIDER_DOES_NOT_SERVE,
                f"fallback hop of {owner} asks provider '{hop.provider}' for '{hop.model}', which it does not serve",
                model_span,
                hint=f"'{hop.model}' is served by: {', '.join(policy.models[hop.model].providers)}",
            )


def _unusable_hops(ctx: Context) -> Iterator[Diagnostic]:
    reported: set[tuple[object, ...]] = set()
    checked: set[tuple[int, Path]] = set()
    policy = ctx.policy
    for vid, resolved in ctx.resolved.keys.items():
        fallback = resolved.settings.fallback
        if fallback is None or not resolved.routes or (id(resolved.routes), fallback.path) in checked:
            continue
        checked.add((id(resolved.routes), fallback.path))
        routed = {route.model for route in resolved.routes.values()}
        for i, raw_hop in enumerate(fallback.value.chain):
            hop = hop_of(raw_hop)
            if hop.model is not None or hop.provider not in policy.providers:
                continue
            if any(serves(policy, hop.provider, model) for model in routed):
                continue
            key = (fallback.path, i, frozenset(routed))
            if key in reported:
                continue
            reported.add(key)
            yield Diagnostic.of(
                codes.FALLBACK_HOP_UNUSABLE,
                f"fallback hop '{hop.provider}' serves none of the models virtual key '{vid}' routes "
                f"({', '.join(sorted(routed))}), so it can never be used",
                ctx.index.value(*fallback.path, "chain", i),
                hint=f"name the model to ask it for: {{provider: {hop.provider}, model: <a model it serves>}}",
            )


def _hops_beyond_access(ctx: Context) -> Iterator[Diagnostic]:
    """A hop may answer with a model the key cannot request by name: the operator's resilience
    decision, allowed, but told once per settings line with every active key it reaches."""
    reached: dict[tuple[Path, int, str, str], list[str]] = {}
    grants: dict[tuple[Path, int, str, str], dict[Path, None]] = {}
    by_routes: dict[int, list[tuple[int, str, str]]] = {}
    for vid, resolved in ctx.resolved.keys.items():
        fallback = resolved.settings.fallback
        if fallback is None or resolved.key.status != "active" or resolved.settings.models_allowed is None:
            continue
        hops = by_routes.get(id(resolved.routes))
        if hops is None:
            hops = by_routes[id(resolved.routes)] = _hops_past_allowed(resolved)
        for hop, provider, model in hops:
            key = (fallback.path, hop, provider, model)
            reached.setdefault(key, []).append(vid)
            grants.setdefault(key, {})[resolved.settings.models_allowed.path] = None
    for (path, i, provider, model), vids in sorted(reached.items(), key=lambda item: item[0]):
        yield Diagnostic.of(
            codes.FALLBACK_BEYOND_ACCESS,
            f"fallback hop '{provider}' of {describe(path)} answers with '{model}', which {_keys(path, vids)} "
            "may not call by name",
            ctx.index.value(*path, "chain", i),
            hint=f"a fallback may reach further than access on purpose; if not, add '{model}' to models_allowed "
            "or name a hop model these keys may call",
            related=[
                Related(span, f"models_allowed of {describe(grant)} does not list '{model}'")
                for grant in list(grants[(path, i, provider, model)])[:3]
                if (span := ctx.index.value(*grant)) is not None
            ],
        )


def _hops_past_allowed(resolved: ResolvedKey) -> list[tuple[int, str, str]]:
    """The hops (index, provider, model) of a key's routes that answer with a model it may not
    request, each once; keys with the same route set have the same allowed models (see resolve)."""
    found: dict[tuple[int, str, str], None] = {}
    for route in resolved.routes.values():
        for target in route.targets:
            if target.hop is not None and target.model not in resolved.allowed:
                found[(target.hop, target.provider, target.model)] = None
    return list(found)


def _keys(path: Path, vids: list[str]) -> str:
    if path[0] == "virtual_keys":
        return "the key"
    shown = ", ".join(vids[:5]) + (f" and {len(vids) - 5} more" if len(vids) > 5 else "")
    return f"{len(vids)} virtual key{'s' * (len(vids) != 1)} ({shown})"


def _total_seconds(timeouts: Timeouts | None) -> Decimal:
    return (timeouts or Timeouts()).total_s


def _deadline(ctx: Context) -> Iterator[Diagnostic]:
    policy = ctx.policy
    deadline = policy.gateway.client_deadline_s if policy.gateway else Decimal(600)
    provider_totals = {pid: _total_seconds(p.timeouts) for pid, p in policy.providers.items()}
    reported: set[object] = set()
    seen_routes: set[int] = set()
    within: set[int] = set()
    """Routes found within the deadline. Route sets that differ only in an alias share their models'
    routes (see resolve), and only sets with the same fallback do, so a route's worst case is the same
    wherever it is: it is worked out once."""
    for resolved in ctx.resolved.keys.values():
        fallback = resolved.settings.fallback
        if id(resolved.routes) in seen_routes or fallback is None or fallback.path in reported:
            continue
        seen_routes.add(id(resolved.routes))
        tries = fallback.value.retries + 1
        for route in resolved.routes.values():
            if len(route.targets) < 2 and tries == 1:
                continue
            if id(route) in within:
                continue
            totals = [(t.provider, provider_totals[t.provider]) for t in route.targets if t.provider in provider_totals]
            worst = sum((seconds for _, seconds in totals), Decimal(0)) * tries
            if worst > deadline:
                reported.add(fallback.path)
                each = " + ".join(f"{provider} {seconds}s" for provider, seconds in totals)
                each += f", each tried {tries} times" if tries > 1 else ""
                yield Diagnostic.of(
                    codes.DEADLINE_EXCEEDED,
                    f"route '{route.requested}' of {describe(fallback.path)} can take {worst}s in the worst case "
                    f"({each}), longer than the client deadline of {deadline}s",
                    ctx.index.key(*fallback.path),
                    hint="shorten providers' timeouts.total_s, lower retries or the chain, "
                    "or raise gateway.client_deadline_s",
                )
                break
            within.add(id(route))
