"""What a command serves or inspects: a policy directory compiled now, or an artifact verified.

This is where the compiler meets the runtime: `policy serve` hands a `ServeLoader` to the
reloader, so the runtime reloads a policy directory without knowing there is a compiler (a reload
compiles it in a child process).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from artifact import ArtifactError, decode, write_to
from compiler import compile_policy, render_text
from policy.loader import discover
from runtime.table import LoadedTable, TableError, load_table, table_from_artifact

from .errors import PolicyError
from .exit_codes import EXIT_OK, EXIT_POLICY, EXIT_USAGE


def load_source(source: Path) -> LoadedTable:
    """Compile a policy directory, or load and verify an artifact file."""
    if source.is_dir():
        result = compile_policy(source)
        if result.artifact is None:
            raise PolicyError(render_text(result.diagnostics, result.sources))
        return table_from_artifact(result.artifact)
    return load_table(source)


class ServeLoader:
    """`policy serve`'s loader: its first load, before anything is served, is `load_source`'s;
    every later one is a reload, run in a thread beside the serving loop, and compiles a directory
    in a child process (`compile_apart`)."""

    def __init__(self) -> None:
        self.serving = False

    def __call__(self, source: Path) -> LoadedTable:
        if not self.serving:
            table = load_source(source)
            self.serving = True
            return table
        return compile_apart(source) if source.is_dir() else load_table(source)


_COMPILE_CHILD = (
    "import os; os.nice(10); import sys; from cli.sources import compile_into; "
    "sys.exit(compile_into(sys.argv[1], sys.argv[2]))"
)
"""The child of `compile_apart`, at a lower priority than the serving process it would otherwise
take a core from."""


def compile_apart(source: Path) -> LoadedTable:
    """`load_source` of a directory, compiled by a child process into an artifact that is then read
    here with the artifact's reader.

    The compiler is pure Python and long native calls (pydantic over the policy, orjson over the
    table): in a thread of the serving process it would hold the interpreter lock, each request
    waiting, for much of a second at 10k keys. Reading the artifact lets the serving loop run
    between entries (`artifact.codec`)."""
    with tempfile.TemporaryDirectory(prefix="gatepost-reload-") as tmp:
        target = Path(tmp) / "routing-table.json"
        child = subprocess.run(
            [sys.executable, "-c", _COMPILE_CHILD, str(source), str(target)], capture_output=True, check=False
        )
        if child.returncode == EXIT_POLICY and child.stdout:
            raise PolicyError(child.stdout.decode(errors="replace"))
        if child.returncode != EXIT_OK:
            problem = child.stderr.decode(errors="replace").strip()
            raise TableError(problem or f"{source}: the compiler's process failed (exit status {child.returncode})")
        return load_table(target)


def compile_into(source: str, target: str) -> int:
    """The child process of `compile_apart`: compile `source` and write its artifact to `target`
    (EXIT_OK), or write its diagnostics to stdout (EXIT_POLICY), or what could not be read to
    stderr (EXIT_USAGE)."""
    try:
        result = compile_policy(Path(source))
    except OSError as exc:
        sys.stderr.write(str(exc))
        return EXIT_USAGE
    if result.artifact is None:
        sys.stdout.buffer.write(render_text(result.diagnostics, result.sources).encode())
        return EXIT_POLICY
    with Path(target).open("wb") as out:
        write_to(result.artifact, out)
    return EXIT_OK


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
