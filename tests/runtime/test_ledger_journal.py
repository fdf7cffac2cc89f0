"""The front's journal as recovery reads it: a file mapped and allocated ahead of its lines, so it
ends in zeros until closed; lines across the allocation's end; a journal written by a process
killed with SIGKILL (mapped, never closed); and a file written before journals were mapped."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import orjson

from runtime.ledger.journal import Admitted, Journal, SettledLine, replay
from tests.support.journal_process import lines

ROOT = Path(__file__).resolve().parents[2]
EVE = Admitted("eve", 5000, 120, (("eng-daily", "2026-11-24"), ("org-monthly", "2026-11")), ("tpm",))
BOB = Admitted("bob", 7000, 80, (("eng-daily", "2026-11-24"),), ())


def written(journal: Journal) -> None:
    journal.admitted(EVE)
    journal.admitted(BOB)
    journal.settled("eve", 4100, 300, "usage")


def old_format_bytes() -> bytes:
    """What the journal wrote with `os.write` on an `O_APPEND` descriptor: the lines and no more."""
    return b"".join(orjson.dumps(item, option=orjson.OPT_APPEND_NEWLINE) for item in (
        ["A", EVE.reservation_id, EVE.estimate, EVE.tokens, EVE.counters, EVE.token_instances],
        ["A", BOB.reservation_id, BOB.estimate, BOB.tokens, BOB.counters, BOB.token_instances],
        ["S", "eve", 4100, 300, "usage"],
    ))


def test_an_open_journal_ends_in_zeros_and_replays_its_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "journal-open.log"
    journal = Journal(path)
    assert not path.exists(), "created at the first line"
    written(journal)
    data = path.read_bytes()
    assert journal.offset == len(old_format_bytes()) and data[:journal.offset] == old_format_bytes()
    assert len(data) > journal.offset and data[journal.offset:].count(0) == len(data) - journal.offset
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert replay(path, 0) == ({"eve": EVE, "bob": BOB}, [SettledLine("eve", 4100, 300, "usage")], {"eve"})
    assert replay(path, journal.offset) == ({"eve": EVE, "bob": BOB}, [], {"eve"}), "its settle already written"
    journal.close()


def test_a_closed_journal_is_truncated_to_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "journal-closed.log"
    journal = Journal(path)
    written(journal)
    journal.close()
    assert path.read_bytes() == old_format_bytes()
    assert journal.offset == len(old_format_bytes())


def test_a_journal_written_before_journals_were_mapped_replays_the_same(tmp_path: Path) -> None:
    old, new = tmp_path / "journal-old.log", tmp_path / "journal-new.log"
    old.write_bytes(old_format_bytes())
    journal = Journal(new)
    written(journal)
    for flushed in (0, len(old_format_bytes()) - 1, len(old_format_bytes())):
        assert replay(old, flushed) == replay(new, flushed)
    torn = old_format_bytes() + b'["S","bob",69'
    old.write_bytes(torn)
    assert replay(old, 0) == ({"eve": EVE, "bob": BOB}, [SettledLine("eve", 4100, 300, "usage")], {"eve"}), (
        "a torn last line skipped, as before")
    journal.close()


def test_a_torn_line_before_the_zeros_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "journal-torn.log"
    path.write_bytes(old_format_bytes() + b'["S","bob",69' + bytes(4096))
    assert replay(path, 0) == ({"eve": EVE, "bob": BOB}, [SettledLine("eve", 4100, 300, "usage")], {"eve"})


def test_the_first_zero_byte_ends_the_lines(tmp_path: Path) -> None:
    """A page a power loss did not write back reads as zeros: the lines are what comes before it,
    the last lines lost as the README states, never lines read out of order."""
    path = tmp_path / "journal-hole.log"
    eve_admitted = old_format_bytes().split(b"\n")[0] + b"\n"
    path.write_bytes(eve_admitted + bytes(4096) + old_format_bytes()[len(eve_admitted):] + bytes(4096))
    assert replay(path, 0) == ({"eve": EVE}, [], set())


def test_lines_past_the_first_allocation_grow_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "journal-grown.log"
    journal = Journal(path, size=256)
    expected = b""
    for admitted, amount in lines(40):
        journal.admitted(admitted)
        journal.settled(admitted.reservation_id, amount, None, "usage")
        expected += orjson.dumps(["A", admitted.reservation_id, admitted.estimate, admitted.tokens,
                                  admitted.counters, admitted.token_instances], option=orjson.OPT_APPEND_NEWLINE)
        expected += orjson.dumps(["S", admitted.reservation_id, amount, None, "usage"],
                                 option=orjson.OPT_APPEND_NEWLINE)
    assert len(expected) > 8 * 256, "grown more than once"
    assert expected[255:256] != b"\n", "a line crosses the first allocation's end"
    assert journal.offset == len(expected) and path.read_bytes()[:len(expected)] == expected
    admitted_lines, settles, _ = replay(path, 0)
    assert list(admitted_lines.values()) == [admitted for admitted, _ in lines(40)]
    assert settles == [SettledLine(admitted.reservation_id, amount, None, "usage") for admitted, amount in lines(40)]
    journal.close()
    assert path.read_bytes() == expected


def test_a_reopened_journal_writes_after_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "journal-reopened.log"
    journal = Journal(path)
    journal.admitted(EVE)
    journal.close()
    journal.admitted(BOB)
    journal.settled("eve", 4100, 300, "usage")
    assert replay(path, 0) == ({"eve": EVE, "bob": BOB}, [SettledLine("eve", 4100, 300, "usage")], {"eve"})
    journal.close()
    assert path.read_bytes() == old_format_bytes()


def test_a_killed_process_journal_mapped_and_never_closed_replays_every_line(tmp_path: Path) -> None:
    path = tmp_path / "journal-killed.log"
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.journal_process", str(path), "300", "4096"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ})
    assert proc.stdout is not None
    offset = int(proc.stdout.readline())
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    data = path.read_bytes()
    assert offset > 4 * 4096 and len(data) > offset and not data[offset:].strip(b"\0"), "grown, its zeros left"
    admitted_lines, settles, settled = replay(path, 0)
    assert list(admitted_lines.values()) == [admitted for admitted, _ in lines(300)]
    assert settles == [SettledLine(admitted.reservation_id, amount, admitted.tokens, "usage")
                       for admitted, amount in lines(300)]
    assert settled == {admitted.reservation_id for admitted, _ in lines(300)}
