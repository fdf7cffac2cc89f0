"""What a key may call: models_allowed is set and names registered models; aliases resolve and
never widen access."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, Related, suggest
from ..resolve import is_glob, split_target


def check_models_allowed(ctx: Context) -> Iterator[Diagnostic]:
    models = ctx.policy.models
    names = sorted(models)
    for settings, path in ctx.settings_levels():
        for i, entry in enumerate(settings.models_allowed or []):
            span = ctx.index.value(*path, "models_allowed", i)
            if is_glob(entry):
                if not fnmatch.filter(names, entry):
                    yield Diagnostic.of(
                        codes.GLOB_MATCHES_NOTHING,
                        f"models_allowed pattern '{entry}' matches no registered model",
                        span,
                        hint=f"registered models: {', '.join(names[:12])}{' ...' if len(names) > 12 else ''}",
                    )
            elif entry not in models and not ctx.defined("models", entry):
                yield Diagnostic.of(
                    codes.UNKNOWN_MODEL,
                    f"models_allowed names '{entry}', which is not in the model registry",
                    span,
                    hint=suggest(entry, models) or "register it under `models:` with its providers and price",
                )
    for vid, resolved in ctx.resolved.keys.items():
        if resolved.settings.models_allowed is None:
            yield Diagnostic.of(
                codes.MODELS_ALLOWED_MISSING,
                f"virtual key '{vid}' has no models_allowed (not on the key, its profile or its team)",
                ctx.index.key("virtual_keys", vid),
                hint="there is no implicit 'all models': list what this key may call",
            )


def check_aliases(ctx: Context) -> Iterator[Diagnostic]:
    policy = ctx.policy
    for settings, path in ctx.settings_levels():
        for name, target in (settings.model_aliases or {}).items():
            span = ctx.index.value(*path, "model_aliases", name)
            provider, model = split_target(target)
            if provider is not None:
                if not ctx.defined("providers", provider):
                    yield Diagnostic.of(
                        codes.UNKNOWN_PROVIDER,
                        f"alias '{name}' pins unknown provider '{provider}'",
                        span,
                        hint=suggest(provider, policy.providers),
                    )
                    continue
                if model not in policy.models:
                    if not ctx.defined("models", model):
                        yield Diagnostic.of(
                            codes.UNKNOWN_ALIAS_TARGET,
                            f"alias '{name}' targets '{target}', but '{model}' is not a registered model",
                            span,
                            hint=suggest(model, policy.models),
                        )
                    continue
                if provider in policy.providers and provider not in policy.models[model].providers:
                    yield Diagnostic.of(
                        codes.PROVIDER_DOES_NOT_SERVE,
                        f"alias '{name}' pins provider '{provider}', which does not serve '{model}'",
                        span,
                        hint=f"'{model}' is served by: {', '.join(policy.models[model].providers) or 'nobody'}",
                    )
    yield from _per_key(ctx)


def _per_key(ctx: Context) -> Iterator[Diagnostic]:
    policy = ctx.policy
    reported: set[tuple[object, ...]] = set()
    for vid, resolved in ctx.resolved.keys.items():
        for name, res in resolved.aliases.items():
            source = resolved.settings.aliases[name].path
            span = ctx.index.value(*source)
            if res.cycle:
                key = ("cycle", frozenset(res.chain))
                if key not in reported:
                    reported.add(key)
                    yield Diagnostic.of(
                        codes.ALIAS_CYCLE,
                        f"model alias '{name}' never reaches a model: {' -> '.join(res.chain)} -> {res.chain[0]}",
                        span,
                    )
                continue
            last = resolved.settings.aliases[res.chain[-1]].value
            provider, model = split_target(last)
            if res.model is None:
                if provider is None and not ctx.defined("models", model) and ("target", source) not in reported:
                    reported.add(("target", source))
                    candidates = [*policy.models, *resolved.aliases]
                    yield Diagnostic.of(
                        codes.UNKNOWN_ALIAS_TARGET,
                        f"alias '{name}' targets '{model}', which is neither a registered model nor an alias",
                        span,
                        hint=suggest(model, candidates),
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
                    span,
                    hint=f"add '{res.model}' to models_allowed or remove the alias",
                    related=[Related(allowed_span, f"models_allowed for '{vid}'")] if allowed_span else [],
                )
