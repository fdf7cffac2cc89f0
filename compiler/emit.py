"""Emit pass: the lowered table, the files it came from and their source map, as one routing table.

Building the `RoutingTable` validates it, so the compiler never emits what the runtime would refuse.
"""

from __future__ import annotations

from artifact import RoutingTable, SourceFileSpec, SourceMap, Table, routing_table

from .version import COMPILER_VERSION


def build_artifact(table: Table, sources: list[tuple[str, str]], source_map: SourceMap) -> RoutingTable:
    files = [SourceFileSpec(path=path, sha256=digest) for path, digest in sorted(sources)]
    return routing_table(COMPILER_VERSION, table, files, source_map)
