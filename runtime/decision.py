"""The decision: (table, key, surface, requested model) -> allow with targets, or deny.

Pure: no I/O, no clock of its own (the caller passes `now`), no state. The proxy calls it for
every request; `policy explain` and `policy test` call the same function, so what review approved
is what production does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from difflib import get_close_matches
from typing import Any

from .table import KeyEntry, LoadedTable, Route, Target

SURFACE_PROTOCOLS: dict[str, frozenset[str]] = {
    "chat": frozenset({"openai", "anthropic", "gemini", "mock"}),
    "responses": frozenset({"openai", "anthropic", "gemini", "mock"}),
    "messages": frozenset({"anthropic", "openai", "gemini", "mock"}),
    "gemini": frozenset({"gemini", "openai", "anthropic", "mock"}),
}
"""Every surface reaches every protocol, natively or through the translation hub (translation.py)."""

WIRE_SURFACES: dict[str, frozenset[str]] = {
    "chat": frozenset({"chat", "responses", "messages", "gemini"}),
}
"""The client surfaces that reach a target of one wire only (`Target.wire`): a Chat Completions
server natively from Chat, and from every other surface through the translation hub."""


def reaches(surface: str, target: Target) -> bool:
    """Whether a request on `surface` can be sent to `target`, as it is or translated."""
    if target.protocol not in SURFACE_PROTOCOLS.get(surface, frozenset()):
        return False
    return target.wire is None or surface in WIRE_SURFACES.get(target.wire, frozenset())


@dataclass(frozen=True, slots=True)
class Allow:
    key: KeyEntry
    route: Route
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Deny:
    status: int
    code: str
    message: str
    key: KeyEntry | None = None
    param: str | None = None
    meta: dict[str, Any] | None = None


Decision = Allow | Deny


def authenticate(table: LoadedTable, key_hash: str | None, now: datetime) -> KeyEntry | Deny:
    if key_hash is None:
        return Deny(401, "invalid_api_key", "no API key: send a Gatepost virtual key as `Authorization: Bearer <key>`")
    key = table.keys_by_hash.get(key_hash)
    if key is None:
        return Deny(401, "invalid_api_key", "invalid API key: no virtual key matches it; check its first 12 characters")
    if key.status != "active":
        return Deny(401, "invalid_api_key", f"virtual key {key.label} is revoked", key)
    if key.expires_at is not None and key.expires_at <= now:
        return Deny(401, "invalid_api_key", f"virtual key {key.label} expired at {key.expires_at.isoformat()}", key)
    return key


def decide_for_key(key: KeyEntry, surface: str, model: str | None) -> Decision:
    if not model:
        return Deny(400, "invalid_request_error", "the request has no `model`", key, "model")
    route = key.routes.get(model)
    if route is None:
        return not_allowed(key, model)
    targets = tuple(t for t in route.targets if reaches(surface, t))
    if not targets:
        protocols = ", ".join(sorted({t.protocol if t.wire is None else f"{t.protocol} {t.wire} only" for t in route.targets}))
        return Deny(
            400,
            "unsupported_route",
            f"model '{model}' for virtual key {key.label} is served over {protocols}, "
            f"which this endpoint cannot reach",
            key,
            "model",
        )
    return Allow(key, route, targets)


def not_allowed(key: KeyEntry, model: str) -> Deny:
    """403 naming the key's policy line and, for a near miss (`gpt-4oo`, `GPT-4o`), the model or
    alias the caller most likely meant; only a refusal pays for the comparison."""
    where = f" ({key.allowed_source})" if key.allowed_source else ""
    near = nearest_name(model, key)
    hint = f"did you mean '{near}'? Otherwise " if near else ""
    return Deny(
        403,
        "model_not_allowed",
        f"model '{model}' is not allowed for virtual key {key.label}: {hint}extend its models_allowed{where} "
        "or use an alias",
        key,
        "model",
    )


def nearest_name(model: str, key: KeyEntry) -> str | None:
    """The model or alias of the key closest to `model`, if one is close enough to be a typo."""
    by_folded = {name.casefold(): name for name in sorted(key.routes)}
    found = get_close_matches(model.casefold(), by_folded, n=1, cutoff=0.8)
    return by_folded[found[0]] if found else None
