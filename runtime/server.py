"""`policy serve`: the proxy under uvicorn, with reload on SIGHUP and on change."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvicorn

from .access_log import AccessLog, EventLog
from .app import Gatepost
from .reload import Reloader, load_source
from .state import build_serving


def build_app(source: Path, access_log: AccessLog | None = None) -> Gatepost:
    table = load_source(source)
    return Gatepost(build_serving(table), access_log=access_log)


async def serve(
    source: Path, host: str, port: int, watch: bool = True, access_log: bool = True, events: EventLog | None = None
) -> None:
    events = events or EventLog()
    app = build_app(source, AccessLog(enabled=access_log))
    serving = app.serving
    for pid, problem in sorted(serving.credential_problems.items()):
        events.event("credential_missing", provider=pid, problem=problem)
    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", access_log=False, log_level="warning", server_header=False,
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    reloader = Reloader(app, source, events)
    reloader.install_sighup()
    watcher = asyncio.create_task(reloader.watch()) if watch else None
    events.event(
        "serving", url=f"http://{host}:{port}", revision=serving.table.revision,
        virtual_keys=len(serving.table.keys), providers=sorted(serving.table.providers),
    )
    try:
        await server.serve()
    finally:
        if watcher is not None:
            watcher.cancel()


def run(source: Path, host: str, port: int, watch: bool, access_log: bool) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on posix
        asyncio.run(serve(source, host, port, watch, access_log))
    else:
        uvloop.run(serve(source, host, port, watch, access_log))
    sys.stderr.flush()
