"""The per-process journal of the in-memory front: one line per admission and per settle, copied
into a shared memory map of the file before the call returns (no system call per line).

The map is `MAP_SHARED`, so its pages are the kernel's page cache: a line copied into it survives
the process (kill -9, OOM); a power loss can drop the last lines, as SQLite's `synchronous=NORMAL`
can drop the last commits. The file is allocated ahead of the lines (`INITIAL_BYTES`, doubled when
a line does not fit), so it ends in zeros until `close` truncates it to its lines; a reader stops
at the first zero byte. Lines are JSON arrays:
`["A", id, estimate, tokens, [[instance, window], ...], [token instance, ...]]` for an admission,
`["S", id, amount, tokens or null, how]` for a settle. The ledger's `journals` table records, per
owner, the file and the offset up to which its settles are written to the ledger (in the same
transaction that writes them), so recovery replays only what comes after.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
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


INITIAL_BYTES = 1 << 20
"""The file's first allocation: the front rotates its journal past 8 MiB, so it doubles a few times
at most."""


def journal_path(directory: Path, owner: str, generation: int) -> Path:
    digest = hashlib.sha256(owner.encode()).hexdigest()[:16]
    return directory / f"journal-{digest}-{generation}.log"


class Journal:
    """Writes one file, created at the first line; `offset` is the bytes of lines in it so far."""

    def __init__(self, path: Path, size: int = INITIAL_BYTES) -> None:
        self.path = path
        self._size = size
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._end = 0

    @property
    def offset(self) -> int:
        journal = self._map
        return self._end if journal is None else journal.tell()

    def admitted(self, line: Admitted) -> None:
        self._write(orjson.dumps(["A", line.reservation_id, line.estimate, line.tokens, line.counters,
                                  line.token_instances], option=orjson.OPT_APPEND_NEWLINE))

    def settled(self, reservation_id: str, amount: int, tokens: int | None, how: str) -> None:
        self._write(orjson.dumps(["S", reservation_id, amount, tokens, how], option=orjson.OPT_APPEND_NEWLINE))

    def _write(self, data: bytes) -> None:
        """`data`, one line with its newline, copied after the last line (`mmap.write` refuses
        with ValueError, writing nothing, a line that does not fit before the end of the map)."""
        journal = self._map
        if journal is None:
            journal = self._open()
        try:
            journal.write(data)
        except ValueError:
            self._grow(journal, len(data)).write(data)

    def _open(self) -> mmap.mmap:
        """The file mapped, its lines so far (none when new) kept. Its blocks are allocated up
        front (`posix_fallocate`), so a full disk fails here as an OSError, not as a SIGBUS at a
        line copied into a page the file system cannot back."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            end = os.fstat(fd).st_size
            size = max(self._size, 2 * end)
            os.posix_fallocate(fd, 0, size)
            journal = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        journal.seek(end)
        self._fd, self._map, self._size = fd, journal, size
        return journal

    def _grow(self, journal: mmap.mmap, needed: int) -> mmap.mmap:
        """The map doubled until `needed` more bytes fit after the last line (the file allocated
        first, then remapped)."""
        size = self._size
        while size - journal.tell() < needed:
            size *= 2
        os.posix_fallocate(self._fd, 0, size)
        journal.resize(size)
        self._size = size
        return journal

    def close(self) -> None:
        """Unmap and close; the file truncated to its lines, for whoever reads it next (a replay
        reads the zeros after them as the end all the same, so a truncation that fails is left)."""
        journal = self._map
        if journal is None:
            return
        self._end = journal.tell()
        self._map = None
        journal.close()
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._end)
        os.close(self._fd)
        self._fd = -1


def replay(path: Path, flushed: int) -> tuple[dict[str, Admitted], list[SettledLine], set[str]]:
    """A dead process's journal: every admission, the settles after `flushed` (not yet in the ledger)
    and the ids settled anywhere. The lines end at the first zero byte (a JSON line has none: the
    file's unwritten allocation, or a page a power loss did not write back) or at the end of the
    file (one a closed journal truncated, or one written before journals were mapped); a torn last
    line (a process killed, or a power loss, mid-line) is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, [], set()
    end_of_lines = data.find(b"\0")
    if end_of_lines >= 0:
        data = data[:end_of_lines]
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
