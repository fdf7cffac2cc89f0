"""The admin app on a listener of its own, in the proxy's process and event loop (`policy serve
--admin-port`): a second uvicorn server beside the proxy's, which leaves the process's signals to
the proxy's server and is stopped with it. While no one asks it anything it costs the loop one
timer tick every 0.1 s (uvicorn's main loop) and nothing on the proxy's request path."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path

import uvicorn

from ..app import Gatepost
from ..ledger.base import Ledger
from .dashboard import admin_site
from .data import AdminData, open_activity_reader


class AdminServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """The proxy's server handles SIGINT and SIGTERM, then stops this one."""
        yield


def admin_server(app: Gatepost, ledger: Ledger | None, data_dir: Path, token: str) -> tuple[AdminServer, AdminData]:
    data = AdminData(app, ledger, open_activity_reader(data_dir))
    config = uvicorn.Config(admin_site(data, token), ws="none", lifespan="off", access_log=False,
                            log_level="warning", server_header=False, timeout_graceful_shutdown=5)
    return AdminServer(config), data
