"""`policy fmt [--check]`."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from compiler import compile_sources, load_diagnostics, render_text
from policy.fmt import format_text
from policy.loader import SourceFile, discover, read_source

from ..exit_codes import EXIT_OK, EXIT_POLICY, EXIT_USAGE


def _revision(sources: list[SourceFile]) -> str | None:
    result = compile_sources(sources)
    return result.artifact.revision if result.artifact is not None else None


def run_fmt(args: argparse.Namespace) -> int:
    root: Path = args.directory
    if not root.is_dir():
        print(f"policy fmt: error: {root}: not a directory", file=sys.stderr)
        return EXIT_USAGE
    sources = [read_source(root, p) for p in discover(root)]
    changed: dict[str, str] = {}
    for source in sources:
        if not source.path.endswith((".yaml", ".yml")):
            continue
        problems = load_diagnostics(source)
        if problems:
            sys.stderr.write(render_text(problems, {source.path: source.text}) + "\n")
            print(f"{source.path}: cannot format: fix what compile reports first", file=sys.stderr)
            return EXIT_POLICY
        try:
            formatted = format_text(source.text)
        except Exception as exc:  # noqa: BLE001 - ruamel raises many kinds; the file is left alone and reported
            print(f"{source.path}: cannot format: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
            return EXIT_POLICY
        if formatted != source.text:
            changed[source.path] = formatted
    if changed:
        after = [SourceFile(s.path, changed.get(s.path, s.text), s.sha256) for s in sources]
        if _revision(after) != _revision(sources):
            print("policy fmt: error: formatting would change what the policy decides; nothing written "
                  "(please report this as a bug)", file=sys.stderr)
            return EXIT_USAGE
    for path, text in sorted(changed.items()):
        if args.check:
            old = next(s.text for s in sources if s.path == path)
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True), f"a/{path}", f"b/{path}"))
        else:
            (root / path).write_text(text)
            print(f"formatted {path}", file=sys.stderr)
    if args.check and changed:
        print(f"{len(changed)} file(s) not in canonical layout: run `policy fmt {root}`", file=sys.stderr)
        return EXIT_POLICY
    return EXIT_OK
