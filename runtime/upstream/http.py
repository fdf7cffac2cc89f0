"""The HTTP transport: one pooled httpx client per provider, with that provider's timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from ..table import Provider
from .base import UpstreamCall, UpstreamFailure

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"content-encoding", b"server", b"date"}
)


class HttpResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamFailure("timeout", f"read timed out mid-answer ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailure("connect", f"connection lost mid-answer ({type(exc).__name__})") from exc

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpTransport:
    def __init__(self, provider: Provider) -> None:
        t = provider.timeouts
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=t.connect_s, read=t.read_s, write=t.read_s, pool=t.connect_s),
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128, keepalive_expiry=30),
            http2=False,
            trust_env=False,
            follow_redirects=False,
        )

    async def send(self, call: UpstreamCall) -> HttpResponse:
        request = self._client.build_request(call.method, call.url, headers=call.headers, content=call.body)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.ConnectTimeout as exc:
            raise UpstreamFailure("connect", "connect timed out") from exc
        except httpx.TimeoutException as exc:
            raise UpstreamFailure("timeout", f"timed out ({type(exc).__name__})") from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise UpstreamFailure("connect", f"{type(exc).__name__}: connection failed") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailure("connect", f"{type(exc).__name__}") from exc
        return HttpResponse(response)

    async def aclose(self) -> None:
        await self._client.aclose()
