"""One file checked against one model on its own, outside a policy: a `*_test.yaml` file of
`policy test` cases. Its problems are the compiler's diagnostics, located, coded and hinted the
same way as a policy file's."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from policy.errors import LoadError
from policy.loader import Document

from .codes import BY_CODE
from .diagnostics import Diagnostic, sort_diagnostics
from .index import SourceIndex
from .validate import validate_model

M = TypeVar("M", bound=BaseModel)


def load_error_diagnostic(exc: LoadError) -> Diagnostic:
    return Diagnostic.of(BY_CODE[exc.code], exc.message, exc.span, hint=exc.hint)


def validate_document(model_cls: type[M], doc: Document) -> tuple[M | None, list[Diagnostic]]:
    """The document as `model_cls`, or None with every problem (sorted) when it is not one."""
    index = SourceIndex({doc.source.path: doc.source}, dict(doc.values), dict(doc.keys))
    diagnostics = [load_error_diagnostic(p) for p in doc.problems]
    model = validate_model(model_cls, doc.data, index, diagnostics)
    if diagnostics:
        return None, sort_diagnostics(diagnostics)
    return model, []
