"""What a server's clients saw, exchange by exchange: when each request reached the app, and the
status and headers of its answer and when that began. A 429's `Retry-After` is in the answer's
headers only (the access log does not keep it), so how long a client waited before its retry, and
whether that was what it was told, is read here.

`before_first` runs something on the server's loop just before the first request for a path
reaches the app: a test that needs a client's first request to find a limit used up fills it at
that moment, however long the client took to start."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from tests.support.servers import ASGIApp, Receive, Scope, Send


@dataclass
class Exchange:
    method: str
    path: str
    arrived: float
    """time.monotonic() when the request reached the app."""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    answered: float = 0.0
    """time.monotonic() when the answer's status and headers were sent."""


class Exchanges:
    def __init__(self) -> None:
        self._seen: list[Exchange] = []
        self._before_first: dict[str, Callable[[], Awaitable[object]]] = {}
        self._lock = threading.Lock()

    def before_first(self, path: str, action: Callable[[], Awaitable[object]]) -> None:
        """Await `action` on the server's loop when the first request for `path` arrives, before
        the app sees it (and before it counts as arrived)."""
        with self._lock:
            self._before_first[path] = action

    def on(self, path: str) -> list[Exchange]:
        """The exchanges for `path` so far, in the order their requests arrived."""
        with self._lock:
            return [e for e in self._seen if e.path == path]

    def around(self, app: ASGIApp) -> ASGIApp:
        async def tapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            with self._lock:
                action = self._before_first.pop(scope["path"], None)
            if action is not None:
                await action()
            exchange = Exchange(scope["method"], scope["path"], time.monotonic())
            with self._lock:
                self._seen.append(exchange)

            async def recorded(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    exchange.status = message["status"]
                    exchange.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
                    exchange.answered = time.monotonic()
                await send(message)

            await app(scope, receive, recorded)

        return tapped


def retries_after_429(exchanges: list[Exchange]) -> list[tuple[Exchange, Exchange]]:
    """Each 429 among `exchanges` (one client's, in order) with the request that followed it."""
    return [(refused, retry) for refused, retry in itertools.pairwise(exchanges) if refused.status == 429]
