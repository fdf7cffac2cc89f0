"""One worker process of `policy serve --workers N` (`python -m runtime.worker CONFIG`), started by
its parent (`workers.py`): it serves the parent's listening sockets with the table the parent
compiled, and its ledger is its own connection to the shared one.

Its channel to the parent is a socket of lines. The parent says `load REASON PATH` (a verified
artifact to swap in) and `refused` (a reload the parent refused, counted in this worker's metrics);
the worker says `ready REVISION` once it serves, and `loaded REVISION` or `failed PROBLEM` after a
load. When the channel closes, the parent is gone and the worker drains.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .access_log import EventLog
from .app import Gatepost
from .exceptions import ListenError
from .ledger.base import LedgerError
from .reload import Reloader
from .server import AdminListener, DrainingServer, ServeOptions, admin_token, run_loop, serve_sockets
from .table import TableError, load_table
from .worker_metrics import WorkerMetrics, keep_snapshots

EXIT_FAILED = 2
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker is started with, as one JSON argument: `serve` is the parent's ServeOptions
    (every field, so an option added there reaches the workers without a change here)."""

    index: int
    artifact: str
    listen_fds: list[int]
    control_fd: int
    run_dir: str
    serve: dict[str, Any]
    admin_fds: list[int] = field(default_factory=list)
    """The admin API's listening sockets: worker 0 serves it (see `Supervisor.admin_sockets`)."""

    def encode(self) -> str:
        return orjson.dumps(asdict(self), default=str).decode()

    @classmethod
    def decode(cls, text: str) -> WorkerConfig:
        fields: dict[str, Any] = orjson.loads(text)
        return cls(**fields)

    def options(self) -> ServeOptions:
        """The parent's options, as one process of several: it neither watches nor starts workers."""
        return ServeOptions(**{**self.serve, "data_dir": Path(self.serve["data_dir"]), "watch": False, "workers": 1})


class WorkerEvents(EventLog):
    """Events naming the worker they come from."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self.worker = worker

    def event(self, event: str, **fields: Any) -> None:
        super().event(event, worker=self.worker, **fields)


def _artifact_only(path: Path) -> list[Path]:
    return [path]


async def obey(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reloader: Reloader, server: DrainingServer,
) -> None:
    while line := await reader.readline():
        command, _, rest = line.decode().rstrip("\n").partition(" ")
        if command == "load":
            reason, _, path = rest.partition(" ")
            reloader.source = Path(path)
            if await reloader.reload(reason):
                writer.write(f"loaded {reloader.app.serving.table.revision}\n".encode())
            else:
                writer.write(f"failed {path} could not be loaded\n".encode())
        elif command == "refused":
            reloader.app.metrics.reloads.inc("failed")
        await writer.drain()
    server.drain()


async def work(config: WorkerConfig) -> None:
    events = WorkerEvents(config.index)
    table = load_table(Path(config.artifact))
    sockets = [socket.socket(fileno=fd) for fd in config.listen_fds]
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=config.control_fd))
    metrics = WorkerMetrics(Path(config.run_dir), config.index)

    def beside(app: Gatepost, server: DrainingServer) -> list[asyncio.Task[None]]:
        reloader = Reloader(app, Path(config.artifact), load_table, _artifact_only, events)
        return [asyncio.create_task(obey(reader, writer, reloader, server)), asyncio.create_task(keep_snapshots(metrics))]

    def announce(app: Gatepost, bound: list[socket.socket]) -> None:
        writer.write(f"ready {app.serving.table.revision}\n".encode())

    try:
        admin = (AdminListener([socket.socket(fileno=fd) for fd in config.admin_fds], admin_token(table))
                 if config.admin_fds else None)
        await serve_sockets(sockets, table, config.options(), events, beside, announce, metrics, admin)
    finally:
        writer.close()


def main(argv: list[str]) -> int:
    """SIGHUP is the parent's to act on: a terminal's hangup reaches the whole process group."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config = WorkerConfig.decode(argv[1])
    try:
        run_loop(work(config))
    except (TableError, LedgerError, ListenError, OSError) as exc:
        print(f"policy serve: worker {config.index}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
