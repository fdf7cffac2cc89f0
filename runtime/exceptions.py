"""Every failure the runtime raises on purpose, as one tree.

    GatewayError: catch it to report any failure of the gateway's own making
    ├── TableError: a table source that must not be served: an artifact that is unreadable,
    │   malformed or not what its revision says (its `__cause__` is the `artifact` error that says
    │   which), or a policy that does not compile (the CLI's `PolicyError`); a reload keeps the
    │   table it has, a start-up stops
    ├── CredentialError: a provider's credential reference (`env:`, `file:`) that cannot be
    │   resolved; that provider is skipped, the rest serve
    ├── LedgerError: the spend ledger cannot be read or written; a request under budgets is refused
    │   (503 `ledger_unavailable`) rather than spent blind
    ├── ListenError: the address to serve on cannot be bound (in use, not permitted, not this
    │   host's); the proxy does not start
    ├── BodyTooLarge: a request body over the gateway's `max_body_bytes` (400 `request_too_large`)
    ├── BodyCutShort: the client closed the connection, or it was closed for the gateway's
    │   `body_timeout_s`, before the request body had arrived; nothing is forwarded
    ├── TranslationError: a request or an answer that cannot be expressed in the other protocol;
    │   the message says what and why
    └── UpstreamError: the provider's answer never came or broke off; its `reason` names it in the
        access log, the metrics and error bodies, and is the condition a route's `fallback.on`
        lists when it happened before the answer reached the client
        ├── UpstreamTimeout ("timeout"): no answer, or no next byte, within the provider's deadline
        ├── UpstreamConnectError ("connect"): cannot connect, the connection dropped, or a stream
        │   ended before its first event
        ├── StreamCutShort ("cut_short"): a stream ended before its protocol's final event, after
        │   its first events were relayed (so never a fallback)
        ├── NotItsProtocol ("invalid_answer"): a 2xx that is not its protocol's (not JSON, an HTML
        │   page, a stream whose first event is not one); falls back where the route lists `5xx`
        └── AnswerTooLarge ("too_large"): a whole answer over `gateway.max_answer_bytes`, or a
            stream event over `gateway.max_event_bytes`; its message names the limit, it is never
            a fallback condition, and the connection is dropped rather than read on

A fault that is none of these (a bug) reaches the request's last line of defence: a typed 500
and an access-log line naming the exception's type.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the runtime raises on purpose."""


class TableError(GatewayError):
    """A table source that must not be served: a bad artifact, or a policy that does not compile."""


class CredentialError(GatewayError):
    """A credential reference that cannot be resolved; the message names the reference, not a value."""


class LedgerError(GatewayError):
    """The ledger could not be read or written; the proxy fails closed (503) rather than spend blind."""


class ListenError(GatewayError):
    """The proxy cannot listen where it was asked to: `cannot listen on HOST:PORT: REASON`."""


class BodyTooLarge(GatewayError):
    """A request body larger than the gateway's limit, told by its Content-Length or by reading it."""


class BodyCutShort(GatewayError):
    """The connection ended before the whole request body arrived: what did arrive is never parsed."""


class TranslationError(GatewayError):
    """A request that cannot be expressed in the target's protocol; the message says what and why."""


class UpstreamError(GatewayError):
    """The provider could not be reached or did not answer in full; `reason` names what happened
    and `condition` is the `fallback.on` condition it counts as (None: none)."""

    reason: ClassVar[str]

    @property
    def condition(self) -> str | None:
        return self.reason


class UpstreamTimeout(UpstreamError):
    reason = "timeout"


class UpstreamConnectError(UpstreamError):
    reason = "connect"


class StreamCutShort(UpstreamError):
    reason = "cut_short"


class NotItsProtocol(UpstreamError):
    """A 2xx answer that is not its protocol's; the message says what it was instead."""

    reason = "invalid_answer"

    @property
    def condition(self) -> str | None:
        return "5xx"


class AnswerTooLarge(UpstreamError):
    """An answer or a stream event over the gateway's limit; the message names the limit."""

    reason = "too_large"

    @property
    def condition(self) -> str | None:
        return None
