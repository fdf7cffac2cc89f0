"""What every upstream adapter produces and every transport answers with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RawBody:
    """The bytes the client sent for `payload`; they stand for the request only while the
    outbound payload is that very object (a translation or cache rewrite replaces it)."""

    data: bytes
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outbound:
    """A request as the target's protocol expects it (translated already, when it had to be)."""

    surface: str
    payload: dict[str, Any]
    stream: bool
    client_headers: Mapping[str, str]
    gemini_method: str | None = None
    cache_mode: str = "respect"
    cache_salt: bool = False
    raw: RawBody | None = None
    sse: bool = True
    """False for a Gemini stream asked for without `alt=sse`: Google's JSON-array stream."""
    count: bool = False
    """A token-count request (`count_tokens`, `input_tokens`, `:countTokens`): the adapter sends it
    to the provider's counting endpoint, which generates nothing."""


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool


class UpstreamResponse(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes: ...

    async def aclose(self) -> None: ...

    async def end(self) -> None:
        """Close an answer whose final event has been relayed, whatever the upstream does next."""
        ...


class Transport(Protocol):
    async def send(self, call: UpstreamCall) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...


class ReshapedResponse:
    """An upstream answer whose bytes a subclass rewrites (`aiter_bytes`) into another shape of
    `content_type`: everything else is the wrapped answer's."""

    def __init__(self, response: UpstreamResponse, content_type: bytes) -> None:
        self._response = response
        self.status = response.status
        self.headers = [(k, v) for k, v in response.headers if k != b"content-type"]
        self.headers.append((b"content-type", content_type))

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        await self._response.aclose()

    async def end(self) -> None:
        await self._response.end()


@dataclass
class BufferedResponse:
    """An answer already in memory (the built-in mock provider's)."""

    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes] = field(default_factory=list)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk

    async def read(self) -> bytes:
        return b"".join(self.chunks)

    async def aclose(self) -> None:
        return None

    async def end(self) -> None:
        return None
