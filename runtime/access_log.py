"""One JSON line per request: when, its request id, who (VK id and key prefix, never the key), what, where it
went, how it ended."""

from __future__ import annotations

import sys
import time
from typing import Any, NotRequired, TextIO, TypedDict

import orjson


class Attempt(TypedDict):
    """One target of the route as the access log and an all-failed error list it."""

    provider: str
    model: str
    reason: str
    credential: NotRequired[str]
    """The id of the credential the call carried, for a provider that lists api_keys."""
    detail: NotRequired[str]
    """What the answer was, where the reason alone does not say (`invalid_answer`, `too_large`)."""


class AccessRecord:
    """The access-log line of one proxied request, as typed fields. Every field the request set is
    a key of the line, in the order it was first set, null when it was set to None; a field never
    set is left out (and reads as its default here). A plain class rather than a dataclass: its
    instance attributes are the line, with nothing to build per request."""

    ts: str
    """When the line was written: RFC 3339, UTC, to the millisecond."""
    request_id: str
    surface: str
    revision: str
    trace_id: str | None = None
    """The request's W3C trace id (the client's, when it sent a traceparent), while telemetry is on."""
    vk: str | None = None
    key_prefix: str | None = None
    model: str | None = None
    route_source: str | None = None
    decision: str | None = None
    token_count: str | None = None
    """A token-count request's method: `provider` (the target's counting endpoint) or `estimate`."""
    budget: str | None = None
    rate_limit: str | None = None
    cache_override_refused: str | None = None
    translation_error: str | None = None
    provider: str | None = None
    credential: str | None = None
    """The id (never the value) of the credential that answered, for a provider that lists api_keys."""
    upstream_model: str | None = None
    attempts: list[Attempt] | None = None
    translated: str | None = None
    translation_dropped: list[str] | None = None
    fallback_count: int | None = None
    stream_error: str | None = None
    internal_error: str | None = None
    cache_mode: str | None = None
    cache: str | None = None
    cache_lookup: str | None = None
    ledger_error: str | None = None
    cost_usd: str | None = None
    usage: dict[str, Any] | None = None
    status: int | None = None
    latency_ms: float | None = None

    def __init__(self, request_id: str, surface: str, revision: str) -> None:
        self.ts = ""
        self.request_id = request_id
        self.surface = surface
        self.revision = revision

    def line(self) -> dict[str, Any]:
        """The fields set, by name: the instance's own attributes."""
        return self.__dict__


class Rfc3339Clock:
    """The time now as RFC 3339 in UTC, to the millisecond (2026-03-01T09:30:00.123Z); the part up
    to the second is formatted once a second, as every log line needs one."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        millis = int(time.time() * 1000)
        second, milli = divmod(millis, 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{milli:03d}Z"


class AccessLog:
    """JSON lines, each opening with `ts`: when it was written (for a request, when it ended)."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self._stream = stream
        self.enabled = enabled
        self.clock = Rfc3339Clock()

    def write(self, record: dict[str, Any]) -> None:
        """One line, as given."""
        if not self.enabled:
            return
        stream = self._stream or sys.stderr
        stream.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode())
        stream.flush()

    def request(self, record: AccessRecord) -> None:
        if self.enabled:
            record.ts = self.clock.now()
            self.write(record.line())


class EventLog(AccessLog):
    """Operational events (reloads, start-up problems) as JSON lines, beside the access log."""

    def event(self, event: str, **fields: Any) -> None:
        self.write({"ts": self.clock.now(), "event": event, **fields})
