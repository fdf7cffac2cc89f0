"""Rate limits in `policy budgets`: each instance's current use as the ledger holds it (drained to
now), beside its limits; with the policy, every instance it defines, at the limits it sets now."""

from __future__ import annotations

from typing import Any

from runtime.ratelimit.outcome import LimitUsage
from runtime.table import LoadedTable


def with_policy(table: LoadedTable, usage: list[LimitUsage]) -> list[LimitUsage]:
    recorded = {u.instance: u for u in usage}
    shown = []
    for instance in sorted(table.rate_limits):
        limit, used = table.rate_limits[instance], recorded.get(instance)
        shown.append(LimitUsage(
            instance,
            used.requests_used if used else 0.0, limit.requests.count if limit.requests else None,
            used.tokens_used if used else 0.0, limit.tokens.count if limit.tokens else None,
            used.in_flight if used else 0, limit.in_flight,
        ))
    return shown


def rows(usage: list[LimitUsage]) -> list[tuple[str, ...]]:
    header: tuple[str, ...] = ("rate limit", "requests", "tokens", "in flight")
    return [header] + [
        (u.instance, _of(u.requests_used, u.requests_limit), _of(u.tokens_used, u.tokens_limit),
         _of(u.in_flight, u.in_flight_limit))
        for u in sorted(usage, key=lambda u: u.instance)
    ]


def as_json(usage: list[LimitUsage]) -> list[dict[str, Any]]:
    return [
        {
            "rate_limit": u.instance, "requests_used": round(u.requests_used, 3), "requests_limit": u.requests_limit,
            "tokens_used": round(u.tokens_used, 3), "tokens_limit": u.tokens_limit,
            "in_flight": u.in_flight, "in_flight_limit": u.in_flight_limit,
        }
        for u in sorted(usage, key=lambda u: u.instance)
    ]


def _of(used: float, limit: int | None) -> str:
    if limit is None:
        return "-"
    return f"{used:,.0f}/{limit:,}" if isinstance(used, float) else f"{used}/{limit}"
