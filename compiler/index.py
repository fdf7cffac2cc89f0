"""The merged source index: where every path of the merged policy was written."""

from __future__ import annotations

from dataclasses import dataclass, field

from policy.loader import SourceFile
from policy.source import Path, Span


@dataclass
class SourceIndex:
    files: dict[str, SourceFile] = field(default_factory=dict)
    values: dict[Path, Span] = field(default_factory=dict)
    keys: dict[Path, Span] = field(default_factory=dict)

    def value(self, *path: str | int) -> Span | None:
        """The span of the value at path, or of its nearest written ancestor."""
        p: Path = tuple(path)
        while p:
            span = self.values.get(p)
            if span is not None:
                return span
            p = p[:-1]
        return None

    def key(self, *path: str | int) -> Span | None:
        """The span of the key naming path (an entity id, a field name), else of its value."""
        p: Path = tuple(path)
        while p:
            span = self.keys.get(p) or self.values.get(p)
            if span is not None:
                return span
            p = p[:-1]
        return None

    def texts(self) -> dict[str, str]:
        return {name: f.text for name, f in self.files.items()}
