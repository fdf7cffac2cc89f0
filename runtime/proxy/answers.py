"""What every answer carries, relayed or the gateway's own: the revision of the policy that decided
it. And the gateway's own refusals, in the shape of the surface's SDK."""

from __future__ import annotations

from collections.abc import Sequence

from ..decision import Deny
from ..errors import error_headers
from ..state import Serving
from ..surfaces import ErrorBody, Surface
from .asgi import Headers, Send, respond

OVERLOADED_RETRY_AFTER = b"2"
"""Seconds a client refused for the gateway's caps is asked to wait: long enough that a thousand
refused clients do not all come back within the same second, short enough for an interactive agent."""


def stamped(serving: Serving, headers: Headers) -> Headers:
    """A new list: `headers` and the policy revision."""
    return [*headers, (serving.header_prefix + b"policy-revision", serving.revision_header)]


async def answer(send: Send, serving: Serving, status: int, body: bytes, headers: Headers) -> None:
    await respond(send, status, body, stamped(serving, headers))


async def refuse(send: Send, serving: Serving, surface: Surface, deny: Deny, extra: Sequence[tuple[bytes, bytes]] = ()) -> int:
    """No provider was asked: Fallback-Count is 0."""
    body = surface.error_body(deny.status, deny.code, deny.message, deny.param, deny.meta)
    headers = [*error_headers(deny.status), *extra, (serving.header_prefix + b"fallback-count", b"0")]
    await answer(send, serving, deny.status, body, headers)
    return deny.status


async def overloaded(send: Send, serving: Serving, error_body: ErrorBody, message: str, headers: Headers) -> int:
    """A 503 `overloaded` with `Retry-After`: the gateway is at one of its caps; no provider was asked."""
    body = error_body(503, "overloaded", message, None, None)
    extra = [*error_headers(503), (b"retry-after", OVERLOADED_RETRY_AFTER), *headers]
    await answer(send, serving, 503, body, extra)
    return 503
