"""Cache settings: `salt` only means something when caching is disabled."""

from __future__ import annotations

from collections.abc import Iterator

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic
from ..naming import describe


def check_cache(ctx: Context) -> Iterator[Diagnostic]:
    for settings, path in ctx.settings_levels():
        cache = settings.cache
        if cache is not None and cache.salt and cache.mode != "disable":
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"cache.salt of {describe(path)} has no effect with mode {cache.mode}: it defeats automatic "
                "prefix caching for cold-run measurements, so it goes with mode: disable",
                ctx.index.value(*path, "cache", "salt"),
                hint="set mode: disable, or remove salt",
            )
