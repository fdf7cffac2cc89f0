"""Secrets found in a policy never reach the output: CI logs and code scanning keep what they are shown.

A diagnostic about a secret carries the value (`Diagnostic.secret`, never rendered); each renderer
masks every such value wherever it would print it, in messages, hints and quoted source lines, as
its first few characters and its length.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SHOWN = 4


def mask(secret: str) -> str:
    """`sk-proj-abc…` as `sk-p…(51 chars)`: enough to find the line, too little to use."""
    return f"{secret[: min(SHOWN, len(secret) // 4)]}…({len(secret)} chars)"


def redact_text(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, mask(secret))
    return text


@dataclass(frozen=True)
class _Replacement:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class RedactedLine:
    """A source line with its secrets masked, and where the old columns moved to."""

    text: str
    replacements: tuple[tuple[_Replacement, int], ...]

    def column(self, col: int, *, end: bool = False) -> int:
        """The 1-based column `col` of the original line in the masked one; a column inside a masked
        value moves to the start of its mask, or past it for the `end` of a range."""
        shift = 0
        for r, new_start in self.replacements:
            p = col - 1
            if p <= r.start:
                return p + shift + 1
            if p < r.end:
                return (new_start + len(r.text) if end else new_start) + 1
            shift = new_start + len(r.text) - r.end
        return col + shift


def redact_line(line: str, secrets: Iterable[str], regions: Iterable[tuple[int, int, str]] = ()) -> RedactedLine:
    """Mask each occurrence of a secret, and each `(start, end, secret)` region (0-based, end
    exclusive) that holds no verbatim occurrence (an escaped or quoted-over value)."""
    found: list[_Replacement] = []
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        at = line.find(secret)
        while at >= 0:
            found.append(_Replacement(at, at + len(secret), mask(secret)))
            at = line.find(secret, at + len(secret))
    for start, end, secret in regions:
        if not any(r.start < end and start < r.end for r in found):
            found.append(_Replacement(start, min(end, len(line)), mask(secret)))
    kept: list[_Replacement] = []
    for r in sorted(found, key=lambda r: (r.start, -r.end)):
        if kept and r.start < kept[-1].end:
            continue
        kept.append(r)
    pieces: list[str] = []
    placed: list[tuple[_Replacement, int]] = []
    cursor = 0
    length = 0
    for r in kept:
        pieces.append(line[cursor : r.start])
        length += r.start - cursor
        placed.append((r, length))
        pieces.append(r.text)
        length += len(r.text)
        cursor = r.end
    pieces.append(line[cursor:])
    return RedactedLine("".join(pieces), tuple(placed))
