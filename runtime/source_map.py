"""The artifact's source map as the runtime reads it: the reviewed line behind each step of a route.

Read once, when a table is built, into the records that cite it (a key, a route, a budget); nothing
on the request path or in `explain` goes back to the map. An artifact from before route sets were
recorded reads as having no lines for them, never as an error: the line is a help to the reader,
not part of the decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from artifact import KeyLines, RouteLines, SourceMap


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
NO_KEY_LINES: KeyLines = {"self": None}


def key_lines(source_map: SourceMap, vk_id: str) -> KeyLines:
    return source_map.get("virtual_keys", {}).get(vk_id, NO_KEY_LINES)


def route_set(source_map: SourceMap, key: KeyLines) -> Mapping[str, RouteLines]:
    """Route name -> its lines, for the key whose lines are `key`."""
    set_id = key.get("routes")
    return source_map.get("routes", {}).get(set_id, {}) if set_id is not None else {}


def route_sources(routes: Mapping[str, RouteLines], name: str, key: KeyLines) -> RouteSources:
    """The grant and target lines of route `name`; a target an alias pinned takes the alias's line."""
    entry = routes.get(name)
    if entry is None:
        return NO_SOURCES
    granted = entry["granted_by"]
    pinned_by = entry.get("pinned_by")
    pinned = key.get("model_aliases", {}).get(pinned_by) if pinned_by is not None else None
    return RouteSources(
        Grant(granted["entry"], granted["source"]), tuple(pinned if line is None else line for line in entry["targets"])
    )
