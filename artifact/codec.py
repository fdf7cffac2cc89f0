"""A routing table to its file's bytes and back.

Reading verifies completely before anything is returned: the format version, the schema (the same
models the JSON Schema is generated from) and the revision, recomputed from the table as written,
so a truncated, hand-edited or foreign file is refused before it can decide a single request.
"""

from __future__ import annotations

import codecs
import json
import json.scanner
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import TypeAdapter, ValidationError

from .canonical import canonical_json, canonical_pieces, table_revision
from .errors import NotARoutingTable, NotJSON, RevisionMismatch, SchemaMismatch, UnreadableArtifact
from .models import FORMAT_VERSION, BudgetSpec, KeySpec, RateLimitSpec, RoutingTable, SourceFileSpec, Table
from .source_map import KeyLines, SourceMap


def routing_table(
    compiler_version: str, table: Table, sources: list[SourceFileSpec], source_map: SourceMap
) -> RoutingTable:
    """A new routing table of this format, its revision computed from `table`."""
    table_json = canonical_json(table)
    artifact = RoutingTable(
        format_version=FORMAT_VERSION,
        compiler_version=compiler_version,
        revision=table_revision(table_json),
        table=table,
        sources=sources,
        source_map=source_map,
    )
    artifact._table_json = table_json
    return artifact


def encode(artifact: RoutingTable) -> bytes:
    """The artifact file's bytes: canonical JSON and a final newline."""
    return b"".join(encoded_parts(artifact))


def encoded_parts(artifact: RoutingTable) -> tuple[bytes, ...]:
    """The artifact file's bytes in pieces that `encode` joins: the table's canonical JSON, made
    once for the revision, is written as it is rather than copied into one object with the rest."""
    table_json = artifact._table_json or canonical_json(artifact.table)
    rest = canonical_json({name: value for name, value in artifact.__dict__.items() if name != "table"})
    # "table" sorts last among the artifact's keys, so it is spliced in as already encoded.
    assert rest.endswith(b"}") and max(artifact.__dict__) == "table"
    return rest[:-1], b',"table":', table_json, b"}\n"


def write_to(artifact: RoutingTable, stream: BinaryIO) -> None:
    """Write the artifact file's bytes to `stream`, as `encode` gives them: to a regular file, its
    pieces in one system call (`os.writev`), a thousand at most to a call."""
    parts = encoded_parts(artifact)
    fd = _regular_file(stream)
    if fd is None:
        for part in parts:
            stream.write(part)
        return
    stream.flush()
    for start in range(0, len(parts), _PIECES_PER_WRITE):
        _write_all(fd, list(parts[start : start + _PIECES_PER_WRITE]))


_PIECES_PER_WRITE = 1024
"""At most IOV_MAX buffers per `os.writev`: 1024 on Linux, the least POSIX allows."""


def _regular_file(stream: BinaryIO) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None


def _write_all(fd: int, pieces: list[bytes | memoryview]) -> None:
    """Write every piece, going on after a write that took only some of them."""
    while pieces:
        written = os.writev(fd, pieces)
        done = 0
        while done < len(pieces) and written >= len(pieces[done]):
            written -= len(pieces[done])
            done += 1
        pieces = pieces[done:]
        if pieces and written:
            pieces[0] = memoryview(pieces[0])[written:]


def read(path: Path) -> RoutingTable:
    """A routing table from its file, verified as `decode` verifies it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnreadableArtifact(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return decode(raw, str(path))


def decode(raw: bytes, name: str = "<artifact>") -> RoutingTable:
    """A routing table from a file's bytes, verified as `from_data` verifies it; `name` starts each message."""
    try:
        data = parse(raw)
    except orjson.JSONDecodeError as exc:
        raise NotJSON(f"{name}: not JSON: {exc}") from exc
    try:
        return from_data(data, name)
    finally:
        if isinstance(data, dict):
            release(data)


def release(data: dict[str, Any]) -> None:
    """Let go of the large sections of a decoded artifact's JSON one entry at a time rather than
    in one cascade of deallocations; they are left empty.

    Freeing 10k keys' worth of objects at once holds the interpreter lock as long as a native call
    over them would, and a reload frees them in a thread beside the serving loop."""
    for part in (data.get("table"), data.get("source_map")):
        if isinstance(part, dict):
            for section in part.values():
                if isinstance(section, dict):
                    while section:
                        section.popitem()


def release_table(artifact: RoutingTable) -> None:
    """`release` for a verified artifact no one else holds: its table's and source map's sections."""
    release({"table": artifact.table.__dict__, "source_map": artifact.source_map})


def parse(raw: bytes) -> object:
    """`orjson.loads(raw)`, the sections that grow with the keys an entry at a time.

    A reload reads a table in a thread beside the serving event loop, and one call into a native
    parser holds the interpreter lock until it returns: 40-200 ms for 10k-50k keys, every request
    waiting. Here each call reads one entry (a key, a budget instance, a key's lines), or decodes
    a window of the file's bytes, so the loop runs between them. JSON this reader does not follow
    (it is not an object of objects where the sections are expected) is read whole by orjson, whose
    error names what is wrong."""
    try:
        return _Sections(raw, _WINDOW_BYTES).document()
    except (ValueError, StopIteration, IndexError, TypeError):
        return orjson.loads(raw)


