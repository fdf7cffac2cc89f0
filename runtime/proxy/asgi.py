"""ASGI plumbing: reading a request body within a size limit, answering, and a `send` that
stamps the request id and remembers how far the answer got."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..exceptions import BodyCutShort, BodyTooLarge
from ..request_ids import HEADER as REQUEST_ID

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole body; BodyTooLarge as soon as its Content-Length or the bytes read pass `limit`,
    BodyCutShort when the connection ends first."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            raise BodyCutShort
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class WatchedSend:
    """`send`, adding the request's id to the answer's headers (whoever answers: the proxy, an
    endpoint, a 404) and remembering whether the answer has started and finished."""

    __slots__ = ("_send", "finished", "request_id", "started")

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self.request_id = request_id
        self.started = False
        self.finished = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.started = True
            message["headers"] = [*message.get("headers", ()), (REQUEST_ID, self.request_id.encode())]
        elif kind == "http.response.body" and not message.get("more_body", False):
            self.finished = True
        await self._send(message)
