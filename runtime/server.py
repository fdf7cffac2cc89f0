"""The proxy under uvicorn, with its ledger kept and its table reloaded on SIGHUP and on change."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from .access_log import AccessLog, EventLog
from .app import Gatepost
from .budget.gate import BudgetGate
from .credentials import missing_reports
from .inbound import bounded_protocol
from .ledger.activity import Activity, keep_activity, open_activity_db
from .ledger.base import Ledger, LedgerError
from .ledger.front import FLUSH_S, FrontLedger
from .ledger.location import default_data_dir
from .ledger.sqlite import SqliteLedger
from .listen import address, bound_port, listen
from .metrics import Metrics
from .readiness import ProbedLedger, keep_probing
from .reload import LoadSource, Reloader, SourceFiles
from .state import build_serving
from .table import LoadedTable

RECOVERED_AT = "at estimate, or the actual its journal recorded"
DEFAULT_GRACE_S = 30
"""How long a SIGTERM lets requests and streams in flight finish before they are cut."""


def build_app(
    table: LoadedTable,
    access_log: AccessLog | None = None,
    ledger: Ledger | None = None,
    events: EventLog | None = None,
    clock: Callable[[], float] = time.monotonic,
    metrics: Metrics | None = None,
) -> Gatepost:
    metrics = metrics or Metrics()
    events = events or EventLog()
    gate = BudgetGate(ledger, events, metrics) if ledger is not None else None
    return Gatepost(
        build_serving(table), access_log=access_log, metrics=metrics, budgets=gate, clock=clock, events=events
    )


def uvicorn_config(app: Gatepost, asgi: Any = None, grace_s: int = DEFAULT_GRACE_S, **options: Any) -> uvicorn.Config:
    """How `policy serve` runs `app` under uvicorn: on the protocol that bounds client connections
    by the table's `gateway` settings, without websockets, uvicorn's access log or its `server`
    header, letting requests in flight finish for `grace_s` once told to stop. `asgi` is what
    uvicorn calls, by default `app` (tests wrap it to count its calls)."""
    return uvicorn.Config(
        asgi if asgi is not None else app, http=bounded_protocol(app), ws="none", lifespan="on", access_log=False,
        log_level="warning", server_header=False, timeout_graceful_shutdown=grace_s, **options,
    )


def open_ledger(data_dir: Path, url: str | None = None, read_only: bool = False) -> Ledger:
    """SQLite in data_dir by default, behind the in-memory front that leases from it (read-only:
    the file itself); `redis://...` for several replicas sharing one ledger, exact per request."""
    if url:
        from .ledger.redis import RedisLedger

        ledger: Ledger = RedisLedger(url, read_only=read_only)
        return ledger
    if read_only:
        return SqliteLedger(data_dir, read_only=True)
    return FrontLedger(SqliteLedger(data_dir))


def tend_ledger(gate: BudgetGate) -> None:
    """Heartbeat this process, retry the charges a ledger refused, and settle the reservations of
    processes that died mid-request."""
    try:
        gate.ledger.heartbeat()
        gate.retry_unsettled()
        recovered = gate.ledger.recover(gate.crossings)
        if recovered:
            gate.events.event("ledger_recovered", reservations=recovered, settled=RECOVERED_AT)
    except LedgerError as exc:
        gate.events.event("ledger_error", problem=str(exc), unsettled=len(gate.unsettled))


async def keep_ledger(gate: BudgetGate, every_s: float = 5.0) -> None:
    while True:
        await gate.tend(tend_ledger, gate)
        await asyncio.sleep(every_s)


async def keep_front(gate: BudgetGate, front: FrontLedger) -> None:
    """Write the front's pending settles and give back its idle leases, every `FLUSH_S`."""
    while True:
        await asyncio.sleep(FLUSH_S)
        try:
            front.tend()
        except LedgerError as exc:
            gate.events.event("ledger_error", problem=str(exc), unsettled=len(gate.unsettled))


@dataclass(frozen=True)
class ServeOptions:
    """How `policy serve` runs: where it listens, whether it watches its source and writes the
    access log, where its spend ledger is (SQLite in `data_dir`, by default a per-user state
    directory and never the policy's, or Redis at `ledger_url`), how many worker processes share
    the port, and how long a SIGTERM lets requests in flight finish."""

    host: str = "127.0.0.1"
    port: int = 4000
    watch: bool = True
    access_log: bool = True
    data_dir: Path = field(default_factory=default_data_dir)
    ledger_url: str | None = None
    workers: int = 1
    grace_period_s: int = DEFAULT_GRACE_S
    admin_port: int | None = None
    """Where the admin API listens (`--admin-port`); None: it is not served."""
    admin_host: str = "127.0.0.1"


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining on SIGTERM: `/readyz` turns 503, the listening sockets close,
    requests and streams in flight finish within the config's graceful-shutdown timeout, and
    `serve` returns, so the process settles its charges and exits 0 (uvicorn alone would re-raise
    SIGTERM once done, and the process would die of it). SIGINT keeps uvicorn's handling."""

    def __init__(self, config: uvicorn.Config, app: Gatepost, events: EventLog) -> None:
        super().__init__(config)
        self.app = app
        self.events = events

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        self.drain()

    def drain(self) -> None:
        if self.should_exit:
            return
        self.app.readiness.draining = True
        self.should_exit = True
        asyncio.get_running_loop().call_soon_threadsafe(
            lambda: self.events.event("draining", grace_period_s=self.config.timeout_graceful_shutdown)
        )


