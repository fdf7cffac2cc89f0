"""The proxy under uvicorn, with its ledger kept and its table reloaded on SIGHUP and on change."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
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
from .reload import LoadSource, Reloader, SourceFiles
from .state import build_serving
from .table import LoadedTable

RECOVERED_AT = "at estimate, or the actual its journal recorded"


def build_app(
    table: LoadedTable,
    access_log: AccessLog | None = None,
    ledger: Ledger | None = None,
    events: EventLog | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Gatepost:
    metrics = Metrics()
    events = events or EventLog()
    gate = BudgetGate(ledger, events, metrics) if ledger is not None else None
    return Gatepost(
        build_serving(table), access_log=access_log, metrics=metrics, budgets=gate, clock=clock, events=events
    )


def uvicorn_config(app: Gatepost, asgi: Any = None, **options: Any) -> uvicorn.Config:
    """How `policy serve` runs `app` under uvicorn: on the protocol that bounds client connections
    by the table's `gateway` settings, without websockets, uvicorn's access log or its `server`
    header. `asgi` is what uvicorn calls, by default `app` (tests wrap it to count its calls)."""
    return uvicorn.Config(
        asgi if asgi is not None else app, http=bounded_protocol(app), ws="none", lifespan="on", access_log=False,
        log_level="warning", server_header=False, timeout_graceful_shutdown=30, **options,
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
    access log, and where its spend ledger is (SQLite in `data_dir`, by default a per-user state
    directory and never the policy's, or Redis at `ledger_url`)."""

    host: str = "127.0.0.1"
    port: int = 4000
    watch: bool = True
    access_log: bool = True
    data_dir: Path = field(default_factory=default_data_dir)
    ledger_url: str | None = None
    admin_port: int | None = None
    """Where the admin API listens (`--admin-port`); None: it is not served."""
    admin_host: str = "127.0.0.1"


async def serve(
    source: Path, load: LoadSource, files: SourceFiles, options: ServeOptions, events: EventLog | None = None
) -> None:
    """Load the table, bind, then open the ledger: a policy that does not compile is reported
    first, a busy port before the ledger is touched, and `serving` is said only once requests can
    arrive."""
    events = events or EventLog()
    table = load(source)
    token = ""
    if options.admin_port is not None:
        from .admin.auth import resolve_admin_token  # FastAPI is imported only for the admin API

        token = resolve_admin_token(table.gateway.admin_token)
    sockets = listen(options.host, options.port)
    try:
        admin_sockets = listen(options.admin_host, options.admin_port) if options.admin_port is not None else []
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    try:
        await _serve_on(sockets, table, source, load, files, options, events, (admin_sockets, token))
    finally:
        for sock in [*sockets, *admin_sockets]:
            sock.close()


async def _serve_on(
    sockets: list[socket.socket], table: LoadedTable, source: Path, load: LoadSource, files: SourceFiles,
    options: ServeOptions, events: EventLog, admin: tuple[list[socket.socket], str] = ([], ""),
) -> None:
    """`admin`: the admin listener's sockets (none: no admin API) and its token."""
    ledger = open_ledger(options.data_dir, options.ledger_url)
    app = build_app(table, AccessLog(enabled=options.access_log), ledger, events)
    activity_db = open_activity_db(options.data_dir)
    activity = app.activity = Activity()
    recorder = asyncio.create_task(keep_activity(
        activity, activity_db, lambda problem: events.event("ledger_error", problem=problem)))
    admin_sockets, token = admin
    admin_app = admin_task = None
    if admin_sockets:
        from .admin.serve import admin_server

        admin_app = admin_server(app, ledger, options.data_dir, token)[0]
        admin_task = asyncio.create_task(admin_app.serve(sockets=admin_sockets))
    gate = app.budgets
    assert gate is not None
    recovered = ledger.recover(gate.crossings)
    if recovered:
        events.event("ledger_recovered", reservations=recovered, settled=RECOVERED_AT)
    serving = app.serving
    for report in missing_reports(serving.table.providers, serving.credential_problems):
        events.event("credential_missing", **report)
    server = uvicorn.Server(uvicorn_config(app, host=options.host, port=options.port))
    reloader = Reloader(app, source, load, files, events)
    reloader.install_sighup()
    watcher = asyncio.create_task(reloader.watch()) if options.watch else None
    keeper = asyncio.create_task(keep_ledger(gate))
    front = asyncio.create_task(keep_front(gate, ledger)) if isinstance(ledger, FrontLedger) else None
    admin_url = ({"admin_url": f"http://{address(options.admin_host, bound_port(admin_sockets, options.admin_port or 0))}"
                  "/admin/"} if admin_sockets else {})
    events.event(
        "serving", url=f"http://{address(options.host, bound_port(sockets, options.port))}",
        revision=serving.table.revision, virtual_keys=len(serving.table.keys), providers=sorted(serving.table.providers),
        **admin_url,
    )
    try:
        await server.serve(sockets=sockets)
    finally:
        if admin_app is not None and admin_task is not None:
            admin_app.should_exit = True
            await admin_task
        recorder.cancel()
        keeper.cancel()
        if front is not None:
            front.cancel()
        if watcher is not None:
            watcher.cancel()
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
    """Serve until interrupted, on uvloop where it is installed."""
    main = serve(source, load, files, options)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on posix
        asyncio.run(main)
    else:
        uvloop.run(main)
    sys.stderr.flush()
