"""How diagnostics name the entity a policy path belongs to, shared by every pass and check."""

from __future__ import annotations

from policy.source import Path as PolicyPath

SINGULAR = {
    "providers": "provider",
    "models": "model",
    "teams": "team",
    "profiles": "profile",
    "virtual_keys": "virtual key",
    "budgets": "budget",
    "rate_limits": "rate limit",
}


def singular(section: str) -> str:
    """'virtual_keys' -> 'virtual key'."""
    return SINGULAR.get(section, section)


def describe(path: PolicyPath) -> str:
    """How a message names the entity a policy path belongs to: virtual key 'vk-alice', section 'gateway'."""
    if not path:
        return "file"
    if len(path) < 2 or path[0] not in SINGULAR:
        return f"section '{path[0]}'"
    return f"{SINGULAR[str(path[0])]} '{path[1]}'"
