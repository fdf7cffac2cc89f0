"""Canonical JSON, and the revision: the sha256 of a table's canonical JSON.

Canonical means sorted keys, no insignificant whitespace, UTF-8, integers and strings only (no
floats, no timestamps): the same policy gives the same bytes on any machine and in any file order.
The revision hashes only the table, the part that decides requests, so a comment, a reformat or a
moved line keeps it.
"""

from __future__ import annotations

import hashlib

import orjson
from pydantic import BaseModel

from .models import KeySpec, RouteSpec


def canonical_json(value: object) -> bytes:
    """`value` (plain data or the format's models) as canonical JSON.

    A model is written as its fields: the format has no aliases, defaults left out or computed
    fields. A route is written once however many keys share it (every key of a profile shares its
    routes), and its bytes reused.
    """
    return orjson.dumps(value, default=_Encoder().default, option=orjson.OPT_SORT_KEYS)


def table_revision(table_json: bytes) -> str:
    """The revision of a table, from its canonical JSON: what the compiler writes and the runtime checks."""
    return "sha256:" + hashlib.sha256(table_json).hexdigest()


class _Encoder:
    def __init__(self) -> None:
        self.routes: dict[int, orjson.Fragment] = {}
        self.route_sets: dict[tuple[tuple[str, ...], tuple[int, ...]], orjson.Fragment] = {}

    def default(self, value: object) -> object:
        if type(value) is KeySpec:
            fields = dict(value.__dict__)
            fields["routes"] = self.route_set(value.routes)
            return fields
        if type(value) is RouteSpec:
            return self.route(value)
        if isinstance(value, BaseModel):
            return value.__dict__
        raise TypeError(f"{type(value).__name__} is not part of a routing table")

    def route(self, route: RouteSpec) -> orjson.Fragment:
        encoded = self.routes.get(id(route))
        if encoded is None:
            encoded = self.routes[id(route)] = orjson.Fragment(
                orjson.dumps(route.__dict__, default=self.default, option=orjson.OPT_SORT_KEYS)
            )
        return encoded

    def route_set(self, routes: dict[str, RouteSpec]) -> orjson.Fragment:
        """A key's routes, encoded once for every key whose routes are the same route objects by the same names."""
        memo = (tuple(routes), tuple(map(id, routes.values())))
        encoded = self.route_sets.get(memo)
        if encoded is None:
            encoded = self.route_sets[memo] = orjson.Fragment(
                orjson.dumps(routes, default=self.default, option=orjson.OPT_SORT_KEYS)
            )
        return encoded
