"""Where a piece of policy came from: a file and a 1-based line and column range."""

from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """A NamedTuple rather than a dataclass: the loader makes one per YAML node."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    @property
    def short(self) -> str:
        """`file:line`, the form used in artifacts' source maps and in runtime messages."""
        return f"{self.file}:{self.line}"


Path = tuple[str | int, ...]
