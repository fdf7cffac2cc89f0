"""Budgets: a real target, reachable by some key, enforceable (every reachable model priced),
sensible thresholds, a positive limit and a timezone that exists."""

from __future__ import annotations

import functools
import zoneinfo
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from policy.models import Budget, RateLimit

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, suggest
from ..errors import UnreadableValue
from ..values import decimal_places, parse_percent

LEDGER_CEILING_USD = Decimal(9_000_000)
"""The ledgers count pico-USD in signed 64-bit integers (SQLite INTEGER, and the same bound is kept
for Redis): a block threshold above this could not be counted up to."""
HOST_DEPENDENT_ZONES = {
    "localtime": "it is whatever zone the host is set to",
    "posixrules": "it is the host's default rules for POSIX TZ strings",
    "Factory": "it is tzdata's placeholder for an unset zone",
}
"""Names a zoneinfo directory may hold that are not a place: a budget's windows would start at
different times on different machines, or at no real zone's midnight."""


def check_budgets(ctx: Context) -> Iterator[Diagnostic]:
    reached: set[str] = {inst.budget for inst in ctx.resolved.budget_instances.values()}
    for bid, budget in ctx.policy.budgets.items():
        where = ("budgets", bid)
        yield from _thresholds(ctx, bid, budget)
        if budget.limit_usd <= 0:
            yield Diagnostic.of(
                codes.NON_POSITIVE_LIMIT,
                f"budget '{bid}' limit_usd must be above 0, found {budget.limit_usd}",
                ctx.index.value(*where, "limit_usd"),
                hint="to stop all spend, revoke the keys instead",
            )
        elif not (ceiling := list(_ceiling(ctx, bid, budget))) and decimal_places(budget.limit_usd) > 6:
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"budget '{bid}' limit_usd {budget.limit_usd} is finer than 0.000001 USD",
                ctx.index.value(*where, "limit_usd"),
            )
        else:
            yield from ceiling
        if budget.timezone not in iana_zones():
            yield Diagnostic.of(
                codes.UNKNOWN_TIMEZONE,
                f"budget '{bid}' timezone '{budget.timezone}' is not an IANA time zone"
                + (f": {HOST_DEPENDENT_ZONES[budget.timezone]}" if budget.timezone in HOST_DEPENDENT_ZONES else ""),
                ctx.index.value(*where, "timezone"),
                hint=_zone_hint(budget.timezone),
            )
        if budget.target != "*" and not target_exists(ctx, budget):
            yield Diagnostic.of(
                codes.BUDGET_TARGET_UNKNOWN,
                f"budget '{bid}' targets {budget.scope} '{budget.target}', which does not exist",
                ctx.index.value(*where, "target"),
                hint=suggest(budget.target, target_candidates(ctx, budget)),
            )
        elif bid not in reached and not may_reach_a_broken_key(ctx, budget):
            yield Diagnostic.of(
                codes.BUDGET_UNREACHABLE,
                f"budget '{bid}' applies to no virtual key ({budget.scope} '{budget.target}')",
                ctx.index.key(*where),
                hint="a budget nobody can spend against enforces nothing; fix its scope/target or remove it",
            )
    yield from _unpriced(ctx)


@functools.cache
def iana_zones() -> frozenset[str]:
    """The IANA zone names, without the host's own (`localtime`) and tzdata's placeholders."""
    return frozenset(zoneinfo.available_timezones() - HOST_DEPENDENT_ZONES.keys())


def _zone_hint(name: str) -> str:
    return suggest(name, iana_zones()) or "name the zone the budget's days start in, e.g. UTC, Europe/Amsterdam"


def _thresholds(ctx: Context, bid: str, budget: Budget) -> Iterator[Diagnostic]:
    values = {}
    for name in ("warn", "block"):
        raw = getattr(budget.on_breach, name)
        try:
            values[name] = parse_percent(raw)
        except UnreadableValue as exc:
            yield Diagnostic.of(codes.INVALID_VALUE, f"budget '{bid}' on_breach.{name}: {exc}",
                                ctx.index.value("budgets", bid, "on_breach", name))
            values[name] = None
    warn, block = values["warn"], values["block"]
    if warn is not None and block is not None and warn > block:
        yield Diagnostic.of(
            codes.WARN_ABOVE_BLOCK,
            f"budget '{bid}' warns at {warn}%, after it blocks at {block}%, so the warning is never seen",
            ctx.index.value("budgets", bid, "on_breach", "warn"),
            hint="warn below the block threshold, e.g. warn: 80%, block: 100%",
        )


