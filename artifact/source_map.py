"""The source map's shape: the reviewed `file:line` behind every entity, setting and route.

It sits beside the hashed table, so a moved line never changes the revision. Its parts are
TypedDicts rather than models because they are written as they are: a line the compiler leaves out
stays out (absent is not the same bytes as null), and an artifact from before a part was recorded
(route sets, say) still reads, with no lines for that part. A line is `file:line`, or null where
the compiler found none.
"""

from __future__ import annotations

from typing import NotRequired

from pydantic import ConfigDict, with_config
from typing_extensions import TypedDict

CLOSED = ConfigDict(extra="forbid")


@with_config(CLOSED)
class GrantLine(TypedDict):
    """The `models_allowed` entry (an exact name or a glob) that allows a route's model, and its line."""

    entry: str
    source: str | None


@with_config(CLOSED)
class RouteLines(TypedDict):
    """One route of a route set: its grant, the line behind each target, and the alias that pinned
    its first target's provider (a pinned target's line is null: it is that alias's line in the key)."""

    granted_by: GrantLine
    targets: list[str | None]
    pinned_by: NotRequired[str]


@with_config(CLOSED)
class KeyLines(TypedDict):
    """A virtual key's own line, the lines of the settings it has, and the id of its route set."""

    self: str | None
    status: NotRequired[str]
    expires_at: NotRequired[str]
    models_allowed: NotRequired[str | None]
    fallback: NotRequired[str | None]
    cache: NotRequired[str | None]
    model_aliases: NotRequired[dict[str, str | None]]
    routes: NotRequired[str]


@with_config(CLOSED)
class SourceMap(TypedDict, total=False):
    """Section -> entity id -> its line; `virtual_keys` holds each key's lines, `routes` the route
    sets (route set id -> requested name -> its lines), shared by keys whose routes have the same
    sources and named by the sha256 of their content."""

    providers: dict[str, str | None]
    models: dict[str, str | None]
    teams: dict[str, str | None]
    profiles: dict[str, str | None]
    budgets: dict[str, str | None]
    rate_limits: dict[str, str | None]
    gateway: dict[str, str | None]
    virtual_keys: dict[str, KeyLines]
    routes: dict[str, dict[str, RouteLines]]
