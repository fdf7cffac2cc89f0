"""One proxied request on its way through the gateway, and everything it has gathered so far."""

from __future__ import annotations

from typing import Protocol

from ..access_log import AccessRecord, Attempt
from ..budget.charge import Charge
from ..budget.gate import RateLimited
from ..decision import Allow, Deny
from ..errors import error_headers
from ..ratelimit.headers import limit_headers, retry_after_headers
from ..state import Serving
from ..surfaces import Surface
from ..table import Provider, Target
from ..upstream import Outbound
from .answers import overloaded, refuse, stamped
from .asgi import Headers, WatchedSend, respond

INTERNAL_ERROR_MESSAGE = "the gateway failed while handling this request; the failure is in its access log"


class Trace(Protocol):
    """A request's span as the request path tells it what happens (runtime/telemetry/spans.py)."""

    def attempt(self, provider: Provider, target: Target, headers: dict[str, str]) -> None: ...

    def responded(self, status: int) -> None: ...

    def failed(self, reason: str) -> None: ...

    def end(self, exchange: Exchange, status: int) -> None: ...


class Exchange:
    """What a proxied request has: the serving state it started with (a reload never changes the
    rules under it), its surface, where its answer goes, its access-log line and the targets it
    tried. `decision`, `request` and `charge` are set once the request is allowed, before the
    forwarding and relaying that read them."""

    __slots__ = (
        "attempts", "charge", "decision", "record", "refusal", "request", "send", "serving", "surface", "trace",
    )

    decision: Allow
    request: Outbound
    charge: Charge

    def __init__(self, serving: Serving, surface: Surface, send: WatchedSend) -> None:
        self.serving = serving
        self.surface = surface
        self.send = send
        self.record = AccessRecord(send.request_id, surface.name, serving.table.revision)
        self.attempts: list[Attempt] = []
        self.refusal: Deny | None = None
        """The gateway's own refusal of the request, when it refused it."""
        self.trace: Trace | None = None
        """The request's span while telemetry is on (runtime/telemetry/)."""

    def header(self, name: bytes) -> bytes:
        """The gateway's header `name`, under its prefix."""
        return self.serving.header_prefix + name

    async def respond(self, status: int, body: bytes, headers: Headers) -> None:
        """The gateway's own answer (an error), with no credential in it whatever its message quotes."""
        await respond(self.send, status, self.serving.scrub(body), stamped(self.serving, headers))

    async def refuse(self, deny: Deny) -> int:
        """Refused before any provider was asked: the log's decision is the refusal's code."""
        self.record.decision = deny.code
        self.refusal = deny
        return await refuse(self.send, self.serving, self.surface, deny)

    async def rate_limited(self, refusal: RateLimited) -> int:
        """A 429 `rate_limit_exceeded` of the gateway's own rate limit, with `Retry-After` and the
        surface's rate-limit headers; the log's decision is `rate_limited` (a provider's 429 is
        `allow`, with the provider's status)."""
        self.record.decision = "rate_limited"
        self.refusal = refusal.deny
        protocol, limited = self.surface.protocol, refusal.limited
        headers = [*retry_after_headers(protocol, limited.retry_after_s), *limit_headers(protocol, [limited.figures])]
        await refuse(self.send, self.serving, self.surface, refusal.deny, headers)
        return 429

    async def overloaded(self, message: str) -> int:
        """Refused for the gateway's cap on requests in flight."""
        self.record.decision = "overloaded"
        return await overloaded(self.send, self.serving, self.surface.error_body, message,
                                [(self.header(b"fallback-count"), b"0")])

    async def internal_error(self) -> int:
        """A fault of the gateway's own: a 500 in the surface's shape if nothing was sent yet, else
        the answer is ended where it stands. The access log names the exception's type only (its
        text could quote the request)."""
        send = self.send
        try:
            if not send.started:
                body = self.surface.error_body(500, "internal_error", INTERNAL_ERROR_MESSAGE, None, None)
                tried = len(self.record.attempts or ())
                headers = [*error_headers(500), (self.header(b"fallback-count"), str(max(0, tried - 1)).encode())]
                await self.respond(500, body, headers)
            elif not send.finished:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # noqa: BLE001 - the client is gone; the log line still gets written
            pass
        return 500
