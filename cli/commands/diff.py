"""`policy diff BASE HEAD`: each side a policy directory, an artifact, or a git revision."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from artifact import ArtifactError, from_data
from compiler import compile_policy, compile_sources, render_text
from compiler.diff import diff_tables
from compiler.diff_render import render_json, render_markdown
from compiler.diff_render import render_text as render_diff
from policy.loader import POLICY_SUFFIXES, TEST_SUFFIXES, SourceFile

from ..errors import SideError
from ..exit_codes import EXIT_CHANGED, EXIT_OK, EXIT_POLICY, EXIT_USAGE


def _git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SideError(proc.stderr.strip() or f"git {' '.join(args)} failed", EXIT_USAGE)
    return proc.stdout


def _verify_revision(revision: str, directory: Path) -> Path:
    """The repository's top level, once `revision` is known to name a commit there."""
    if not directory.is_dir():
        raise SideError(f"--dir {directory}: no such directory (revisions are read below it; "
                        f"'{revision}' is not a policy directory or an artifact file either)", EXIT_USAGE)
    try:
        top = Path(_git("rev-parse", "--show-toplevel", cwd=directory).strip())
    except (SideError, OSError) as exc:
        raise SideError(f"'{revision}' is not a policy directory, an artifact file, or a git revision: "
                        f"--dir {directory} is not inside a git repository to read revisions from", EXIT_USAGE) from exc
    try:
        _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", cwd=top)
    except (SideError, OSError) as exc:
        raise SideError(f"'{revision}' is not a policy directory, an artifact file, or a git revision "
                        f"of the repository at {directory}", EXIT_USAGE) from exc
    return top


def _from_git(revision: str, directory: Path) -> tuple[list[SourceFile], str]:
    """The policy files below `directory` as they are at `revision`, read from git objects."""
    top = _verify_revision(revision, directory)
    prefix = directory.resolve().relative_to(top.resolve()).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    names = _git("ls-tree", "-r", "--name-only", revision, "--", prefix or ".", cwd=top).splitlines()
    sources = []
    for name in sorted(names):
        rel = name[len(prefix):]
        if not rel.endswith(POLICY_SUFFIXES) or rel.endswith(TEST_SUFFIXES):
            continue
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        raw = subprocess.run(["git", "show", f"{revision}:{name}"], cwd=top, capture_output=True, check=True).stdout
        sources.append(SourceFile(rel, raw.decode("utf-8", errors="replace"), hashlib.sha256(raw).hexdigest()))
    return sources, f"{revision} ({prefix or './'})"


def _read_artifact(path: Path) -> dict[str, Any]:
    """An artifact file, verified the way the proxy verifies one before serving it (schema and revision)."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise SideError(f"{path}: cannot read: {exc.strerror or exc}", EXIT_USAGE) from exc
    except ValueError as exc:
        raise SideError(f"{path}: not a routing table (not JSON: {exc})", EXIT_USAGE) from exc
    try:
        from_data(data, str(path))
    except ArtifactError as exc:
        raise SideError(str(exc), EXIT_POLICY) from exc
    verified: dict[str, Any] = data
    return verified


def load_side(spec: str, directory: Path, *, is_base: bool = False) -> dict[str, Any]:
    """One side as an artifact. A base revision without policy files below `directory` (the change
    that adds the policy) is the empty policy, so everything the head defines shows as added."""
    path = Path(spec)
    if path.is_dir():
        result = compile_policy(path)
        label = str(path)
    elif path.is_file():
        return _read_artifact(path)
    else:
        sources, label = _from_git(spec, directory)
        empty = is_base and not sources
        if empty:
            print(f"policy diff: {label} has no policy files; compared as an empty policy", file=sys.stderr)
        result = compile_sources(sources, allow_empty=empty, in_git_repository=True)
    if result.artifact is None:
        sys.stderr.write(render_text(result.diagnostics, result.sources))
        raise SideError(f"{label} does not compile", EXIT_POLICY)
    return result.artifact.model_dump()


def run_diff(args: argparse.Namespace) -> int:
    try:
        base = load_side(args.base, args.dir, is_base=True)
        head = load_side(args.head, args.dir)
    except SideError as exc:
        print(f"policy diff: error: {exc}", file=sys.stderr)
        return exc.exit_code
    result = diff_tables(base, head, args.base, args.head)
    if args.format == "json":
        print(json.dumps(render_json(result), indent=2))
    elif args.format == "markdown":
        sys.stdout.write(render_markdown(result) + "\n")
    else:
        sys.stdout.write(render_diff(result))
    return EXIT_CHANGED if result.changed else EXIT_OK
