"""The compiler as a list of passes: load -> merge -> validate -> resolve -> check -> lower -> emit."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artifact import RoutingTable
from policy.dsl import parse_dsl
from policy.errors import LoadError
from policy.loader import Document, SourceFile, discover, parse, read_source
from policy.source import Span

from . import codes
from .checks import CHECKS, LOCAL_CHECKS
from .context import Context
from .diagnostics import Diagnostic, sort_diagnostics
from .documents import load_error_diagnostic
from .emit import build_artifact
from .index import SourceIndex
from .lower import lower
from .merge import merge
from .resolve import resolve
from .source_map import source_map
from .validate import validate


@dataclass
class CompileResult:
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)
    artifact: RoutingTable | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors) or (strict and bool(self.warnings))


def compile_policy(root: Path, now: datetime | None = None) -> CompileResult:
    """Compile every policy file below root."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    sources: list[SourceFile] = []
    diagnostics: list[Diagnostic] = []
    for path in discover(root):
        try:
            sources.append(read_source(root, path))
        except LoadError as exc:
            diagnostics.append(load_error_diagnostic(exc))
    result = compile_sources(sources, now, complete=not diagnostics, in_git_repository=inside_git_repository(root))
    result.diagnostics = sort_diagnostics([*diagnostics, *result.diagnostics])
    return result


def compile_sources(
    sources: list[SourceFile],
    now: datetime | None = None,
    *,
    complete: bool = True,
    allow_empty: bool = False,
    in_git_repository: bool = False,
) -> CompileResult:
    """Compile already-read files (from disk or from git objects).

    `complete=False` says some files of the repository could not be read: their entities are
    missing, so only per-file and per-entity problems are reported, not references between them.
    `allow_empty=True` compiles no files to the empty policy (no providers, keys or budgets)
    instead of reporting GP006, for the side of a diff that predates the policy.
    `in_git_repository=True` says the files are committed or about to be, so a literal secret in
    them has to be rotated.
    """
    # A compile allocates many long-lived objects and no cycles worth collecting; the cyclic
    # collector's full passes over a growing heap would make large repositories superlinear.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _compile_sources(sources, now, complete, allow_empty, in_git_repository)
    finally:
        if gc_was_enabled:
            # What the compile made and kept is old by now: it joins the oldest generation at once
            # (freeze then unfreeze moves every tracked object there without looking at any) rather
            # than being walked by the next young collection (0.12 s after a compile of 50k keys).
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def _compile_sources(
    sources: list[SourceFile], now: datetime | None, complete: bool, allow_empty: bool, in_git_repository: bool
) -> CompileResult:
    now = now or datetime.now(UTC)
    diagnostics: list[Diagnostic] = []
    documents: list[Document] = []
    for source in sorted(sources, key=lambda s: s.path):
        try:
            doc = parse_dsl(source) if source.path.endswith(".gp") else parse(source)
        except LoadError as exc:
            diagnostics.append(load_error_diagnostic(exc, source))
            documents.append(Document(source, None))
            complete = False
            continue
        diagnostics.extend(load_error_diagnostic(p, source) for p in doc.problems)
        documents.append(doc)
    texts = {s.path: s.text for s in sources}
    if not sources and not allow_empty:
        if complete:
            diagnostics.append(
                Diagnostic.of(
                    codes.NO_POLICY_FILES,
                    "no policy files (*.yaml, *.yml, *.gp) found",
                    None,
                    hint="folders whose name starts with '.' and *_test.yaml files are not read as policy",
                )
            )
        return CompileResult(sort_diagnostics(diagnostics), texts)

    index = SourceIndex()
    raw, found = merge(documents, index)
    del documents  # the index holds their span maps; their data is in `raw`
    diagnostics += found
    validated, found = validate(raw, index)
    diagnostics += found
    resolved = resolve(validated.policy)
    ctx = Context(validated.policy, index, validated.broken, resolved, now, _raw_dict(raw), in_git_repository)
    for check in CHECKS if complete else LOCAL_CHECKS:
        diagnostics.extend(check(ctx))
    if not complete:
        return CompileResult(sort_diagnostics(diagnostics), texts)
    result = CompileResult(sort_diagnostics(diagnostics), texts)
    if result.errors:
        return result
    # What no pass below needs is let go as soon as it is done with, so the next pass reuses its
    # memory rather than the process growing (fresh pages cost more than the work on them).
    policy = validated.policy
    del raw, ctx, validated
    lines = source_map(policy, resolved, index)
    del index
    table = lower(policy, resolved)
    del policy, resolved
    result.artifact = build_artifact(table, [(s.path, s.sha256) for s in sources], lines)
    return result


def inside_git_repository(root: Path) -> bool:
    """True when root or a folder above it holds `.git` (a directory, or a file in a worktree)."""
    here = root.resolve()
    return any((folder / ".git").exists() for folder in (here, *here.parents))


def load_diagnostics(source: SourceFile) -> list[Diagnostic]:
    """What reading one file reports before any check: syntax, repeated keys, keys that are not text.

    `policy fmt` refuses to lay out a file with such problems, reporting them as compile does."""
    try:
        doc = parse_dsl(source) if source.path.endswith(".gp") else parse(source)
    except LoadError as exc:
        return [load_error_diagnostic(exc, source)]
    return sort_diagnostics(load_error_diagnostic(p, source) for p in doc.problems)


def _raw_dict(raw: Any) -> dict[str, Any]:
    data: dict[str, Any] = dict(raw.sections)
    if raw.gateway is not None:
        data["gateway"] = raw.gateway
    return data


__all__ = ["CompileResult", "Span", "compile_policy", "compile_sources", "load_diagnostics"]
