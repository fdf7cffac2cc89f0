"""Run an ASGI app under uvicorn in a background thread on 127.0.0.1 with an ephemeral port.

Tests wait on events here, not on time: the thread says when uvicorn listens, and `wait_idle`
returns once every request the server received has finished, which for the proxy means its
access-log line is written and its charge settled (both happen after the client has its answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
import uvloop

from runtime.app import Gatepost
from runtime.server import uvicorn_config

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@contextlib.asynccontextmanager
async def served_in_this_loop(app: Gatepost) -> AsyncIterator[str]:
    """`app` under uvicorn on the running event loop, on 127.0.0.1 and an ephemeral port, for tests
    that reload it beside requests in flight: yields its base URL, and stops the server at exit."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    listening = asyncio.Event()
    server = ListeningServer(uvicorn.Config(app, log_level="warning", lifespan="on"), listening.set)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await listening.wait()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


class ListeningServer(uvicorn.Server):
    """uvicorn's server calling `on_listening` once its start-up is over (listening, or given up)."""

    def __init__(self, config: uvicorn.Config, on_listening: Callable[[], object]) -> None:
        super().__init__(config)
        self._on_listening = on_listening

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self._on_listening()


class InFlight:
    """The app, counting its HTTP calls; a call ends when the app returns, after its response."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._running = 0
        self._changed = threading.Condition()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        with self._changed:
            self._running += 1
        try:
            await self._app(scope, receive, send)
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()

    def wait_idle(self, timeout_s: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._running == 0, timeout_s):
                raise RuntimeError(f"{self._running} requests still running after {timeout_s:g} s")


class ServerThread:
    """`tap`, if given, wraps the app uvicorn calls (to record what clients saw); the app keeps its
    own uvicorn configuration."""

    def __init__(self, app: Any, tap: Callable[[ASGIApp], ASGIApp] | None = None, **config: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._in_flight = InFlight(tap(app) if tap is not None else app)
        self._listening = threading.Event()
        self.server = ListeningServer(self._config(app, config), self._listening.set)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _config(self, app: Any, config: dict[str, Any]) -> uvicorn.Config:
        """The proxy as `policy serve` runs it (its protocol bounds client connections); any other app plainly."""
        if isinstance(app, Gatepost):
            return uvicorn_config(app, self._in_flight, **config)
        options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on", **config}
        return uvicorn.Config(self._in_flight, **options)

    def _run(self) -> None:
        # uvloop, as `policy serve` uses: it sets TCP_NODELAY on accepted sockets, without which a
        # reused keep-alive connection waits ~40 ms on delayed ACKs between header and body writes.
        try:
            uvloop.run(self.server.serve(sockets=[self._sock]))
        finally:
            self._listening.set()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._listening.wait(timeout=10) or not self.server.started:
            raise RuntimeError("server did not start")
        return self

    def wait_idle(self, timeout_s: float = 10) -> None:
        """Return once no request is running: every answer a client has received is finished."""
        self._in_flight.wait_idle(timeout_s)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
