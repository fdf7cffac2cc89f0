"""Canonical JSON, and the revision: the sha256 of a table's canonical JSON.

Canonical means sorted keys, no insignificant whitespace, UTF-8, integers and strings only (no
floats, no timestamps): the same policy gives the same bytes on any machine and in any file order.
The revision hashes only the table, the part that decides requests, so a comment, a reformat or a
moved line keeps it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import orjson
from pydantic import BaseModel

from .models import GatewaySpec, KeySpec, RouteSet, RouteSpec

_HOLE = b"\x00"
"""Marks where a key's routes go in `canonical_parts`: orjson writes a NUL in a string as `\\u0000`,
so the only raw NUL bytes in its output are the ones put there as fragments."""


def canonical_json(value: object) -> bytes:
    """`value` (plain data or the format's models) as canonical JSON.

    A model is written as its fields: the format has no aliases, defaults left out or computed
    fields. A route is written once however many keys share it (every key of a profile shares its
    routes), and its bytes reused.
    """
    return orjson.dumps(value, default=_Encoder().default, option=orjson.OPT_SORT_KEYS)


def canonical_parts(value: object) -> tuple[bytes, ...]:
    """`canonical_json(value)` in pieces that join to it, each key's routes a piece of its own.

    Keys that share a route set share its piece, so the pieces of a table hold each distinct route
    set once: the table's JSON, 477 MB at 50k keys, is never one object; it is hashed and written
    piece by piece (and a piece shared by many keys stays in the processor's cache while it is).
    """
    holes: list[bytes] = []
    encoder = _Encoder(holes)
    spaced = orjson.dumps(value, default=encoder.default, option=orjson.OPT_SORT_KEYS).split(_HOLE)
    assert len(spaced) == 2 * len(holes) + 1, "a NUL byte in orjson's output that is not a hole"
    # The holes are numbered (b"\0<n>\0"), so each piece is found by its number whatever the order
    # orjson met the keys in.
    spaced[1::2] = [holes[int(number)] for number in spaced[1::2]]
    return tuple(spaced)


def table_revision(table_json: bytes | Iterable[bytes]) -> str:
    """The revision of a table, from its canonical JSON (whole, or the pieces `canonical_parts`
    gives): what the compiler writes and the runtime checks."""
    digest = hashlib.sha256()
    for part in (table_json,) if isinstance(table_json, bytes) else table_json:
        digest.update(part)
    return "sha256:" + digest.hexdigest()


class _Encoder:
    def __init__(self, holes: list[bytes] | None = None) -> None:
        self.routes: dict[int, orjson.Fragment] = {}
        self.route_sets: dict[tuple[tuple[str, ...], tuple[int, ...]], tuple[bytes, orjson.Fragment]] = {}
        self.shared_sets: dict[int, tuple[bytes, orjson.Fragment]] = {}
        self.holes = holes
        """Given `holes`, each key's routes are left out as a numbered hole and their JSON kept here."""

    def default(self, value: object) -> object:
        if type(value) is KeySpec:
            fields = dict(value.__dict__)
            fields["routes"] = self.route_set(value.routes)
            return fields
        if type(value) is RouteSpec:
            return self.route(value)
        if type(value) is GatewaySpec and value.admin_token is None:
            return {k: v for k, v in value.__dict__.items() if k != "admin_token"}
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
        """A key's routes, encoded once for every key whose routes are the same route objects by the
        same names; keys a compile gave one `RouteSet` are told by its identity alone."""
        encoded = self.shared_sets.get(id(routes)) if type(routes) is RouteSet else None
        if encoded is None:
            memo = (tuple(routes), tuple(map(id, routes.values())))
            encoded = self.route_sets.get(memo)
            if encoded is None:
                json = orjson.dumps(routes, default=self.default, option=orjson.OPT_SORT_KEYS)
                encoded = self.route_sets[memo] = (json, orjson.Fragment(json))
            if type(routes) is RouteSet:
                self.shared_sets[id(routes)] = encoded
        if self.holes is None:
            return encoded[1]
        self.holes.append(encoded[0])
        return orjson.Fragment(b"%s%d%s" % (_HOLE, len(self.holes) - 1, _HOLE))
