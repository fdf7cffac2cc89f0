"""The routing-table format: one encoding, one revision, and every refusal a type of its own."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
from pathlib import Path

import orjson
import pytest

from artifact import (
    ArtifactError,
    NotARoutingTable,
    NotJSON,
    RevisionMismatch,
    RoutingTable,
    SchemaMismatch,
    UnreadableArtifact,
    canonical_json,
    canonical_pieces,
    codec,
    decode,
    encode,
    encoded_parts,
    read,
    route_set_id,
    table_revision,
    write_to,
)
from artifact.codec import parse
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


def test_the_tables_json_made_for_the_revision_is_written_as_it_is(acme: RoutingTable, tmp_path: Path) -> None:
    """A writer takes the table's canonical JSON made for the revision, not a second copy of it."""
    parts = encoded_parts(acme)
    assert b"".join(parts) == encode(acme)
    assert acme._table_json is not None and parts[2] is acme._table_json
    assert acme._table_json == canonical_json(acme.table)
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
    with pytest.raises(NotARoutingTable, match=r"not a routing table of format 2 \(format_version: 1\)"):
        decode(raw.replace(b'"format_version":2', b'"format_version":1'))
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


def test_keys_with_the_same_routes_name_one_route_set_written_once(acme: RoutingTable) -> None:
    """A route set is in the table once, under the id of its content, and every key that has it
    names it: the artifact grows with the route sets the policy makes, not with keys x models.
    Keys and budget instances share pydantic's set of field names per type (728 bytes each)."""
    table = acme.table
    named = {key.routes for key in table.virtual_keys.values()}
    assert named == set(table.route_sets) and len(named) < len(table.virtual_keys)
    for set_id, routes in table.route_sets.items():
        assert set_id == route_set_id(routes) == hashlib.sha256(canonical_json(routes)).hexdigest()[:16]
        assert not routes or encode(acme).count(canonical_json(routes)) == 1
    assert len({id(key.__pydantic_fields_set__) for key in table.virtual_keys.values()}) == 1
    assert len({id(b.__pydantic_fields_set__) for b in table.budgets.values()}) == 1
    assert decode(encode(acme)) == acme


def test_a_key_naming_a_route_set_the_table_lacks_is_refused(acme: RoutingTable) -> None:
    data = json.loads(encode(acme))
    data["table"]["virtual_keys"]["vk-alice-codex"]["routes"] = "0" * 16
    with pytest.raises(SchemaMismatch, match="at table.virtual_keys.vk-alice-codex.routes: no route set") as refused:
        decode(json.dumps(data).encode())
    assert refused.value.location == "table.virtual_keys.vk-alice-codex.routes"


def test_sections_validated_a_few_entries_at_a_time_read_and_refuse_as_one_call_does(
    acme: RoutingTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validation of the sections that grow with the keys is split into short calls (so a reload
    beside the serving loop never holds the interpreter long); what is read and where a mismatch
    is found are the same."""
    monkeypatch.setattr(codec, "_ENTRIES_PER_CALL", 1)
    raw = encode(acme)
    assert decode(raw) == acme
    with pytest.raises(SchemaMismatch) as schema:
        decode(raw.replace(b'"status":"active"', b'"status":"paused"', 1))
    assert schema.value.location.startswith("table.virtual_keys.") and schema.value.location.endswith(".status")
    data = json.loads(raw)
    data["source_map"]["virtual_keys"]["vk-alice-codex"]["colour"] = "blue"
    with pytest.raises(SchemaMismatch, match="source_map.virtual_keys.vk-alice-codex.colour"):
        decode(json.dumps(data).encode())
    with pytest.raises(RevisionMismatch):
        decode(raw.replace(b'"retries":0', b'"retries":1', 1))


def test_the_revision_hashed_in_pieces_is_the_revision_of_the_whole(acme: RoutingTable) -> None:
    table = json.loads(encode(acme))["table"]
    for size in (1, 2, 1000):
        assert b"".join(canonical_pieces(table, size)) == canonical_json(table)
    assert table_revision(canonical_pieces(table, 1)) == acme.revision
    reordered = {**table, "budgets": dict(reversed(table["budgets"].items()))}
    assert list(reordered["budgets"]) != sorted(reordered["budgets"])
    assert b"".join(canonical_pieces(reordered, 1)) == canonical_json(table)


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


def test_the_entry_by_entry_reader_reads_what_orjson_reads(acme: RoutingTable) -> None:
    """`decode` reads the large sections an entry per call (a reload reads beside the serving loop);
    it reads any JSON as orjson does, spaced or not, and refuses what orjson refuses."""
    raw = encode(acme)
    spaced = json.dumps(json.loads(raw), indent=2).encode()
    for text in (raw, spaced, b' { "table" : { "keys" : { "a" : [1, 2] , "b":{}} } , "x": null } ', b"[1, 2]"):
        assert parse(text) == orjson.loads(text)
    assert decode(spaced) == acme
    for broken in (raw[:-3], b'{"table": NaN}', b'{"table":{"keys":{"a":1}}} x', b'{"table":{"keys":{"a":"\xff"}}}'):
        with pytest.raises(orjson.JSONDecodeError):
            parse(broken)
        with pytest.raises(NotJSON):
            decode(broken)


def test_the_reader_decodes_the_file_a_window_at_a_time_and_reads_what_orjson_reads(
    acme: RoutingTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's bytes are decoded to text a window at a time (decoding 50 MB in one call held the
    interpreter lock for 20-30 ms beside the serving loop): an entry, a name, a number or a
    character of several bytes cut by a window's end is read whole once the window moves on."""
    decoded: list[int] = []
    real = codecs.getincrementaldecoder

    def recording(encoding: str) -> type[codecs.IncrementalDecoder]:
        base = real(encoding)

        class Recording(base):  # type: ignore[valid-type,misc]
            def decode(self, data: bytes, final: bool = False) -> str:
                decoded.append(len(data))
                return str(super().decode(data, final))

        return Recording

    monkeypatch.setattr(codecs, "getincrementaldecoder", recording)
    data = json.loads(encode(acme))
    data["table"]["keys"]["é€😀"] = "vk-ü"
    data["table"]["budgets"]["big"] = 12345678901234567890
    texts = [
        orjson.dumps(data),
        json.dumps(data, indent=2, ensure_ascii=False).encode(),
        (" \n" + json.dumps(data, separators=(" ,\n ", " :  "), ensure_ascii=False) + "\n\n").encode(),
    ]
    for window in (1, 3, 64, 4096):
        monkeypatch.setattr(codec, "_WINDOW_BYTES", window)
        for text in texts:
            decoded.clear()
            assert parse(text) == orjson.loads(text)
            assert sum(decoded) == len(text) and max(decoded) < len(text) / 4
        assert decode(encode(acme)) == acme
        for broken in (texts[0][:-3], texts[1][:-1], texts[0] + b" x", b'{"table":{"keys":{"a":"\xff"}}}'):
            with pytest.raises(orjson.JSONDecodeError):
                parse(broken)
