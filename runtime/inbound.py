"""uvicorn's httptools protocol, bounded in time and size by the gateway's settings.

uvicorn leaves a client free to hold a connection for ever: one that sends nothing, or its headers
a line at a time, or fewer body bytes than its Content-Length, stays open; the request head has no
size or count limit (httptools buffers a header however long it grows); its keep-alive timeout and
its one cap (`limit_concurrency`) are fixed at start-up, and that cap answers in plain text. This
subclass reads the serving table's `gateway` settings when a connection opens (so a reload applies
to the connections opened after it) and adds:

- `header_timeout_s`: a connection's first request, and each later one from its first byte, must
  have sent its request line and headers by then; otherwise the connection is closed, after a 408
  when part of a request had arrived;
- `body_timeout_s`: from the end of the headers to the end of the body; then a 408 when nothing was
  answered yet, and the connection is closed. The answer, however long it streams, is not bounded;
- `idle_timeout_s`: uvicorn's keep-alive timeout;
- `max_header_bytes`, `max_headers`: a 431, and the connection is closed;
- `max_connections`: every request on a connection opened beyond it is answered by the gate's
  `overloaded` (a 503 with `Retry-After` in the surface's shape), and the connection is closed.

A request that is not valid HTTP gets a 400 in the shape of its path's surface instead of
uvicorn's plain text. An answer the protocol writes itself never interleaves with one in progress
on the same connection (pipelining): then the connection is closed once that answer has ended.
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle
from typing import Any, ClassVar, Protocol

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from .errors import error_headers
from .metrics import Metrics
from .proxy.asgi import Receive, Scope, Send
from .request_ids import HEADER as REQUEST_ID
from .request_ids import new_request_id
from .state import Serving
from .surfaces import error_body_for
from .table import Gateway

LINGER_S = 2.0
"""After answering a request it gave up on, the protocol stops sending and reads (and drops) what the
client still sends for at most this long before closing: closing with unread bytes would reset the
connection, and the reset can destroy the answer before the client has read it."""
READ_SLACK = 256 * 1024
"""One socket read: bytes of a request head that has not ended yet are counted per read, and a read
may also carry the end of the previous request, so the head's hard bound is its limit plus this."""


class Gate(Protocol):
    """What the protocol needs of the app: its serving table, its metrics, and the answer to a
    request on a connection beyond `max_connections`."""

    @property
    def serving(self) -> Serving: ...

    @property
    def metrics(self) -> Metrics: ...

    async def overloaded(self, scope: Scope, receive: Receive, send: Send) -> None: ...


class _Refused(Exception):
    """Stops the parser once the protocol has given up on a request."""


