"""Run an ASGI app under uvicorn in a background thread on 127.0.0.1 with an ephemeral port."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
import uvloop


class ServerThread:
    def __init__(self, app: Any, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on", **config}
        self.server = uvicorn.Server(uvicorn.Config(app, **options))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # uvloop, as `policy serve` uses: it sets TCP_NODELAY on accepted sockets, without which a
        # reused keep-alive connection waits ~40 ms on delayed ACKs between header and body writes.
        uvloop.run(self.server.serve(sockets=[self._sock]))

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
