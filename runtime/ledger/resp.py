"""One pipelined Redis connection on the event loop, for the ledger's two scripts.

redis-py's asyncio client spends more per call than the scripts themselves (pure-Python command
packing, a pool get and release, retry wrappers: ~80 µs against ~50 µs of Lua); this sends
hiredis-packed commands on one connection and matches replies to callers in order, which Redis
guarantees. Any failure (a timeout, a reset, EOF) fails every call in flight and drops the
connection; the next call opens a new one.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any
from urllib.parse import unquote, urlparse

import hiredis

from .base import LedgerError


class RespConnection:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        parts = urlparse(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise LedgerError(f"unsupported ledger URL scheme {parts.scheme!r}: use redis://, rediss:// or unix://")
        self._parts = parts
        self._timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._listener: asyncio.Task[None] | None = None
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._opening = asyncio.Lock()

    async def call(self, *args: str | bytes | int | float) -> Any:
        """One command's reply; a Redis error reply comes back as a `hiredis.ReplyError` value."""
        await self._open()
        assert self._writer is not None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(future)
        self._writer.write(hiredis.pack_command(args))  # type: ignore[arg-type]
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout_s)
        except TimeoutError:
            future.cancel()
            error = LedgerError(f"the Redis ledger did not answer within {self._timeout_s:g} s")
            self._fail(error)
            raise error from None

    async def _open(self) -> None:
        if self._writer is not None:
            return
        async with self._opening:
            if self._writer is not None:
                return
            parts = self._parts
            try:
                if parts.scheme == "unix":
                    connecting = asyncio.open_unix_connection(parts.path)
                else:
                    secure = ssl.create_default_context() if parts.scheme == "rediss" else None
                    connecting = asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379, ssl=secure)
                reader, self._writer = await asyncio.wait_for(connecting, self._timeout_s)
                self._reader = reader
            except (TimeoutError, OSError) as exc:
                raise LedgerError(f"cannot reach the Redis ledger: {exc or type(exc).__name__}") from exc
            self._listener = asyncio.get_running_loop().create_task(self._listen(reader))
            for command in self._handshake():
                reply = await self.call(*command)
                if isinstance(reply, hiredis.ReplyError):
                    error = LedgerError(f"the Redis ledger refused {command[0]}: {reply}")
                    self._fail(error)
                    raise error

    def _handshake(self) -> list[tuple[str, ...]]:
        parts = self._parts
        commands: list[tuple[str, ...]] = []
        if parts.password:
            user = unquote(parts.username) if parts.username else None
            password = unquote(parts.password)
            commands.append(("AUTH", user, password) if user else ("AUTH", password))
        database = parts.path.strip("/") if parts.scheme != "unix" else ""
        if database and database != "0":
            commands.append(("SELECT", database))
        return commands

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        parser = hiredis.Reader(encoding="utf-8")
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    raise LedgerError("the Redis ledger closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    if self._pending:
                        future = self._pending.popleft()
                        if not future.done():
                            future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever broke the connection fails the calls on it
            self._fail(exc if isinstance(exc, LedgerError) else LedgerError(f"the Redis ledger connection failed: {exc}"))

    def _fail(self, error: LedgerError) -> None:
        pending, self._pending = self._pending, deque()
        for future in pending:
            if not future.done():
                future.set_exception(error)
        writer, self._writer, self._reader = self._writer, None, None
        listener, self._listener = self._listener, None
        if writer is not None:
            writer.close()
        if listener is not None and listener is not asyncio.current_task():
            listener.cancel()

    async def aclose(self) -> None:
        writer, listener = self._writer, self._listener
        self._fail(LedgerError("the ledger connection was closed"))
        if writer is not None:
            try:
                await writer.wait_closed()
            except OSError:
                pass
        if listener is not None:
            try:
                await listener
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing
                pass
