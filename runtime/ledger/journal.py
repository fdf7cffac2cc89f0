"""The per-process journal of the in-memory front: one line per admission and per settle, written
with `os.write` on an `O_APPEND` descriptor before the call returns.

A line in the kernel's page cache survives the process (kill -9, OOM); a power loss can drop the
last lines, as SQLite's `synchronous=NORMAL` can drop the last commits. Lines are JSON arrays:
`["A", id, estimate, tokens, [[instance, window], ...], [token instance, ...]]` for an admission,
`["S", id, amount, tokens or null, how]` for a settle. The ledger's `journals` table records, per
owner, the file and the offset up to which its settles are written to the ledger (in the same
transaction that writes them), so recovery replays only what comes after.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import orjson


class Admitted(NamedTuple):
    """An admission line (one per request admitted in memory: a named tuple, cheap to build)."""

    reservation_id: str
    estimate: int
    tokens: int
    counters: tuple[tuple[str, str], ...]
    token_instances: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SettledLine:
    reservation_id: str
    amount: int
    tokens: int | None
    how: str


def journal_path(directory: Path, owner: str, generation: int) -> Path:
    digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
    return directory / f"journal-{digest}-{generation}.log"


class Journal:
    """Appends to one file, created at the first line; `offset` is the bytes written so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self.offset = 0

    def admitted(self, line: Admitted) -> None:
        self._write(orjson.dumps(["A", line.reservation_id, line.estimate, line.tokens, line.counters,
                                  line.token_instances], option=orjson.OPT_APPEND_NEWLINE))

    def settled(self, reservation_id: str, amount: int, tokens: int | None, how: str) -> None:
        self._write(orjson.dumps(["S", reservation_id, amount, tokens, how], option=orjson.OPT_APPEND_NEWLINE))

    def _write(self, data: bytes) -> None:
        """`data`, one line with its newline, appended."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(self._fd, data)
        self.offset += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def replay(path: Path, flushed: int) -> tuple[dict[str, Admitted], list[SettledLine], set[str]]:
    """A dead process's journal: every admission, the settles after `flushed` (not yet in the ledger)
    and the ids settled anywhere. A torn last line (a power loss mid-write) is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, [], set()
    admitted: dict[str, Admitted] = {}
    unwritten: list[SettledLine] = []
    settled: set[str] = set()
    position = 0
    for raw in data.split(b"\n"):
        end = position + len(raw) + 1
        try:
            item = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            item = None
        if isinstance(item, list) and item and item[0] == "A":
            admitted[item[1]] = Admitted(item[1], int(item[2]), int(item[3]),
                                         tuple((i, w) for i, w in item[4]), tuple(item[5]))
        elif isinstance(item, list) and item and item[0] == "S":
            settled.add(item[1])
            if end > flushed:
                unwritten.append(SettledLine(item[1], int(item[2]), None if item[3] is None else int(item[3]), item[4]))
        position = end
    return admitted, unwritten, settled
