"""What a command serves or inspects: a policy directory compiled now, or an artifact verified.

This is where the compiler meets the runtime: `policy serve` hands `load_source` to the
reloader, so the runtime reloads a policy directory without knowing there is a compiler.
"""

from __future__ import annotations

from pathlib import Path

from compiler import compile_policy, render_text
from runtime.table import LoadedTable, load_table, table_from_artifact

from .errors import PolicyError


def load_source(source: Path) -> LoadedTable:
    """Compile a policy directory, or load and verify an artifact file."""
    if source.is_dir():
        result = compile_policy(source)
        if result.artifact is None:
            raise PolicyError(render_text(result.diagnostics, result.sources))
        return table_from_artifact(result.artifact)
    return load_table(source)
