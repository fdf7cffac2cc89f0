"""The HTTP transport: one pooled aiohttp session per provider, with that provider's timeouts.

A reload that changes a provider retires its transport; the session closes only once the last
answer still streaming through it has ended, so a request in flight finishes on the table it
started with however long it runs.

aiohttp rather than httpx on this path: on one core at 32 concurrent requests the proxy served
~640 requests/s through httpx's connection pool and ~4,800 through aiohttp's (bench/README.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from ..exceptions import UpstreamConnectError, UpstreamTimeout
from ..table import Provider
from .base import UpstreamCall

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"content-encoding", b"server", b"date"}
)

END_GRACE_S = 0.05
"""How long an answer past its final event may take to end its body before its connection is dropped."""


class HttpResponse:
    """An answer being read; `deadline` (event-loop time) is when the provider's total_s runs out,
    for the body as for the headers."""

    def __init__(self, response: aiohttp.ClientResponse, transport: HttpTransport, deadline: float) -> None:
        self._response = response
        self._transport = transport
        self._deadline = deadline
        self._finished = False
        self._closed = False
        self.status = response.status
        self.headers = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in HOP_BY_HOP]

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        content = self._response.content
        while True:
            try:
                async with asyncio.timeout_at(self._deadline):
                    chunk = await content.readany()
            except TimeoutError as exc:
                raise UpstreamTimeout("read timed out mid-answer") from exc
            except (aiohttp.ClientError, ConnectionError) as exc:
                raise UpstreamConnectError(f"connection lost mid-answer ({type(exc).__name__})") from exc
            if not chunk:
                break
            yield chunk
        self._finished = True

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def end(self) -> None:
        """The answer's final event has been relayed: its connection goes back to the pool when the
        upstream ends the body right after it, and is dropped when it holds it open or sends on."""
        if not self._closed and not self._finished:
            content = self._response.content
            try:
                async with asyncio.timeout(END_GRACE_S):
                    while await content.readany():
                        pass
                self._finished = True
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                pass
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._finished:
            self._response.release()
        else:
            self._response.close()
        await self._transport._answer_ended()


class HttpTransport:
    """Sends each call's URL as the adapter wrote it, percent-escapes and all: a SigV4 signature
    covers the path byte for byte (Bedrock's `%3A` in a model id), so it must not be re-quoted."""

    def __init__(self, provider: Provider) -> None:
        t = provider.timeouts
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=t.connect_s, sock_read=t.read_s)
        self._deadline_s = t.total_s
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = 0
        self._retired = False

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=512, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300)
        return aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True, trust_env=False,
            skip_auto_headers=("User-Agent",),
        )

    async def send(self, call: UpstreamCall) -> HttpResponse:
        session = self._session
        if session is None or session.closed:
            session = self._session = self._open()
        self._in_flight += 1
        deadline = asyncio.get_running_loop().time() + self._deadline_s
        try:
            async with asyncio.timeout_at(deadline):
                response = await session.request(
                    call.method, URL(call.url, encoded=True), headers=call.headers, data=call.body
                )
        except TimeoutError as exc:
            await self._answer_ended()
            raise UpstreamTimeout("no answer within the provider's deadline") from exc
        except aiohttp.ClientConnectorError as exc:
            await self._answer_ended()
            raise UpstreamConnectError(f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            await self._answer_ended()
            raise UpstreamConnectError(f"{type(exc).__name__}") from exc
        except BaseException:
            await self._answer_ended()
            raise
        return HttpResponse(response, self, deadline)

    @property
    def in_flight(self) -> int:
        """Answers sent for and not yet closed."""
        return self._in_flight

    async def _answer_ended(self) -> None:
        self._in_flight -= 1
        if self._retired and self._in_flight == 0:
            await self._close_session()

    async def aclose(self) -> None:
        """Retire the transport: its session closes now if idle, else when its last answer ends."""
        self._retired = True
        if self._in_flight == 0:
            await self._close_session()

    async def _close_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
