"""The artifact's source map as the runtime reads it: the reviewed line behind each step of a route.

An artifact from before route sets were recorded reads as having no lines for them, never as an
error: the line is a help to the reader, not part of the decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Grant:
    """The `models_allowed` entry (an exact name or a glob) that allows a route's model, and its line."""

    entry: str
    source: str | None


@dataclass(frozen=True, slots=True)
class RouteSources:
    grant: Grant | None
    targets: tuple[str | None, ...]


NO_SOURCES = RouteSources(None, ())


def key_sources(source_map: Mapping[str, Any], vk_id: str) -> Mapping[str, Any]:
    found: Mapping[str, Any] = source_map.get("virtual_keys", {}).get(vk_id, {})
    return found


def route_set(source_map: Mapping[str, Any], key: Mapping[str, Any]) -> Mapping[str, Any]:
    """Route name -> its sources, for the key whose source-map entry is `key`."""
    found: Mapping[str, Any] = source_map.get("routes", {}).get(key.get("routes"), {})
    return found


def route_sources(routes: Mapping[str, Any], name: str, key: Mapping[str, Any]) -> RouteSources:
    """The grant and target lines of route `name`; a target an alias pinned takes the alias's line."""
    entry = routes.get(name)
    if not entry:
        return NO_SOURCES
    granted = entry.get("granted_by")
    grant = Grant(granted["entry"], granted.get("source")) if granted else None
    pinned = key.get("model_aliases", {}).get(entry.get("pinned_by"))
    return RouteSources(grant, tuple(pinned if line is None else line for line in entry.get("targets", ())))
