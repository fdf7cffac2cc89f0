"""Canonical JSON, and the revision: the sha256 of a table's canonical JSON.

Canonical means sorted keys, no insignificant whitespace, UTF-8, integers and strings only (no
floats, no timestamps): the same policy gives the same bytes on any machine and in any file order.
The revision hashes only the table, the part that decides requests, so a comment, a reformat or a
moved line keeps it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise

import orjson
from pydantic import BaseModel

from .models import GatewaySpec, RouteSpec

ROUTE_SET_ID_DIGITS = 16


def canonical_json(value: object) -> bytes:
    """`value` (plain data or the format's models) as canonical JSON.

    A model is written as its fields: the format has no aliases, defaults left out or computed
    fields. A route is written once however many route sets hold it (a model's route is shared by
    every set that allows the model the same way), and its bytes reused.
    """
    return orjson.dumps(value, default=_Encoder().default, option=orjson.OPT_SORT_KEYS)


def route_set_id(routes: Mapping[str, RouteSpec] | Mapping[str, object]) -> str:
    """The id a route set is written under: its content's, so that naming it adds nothing to the
    revision but what the routes decide."""
    return hashlib.sha256(canonical_json(routes)).hexdigest()[:ROUTE_SET_ID_DIGITS]


def canonical_pieces(data: Mapping[str, object], items_per_piece: int = 256) -> Iterator[bytes]:
    """`canonical_json(data)` of plain data, in pieces that join to it: each section (a value of
    `data`) that is a mapping is written `items_per_piece` entries at a time.

    Each piece is one short call into orjson, which holds the interpreter lock while it writes: a
    reload hashing a 50k-key table beside a serving event loop lets the loop run between pieces."""
    yield b"{"
    for position, name in enumerate(sorted(data)):
        yield b'%s%s:' % (b"," if position else b"", orjson.dumps(name))
        section = data[name]
        if not isinstance(section, Mapping) or len(section) <= items_per_piece:
            yield canonical_json(section)
            continue
        names = _sorted_names(section)
        yield b"{"
        for start in range(0, len(names), items_per_piece):
            chunk = {key: section[key] for key in names[start : start + items_per_piece]}
            yield (b"," if start else b"") + canonical_json(chunk)[1:-1]
        yield b"}"
    yield b"}"


def _sorted_names(section: Mapping[str, object]) -> list[str]:
    """The section's names sorted. Those of a file written canonically already are, which is checked
    a comparison at a time (the lock is let go of between them) rather than left to one call of
    `sorted`: over 100k budget instances that held the interpreter lock for several milliseconds."""
    names = list(section)
    if not all(a < b for a, b in pairwise(names)):
        names.sort()
    return names


def table_revision(table_json: bytes | Iterable[bytes]) -> str:
    """The revision of a table, from its canonical JSON (whole, or the pieces `canonical_pieces`
    gives): what the compiler writes and the runtime checks."""
    digest = hashlib.sha256()
    for part in (table_json,) if isinstance(table_json, bytes) else table_json:
        digest.update(part)
    return "sha256:" + digest.hexdigest()


class _Encoder:
    def __init__(self) -> None:
        self.routes: dict[int, orjson.Fragment] = {}

    def default(self, value: object) -> object:
        if type(value) is RouteSpec:
            return self.route(value)
        if type(value) is GatewaySpec and (value.admin_token is None or value.telemetry is None):
            unset = {name for name in ("admin_token", "telemetry") if getattr(value, name) is None}
            return {k: v for k, v in value.__dict__.items() if k not in unset}
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