def from_data(data: object, name: str = "<artifact>") -> RoutingTable:
    """A routing table from decoded JSON, verified: format version, schema, then revision.

    The large sections (keys, budget instances, the keys' lines) are validated and hashed a few
    hundred entries at a time: a reload verifies a table in a thread beside the serving event
    loop, and each call into pydantic's or orjson's native code holds the interpreter lock until it
    returns, so one call over 50k keys would stall every request for as long as it took."""
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        found = data.get("format_version") if isinstance(data, dict) else None
        raise NotARoutingTable(f"{name}: not a routing table of format {FORMAT_VERSION} (format_version: {found!r})")
    try:
        artifact = _validated(data)
    except (ValidationError, _InSection) as exc:
        within, error = (exc.location, exc.error) if isinstance(exc, _InSection) else ((), exc)
        first = error.errors(include_url=False)[0]
        where = ".".join(str(p) for p in (*within, *first["loc"]))
        raise SchemaMismatch(
            f"{name}: does not match the routing table schema at {where}: {first['msg']}", where
        ) from exc
    _check_route_sets(artifact.table, name)
    revision = table_revision(canonical_pieces(data["table"]))
    if revision != artifact.revision:
        raise RevisionMismatch(
            f"{name}: revision {artifact.revision} does not match its content ({revision}); refusing it",
            artifact.revision,
            revision,
        )
    return artifact


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


_LARGE_SECTIONS: dict[str, frozenset[str]] = {
    "table": frozenset({"keys", "virtual_keys", "budgets", "rate_limits"}),
    "source_map": frozenset({"virtual_keys"}),
}


_WINDOW_BYTES = 1 << 18
"""Bytes of the file decoded to text at a time: decoding 50 MB in one call held the interpreter
lock for 20-30 ms, a window of 256 KiB for well under a millisecond."""


class _Sections:
    """A reader of the artifact's JSON that descends into `table` and `source_map` and reads each
    entry of their large sections with the standard library's scanner, one entry to a call.

    The text it scans is a window of the file, decoded a window's bytes at a time as the cursor
    reaches its end (what the cursor has passed is dropped): a value that the window cuts short
    fails to scan, or, a number, ends at the window's end where a separator must follow, and is
    scanned again once the window goes further."""

    _SPACE = re.compile(r"[ \t\n\r]*")
    _SCAN: Callable[[str, int], tuple[object, int]] = json.scanner.make_scanner(
        json.JSONDecoder(parse_constant=_no_constant)  # type: ignore[arg-type]
    )

    def __init__(self, raw: bytes, window: int) -> None:
        self.raw = memoryview(raw)
        self.window = window
        self.decoded = 0
        """Bytes of `raw` decoded into `text` so far."""
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.at = 0

    def more(self) -> bool:
        """Move the window on: the text from the cursor, then the next bytes decoded (at least as
        many as the window already holds, so that a value longer than a window is scanned again
        only as many times as its length doubles one). False when the file is all read."""
        if self.decoded >= len(self.raw):
            return False
        kept = self.text[self.at :]
        end = self.decoded + max(self.window, len(kept))
        self.text = kept + self.decoder.decode(self.raw[self.decoded : end], final=end >= len(self.raw))
        self.decoded = min(end, len(self.raw))
        self.at = 0
        return True

    def document(self) -> object:
        found = self.members(self.part)
        while True:
            self.at = self.space_end(self.at)
            if self.at < len(self.text):
                raise ValueError("content after the document")
            if not self.more():
                return found

    def part(self, name: str) -> object:
        sections = _LARGE_SECTIONS.get(name)
        if sections is None:
            return self.value()
        return self.members(lambda section: self.entries() if section in sections else self.value())

    def members(self, member: Callable[[str], object]) -> object:
        """The object at the cursor, each member's value read by `member` (given its name); any
        other value by one call of the scanner."""
        if self.next_char() != "{":
            return self.value()
        found: dict[str, object] = {}
        self.at += 1
        if self.next_char() == "}":
            self.at += 1
            return found
        while True:
            name = self.value()
            if not isinstance(name, str):
                raise ValueError("a member name that is not a string")
            if self.next_char() != ":":
                raise ValueError("expected ':'")
            self.at += 1
            self.next_char()
            found[name] = member(name)
            separator = self.next_char()
            self.at += 1
            if separator == "}":
                return found
            if separator != ",":
                raise ValueError("expected ',' or '}'")

    def entries(self) -> object:
        """The object at the cursor, each member's value read by one call of the scanner: the
        loop of `members` without its indirections, for the sections of 10k-50k entries. An entry
        the window cuts short is read again from its start once the window has moved on."""
        if self.next_char() != "{":
            return self.value()
        found: dict[object, object] = {}
        self.at += 1
        if self.next_char() == "}":
            self.at += 1
            return found
        scan, space = self._SCAN, self._SPACE.match
        while True:
            text, at = self.text, self.at
            try:
                if text[at] in " \t\n\r":
                    at = space(text, at).end()  # type: ignore[union-attr]
                if text[at] != '"':
                    raise ValueError("a member name that is not a string")
                name, at = scan(text, at)
                if text[at] != ":":
                    at = space(text, at).end()  # type: ignore[union-attr]
                    if text[at] != ":":
                        raise ValueError("expected ':'")
                at += 1
                if text[at] in " \t\n\r":
                    at = space(text, at).end()  # type: ignore[union-attr]
                value, at = scan(text, at)
                if text[at] in " \t\n\r":
                    at = space(text, at).end()  # type: ignore[union-attr]
                separator = text[at]
            except (IndexError, StopIteration, ValueError):
                if self.more():
                    continue
                raise
            found[name] = value
            self.at = at + 1
            if separator == "}":
                return found
            if separator != ",":
                raise ValueError("expected ',' or '}'")

    def value(self) -> object:
        """The value at the cursor, by one call of the scanner (again, over a wider window, when
        the window cuts it short)."""
        self.next_char()
        while True:
            try:
                found, at = self._SCAN(self.text, self.at)
            except (StopIteration, ValueError):
                if self.more():
                    continue
                raise
            if at >= len(self.text) and self.more():
                continue
            self.at = at
            return found

    def next_char(self) -> str:
        """The character at the cursor once whitespace is passed over, the window moved on as
        needed; IndexError at the end of the file."""
        while True:
            self.at = self.space_end(self.at)
            if self.at < len(self.text):
                return self.text[self.at]
            if not self.more():
                raise IndexError("the document ends early")

    def space_end(self, at: int) -> int:
        return self._SPACE.match(self.text, at).end()  # type: ignore[union-attr]