def may_reach_a_broken_key(ctx: Context, budget: Budget | RateLimit) -> bool:
    """Whether a virtual key whose own errors were reported could be one the budget (or rate limit) applies to:
    then "applies to no virtual key" would follow from those errors, not be news."""
    for vid, raw in _broken_keys(ctx):
        if budget.scope == "org" or (budget.scope == "vk" and budget.target in ("*", vid)):
            return True
        subject = raw.get(budget.scope) if isinstance(raw, dict) else budget.target
        if budget.scope != "vk" and subject is not None and (
            budget.target in ("*", subject) or not isinstance(subject, str)
        ):
            return True
    return False


def _broken_keys(ctx: Context) -> Iterator[tuple[str, Any]]:
    """The virtual keys that failed their schema, as written."""
    written = ctx.raw.get("virtual_keys") or {}
    for section, vid in ctx.broken:
        if section == "virtual_keys":
            yield vid, written.get(vid)


def target_candidates(ctx: Context, budget: Budget | RateLimit) -> list[str]:
    keys = ctx.policy.virtual_keys
    written = [raw.get(budget.scope) for _, raw in _broken_keys(ctx) if isinstance(raw, dict)]
    broken = [subject for subject in written if isinstance(subject, str)]
    if budget.scope == "team":
        return [*ctx.policy.teams, *(vk.team for vk in keys.values() if vk.team), *broken]
    if budget.scope == "principal":
        members = [m for t in ctx.policy.teams.values() for m in t.members or []]
        return [*members, *(vk.principal for vk in keys.values() if vk.principal), *broken]
    if budget.scope == "vk":
        return list(keys)
    return []


def target_exists(ctx: Context, budget: Budget | RateLimit) -> bool:
    if budget.scope == "org":
        return True
    if budget.scope == "vk":
        return ctx.defined("virtual_keys", budget.target)
    if budget.scope == "team" and ctx.defined("teams", budget.target):
        return True
    return budget.target in target_candidates(ctx, budget)


def _unpriced(ctx: Context) -> Iterator[Diagnostic]:
    first_budget: dict[str, tuple[str, str]] = {}
    seen: set[int] = set()
    for vid, resolved in ctx.resolved.keys.items():
        if not resolved.budgets or id(resolved.routes) in seen:
            continue
        seen.add(id(resolved.routes))
        for route in resolved.routes.values():
            for target in route.targets:
                first_budget.setdefault(target.model, (resolved.budgets[0], vid))
    for model, (instance, vid) in sorted(first_budget.items()):
        entry = ctx.policy.models.get(model)
        if entry is None or entry.price is not None:
            continue
        yield Diagnostic.of(
            codes.UNPRICED_MODEL,
            f"model '{model}' has no price, but virtual key '{vid}' can reach it under budget '{instance}'; "
            "the budget could not be enforced",
            ctx.index.key("models", model),
            hint="add `price: {input: ..., cached_input: ..., output: ...}` in USD per 1M tokens",
        )


def _ceiling(ctx: Context, bid: str, budget: Budget) -> Iterator[Diagnostic]:
    try:
        block = parse_percent(budget.on_breach.block) or Decimal(100)
    except UnreadableValue:
        return
    if budget.limit_usd > LEDGER_CEILING_USD * 100 / block:
        if budget.limit_usd.adjusted() < 15:
            amount = f"blocks at ${budget.limit_usd * block / 100:,.2f} per {budget.window}, above"
        else:
            amount = f"limit_usd {budget.limit_usd} is far above"
        yield Diagnostic.of(
            codes.INVALID_VALUE,
            f"budget '{bid}' {amount} the ledger's ceiling of "
            f"${LEDGER_CEILING_USD:,.0f} for one budget instance and window",
            ctx.index.value("budgets", bid, "limit_usd"),
            hint="split it by scope (one budget per team or principal) or use a shorter window",
        )
