"""The routing-table format: one encoding, one revision, and every refusal a type of its own."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from artifact import (
    ArtifactError,
    KeySpec,
    NotARoutingTable,
    NotJSON,
    RevisionMismatch,
    RouteSet,
    RoutingTable,
    SchemaMismatch,
    UnreadableArtifact,
    canonical_json,
    decode,
    encode,
    encoded_parts,
    read,
    route_set,
    table_revision,
    write_to,
)
from compiler import compile_policy
from tests.conftest import ACME, FIXED_NOW


@pytest.fixture(scope="module")
def acme() -> RoutingTable:
    result = compile_policy(ACME, now=FIXED_NOW)
    assert result.artifact is not None
    return result.artifact


def test_an_encoded_table_reads_back_as_the_same_table(acme: RoutingTable) -> None:
    assert decode(encode(acme)) == acme == RoutingTable.model_validate(acme.model_dump())


def test_models_encode_to_the_bytes_of_their_plain_data(acme: RoutingTable) -> None:
    assert canonical_json(acme.table) == canonical_json(acme.table.model_dump())
    assert encode(acme) == canonical_json(acme.model_dump()) + b"\n"


def test_an_artifact_is_written_in_pieces_without_joining_them(acme: RoutingTable, tmp_path: Path) -> None:
    """A writer takes the table's canonical JSON as the pieces it already is (a second copy of it
    was 480 MB at 50k keys), and keys that share a route set share its piece."""
    parts = encoded_parts(acme)
    assert b"".join(parts) == encode(acme)
    table_parts = acme._table_parts
    assert table_parts is not None and len(table_parts) > 1
    assert all(a is b for a, b in zip(parts[2:-1], table_parts, strict=True))
    assert b"".join(table_parts) == canonical_json(acme.table)
    routes = table_parts[1::2]
    assert len(routes) == len(acme.table.virtual_keys) > len({id(piece) for piece in routes})
    with (tmp_path / "t.json").open("wb") as fh:
        write_to(acme, fh)
    assert (tmp_path / "t.json").read_bytes() == encode(acme)


def test_the_revision_is_the_sha256_of_the_tables_canonical_json(acme: RoutingTable) -> None:
    written = json.loads(encode(acme))
    canonical = json.dumps(written["table"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert acme.revision == table_revision(canonical_json(acme.table))
    assert acme.revision == "sha256:" + hashlib.sha256(canonical).hexdigest()


def test_each_refusal_is_an_artifact_error_of_its_own_type(acme: RoutingTable, tmp_path: Path) -> None:
    raw = encode(acme)
    with pytest.raises(NotJSON, match="^t.json: not JSON: "):
        decode(raw[:100], "t.json")
    with pytest.raises(NotARoutingTable, match=r"not a routing table of format 1 \(format_version: 2\)"):
        decode(raw.replace(b'"format_version":1', b'"format_version":2'))
    with pytest.raises(SchemaMismatch, match="does not match the routing table schema at table.virtual_keys") as schema:
        decode(raw.replace(b'"status":"active"', b'"status":"paused"', 1))
    assert schema.value.location.startswith("table.virtual_keys.") and schema.value.location.endswith(".status")
    with pytest.raises(RevisionMismatch, match="does not match its content") as revision:
        decode(raw.replace(b'"retries":0', b'"retries":1', 1))
    assert revision.value.claimed == acme.revision != revision.value.actual
    with pytest.raises(UnreadableArtifact, match="cannot read"):
        read(tmp_path / "missing.json")
    for error in (NotJSON, NotARoutingTable, SchemaMismatch, RevisionMismatch, UnreadableArtifact):
        assert issubclass(error, ArtifactError)


def test_a_source_map_from_before_route_sets_still_reads(acme: RoutingTable) -> None:
    data = json.loads(encode(acme))
    del data["source_map"]["routes"]
    for lines in data["source_map"]["virtual_keys"].values():
        lines.pop("routes", None)
    older = decode(json.dumps(data).encode())
    assert older.revision == acme.revision and "routes" not in older.source_map


def test_a_source_map_with_lines_the_format_does_not_have_is_refused(acme: RoutingTable) -> None:
    data = json.loads(encode(acme))
    data["source_map"]["virtual_keys"]["vk-alice-codex"]["colour"] = "blue"
    with pytest.raises(SchemaMismatch, match="source_map.virtual_keys.vk-alice-codex.colour"):
        decode(json.dumps(data).encode())


def test_keys_with_the_same_routes_hold_one_validated_route_set(acme: RoutingTable) -> None:
    """A compile validates a route set once for all the keys that have it and they share it, as
    they share the set of field names pydantic keeps per spec: at 50k keys a dict of routes and
    a set of names per key were ~100 MB."""
    keys = list(acme.table.virtual_keys.values())
    sets = {id(key.routes) for key in keys}
    assert all(isinstance(key.routes, RouteSet) for key in keys) and len(sets) < len(keys)
    assert len({id(key.__pydantic_fields_set__) for key in keys}) == 1
    assert len({id(b.__pydantic_fields_set__) for b in acme.table.budgets.values()}) == 1
    read_back = decode(encode(acme))
    assert read_back == acme and not isinstance(next(iter(read_back.table.virtual_keys.values())).routes, RouteSet)


def test_only_a_validated_route_set_is_taken_as_it_is(acme: RoutingTable) -> None:
    key = next(iter(acme.table.virtual_keys.values()))
    fields = dict(key.__dict__)
    assert KeySpec(**fields).routes is key.routes
    fields["routes"] = {"gpt-4o": {"model": "gpt-4o"}}
    with pytest.raises(ValidationError, match="routes.gpt-4o.alias_chain"):
        KeySpec(**fields)
    with pytest.raises(ValidationError, match="gpt-4o.alias_chain"):
        route_set(fields["routes"])


def test_a_file_takes_the_pieces_a_thousand_to_a_write_whatever_each_write_takes(
    acme: RoutingTable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A regular file gets the pieces by `os.writev`, which may write fewer bytes than it was
    given: here never more than 100, so most writes end inside a piece."""
    real_writev = os.writev
    calls: list[int] = []

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        calls.append(len(buffers))
        return real_writev(fd, [b"".join(bytes(b) for b in buffers)[:100]])

    monkeypatch.setattr(os, "writev", short_writev)
    with (tmp_path / "t.json").open("wb") as fh:
        write_to(acme, fh)
    assert (tmp_path / "t.json").read_bytes() == encode(acme)
    assert len(calls) > 1 and max(calls) <= 1024
    writes = len(calls)
    stream = io.BytesIO()
    write_to(acme, stream)
    assert stream.getvalue() == encode(acme) and len(calls) == writes