_ENTRIES_PER_CALL = 256
_SECTIONS: tuple[tuple[str, str], ...] = (
    ("table", "keys"), ("table", "virtual_keys"), ("table", "budgets"), ("table", "rate_limits"),
    ("source_map", "virtual_keys"),
)
"""The sections that grow with the number of keys, in the order the schema validates them."""
_ADAPTERS: dict[tuple[str, str], TypeAdapter[dict[str, Any]]] = {
    ("table", "keys"): TypeAdapter(dict[str, str]),
    ("table", "virtual_keys"): TypeAdapter(dict[str, KeySpec]),
    ("table", "budgets"): TypeAdapter(dict[str, BudgetSpec]),
    ("table", "rate_limits"): TypeAdapter(dict[str, RateLimitSpec]),
    ("source_map", "virtual_keys"): TypeAdapter(dict[str, KeyLines]),
}


def _validated(data: dict[str, Any]) -> RoutingTable:
    """`RoutingTable.model_validate(data)`, its large sections a few hundred entries to a call."""
    large = [
        (part, section) for part, section in _SECTIONS
        if isinstance(data.get(part), dict) and isinstance(data[part].get(section), dict)
        and len(data[part][section]) > _ENTRIES_PER_CALL
    ]
    if not large:
        return RoutingTable.model_validate(data)
    shell = {**data, **{part: dict(data[part]) for part in {part for part, _ in large}}}
    for part, section in large:
        shell[part][section] = {}
    artifact = RoutingTable.model_validate(shell)
    for part, section in large:
        entries = data[part][section]
        validated = _validated_section(_ADAPTERS[part, section], entries, (part, section))
        if part == "table":
            object.__setattr__(artifact.table, section, validated)
        else:
            artifact.source_map[section] = validated  # type: ignore[literal-required]
    return artifact


def _validated_section(
    adapter: TypeAdapter[dict[str, Any]], entries: dict[str, Any], location: tuple[str, str]
) -> dict[str, Any]:
    names = list(entries)
    validated: dict[str, Any] = {}
    for start in range(0, len(names), _ENTRIES_PER_CALL):
        chunk = {key: entries[key] for key in names[start : start + _ENTRIES_PER_CALL]}
        try:
            validated.update(adapter.validate_python(chunk))
        except ValidationError as exc:
            raise _InSection(location, exc) from exc
    return validated


class _InSection(Exception):
    """A section's entries that do not match the schema, and where the section is."""

    def __init__(self, location: tuple[str, str], error: ValidationError) -> None:
        super().__init__(location, error)
        self.location = location
        self.error = error


def _check_route_sets(table: Table, name: str) -> None:
    """Every key names a route set the table has."""
    for vid, key in table.virtual_keys.items():
        if key.routes not in table.route_sets:
            where = f"table.virtual_keys.{vid}.routes"
            raise SchemaMismatch(
                f"{name}: does not match the routing table schema at {where}: no route set {key.routes!r} "
                "in table.route_sets", where,
            )
