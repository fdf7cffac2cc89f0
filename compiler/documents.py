"""One file checked against one model on its own, outside a policy: a `*_test.yaml` file of
`policy test` cases. Its problems are the compiler's diagnostics, located, coded and hinted the
same way as a policy file's."""

from __future__ import annotations

import re
from typing import TypeVar

from pydantic import BaseModel

from policy.errors import LoadError
from policy.loader import Document, SourceFile

from .checks.secrets import looks_like_secret
from .codes import BY_CODE
from .diagnostics import Diagnostic, sort_diagnostics
from .index import SourceIndex
from .validate import validate_model

M = TypeVar("M", bound=BaseModel)


def load_error_diagnostic(exc: LoadError, source: SourceFile | None = None) -> Diagnostic:
    """A reading problem as a diagnostic. A file that cannot be read as data is never checked for
    secrets, yet its diagnostic quotes the line it stopped at: given the file, a secret-looking
    token on that line is masked like any found secret."""
    secret = _secret_on_line(source, exc.span.line) if source is not None else None
    return Diagnostic.of(BY_CODE[exc.code], exc.message, exc.span, hint=exc.hint, secret=secret)


def _secret_on_line(source: SourceFile, line: int) -> str | None:
    found = [t for t in (t.rstrip(":.") for t in _TOKEN.findall(source.line(line))) if looks_like_secret(t)]
    return max(found, key=len) if found else None


_TOKEN = re.compile(r"[A-Za-z0-9_\-+/=.:]{16,}")


def validate_document(model_cls: type[M], doc: Document) -> tuple[M | None, list[Diagnostic]]:
    """The document as `model_cls`, or None with every problem (sorted) when it is not one."""
    index = SourceIndex({doc.source.path: doc.source}, dict(doc.values), dict(doc.keys))
    diagnostics = [load_error_diagnostic(p, doc.source) for p in doc.problems]
    model = validate_model(model_cls, doc.data, index, diagnostics)
    if diagnostics:
        return None, sort_diagnostics(diagnostics)
    return model, []
