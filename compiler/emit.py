"""Emit pass: canonical JSON and the revision.

Canonical means sorted keys, fixed separators, UTF-8, no timestamps: the same policy gives the
same bytes on any machine and in any file order. `revision` hashes only `table`, the part that
decides requests, so a comment, a reformat or a moved line keeps it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .artifact import FORMAT_VERSION
from .version import COMPILER_VERSION


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def revision_of(table: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(table)).hexdigest()


def build_artifact(
    table: dict[str, Any], sources: list[tuple[str, str]], source_map: dict[str, Any]
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "compiler_version": COMPILER_VERSION,
        "revision": revision_of(table),
        "table": table,
        "sources": [{"path": path, "sha256": digest} for path, digest in sorted(sources)],
        "source_map": source_map,
    }


def emit(artifact: dict[str, Any]) -> bytes:
    return canonical_json(artifact) + b"\n"
