"""A list of model names and globs checked against the registry, wherever the policy writes one
(`models_allowed`, a rate limit's `models`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, suggest
from ..resolve import is_glob

MAX_MODELS_SHOWN = 12


def unregistered_models(ctx: Context, entries: list[str], owner: str, where: tuple[str | int, ...]) -> Iterator[Diagnostic]:
    """GP210 at each pattern of `entries` that matches no registered model and GP202 at each name
    that is not registered (with the nearest one); `owner` says whose list it is ("models_allowed
    of team 'eng'"), `where` is the list's path in the index."""
    models = ctx.policy.models
    names = sorted(models)
    for i, entry in enumerate(entries):
        span = ctx.index.value(*where, i)
        if is_glob(entry):
            if not fnmatch.filter(names, entry):
                shown = ", ".join(names[:MAX_MODELS_SHOWN]) + (" ..." if len(names) > MAX_MODELS_SHOWN else "")
                yield Diagnostic.of(
                    codes.GLOB_MATCHES_NOTHING,
                    f"{owner} has pattern '{entry}', which matches no registered model",
                    span,
                    hint=f"registered models: {shown}",
                )
        elif entry not in models and not ctx.defined("models", entry):
            yield Diagnostic.of(
                codes.UNKNOWN_MODEL,
                f"{owner} names '{entry}', which is not in the model registry",
                span,
                hint=suggest(entry, models) or "register it under `models:` with its providers and price",
            )
