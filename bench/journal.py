"""The in-memory front's journal alone: one admission line and one settle line per request, as the
front writes them, into a journal in a fresh directory; CPU µs per request, user and system (the
system part is what the lines cost the kernel: page faults of the map and its growth), median of
`--runs`. The directory defaults to one beside this file, on the file system the data directory
of a checkout would be on.

    .venv/bin/python bench/journal.py [--requests 100000] [--runs 5] [--dir PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from runtime.ledger.journal import Admitted, Journal

LINE = Admitted("0123456789abcdef0123456789abcdef", 1_234_567, 500,
                (("eng-daily", "2026-11-24"), ("org-monthly", "2026-11")), ("tpm",))


def one_run(directory: Path, requests: int) -> tuple[float, float]:
    journal = Journal(directory / "journal-bench.log")
    before = os.times()
    for _ in range(requests):
        journal.admitted(LINE)
        journal.settled(LINE.reservation_id, 1_000_000, 300, "usage")
    after = os.times()
    journal.close()
    (directory / "journal-bench.log").unlink()
    return (after.user - before.user) / requests * 1e6, (after.system - before.system) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        runs = [one_run(Path(directory), args.requests) for _ in range(args.runs)]
    user = statistics.median(run[0] for run in runs)
    system = statistics.median(run[1] for run in runs)
    print(f"journal  {user:.2f} user + {system:.2f} sys = {user + system:.2f} µs CPU/request")


if __name__ == "__main__":
    main()
