"""Swapping a new routing table in without a restart.

The reloader is given the function that loads its source (the CLI passes one that compiles a
policy directory or verifies an artifact), so the runtime never sees the compiler. A new table is
loaded and verified completely before it replaces the serving one; if anything is wrong the old
table keeps serving and the failure is logged with its report (a policy's diagnostics).

The table it replaces is not let go of on the swap: freeing a large table is one uninterrupted
cascade of deallocations (150 ms at 50k keys) that would stall every request. It is held until no
`Serving` built on it is left (a request keeps the one it started with), then emptied a thousand
entries per turn of the loop (`table.release_steps`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .access_log import EventLog
from .app import Gatepost
from .credentials import changed_providers, missing_reports
from .state import Serving, build_serving, close_unused, unused_transports, with_credentials
from .table import LoadedTable, TableError, release_steps

LoadSource = Callable[[Path], LoadedTable]
"""Loads and verifies a table from its source, raising TableError (or OSError) when it must not
be served; the error's text is what the `reload_refused` event reports."""


SourceFiles = Callable[[Path], list[Path]]
"""The files a table is loaded from: an artifact, or the policy files of a directory that the
compiler reads (the CLI passes the compiler's own list). Only these are watched, so a ledger, an
editor's swap file or a `*_test.yaml` beside the policy is never taken for a policy change."""


def fingerprint(source: Path, files: SourceFiles) -> tuple[tuple[str, int, int], ...]:
    """What changes when the source changes: each source file's path, size and mtime."""
    try:
        paths = files(source)
    except OSError:
        return ()
    found = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        found.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(found)


LOADING_SWITCH_INTERVAL_S = 0.0001


@contextmanager
def short_switches() -> Iterator[None]:
    """While a table loads in a thread, the serving loop gets the interpreter lock back sooner.

    The loop lets go of the lock at every system call (each read, write and poll of a request);
    taking it back from a thread that computes waits for the switch interval, 5 ms by default, and
    a request makes a dozen such calls (more, with its upstream's): 50-100 ms per request while a
    10k-key table loads. At a tenth of a millisecond the loading thread is interrupted more often
    only while the loop has work, which costs it little; half a millisecond still left 40-190 ms
    per request at 50k keys on the shared 2-core machine, a tenth 29-42 ms in the same hour."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, LOADING_SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


class Reloader:
    def __init__(
        self, app: Gatepost, source: Path, load: LoadSource, files: SourceFiles, events: EventLog,
        retire_grace_s: float = 30.0, release_grace_s: float = 1.0, release_poll_s: float = 1.0,
    ) -> None:
        self.app = app
        self.source = source
        self.load = load
        self.files = files
        self.events = events
        self.retire_grace_s = retire_grace_s
        self.retiring: set[asyncio.Task[None]] = set()
        """The retirements of transports a reload dropped, each waiting out its grace: held so the
        loop does not lose them, and awaitable by whoever needs them done."""
        self.release_grace_s = release_grace_s
        """How long a replaced table is kept after its last `Serving` is gone, for a reader that took
        the table itself from the `Serving` just before the swap (the admin API's listings, run in a
        thread)."""
        self.release_poll_s = release_poll_s
        self.releasing: set[asyncio.Task[None]] = set()
        """The replaced tables waiting for their last request, then being taken apart."""
        self._servings: list[weakref.ref[Serving]] = [weakref.ref(app.serving)]
        """Every `Serving` built on the table being served (a credential rotation builds another)."""
        self._lock = asyncio.Lock()
        self._seen = fingerprint(source, files)

    async def reload(self, reason: str) -> bool:
        async with self._lock:
            try:
                with short_switches():
                    self._seen = await asyncio.to_thread(fingerprint, self.source, self.files)
                    table = await asyncio.to_thread(self.load, self.source)
            except (TableError, OSError) as exc:
                self.app.metrics.reloads.inc("failed")
                report = str(exc)
                self.events.event(
                    "reload_refused", reason=reason, serving=self.app.serving.table.revision, diagnostics=report
                )
                return False
            old = self.app.serving
            if table.revision == old.table.revision:
                rotated = with_credentials(old)
                if rotated is None:
                    self.events.event("reload_unchanged", reason=reason, revision=table.revision)
                    self._discard(table, old)
                    return True
                self.app.serving = rotated
                self._servings.append(weakref.ref(rotated))
                self.events.event(
                    "credentials_reloaded", reason=reason, revision=table.revision,
                    providers=sorted(set(changed_providers(old.credentials, rotated.credentials))
                                     | {p for p in rotated.table.providers
                                        if rotated.cloud_credentials.get(p) != old.cloud_credentials.get(p)}),
                )
                self._retire(old, rotated)
                self._discard(table, old)
                for missing in missing_reports(rotated.table.providers, rotated.credential_problems):
                    self.events.event("credential_missing", **missing)
                return True
            new = build_serving(table, old)
            self.app.serving = new
            self.app.metrics.reloads.inc("ok")
            self.app.metrics.set_revision(table.revision)
            self.events.event("reloaded", reason=reason, revision=table.revision, previous=old.table.revision)
            for missing in missing_reports(new.table.providers, new.credential_problems):
                self.events.event("credential_missing", **missing)
            self._retire(old, new)
            self._release(old)
            return True

    def _retire(self, old: Serving, new: Serving) -> None:
        """Close, after their grace, the transports `new` no longer uses (a rotated cloud key's)."""
        unused = unused_transports(old, new)
        retiring = asyncio.get_running_loop().create_task(close_unused(unused, self.retire_grace_s))
        self.retiring.add(retiring)
        retiring.add_done_callback(self.retiring.discard)

    def _release(self, old: Serving) -> None:
        """Take the replaced table apart once no request reads it: the `Serving`s built on it are
        held by nothing but weak references from here on."""
        servings, self._servings = [*self._servings, weakref.ref(old)], [weakref.ref(self.app.serving)]
        self._take_apart_later(old.table, servings)

    def _discard(self, table: LoadedTable, serving: Serving) -> None:
        """Take apart a table loaded again with the revision being served: `serving` keeps its own."""
        if table is not serving.table:
            self._take_apart_later(table, [])

    def _take_apart_later(self, table: LoadedTable, servings: list[weakref.ref[Serving]]) -> None:
        releasing = asyncio.get_running_loop().create_task(self._take_apart(table, servings))
        self.releasing.add(releasing)
        releasing.add_done_callback(self.releasing.discard)

    async def _take_apart(self, table: LoadedTable, servings: list[weakref.ref[Serving]]) -> None:
        while any(ref() is not None for ref in servings):
            await asyncio.sleep(self.release_poll_s)
        await asyncio.sleep(self.release_grace_s)
        for _ in release_steps(table):
            await asyncio.sleep(0)

    async def watch(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            current = await asyncio.to_thread(fingerprint, self.source, self.files)
            if current != self._seen:
                await self.reload("changed")

    def install_sighup(self) -> None:
        loop = asyncio.get_running_loop()
        if hasattr(signal, "SIGHUP") and os.name == "posix":
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload("SIGHUP")))
