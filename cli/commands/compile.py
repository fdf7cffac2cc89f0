"""`policy compile`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from artifact import RoutingTable, write_to
from compiler import compile_policy, render_github, render_json, render_sarif, render_text
from compiler.diagnostics import summary_line
from compiler.version import COMPILER_VERSION

from ..exit_codes import EXIT_OK, EXIT_POLICY, EXIT_USAGE


def run_compile(args: argparse.Namespace) -> int:
    root: Path = args.directory
    if not root.is_dir():
        print(f"policy compile: error: {root}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    result = compile_policy(root)
    if args.format == "json":
        sys.stdout.write(render_json(result.diagnostics))
    elif args.format == "sarif":
        base = _base(root)
        sys.stdout.write(render_sarif(result.diagnostics, root_prefix=_prefix(root, base), version=COMPILER_VERSION,
                                      srcroot_uri=base.as_uri() + "/"))
    elif args.format == "github":
        sys.stdout.write(render_github(result.diagnostics, root_prefix=_prefix(root, _base(root))))
    elif result.diagnostics:
        sys.stderr.write(render_text(result.diagnostics, result.sources))
    failed = result.failed(strict=args.strict)
    if result.artifact is not None and args.output is not None and not failed:
        try:
            _write(args.output, result.artifact)
        except OSError as exc:
            print(f"policy compile: error: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
    if not args.quiet and args.format == "text":
        verdict = "failed" if failed else "ok"
        detail = ""
        if result.artifact is not None and not failed:
            table = result.artifact.table
            detail = (
                f"; {len(table.virtual_keys)} virtual keys, {len(table.providers)} providers, "
                f"{len(table.models)} models, {len(table.budgets)} budget instances"
                + (f", {len(table.rate_limits)} rate limit instances" if table.rate_limits else "")
                + f"; revision {result.artifact.revision[:19]}"
            )
        print(f"{root}: {verdict}: {summary_line(result.diagnostics)}{detail}", file=sys.stderr)
    return EXIT_POLICY if failed else EXIT_OK


def _base(root: Path) -> Path:
    """The directory annotation and SARIF paths are relative to: the git repository holding root, else
    the working directory, or root itself when it lies outside the working directory."""
    try:
        proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                              check=False)
    except OSError:
        proc = None
    if proc is not None and proc.returncode == 0 and proc.stdout.strip():
        return Path(proc.stdout.strip()).resolve()
    try:
        root.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return root.resolve()
    return Path.cwd().resolve()


def _prefix(root: Path, base: Path) -> str:
    """Path from base to root, so annotations name repository paths."""
    try:
        rel = root.resolve().relative_to(base)
    except ValueError:
        return ""
    text = rel.as_posix()
    return "" if text == "." else text + "/"


def _write(target: Path, artifact: RoutingTable) -> None:
    if str(target) == "-":
        write_to(artifact, sys.stdout.buffer)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            write_to(artifact, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
