"""A process writing a journal it never closes, for the test that kills it with SIGKILL:
`python -m tests.support.journal_process <path> <requests> <initial bytes>`. It admits and settles
`requests` requests (`lines`), prints its offset and `ready`, then waits on stdin."""

from __future__ import annotations

import sys
from pathlib import Path

from runtime.ledger.journal import Admitted, Journal


def lines(requests: int) -> list[tuple[Admitted, int]]:
    """(admission, amount settled) of each request: ids and counters of varying length, so lines
    fall across the allocation's end at no fixed place."""
    return [(Admitted(f"r{n}-{'x' * (n % 13)}", 1000 + n, 50 + n, (("eng-daily", f"2026-11-{n % 30:02d}"),),
                      ("tpm",) * (n % 3)), 900 + n)
            for n in range(requests)]


def main() -> None:
    path, requests, size = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    journal = Journal(path, size)
    for admitted, amount in lines(requests):
        journal.admitted(admitted)
        journal.settled(admitted.reservation_id, amount, admitted.tokens, "usage")
    print(journal.offset, flush=True)
    print("ready", flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
