"""What a command serves or inspects: a policy directory compiled now, or an artifact verified.

This is where the compiler meets the runtime: `policy serve` hands `load_source` to the
reloader, so the runtime reloads a policy directory without knowing there is a compiler.
"""

from __future__ import annotations

import sys
from pathlib import Path

from artifact import ArtifactError, decode, write_to
from compiler import compile_policy, render_text
from policy.loader import discover
from runtime.table import LoadedTable, TableError, load_table, table_from_artifact

from .errors import PolicyError
from .exit_codes import EXIT_POLICY, EXIT_USAGE


def load_source(source: Path) -> LoadedTable:
    """Compile a policy directory, or load and verify an artifact file."""
    if source.is_dir():
        result = compile_policy(source)
        if result.artifact is None:
            raise PolicyError(render_text(result.diagnostics, result.sources))
        return table_from_artifact(result.artifact)
    return load_table(source)


def publish_source(source: Path, target: Path) -> str:
    """Compile a policy directory (or verify an artifact) once and write the artifact to `target`
    for `policy serve --workers` to load in each worker; its revision."""
    if source.is_dir():
        result = compile_policy(source)
        if result.artifact is None:
            raise PolicyError(render_text(result.diagnostics, result.sources))
        artifact = result.artifact
        with target.open("wb") as out:
            write_to(artifact, out)
        return artifact.revision
    raw = source.read_bytes()
    try:
        revision = decode(raw, str(source)).revision
    except ArtifactError as exc:
        raise TableError(str(exc)) from exc
    target.write_bytes(raw)
    return revision


def source_files(source: Path) -> list[Path]:
    """The files `load_source` reads, which `policy serve` watches: the policy files the compiler
    reads from a directory, or the artifact."""
    return discover(source) if source.is_dir() else [source]


def load_or_report(command: str, source: Path) -> LoadedTable | int:
    """The table, or the exit code once the reason it cannot be had is on stderr: a policy that
    does not compile (its diagnostics; exit 1), an artifact or file that cannot be read (exit 2)."""
    try:
        return load_source(source)
    except PolicyError as exc:
        sys.stderr.write(exc.report)
        print(f"policy {command}: {source} does not compile", file=sys.stderr)
        return EXIT_POLICY
    except (TableError, OSError) as exc:
        print(f"policy {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