Beside = Callable[[Gatepost, DrainingServer], list["asyncio.Task[None]"]]
"""What runs beside the server, by the process's role: a lone server's reloader, or a worker's
channel to its parent."""

Announce = Callable[[Gatepost, list[socket.socket]], None]
"""What the process says once requests can arrive."""


@dataclass(frozen=True)
class AdminListener:
    """The admin API's bound sockets and the token it asks for (`policy serve --admin-port`)."""

    sockets: list[socket.socket]
    token: str


def admin_token(table: LoadedTable) -> str:
    """The admin token the table's `gateway.admin.token` refers to (AdminTokenError when it does
    not resolve); FastAPI is imported only here and by the admin listener."""
    from .admin.auth import resolve_admin_token

    return resolve_admin_token(table.gateway.admin_token)


def admin_url(options: ServeOptions, sockets: list[socket.socket]) -> dict[str, str]:
    """The `admin_url` field of the `serving` event, when the admin API is served."""
    if not sockets:
        return {}
    return {"admin_url": f"http://{address(options.admin_host, bound_port(sockets, options.admin_port or 0))}/admin/"}


async def serve(
    source: Path, load: LoadSource, files: SourceFiles, options: ServeOptions, events: EventLog | None = None
) -> None:
    """Load the table, bind, then open the ledger: a policy that does not compile is reported
    first, a busy port before the ledger is touched, and `serving` is said only once requests can
    arrive."""
    events = events or EventLog()
    table = load(source)
    token = admin_token(table) if options.admin_port is not None else ""
    sockets = listen(options.host, options.port)

    def beside(app: Gatepost, server: DrainingServer) -> list[asyncio.Task[None]]:
        reloader = Reloader(app, source, load, files, events)
        reloader.install_sighup()
        return [asyncio.create_task(reloader.watch())] if options.watch else []

    def announce(app: Gatepost, bound: list[socket.socket]) -> None:
        table = app.serving.table
        events.event(
            "serving", url=f"http://{address(options.host, bound_port(bound, options.port))}",
            revision=table.revision, virtual_keys=len(table.keys), providers=sorted(table.providers),
            **admin_url(options, admin_sockets),
        )

    try:
        admin_sockets = listen(options.admin_host, options.admin_port) if options.admin_port is not None else []
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    admin = AdminListener(admin_sockets, token) if admin_sockets else None
    try:
        await serve_sockets(sockets, table, options, events, beside, announce, admin=admin)
    finally:
        for sock in [*sockets, *admin_sockets]:
            sock.close()


async def serve_sockets(
    sockets: list[socket.socket], table: LoadedTable, options: ServeOptions, events: EventLog, beside: Beside,
    announce: Announce, metrics: Metrics | None = None, admin: AdminListener | None = None,
) -> None:
    """Serve `table` on sockets already bound, until drained: the ledger opened and its dead
    owners' reservations recovered first, its charges settled and its leases given back last.
    `admin`: the admin API's listener, served beside the proxy in this process."""
    ledger = open_ledger(options.data_dir, options.ledger_url)
    app = build_app(table, AccessLog(enabled=options.access_log), ledger, events, metrics=metrics)
    activity_db = open_activity_db(options.data_dir)
    activity = app.activity = Activity()
    recorder = asyncio.create_task(keep_activity(
        activity, activity_db, lambda problem: events.event("ledger_error", problem=problem)))
    admin_app = admin_task = None
    if admin is not None:
        from .admin.serve import admin_server

        admin_app = admin_server(app, ledger, options.data_dir, admin.token)[0]
        admin_task = asyncio.create_task(admin_app.serve(sockets=admin.sockets))
    gate = app.budgets
    assert gate is not None
    recovered = ledger.recover(gate.crossings)
    if recovered:
        events.event("ledger_recovered", reservations=recovered, settled=RECOVERED_AT)
    serving = app.serving
    for report in missing_reports(serving.table.providers, serving.credential_problems):
        events.event("credential_missing", **report)
    server = DrainingServer(uvicorn_config(app, grace_s=options.grace_period_s), app, events)
    tasks = beside(app, server)
    tasks.append(recorder)
    tasks.append(asyncio.create_task(keep_ledger(gate)))
    if isinstance(ledger, FrontLedger):
        tasks.append(asyncio.create_task(keep_front(gate, ledger)))
    if isinstance(ledger, ProbedLedger):
        tasks.append(asyncio.create_task(keep_probing(app.readiness, ledger)))
    announce(app, sockets)
    try:
        await server.serve(sockets=sockets)
    finally:
        if admin_app is not None and admin_task is not None:
            admin_app.should_exit = True
            await admin_task
        for task in tasks:
            task.cancel()
        await gate.tend(gate.retry_unsettled)
        if gate.unsettled:
            events.event("ledger_unsettled_at_exit", charges=len(gate.unsettled), settled="at estimate by recovery")
        gate.close()
        await ledger.aclose()
        ledger.close()
        _last_activity(activity, activity_db, events)


def _last_activity(activity: Activity, db: sqlite3.Connection, events: EventLog) -> None:
    try:
        activity.flush(db)
    except LedgerError as exc:
        events.event("ledger_error", problem=str(exc))
    db.close()


def run(source: Path, load: LoadSource, files: SourceFiles, options: ServeOptions) -> None:
    """Serve until drained or interrupted, on uvloop where it is installed."""
    run_loop(serve(source, load, files, options))


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on posix
        asyncio.run(main)
    else:
        uvloop.run(main)
    sys.stderr.flush()
