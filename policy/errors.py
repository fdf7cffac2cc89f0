"""The language's exceptions. Its checks report Diagnostics; an exception is raised only where a
file cannot become data at all, and the compiler turns it into a located diagnostic:

    LoadError      a policy or test file that cannot be read or parsed (YAML or DSL syntax,
                   nesting too deep, an unreadable file); carries its stable code (GP001,
                   GP002, GP1xx), the span and an optional hint. Catch it around `read_source`,
                   `parse` and `parse_dsl`.
"""

from __future__ import annotations

from .source import Span


class LoadError(Exception):
    """A file that cannot be turned into data; carries the code and where it happened."""

    def __init__(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.span = span
        self.hint = hint
