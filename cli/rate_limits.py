"""The rate limits a request meets, as `policy explain` and `policy test` show them: a key's
instances whose `models` take the route's resolved model."""

from __future__ import annotations

from runtime.ratelimit.applying import applies as applies
from runtime.ratelimit.limits import Rate
from runtime.table import KeyEntry, LoadedTable, RateLimitInstance

PERIODS = {1: "second", 60: "minute", 3600: "hour", 86_400: "day"}


def applying(table: LoadedTable, key: KeyEntry, model: str) -> list[str]:
    """The key's rate limit instances that a request for `model` (a resolved model) counts against."""
    return [i for i in key.rate_limits if applies(table.rate_limits[i], model)]


def describe(instance: str, limit: RateLimitInstance) -> str:
    """`rate limit per-engineer/alice: principal alice, 60 requests per minute, 8 in flight`."""
    subject = "the organisation" if limit.scope == "org" else f"{limit.scope} {limit.target}"
    parts = [_rate(r, name) for name, r in (("requests", limit.requests), ("tokens", limit.tokens)) if r]
    if limit.in_flight is not None:
        parts.append(f"{limit.in_flight:,} in flight")
    return f"rate limit {instance}: {subject}, {', '.join(parts)}"


def _rate(rate: Rate, unit: str) -> str:
    return f"{rate.count:,} {unit} per {PERIODS.get(rate.period_s, f'{rate.period_s} seconds')}"


def steps(table: LoadedTable, key: KeyEntry, model: str) -> list[tuple[str, str | None]]:
    """One step per rate limit of the key, saying whether a request for `model` counts against it."""
    result: list[tuple[str, str | None]] = []
    for instance in key.rate_limits:
        limit = table.rate_limits[instance]
        text = describe(instance, limit)
        if limit.models is not None:
            verdict = "applies" if applies(limit, model) else "does not apply"
            text += f" (models {', '.join(limit.models)}: {verdict} to {model})"
        result.append((text, limit.source))
    return result
