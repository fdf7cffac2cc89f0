"""Several processes (or worker threads) opening one new ledger file at the same moment, as
`policy serve --workers N` does on a fresh data directory: every one of them opens it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from runtime.ledger.activity import open_activity_db
from runtime.ledger.base import LedgerError
from runtime.ledger.sqlite import SqliteLedger

OPENERS = 16


def open_all_at_once(data: Path, open_one: Callable[[Path], None]) -> list[LedgerError]:
    start = threading.Barrier(OPENERS)
    failures: list[LedgerError] = []

    def opener() -> None:
        start.wait()
        try:
            open_one(data)
        except LedgerError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(OPENERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_a_new_ledger_file_opened_by_many_at_once_opens_for_all_of_them_in_wal_mode(tmp_path: Path) -> None:
    for attempt in range(100):
        data = tmp_path / f"fresh-{attempt}"
        assert open_all_at_once(data, lambda where: SqliteLedger(where).close()) == []
        ledger = SqliteLedger(data)
        assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        ledger.close()


def test_the_activity_tables_open_beside_the_ledger_at_once_as_well(tmp_path: Path) -> None:
    for attempt in range(100):
        data = tmp_path / f"fresh-{attempt}"

        def open_both(where: Path) -> None:
            SqliteLedger(where).close()
            open_activity_db(where).close()

        assert open_all_at_once(data, open_both) == []
