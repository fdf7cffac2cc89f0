"""Emit pass: canonical JSON and the revision.

Canonical means sorted keys, fixed separators, UTF-8, no timestamps: the same policy gives the
same bytes on any machine and in any file order. `revision` hashes only `table`, the part that
decides requests, so a comment, a reformat or a moved line keeps it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from .artifact import FORMAT_VERSION
from .version import COMPILER_VERSION


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8; integers and strings only (no floats)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def revision_of(table: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(table)).hexdigest()


class Artifact(dict[str, Any]):
    """The artifact as data, remembering the canonical bytes of its table so they are made once."""

    table_json: bytes = b""


def build_artifact(
    table: dict[str, Any], sources: list[tuple[str, str]], source_map: dict[str, Any]
) -> Artifact:
    table_json = canonical_json(table)
    artifact = Artifact(
        format_version=FORMAT_VERSION,
        compiler_version=COMPILER_VERSION,
        revision="sha256:" + hashlib.sha256(table_json).hexdigest(),
        table=table,
        sources=[{"path": path, "sha256": digest} for path, digest in sorted(sources)],
        source_map=source_map,
    )
    artifact.table_json = table_json
    return artifact


def emit(artifact: dict[str, Any]) -> bytes:
    """The artifact file's bytes: canonical JSON and a final newline."""
    table_json = getattr(artifact, "table_json", b"")
    if not table_json:
        return canonical_json(artifact) + b"\n"
    rest = canonical_json({k: v for k, v in artifact.items() if k != "table"})
    # "table" sorts last among the artifact's keys, so it can be spliced in as already encoded.
    assert rest.endswith(b"}") and max(k for k in artifact) == "table"
    return b"".join((rest[:-1], b',"table":', table_json, b"}\n"))
