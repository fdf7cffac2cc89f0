"""Rate limits: at least one limit, rates that read and stay in range, models that are registered,
a real target, and some key the limit applies to."""

from __future__ import annotations

from collections.abc import Generator, Iterator

from policy.models import MAX_REQUESTS_PER_PERIOD, MAX_TOKENS_PER_PERIOD, RATE_UNITS, RateLimit

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, suggest
from ..errors import UnreadableValue
from ..values import RATE, RATE_HINT, parse_rate
from .budgets import may_reach_a_broken_key, target_candidates, target_exists
from .model_names import unregistered_models

RATES = {"requests": MAX_REQUESTS_PER_PERIOD, "tokens": MAX_TOKENS_PER_PERIOD}


def check_rate_limits(ctx: Context) -> Iterator[Diagnostic]:
    reached = {instance.limit for instance in ctx.resolved.rate_limit_instances.values()}
    for name, limit in ctx.policy.rate_limits.items():
        where = ("rate_limits", name)
        if limit.requests is None and limit.tokens is None and limit.in_flight is None:
            yield Diagnostic.of(
                codes.MISSING_FIELD,
                f"rate limit '{name}' limits nothing: give requests, tokens or in_flight",
                ctx.index.key(*where),
                hint="e.g. requests: 60/minute, tokens: 400000/minute, in_flight: 8",
            )
        yield from _rates(ctx, name, limit)
        models_ok = yield from _models(ctx, name, limit)
        if limit.scope != "org" and limit.target != "*" and not target_exists(ctx, limit):
            yield Diagnostic.of(
                codes.RATE_LIMIT_TARGET_UNKNOWN,
                f"rate limit '{name}' targets {limit.scope} '{limit.target}', which does not exist",
                ctx.index.value(*where, "target"),
                hint=suggest(limit.target, target_candidates(ctx, limit)),
            )
        elif models_ok and name not in reached and not may_reach_a_broken_key(ctx, limit):
            subject = "the organisation" if limit.scope == "org" else f"{limit.scope} '{limit.target}'"
            why = " that can request its models" if limit.models is not None else ""
            yield Diagnostic.of(
                codes.RATE_LIMIT_UNREACHABLE,
                f"rate limit '{name}' applies to no virtual key{why} ({subject})",
                ctx.index.key(*where),
                hint="a limit no request meets enforces nothing; fix its scope, target or models, or remove it",
            )


def _rates(ctx: Context, name: str, limit: RateLimit) -> Iterator[Diagnostic]:
    for field, most in RATES.items():
        text = getattr(limit, field)
        if text is None:
            continue
        try:
            parse_rate(text, most)
        except UnreadableValue as exc:
            written = RATE.match(text)
            if written is None or written.group(2) not in RATE_UNITS:
                hint: str | None = RATE_HINT
            elif int(written.group(1)) == 0:
                hint = "to stop all requests, revoke the keys instead"
            else:
                hint = "a longer period allows the same rate with a smaller count, e.g. per minute instead of per second"
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"rate limit '{name}' {field}: {exc}",
                ctx.index.value("rate_limits", name, field),
                hint=hint,
            )


def _models(ctx: Context, name: str, limit: RateLimit) -> Generator[Diagnostic, None, bool]:
    """Each entry names a registered model or matches one; True when every entry does."""
    if limit.models is None:
        return True
    where = ("rate_limits", name, "models")
    if not limit.models:
        yield Diagnostic.of(
            codes.INVALID_VALUE,
            f"rate limit '{name}' models is empty, so it applies to no request",
            ctx.index.value(*where),
            hint="leave `models` out to limit every model",
        )
        return False
    problems = list(unregistered_models(ctx, limit.models, f"models of rate limit '{name}'", where))
    yield from problems
    return not problems
