"""Loading a table from a policy directory or an artifact, and swapping it in without a restart.

A new table is compiled (or loaded) and verified completely before it replaces the serving one;
if anything is wrong the old table keeps serving and the failure is logged with its diagnostics.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from compiler import compile_policy, render_text

from .access_log import EventLog
from .app import Gatepost
from .state import build_serving, close_unused, with_credentials
from .table import LoadedTable, TableError, load_table, table_from_artifact


class PolicyError(Exception):
    """A policy directory that does not compile; `report` is the rendered diagnostics."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


def load_source(source: Path) -> LoadedTable:
    """Compile a policy directory, or load and verify an artifact file."""
    if source.is_dir():
        result = compile_policy(source)
        if result.artifact is None:
            raise PolicyError(render_text(result.diagnostics, result.sources))
        return table_from_artifact(dict(result.artifact), str(source))
    return load_table(source)


def fingerprint(source: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when the source changes: every file's path, size and mtime."""
    paths = [p for p in sorted(source.rglob("*")) if p.is_file()] if source.is_dir() else [source]
    found = []
    for path in paths:
        try:
            st = path.stat()
        except OSError:
            continue
        found.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(found)


class Reloader:
    def __init__(self, app: Gatepost, source: Path, events: EventLog, retire_grace_s: float = 30.0) -> None:
        self.app = app
        self.source = source
        self.events = events
        self.retire_grace_s = retire_grace_s
        self.retiring: set[asyncio.Task[None]] = set()
        """The retirements of transports a reload dropped, each waiting out its grace: held so the
        loop does not lose them, and awaitable by whoever needs them done."""
        self._lock = asyncio.Lock()
        self._seen = fingerprint(source)

    async def reload(self, reason: str) -> bool:
        async with self._lock:
            self._seen = fingerprint(self.source)
            try:
                table = await asyncio.to_thread(load_source, self.source)
            except (PolicyError, TableError, OSError) as exc:
                self.app.metrics.reloads.inc("failed")
                report = exc.report if isinstance(exc, PolicyError) else str(exc)
                self.events.event(
                    "reload_refused", reason=reason, serving=self.app.serving.table.revision, diagnostics=report
                )
                return False
            old = self.app.serving
            if table.revision == old.table.revision:
                rotated = with_credentials(old)
                if rotated is None:
                    self.events.event("reload_unchanged", reason=reason, revision=table.revision)
                    return True
                self.app.serving = rotated
                self.events.event(
                    "credentials_reloaded", reason=reason, revision=table.revision,
                    providers=sorted(p for p in rotated.table.providers
                                     if rotated.credentials.get(p) != old.credentials.get(p)),
                )
                for pid, problem in rotated.credential_problems.items():
                    self.events.event("credential_missing", provider=pid, problem=problem)
                return True
            new = build_serving(table, old)
            self.app.serving = new
            self.app.metrics.reloads.inc("ok")
            self.app.metrics.set_revision(table.revision)
            self.events.event("reloaded", reason=reason, revision=table.revision, previous=old.table.revision)
            for pid, problem in new.credential_problems.items():
                self.events.event("credential_missing", provider=pid, problem=problem)
            retiring = asyncio.get_running_loop().create_task(close_unused(old, new, self.retire_grace_s))
            self.retiring.add(retiring)
            retiring.add_done_callback(self.retiring.discard)
            return True

    async def watch(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            current = await asyncio.to_thread(fingerprint, self.source)
            if current != self._seen:
                await self.reload("changed")

    def install_sighup(self) -> None:
        loop = asyncio.get_running_loop()
        if hasattr(signal, "SIGHUP") and os.name == "posix":
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload("SIGHUP")))
