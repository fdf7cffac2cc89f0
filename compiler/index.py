"""The merged source index: where every path of the merged policy was written."""

from __future__ import annotations

from dataclasses import dataclass, field

from policy.loader import SourceFile
from policy.source import Path, Span

Spans = tuple[dict[Path, Span], dict[Path, Span]]
"""A file's spans, as the loader recorded them: of values, and of mapping keys."""


@dataclass
class SourceIndex:
    """Spans by path. A path below an entity (or a gateway setting) is looked up in the spans of
    the file that defines it, `owners`, rather than in one map they were all copied into: at 50k
    keys that copy was 1.2M spans. `values` and `keys` hold the rest (the files' roots and
    sections), or everything for an index made from maps (a `*_test.yaml` file)."""

    files: dict[str, SourceFile] = field(default_factory=dict)
    values: dict[Path, Span] = field(default_factory=dict)
    keys: dict[Path, Span] = field(default_factory=dict)
    owners: dict[Path, Spans] = field(default_factory=dict)
    """(section, id or setting) -> the spans of the file it was kept from."""

    def value(self, *path: str | int) -> Span | None:
        """The span of the value at path, or of its nearest written ancestor."""
        p: Path = tuple(path)
        while p:
            span = self._spans(p)[0].get(p)
            if span is not None:
                return span
            p = p[:-1]
        return None

    def key(self, *path: str | int) -> Span | None:
        """The span of the key naming path (an entity id, a field name), else of its value."""
        p: Path = tuple(path)
        while p:
            values, keys = self._spans(p)
            span = keys.get(p) or values.get(p)
            if span is not None:
                return span
            p = p[:-1]
        return None

    def written_key(self, *path: str | int) -> Span | None:
        """The span of the key naming path, when that key itself was written."""
        return self._spans(path)[1].get(path)

    def own(self, owner: Path, spans: Spans) -> None:
        """Look up the paths below `owner` in `spans`."""
        self.owners[owner] = spans

    def _spans(self, path: Path) -> Spans:
        owned = self.owners.get(path[:2]) if len(path) > 1 else None
        return owned if owned is not None else (self.values, self.keys)

    def texts(self) -> dict[str, str]:
        return {name: f.text for name, f in self.files.items()}