class BoundedHttpProtocol(HttpToolsProtocol):
    gate: ClassVar[Gate]

    def __init__(
        self, config: Config, server_state: ServerState, app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits: Gateway = self.gate.serving.table.gateway
        self._timer: TimerHandle | None = None
        self._head_done = False
        self._head_read = 0
        self._read_size = 0
        self._request_begun = False
        self._given_up = False
        self._pending: tuple[int | None, str, str, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self._limits
        self.timeout_keep_alive = limits.idle_timeout_s  # type: ignore[assignment]
        if len(self.connections) > limits.max_connections:
            self.app = self.gate.overloaded
        self._timer = self.loop.call_later(limits.header_timeout_s, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._given_up:
            return
        self._unset_keepalive_if_required()
        self._read_size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError as exc:
            if not self._given_up:
                self._give_up(400, "malformed_http", f"the request is not valid HTTP/1.1: {_reason(exc)}", "malformed")
            return
        if not self._request_begun or self._given_up:
            return
        if not self._head_done:
            self._head_read += len(data)
            if self._head_read > self._limits.max_header_bytes + READ_SLACK:
                self._head_too_large()
                return
        if self._timer is None:
            self._arm_timer()

    def _arm_timer(self) -> None:
        """Time the part of the request still to come. Armed only when a read ends inside a request:
        a request whose head and body arrive in one read (nearly all of them) costs no timer."""
        limits = self._limits
        if self._head_done:
            self._timer = self.loop.call_later(limits.body_timeout_s, self._body_timed_out)
        else:
            self._timer = self.loop.call_later(limits.header_timeout_s, self._header_timed_out)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_done = False
        self._head_read = 0
        self._request_begun = True

    def on_headers_complete(self) -> None:
        """The head's limits, checked once it is whole: the count always, the size exactly only when
        the reads it came in could exceed it. A head still arriving is bounded in data_received."""
        self._head_done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        limits = self._limits
        if len(self.headers) > limits.max_headers:
            self._give_up(431, "headers_too_large", f"the request has more than {limits.max_headers} headers, "
                          "the gateway's limit (gateway.max_headers)", "too_many_headers")
            raise _Refused
        if self._head_read + self._read_size > limits.max_header_bytes and self._head_size() > limits.max_header_bytes:
            self._head_too_large()
            raise _Refused
        super().on_headers_complete()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def on_message_complete(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._request_begun = False
        super().on_message_complete()

    def _head_too_large(self) -> None:
        limit = self._limits.max_header_bytes
        self._give_up(431, "headers_too_large", f"the request line and headers are larger than {limit} bytes, "
                      "the gateway's limit (gateway.max_header_bytes)", "header_too_large")

    def _header_timed_out(self) -> None:
        self._timer = None
        if self._request_begun:
            seconds = f"{self._limits.header_timeout_s:g}"
            self._give_up(408, "request_timeout", f"the request's headers did not arrive within {seconds} s "
                          "(gateway.header_timeout_s)", "header_timeout")
        else:
            self._give_up(None, "", "", "header_timeout")

    def _body_timed_out(self) -> None:
        self._timer = None
        cycle = self.cycle
        if self.pipeline:
            self._timer = self.loop.call_later(self._limits.body_timeout_s, self._body_timed_out)
            return
        if cycle is None or cycle.response_complete:
            self._give_up(None, "", "", "body_timeout")
            return
        cycle.disconnected = True
        cycle.message_event.set()
        if cycle.response_started:
            self._close("body_timeout")
            return
        seconds = f"{self._limits.body_timeout_s:g}"
        self._given_up = True
        self._answer(408, "request_timeout", f"the request body did not arrive within {seconds} s "
                     "(gateway.body_timeout_s)", "body_timeout")

    def _give_up(self, status: int | None, code: str, message: str, reason: str) -> None:
        """Answer `status` (None: nothing) and close. A request whose own body broke is ended for its
        handler as if the client had gone; while earlier requests on the connection are still being
        answered, reading stops and the answer follows theirs."""
        self._given_up = True
        self._cancel_timer()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.more_body and not cycle.response_started and not self.pipeline:
                cycle.disconnected = True
                cycle.message_event.set()
            else:
                self._pending = (status, code, message, reason)
                self.flow.pause_reading()
                return
        if status is None:
            self._close(reason)
        else:
            self._answer(status, code, message, reason)

    def on_response_complete(self) -> None:
        if self._pending is None or self.pipeline:
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        status, code, message, reason = self._pending
        self._pending = None
        if status is None:
            self._close(reason)
        else:
            self._answer(status, code, message, reason)

    def _answer(self, status: int, code: str, message: str, reason: str) -> None:
        """Answer, end the sending side, and close once the client has closed or after LINGER_S."""
        transport = self.transport
        if transport.is_closing():
            return
        self.gate.metrics.client_connections_closed.inc(reason)
        serving = self.gate.serving
        path = self.url.partition(b"?")[0].decode("latin-1") if self._request_begun else "/"
        body = error_body_for(path)(status, code, message, None, None)
        headers = [
            *self.server_state.default_headers, *error_headers(status), (serving.header_prefix + b"policy-revision", serving.revision_header),
            (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
            (REQUEST_ID, new_request_id().encode()),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        transport.write(STATUS_LINE[status] + head + b"\r\n" + body)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        self._timer = self.loop.call_later(LINGER_S, transport.close)

    def _close(self, reason: str) -> None:
        self.gate.metrics.client_connections_closed.inc(reason)
        self.transport.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _reason(exc: httptools.HttpParserError) -> str:
    """llhttp's own words for what is wrong (`Invalid header value char`), never the client's bytes."""
    text = str(exc)
    return text if text.isascii() and len(text) < 200 else "unparsable request"


def bounded_protocol(gate: Gate) -> type[BoundedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection (`uvicorn.Config(http=...)`), bound to `gate`."""

    class Bounded(BoundedHttpProtocol):
        pass

    Bounded.gate = gate
    return Bounded
