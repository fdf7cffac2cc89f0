"""One pipelined Redis connection on the event loop, for the ledger's scripts.

redis-py's asyncio client spends more per call than the scripts themselves (pure-Python command
packing, a pool get and release, retry wrappers: ~80 µs against ~50 µs of Lua), and opens one
connection per call in flight; this sends hiredis-packed commands on one connection and matches
replies to callers in order, which Redis guarantees. Any failure (a timeout, a reset, EOF) fails
every call in flight and drops the connection; the next call opens a new one.

Where it connects comes from the ledger URL (`redis_url.py`): the server, over TLS with the URL's
`ssl_*` options; the master the sentinels name at each (re)connection; on a Cluster, the node
serving the ledger's one slot, found by following the `MOVED` redirect a seed answers. A `MOVED`
(resharding, a failed-over cluster) or `READONLY` (a Sentinel master demoted to replica, see
`demoted`) reply retires the connection (the calls already sent on it still get their replies)
and the call is sent again where the ledger is now: for READONLY, once, to the master the
sentinels name now.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
import redis

from . import redis_url
from .base import LedgerError

REDIRECTS = 3
"""How many times one call follows `MOVED` before the reply is its answer; `READONLY` is followed once."""


def demoted(reply: object) -> bool:
    """Whether an error reply says the server is no longer a master: `READONLY`, as Redis 7 answers
    a command or a script whose write a replica refused, or inside a script error as Redis 6 and
    earlier wrap it (`ERR Error running script ...: -READONLY ...`). A script refused so wrote
    nothing: a read-only replica refuses every write, so its first write failed and the reads
    before it had no effect; sending it to the new master once is safe."""
    text = str(reply)
    return text.startswith("READONLY") or ": -READONLY " in text


class _Link:
    """One open connection and the calls waiting on it, in the order they were sent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.retiring = False
        self.listener = asyncio.get_running_loop().create_task(self._listen(reader))

    def send(self, args: tuple[str | bytes | int | float, ...]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        self.writer.write(hiredis.pack_command(args))  # type: ignore[arg-type]
        return future

    def retire(self) -> None:
        """Take no new call; close once the calls already sent have their replies."""
        self.retiring = True
        if not self.pending:
            self.close(LedgerError("the ledger connection was retired"))

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader(encoding="utf-8")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise LedgerError("the Redis ledger closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    if self.pending:
                        future = self.pending.popleft()
                        if not future.done():
                            future.set_result(reply)
                if self.retiring and not self.pending:
                    self.close(LedgerError("the ledger connection was retired"))
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the connection fails the calls on it
            self.close(exc if isinstance(exc, LedgerError) else LedgerError(f"the Redis ledger connection failed: {exc}"))

    def close(self, error: LedgerError) -> None:
        self.retiring = True
        pending, self.pending = self.pending, deque()
        for future in pending:
            if not future.done():
                future.set_exception(error)
        self.writer.close()
        if self.listener is not asyncio.current_task():
            self.listener.cancel()


class RespConnection:
    def __init__(self, url: str | redis_url.RedisLocation, timeout_s: float = 5.0) -> None:
        self._location = redis_url.parse(url) if isinstance(url, str) else url
        self._timeout_s = timeout_s
        self._link: _Link | None = None
        self._moved_to: tuple[str, int] | None = None
        self._opening = asyncio.Lock()

    async def call(self, *args: str | bytes | int | float) -> Any:
        """One command's reply; a Redis error reply comes back as a `hiredis.ReplyError` value."""
        followed_demotion = False
        for _ in range(REDIRECTS):
            link = self._link
            if link is None or link.retiring:
                link = await self._open()
            reply = await self._await(link, link.send(args))
            if not isinstance(reply, hiredis.ReplyError):
                return reply
            text = str(reply)
            if text.startswith("MOVED "):
                host, _, port = text.split()[2].rpartition(":")
                self._moved_to = (host or self._location.nodes[0][0], int(port))
            elif not demoted(text) or followed_demotion:
                return reply
            else:
                followed_demotion = True
            if self._link is link:
                self._link = None
                link.retire()
        return reply

    async def _await(self, link: _Link, future: asyncio.Future[Any]) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout_s)
        except TimeoutError:
            future.cancel()
            error = LedgerError(f"the Redis ledger did not answer within {self._timeout_s:g} s")
            self._drop(link, error)
            raise error from None

    async def _open(self) -> _Link:
        """The open connection, or a new one: AUTH and SELECT are written before any call can be."""
        if self._link is not None and not self._link.retiring:
            return self._link
        async with self._opening:
            if self._link is not None and not self._link.retiring:
                return self._link
            link = await self._connect()
            self._link = link
            commands = self._handshake()
            sent = [link.send(command) for command in commands]
            for command, future in zip(commands, sent, strict=True):
                reply = await self._await(link, future)
                if isinstance(reply, hiredis.ReplyError):
                    error = LedgerError(f"the Redis ledger refused {command[0]}: {reply}")
                    self._drop(link, error)
                    raise error
            return link

    async def _connect(self) -> _Link:
        """The first of the places the ledger may be that accepts a connection: where a `MOVED`
        pointed, else the server, the sentinels' master, or each cluster seed in turn."""
        location = self._location
        problem: BaseException | None = None
        try:
            if self._moved_to is not None:
                candidates: list[tuple[str, int] | str] = [self._moved_to]
            elif location.kind == "cluster":
                candidates = list(location.nodes)
            else:
                candidates = [await asyncio.wait_for(location.address(), self._timeout_s)]
        except (TimeoutError, OSError, redis.RedisError) as exc:
            raise LedgerError(f"cannot reach the Redis ledger: {exc or type(exc).__name__}") from exc
        self._moved_to = None
        for where in candidates:
            try:
                if isinstance(where, str):
                    connecting = asyncio.open_unix_connection(where)
                else:
                    connecting = asyncio.open_connection(where[0], where[1], ssl=location.ssl_context())
                reader, writer = await asyncio.wait_for(connecting, self._timeout_s)
                return _Link(reader, writer)
            except (TimeoutError, OSError) as exc:
                problem = exc
        raise LedgerError(f"cannot reach the Redis ledger: {problem or 'no address'}") from problem

    def _handshake(self) -> list[tuple[str, ...]]:
        options = self._location.options
        commands: list[tuple[str, ...]] = []
        if options.get("password"):
            user, password = options.get("username"), str(options["password"])
            commands.append(("AUTH", str(user), password) if user else ("AUTH", password))
        database = str(options.get("db") or "0")
        if database != "0":
            commands.append(("SELECT", database))
        return commands

    def _drop(self, link: _Link, error: LedgerError) -> None:
        if self._link is link:
            self._link = None
        link.close(error)

    async def aclose(self) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        link.close(LedgerError("the ledger connection was closed"))
        try:
            await link.writer.wait_closed()
        except OSError:
            pass
        try:
            await link.listener
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing
            pass
