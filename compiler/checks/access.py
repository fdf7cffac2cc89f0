"""What a key may call: models_allowed is set and names registered models; aliases resolve and
never widen access."""

from __future__ import annotations

from collections.abc import Iterator

from policy.source import Span

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, Related, suggest
from ..naming import describe
from ..resolve import ResolvedKey, Sourced, split_target
from .inheritance import names_unknown_team, rotate
from .model_names import unregistered_models


def check_models_allowed(ctx: Context) -> Iterator[Diagnostic]:
    for settings, path in ctx.settings_levels():
        owner = f"models_allowed of {describe(path)}"
        yield from unregistered_models(ctx, settings.models_allowed or [], owner, (*path, "models_allowed"))
    for vid, resolved in ctx.resolved.keys.items():
        if resolved.settings.models_allowed is None and not _inherits_from_broken(ctx, resolved):
            yield Diagnostic.of(
                codes.MODELS_ALLOWED_MISSING,
                f"virtual key '{vid}' has no models_allowed (not on the key, its profile or its team)",
                ctx.index.key("virtual_keys", vid),
                hint="there is no implicit 'all models': list what this key may call",
            )


def _inherits_from_broken(ctx: Context, resolved: ResolvedKey) -> bool:
    """True when a profile or the team the key inherits from is missing, broken or cyclic: that is
    reported already, and may be where models_allowed was meant to come from."""
    profiles = ctx.policy.profiles
    extends = profiles[resolved.profiles[-1]].extends if resolved.profiles else resolved.key.extends
    if resolved.profile_cycle or (extends is not None and extends not in profiles):
        return True
    team = resolved.key.team
    return team is not None and (("teams", team) in ctx.broken or names_unknown_team(ctx, team))


def check_aliases(ctx: Context) -> Iterator[Diagnostic]:
    names = {name for settings, _ in ctx.settings_levels() for name in settings.model_aliases or {}}
    for settings, path in ctx.settings_levels():
        for name, target in (settings.model_aliases or {}).items():
            span = ctx.index.value(*path, "model_aliases", name)
            alias = f"alias '{name}' of {describe(path)}"
            if split_target(target)[0] is None:
                yield from _unpinned(ctx, alias, target, span, names)
            else:
                yield from _pinned(ctx, alias, target, span)
    yield from _per_key(ctx, names)


def _unpinned(ctx: Context, alias: str, model: str, span: Span | None, names: set[str]) -> Iterator[Diagnostic]:
    if model in ctx.policy.models or model in names or ctx.defined("models", model):
        return
    yield Diagnostic.of(
        codes.UNKNOWN_ALIAS_TARGET,
        f"{alias} targets '{model}', which is neither a registered model nor an alias",
        span,
        hint=suggest(model, [*ctx.policy.models, *names]),
    )


def _pinned(ctx: Context, alias: str, target: str, span: Span | None) -> Iterator[Diagnostic]:
    policy = ctx.policy
    provider, model = split_target(target)
    if provider is None:
        return
    if not ctx.defined("providers", provider):
        yield Diagnostic.of(
            codes.UNKNOWN_PROVIDER,
            f"{alias} pins unknown provider '{provider}'",
            span,
            hint=suggest(provider, policy.providers),
        )
    elif model not in policy.models:
        if not ctx.defined("models", model):
            yield Diagnostic.of(
                codes.UNKNOWN_ALIAS_TARGET,
                f"{alias} targets '{target}', but '{model}' is not a registered model",
                span,
                hint=suggest(model, policy.models),
            )
    elif provider in policy.providers and provider not in policy.models[model].providers:
        yield Diagnostic.of(
            codes.PROVIDER_DOES_NOT_SERVE,
            f"{alias} pins provider '{provider}', which does not serve '{model}'",
            span,
            hint=f"'{model}' is served by: {', '.join(policy.models[model].providers) or 'nobody'}",
        )


def _per_key(ctx: Context, names: set[str]) -> Iterator[Diagnostic]:
    """Each problem of a key's aliases once, on the first key that has it.

    Keys with the same settings share their alias resolutions (see resolve), and everything a
    problem is told apart by (the alias's line, the allowed list's) is part of those settings: after
    the first key of a shared resolution, the others would only repeat what was reported."""
    policy = ctx.policy
    reported: set[tuple[object, ...]] = set()
    seen: set[int] = set()
    for vid, resolved in ctx.resolved.keys.items():
        if id(resolved.aliases) in seen:
            continue
        seen.add(id(resolved.aliases))
        for name, res in resolved.aliases.items():
            source = resolved.settings.aliases[name].path
            if res.cycle:
                loop = _alias_loop(resolved.settings.aliases, res.chain)
                cycle = ("cycle", frozenset((n, resolved.settings.aliases[n].path) for n in loop))
                if cycle not in reported:
                    reported.add(cycle)
                    yield _alias_cycle(ctx, resolved.settings.aliases, loop)
                continue
            last = resolved.settings.aliases[res.chain[-1]]
            provider, model = split_target(last.value)
            if res.model is None:
                if provider is None and model in names and ("target", last.path) not in reported:
                    reported.add(("target", last.path))
                    yield Diagnostic.of(
                        codes.UNKNOWN_ALIAS_TARGET,
                        f"alias '{res.chain[-1]}' targets '{model}', which is not a registered model, "
                        f"and no alias of that name applies to virtual key '{vid}'",
                        ctx.index.value(*last.path),
                        hint=suggest(model, [*policy.models, *resolved.aliases]),
                    )
                continue
            if resolved.settings.models_allowed is not None and res.model not in resolved.allowed:
                key = ("widen", source, resolved.settings.models_allowed.path)
                if key in reported:
                    continue
                reported.add(key)
                allowed_span = ctx.index.value(*resolved.settings.models_allowed.path)
                yield Diagnostic.of(
                    codes.ALIAS_WIDENS_ACCESS,
                    f"alias '{name}' leads to '{res.model}', which virtual key '{vid}' may not call; "
                    "an alias can rename a model, never widen access",
                    ctx.index.value(*source),
                    hint=f"add '{res.model}' to models_allowed or remove the alias",
                    related=[Related(allowed_span, f"models_allowed for '{vid}'")] if allowed_span else [],
                )


def _alias_loop(aliases: dict[str, Sourced[str]], chain: tuple[str, ...]) -> list[str]:
    """The aliases that form the loop, without those that merely lead into it."""
    _, target = split_target(aliases[chain[-1]].value)
    return list(chain[chain.index(target) :])


def _alias_cycle(ctx: Context, aliases: dict[str, Sourced[str]], loop: list[str]) -> Diagnostic:
    first = min(loop)
    ordered = rotate(loop, first)
    return Diagnostic.of(
        codes.ALIAS_CYCLE,
        f"model alias '{first}' never reaches a model: {' -> '.join([*ordered, first])}",
        ctx.index.value(*aliases[first].path),
        hint=_cycle_hint(ctx, loop),
        related=[
            Related(span, f"alias '{name}' targets '{aliases[name].value}'")
            for name in ordered[1:]
            if (span := ctx.index.value(*aliases[name].path)) is not None
        ],
    )


def _cycle_hint(ctx: Context, loop: list[str]) -> str:
    shadowed = [name for name in sorted(loop) if name in ctx.policy.models and ctx.policy.models[name].providers]
    if not shadowed:
        return "point one of these aliases at a registered model"
    model = shadowed[0]
    pinned = f"{ctx.policy.models[model].providers[0]}/{model}"
    return f"the alias '{model}' hides the registered model of that name from other aliases; target '{pinned}' instead"
